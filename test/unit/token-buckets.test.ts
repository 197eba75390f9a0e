import assert from "node:assert/strict";
import { TokenBuckets } from "../../src/util/token-buckets.js";

describe("TokenBuckets", function () {
  it("lets a burst through, then one request per 1/perSecond, and says when to come back", function () {
    const buckets = new TokenBuckets({ perSecond: 2, burst: 3 });
    const t = 1_000_000;
    for (let i = 0; i < 3; i++) assert.deepEqual(buckets.take("10.0.0.1", t), { ok: true });
    assert.deepEqual(buckets.take("10.0.0.1", t), { ok: false, retryAfterSeconds: 1 });
    // Half a second gives one token back at 2/s.
    assert.deepEqual(buckets.take("10.0.0.1", t + 499), { ok: false, retryAfterSeconds: 1 });
    assert.deepEqual(buckets.take("10.0.0.1", t + 500), { ok: true });
    assert.equal(buckets.take("10.0.0.1", t + 500).ok, false);
    // Other sources have their own buckets.
    assert.deepEqual(buckets.take("10.0.0.2", t), { ok: true });
    // A long quiet refills to the burst, not beyond.
    const later = t + 60_000;
    for (let i = 0; i < 3; i++) assert.equal(buckets.take("10.0.0.1", later).ok, true);
    assert.equal(buckets.take("10.0.0.1", later).ok, false);
  });

  it("asks for a longer wait when the rate is below one a second", function () {
    const buckets = new TokenBuckets({ perSecond: 0.2, burst: 1 });
    assert.equal(buckets.take("a", 0).ok, true);
    assert.deepEqual(buckets.take("a", 0), { ok: false, retryAfterSeconds: 5 });
    assert.deepEqual(buckets.take("a", 4_000), { ok: false, retryAfterSeconds: 1 });
    assert.equal(buckets.take("a", 5_000).ok, true);
  });

  it("stays bounded under many sources, forgetting quiet ones first", function () {
    const buckets = new TokenBuckets({ perSecond: 1, burst: 2, maxKeys: 100 });
    // A busy source (empty bucket) and 10,000 one-off sources.
    buckets.take("busy", 0);
    buckets.take("busy", 0);
    for (let i = 0; i < 10_000; i++) buckets.take(`x${i}`, 0);
    assert.ok(buckets.size <= 100, `remembers ${buckets.size}`);
    // Quiet ones (full again after a second) go first: the busy one is still remembered as empty,
    // unless everyone was busy, in which case the oldest went.
    const fresh = new TokenBuckets({ perSecond: 1, burst: 2, maxKeys: 3 });
    fresh.take("busy", 0);
    fresh.take("busy", 0);
    fresh.take("quiet1", 0);
    fresh.take("quiet2", 0);
    // At t = 5 s the quiet ones are full again and are forgotten; the busy one refilled too.
    fresh.take("new", 5_000);
    assert.equal(fresh.size, 1);
    const crowded = new TokenBuckets({ perSecond: 0.001, burst: 1, maxKeys: 3 });
    for (const key of ["a", "b", "c"]) crowded.take(key, 0);
    crowded.take("d", 1);
    assert.equal(crowded.size, 3);
    assert.deepEqual(crowded.take("b", 2), { ok: false, retryAfterSeconds: 1000 });
  });

  it("refuses settings that would never let anything through", function () {
    assert.throws(() => new TokenBuckets({ perSecond: 0, burst: 1 }), RangeError);
    assert.throws(() => new TokenBuckets({ perSecond: 1, burst: 0 }), RangeError);
  });
});
