// The message queue port: one contract for the in-memory queue and the Redis queue (real
// redis-server, append-only; and a Redis Cluster of three primaries, and Redis Sentinel), plus what
// only Redis promises: the queue survives kill -9 of Redis, and with waitReplicas a failover too.
import assert from "node:assert/strict";
import { RedisMessageQueue } from "../../components/redis/redis-message-queue.js";
import { MemoryMessageQueue } from "../../src/messages/memory-queue.js";
import type { MessageQueue, QueuedMessage } from "../../src/ports/message-queue.js";
import { memoryLogger } from "../harness/memory-logger.js";
import { RedisClusterSet, RedisSentinelSet, RedisServer } from "../harness/redis.js";

const entry = (id: string, to: string, at: number, extra: Partial<QueuedMessage> = {}): QueuedMessage => ({
  key: `alice@example.org\n${id}`,
  message: { id, from: "alice@example.org", to, body: `héllo ☎ ${id}`, receipt: true },
  queuedAt: at,
  expiresAt: at + 86_400_000,
  attempts: 1,
  nextAttemptAt: at + 30_000,
  ...extra,
});

function queueContract(
  name: string,
  make: () => Promise<{ queue: MessageQueue; close: () => Promise<void> }>,
): void {
  describe(`message queue contract: ${name}`, function () {
    let queue: MessageQueue;
    let close: () => Promise<void>;
    beforeEach(async function () {
      ({ queue, close } = await make());
    });
    afterEach(async function () {
      await close();
    });

    it("queues an entry once by key and gives it back unchanged", async function () {
      const first = entry("m1", "bob@example.org", 1_764_460_000_000);
      assert.equal(await queue.enqueue(first), true);
      assert.equal(await queue.enqueue({ ...first, attempts: 7 }), false);
      assert.equal(await queue.size(), 1);
      assert.deepEqual(await queue.forRecipient("bob@example.org"), [first]);
    });

    it("hands out due entries soonest first, up to the limit", async function () {
      const t = 1_764_460_000_000;
      await queue.enqueue(entry("late", "bob@example.org", t, { nextAttemptAt: t + 3_000 }));
      await queue.enqueue(entry("early", "bob@example.org", t, { nextAttemptAt: t + 1_000 }));
      await queue.enqueue(entry("mid", "carol@example.org", t, { nextAttemptAt: t + 2_000 }));
      assert.deepEqual(await queue.due(t, 10), []);
      assert.deepEqual(
        (await queue.due(t + 2_000, 10)).map((e) => e.message.id),
        ["early", "mid"],
      );
      assert.deepEqual(
        (await queue.due(t + 5_000, 2)).map((e) => e.message.id),
        ["early", "mid"],
      );
    });

    it("reschedules an entry and keeps each recipient's entries apart, oldest first", async function () {
      const t = 1_764_460_000_000;
      await queue.enqueue(entry("b2", "bob@example.org", t + 10));
      await queue.enqueue(entry("b1", "bob@example.org", t));
      await queue.enqueue(entry("c1", "carol@example.org", t));
      await queue.reschedule("alice@example.org\nb1", t + 99_000, 3);
      const bob = await queue.forRecipient("bob@example.org");
      assert.deepEqual(
        bob.map((e) => [e.message.id, e.attempts, e.nextAttemptAt]),
        [
          ["b1", 3, t + 99_000],
          ["b2", 1, t + 10 + 30_000],
        ],
      );
      assert.deepEqual((await queue.due(t + 60_000, 10)).map((e) => e.message.id).sort(), ["b2", "c1"]);
      await queue.reschedule("alice@example.org\nnothing", t, 2); // unknown: no effect
      assert.equal(await queue.size(), 3);
    });

    it("gives one entry by key as it is now, and takes any body (even one Lua's JSON cannot read)", async function () {
      const t = 1_764_460_000_000;
      const odd = entry("odd", "bob@example.org", t);
      odd.message.body = "lone \ud800 surrogate";
      await queue.enqueue(odd);
      assert.deepEqual(await queue.get(odd.key), odd);
      await queue.reschedule(odd.key, t + 5, 2);
      assert.deepEqual(await queue.get(odd.key), { ...odd, attempts: 2, nextAttemptAt: t + 5 });
      assert.equal(await queue.remove(odd.key), true);
      assert.equal(await queue.get(odd.key), undefined);
    });

    it("removes an entry everywhere, once", async function () {
      const t = 1_764_460_000_000;
      await queue.enqueue(entry("x", "bob@example.org", t));
      assert.equal(await queue.remove("alice@example.org\nx"), true);
      assert.equal(await queue.remove("alice@example.org\nx"), false);
      assert.deepEqual(await queue.forRecipient("bob@example.org"), []);
      assert.deepEqual(await queue.due(t + 60_000, 10), []);
      assert.equal(await queue.size(), 0);
    });

    it("tells when the oldest waiting entry was queued, and nothing once none waits", async function () {
      const t = 1_764_460_000_000;
      assert.equal(await queue.oldestQueuedAt(), undefined);
      await queue.enqueue(entry("newer", "bob@example.org", t + 500));
      await queue.enqueue(entry("older", "carol@example.org", t));
      assert.equal(await queue.oldestQueuedAt(), t);
      await queue.remove("alice@example.org\nolder");
      assert.equal(await queue.oldestQueuedAt(), t + 500);
      await queue.remove("alice@example.org\nnewer");
      assert.equal(await queue.oldestQueuedAt(), undefined);
    });
  });
}

