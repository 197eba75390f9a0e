import assert from "node:assert/strict";
import { backoffDelay } from "../../src/util/backoff.js";

describe("backoffDelay (exponential, equal jitter, capped)", function () {
  const options = { baseMs: 500, capMs: 30_000 };
  const table: [attempt: number, min: number, max: number][] = [
    [0, 250, 500],
    [1, 500, 1_000],
    [2, 1_000, 2_000],
    [5, 8_000, 16_000],
    [6, 15_000, 30_000],
    [50, 15_000, 30_000],
  ];
  for (const [attempt, min, max] of table) {
    it(`attempt ${attempt} waits between ${min} and ${max} ms`, function () {
      assert.equal(
        backoffDelay(attempt, options, () => 0),
        min,
      );
      assert.equal(
        backoffDelay(attempt, options, () => 1),
        max,
      );
      const middle = backoffDelay(attempt, options, () => 0.5);
      assert.ok(middle > min && middle < max);
    });
  }
});
