import assert from "node:assert/strict";

import { AddressError, CONDITIONS, SwitchboardError, quote } from "../../src/domain/errors.js";

describe("errors", () => {
  it("SwitchboardError carries its condition and cause", () => {
    const cause = new Error("socket closed");
    const err = new SwitchboardError("remote-server-timeout", "no answer from the proxy", { cause });
    assert.ok(err instanceof Error);
    assert.equal(err.condition, "remote-server-timeout");
    assert.equal(err.message, "no answer from the proxy");
    assert.equal(err.cause, cause);
    assert.equal(err.name, "SwitchboardError");
  });

  it("AddressError is a SwitchboardError with input and reason", () => {
    const err = new AddressError("sip:alice@", "empty host in SIP URI 'sip:alice@'");
    assert.ok(err instanceof SwitchboardError);
    assert.equal(err.condition, "malformed-address");
    assert.equal(err.input, "sip:alice@");
    assert.equal(err.reason, "empty host in SIP URI 'sip:alice@'");
    assert.equal(err.message, err.reason);
    assert.equal(err.name, "AddressError");
    assert.equal(new AddressError("x", "loop", "loop-detected").condition, "loop-detected");
  });

  it("has the conditions the edges translate, each once", () => {
    for (const c of ["bad-request", "item-not-found", "forbidden", "loop-detected", "service-unavailable"]) {
      assert.ok((CONDITIONS as readonly string[]).includes(c), c);
    }
    assert.equal(new Set(CONDITIONS).size, CONDITIONS.length);
  });

  it("quote() makes control characters visible and cuts long inputs", () => {
    assert.equal(quote("a\nb"), "'a\\x0ab'");
    const long = quote("x".repeat(500));
    assert.ok(long.length < 210);
    assert.ok(long.endsWith("…'"));
  });
});