queueContract("in memory", () => {
  const queue = new MemoryMessageQueue();
  return Promise.resolve({ queue, close: () => Promise.resolve() });
});

describe("Redis message queue", function () {
  let redis: RedisServer;
  before(async function () {
    redis = await RedisServer.start();
  });
  after(async function () {
    await redis?.stop();
  });

  queueContract("Redis", async () => {
    const queue = await RedisMessageQueue.connect({
      target: redis.url,
      prefix: RedisServer.newPrefix("q"),
      log: memoryLogger(),
    });
    return { queue, close: () => queue.close() };
  });

  it("keeps queued messages through kill -9 of redis-server (append-only), and says so when Redis is away", async function () {
    const prefix = RedisServer.newPrefix("q");
    const queue = await RedisMessageQueue.connect({ target: redis.url, prefix, log: memoryLogger() });
    try {
      const kept = entry("kept", "bob@example.org", 1_764_460_000_000);
      await queue.enqueue(kept);
      const stopped = redis.process.kill();
      await stopped;
      await assert.rejects(queue.size(), { condition: "service-unavailable" });
      redis = await redis.restart();
      for (let i = 0; i < 100 && !queue.ready(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(queue.ready(), "the queue reconnected");
      assert.deepEqual(await queue.forRecipient("bob@example.org"), [kept]);
      const keys = (await redis.command("KEYS", "*")) as string[];
      assert.ok(keys.length > 0 && keys.every((k) => k.startsWith("sbtest:")), keys.join(", "));
    } finally {
      await queue.close();
    }
  });

  it("indexes the age of entries queued before the age index existed, when it connects", async function () {
    const prefix = RedisServer.newPrefix("q");
    const t = 1_764_460_000_000;
    const first = await RedisMessageQueue.connect({ target: redis.url, prefix, log: memoryLogger() });
    await first.enqueue(entry("old", "bob@example.org", t));
    await first.enqueue(entry("older", "carol@example.org", t - 60_000));
    await first.close();
    // As an earlier version left it: entries without the queued index.
    await redis.command("DEL", `${prefix}queue:{q}:queued`);
    const log = memoryLogger();
    const queue = await RedisMessageQueue.connect({ target: redis.url, prefix, log });
    try {
      assert.equal(await queue.oldestQueuedAt(), t - 60_000);
      assert.ok(
        log.lines.some((l) => l.message === "message queue: queued times indexed" && l.fields.added === 2),
      );
      await queue.remove("alice@example.org\nolder");
      assert.equal(await queue.oldestQueuedAt(), t);
    } finally {
      await queue.close();
    }
  });
});

describe("Redis message queue on a Redis Cluster (three primaries)", function () {
  this.timeout(60_000);
  let cluster: RedisClusterSet;
  before(async function () {
    cluster = await RedisClusterSet.start();
  });
  after(async function () {
    await cluster?.stop();
  });

  queueContract("Redis Cluster", async () => {
    const queue = await RedisMessageQueue.connect({
      target: cluster.target,
      prefix: RedisServer.newPrefix("q"),
      log: memoryLogger(),
    });
    return { queue, close: () => queue.close() };
  });
});

describe("Redis message queue on Redis Sentinel (primary, replica, three sentinels)", function () {
  this.timeout(120_000);
  let set: RedisSentinelSet;
  before(async function () {
    set = await RedisSentinelSet.start();
  });
  after(async function () {
    await set?.stop();
  });

  queueContract("Redis Sentinel", async () => {
    const queue = await RedisMessageQueue.connect({
      target: set.target,
      prefix: RedisServer.newPrefix("q"),
      log: memoryLogger(),
    });
    return { queue, close: () => queue.close() };
  });

  it("refuses an entry too few replicas acknowledge, and takes it back", async function () {
    const queue = await RedisMessageQueue.connect({
      target: set.target,
      prefix: RedisServer.newPrefix("q"),
      log: memoryLogger(),
      waitReplicas: 2, // there is one
      waitTimeoutMs: 200,
    });
    try {
      await assert.rejects(queue.enqueue(entry("m", "bob@example.org", 1_764_460_000_000)), {
        condition: "service-unavailable",
        message: /1 of 2 replicas acknowledged within 200 ms/,
      });
      assert.equal(await queue.size(), 0);
    } finally {
      await queue.close();
    }
  });

  it("keeps every entry acknowledged by a replica through a kill -9 of the primary (waitReplicas 1)", async function () {
    const queue = await RedisMessageQueue.connect({
      target: set.target,
      prefix: RedisServer.newPrefix("q"),
      log: memoryLogger(),
      waitReplicas: 1,
    });
    try {
      const t = 1_764_460_000_000;
      const queued: QueuedMessage[] = [];
      for (let i = 0; i < 50; i++) {
        const e = entry(`m${i}`, `user${i % 5}@example.org`, t + i);
        assert.equal(await queue.enqueue(e), true);
        queued.push(e);
      }
      const before = await set.primaryPort();
      await set.failover({ kill: true });
      assert.notEqual(await set.primaryPort(), before);
      for (let i = 0; i < 200 && !queue.ready(); i++) await new Promise((r) => setTimeout(r, 50));
      let size = -1;
      for (let i = 0; i < 100 && size < 0; i++)
        size = await queue.size().catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return -1;
        });
      assert.equal(size, 50);
      for (let i = 0; i < 5; i++)
        assert.deepEqual(
          await queue.forRecipient(`user${i}@example.org`),
          queued.filter((e) => e.message.to === `user${i}@example.org`),
        );
    } finally {
      await queue.close();
    }
  });
});
