// Shared assertions: an invalid input must throw the right error type whose message names the problem.
import assert from "node:assert/strict";

import { AddressError, SwitchboardError, type Condition } from "../../src/domain/errors.js";

export function assertAddressError(
  fn: () => unknown,
  input: string,
  problem: string,
  condition: Condition = "malformed-address",
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AddressError, `expected AddressError, got ${String(err)}`);
    assert.equal(err.input, input);
    assert.equal(err.condition, condition);
    assert.equal(err.message, err.reason);
    assert.ok(err.reason.includes(problem), `'${err.reason}' should name '${problem}'`);
    return true;
  });
}

export function assertSwitchboardError(fn: () => unknown, condition: Condition, problem: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SwitchboardError, `expected SwitchboardError, got ${String(err)}`);
    assert.equal(err.condition, condition);
    assert.ok(err.message.includes(problem), `'${err.message}' should name '${problem}'`);
    return true;
  });
}
