// The PresenceStore contract against both adapters, and what only the Redis one has to show against
// a real redis-server: instances sharing it, key hygiene, durability across a kill -9, outages. The
// Redis adapter's contract runs again on a Redis Cluster (three primaries: every script's keys in
// one slot, the data spread over the primaries) and on a Sentinel set (a failover followed).
import assert from "node:assert/strict";
import { presenceStoreKeys, RedisPresenceStore } from "../../components/redis/redis-presence-store.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import type { PresenceState } from "../../src/domain/presence.js";
import { silentLogger, type Logger } from "../../src/ports/logger.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { freePort, LOOPBACK } from "../harness/net.js";
import { RedisClusterSet, RedisSentinelSet, RedisServer } from "../harness/redis.js";
import {
  deviceRecord,
  presenceStoreContract,
  recordChanges,
  sortRecords,
  until,
  xmppRecord,
} from "./presence-store-contract.js";

presenceStoreContract("MemoryPresenceStore", () =>
  Promise.resolve({ store: new MemoryPresenceStore(), close: () => Promise.resolve() }),
);

const T = 1_700_000_000_000;

/** Fails if `promise` has not settled within `ms`: the call must not hang while Redis is away. */
async function settlesWithin<V>(promise: Promise<V>, ms: number): Promise<V> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

function isUnavailable(err: unknown): boolean {
  assert.ok(err instanceof SwitchboardError, `expected SwitchboardError, got ${String(err)}`);
  assert.equal(err.condition, "service-unavailable");
  return true;
}

describe("RedisPresenceStore (real redis-server)", function () {
  let server: RedisServer;
  const opened: RedisPresenceStore[] = [];

  before(async function () {
    server = await RedisServer.start();
  });

  after(async function () {
    await server?.stop();
  });

  afterEach(async function () {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  async function connect(prefix: string, log: Logger = silentLogger): Promise<RedisPresenceStore> {
    const store = await RedisPresenceStore.connect({
      target: server.url,
      prefix,
      log,
      connectTimeoutMs: 5_000,
      commandTimeoutMs: 3_000,
    });
    opened.push(store);
    return store;
  }

  async function keys(): Promise<string[]> {
    const found: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = (await server.command("SCAN", cursor, "COUNT", "1000")) as [string, string[]];
      found.push(...batch);
      cursor = next;
    } while (cursor !== "0");
    return found.sort();
  }

  presenceStoreContract("RedisPresenceStore", async () => {
    const store = await connect(RedisServer.newPrefix("contract"));
    return { store, close: () => store.close() };
  });

  it("two instances on one prefix both hear a write made on either, once", async function () {
    const prefix = RedisServer.newPrefix("two");
    const [a, b] = [await connect(prefix), await connect(prefix)];
    const [heardA, heardB] = [recordChanges(a), recordChanges(b)];
    await a.putRecord("alice", xmppRecord("laptop", "away", T), T);
    await b.putRecord("alice", xmppRecord("phone", "dnd", T + 1), T + 1);
    await b.putRecord("bob", deviceRecord("idle", T + 2), T + 2);
    await until("three changes on both", () => heardA.seen.length >= 3 && heardB.seen.length >= 3);
    const expected = [
      ["alice", "away"],
      ["alice", "dnd"],
      ["bob", "available"],
    ];
    assert.deepEqual(
      heardA.seen.map(([p, x]) => [p, x.state]),
      expected,
    );
    assert.deepEqual(heardB.seen, heardA.seen);
    // And each reads what the other wrote.
    assert.equal((await a.presence("bob", T + 2)).aggregate.state, "available");
    assert.equal((await b.presence("alice", T + 2)).records.length, 2);
  });

  it("two instances writing one person at once keep every record and agree on the last change", async function () {
    const prefix = RedisServer.newPrefix("race");
    const [a, b] = [await connect(prefix), await connect(prefix)];
    const [heardA, heardB] = [recordChanges(a), recordChanges(b)];
    const states: PresenceState[] = ["away", "dnd", "chat", "xa"];
    const records = Array.from({ length: 40 }, (_, i) =>
      xmppRecord(`r${i}`, states[i % states.length] ?? "away", T + ((i * 7) % 40), { note: `n${i}` }),
    );
    const now = T + 100;
    // Conflicts between the two instances are retried inside putRecord; none may surface.
    const updates = await Promise.all(
      records.map((r, i) => (i % 2 === 0 ? a : b).putRecord("alice", r, now)),
    );
    const changes = updates.filter((u) => u.changed).length;
    await until(
      `${changes} changes on both`,
      () => heardA.seen.length >= changes && heardB.seen.length >= changes,
    );
    const stored = await a.presence("alice", now);
    assert.deepEqual(sortRecords(stored.records), sortRecords(records));
    assert.equal(heardA.seen.length, changes);
    assert.deepEqual(heardB.seen, heardA.seen);
    const last = heardA.seen.at(-1)?.[1];
    assert.deepEqual([last?.state, last?.note], [stored.aggregate.state, stored.aggregate.note]);
  });

  it("an instance whose last sight of a person is stale writes from what is stored, never from its memory", async function () {
    // A remembers Alice's hash after each of its writes, to commit without reading first. B then
    // changes it, and later removes everything (the hash is deleted) and writes a new one: A's next
    // writes must still keep B's records, not replace them with what A last saw.
    const prefix = RedisServer.newPrefix("stale");
    const [a, b] = [await connect(prefix), await connect(prefix)];
    await a.putRecord("alice", xmppRecord("laptop", "away", T), T);
    await b.putRecord("alice", xmppRecord("phone", "dnd", T + 1), T + 1);
    const second = await a.putRecord("alice", xmppRecord("laptop", "chat", T + 2), T + 2);
    assert.deepEqual(
      sortRecords((await b.presence("alice", T + 3)).records),
      sortRecords([xmppRecord("laptop", "chat", T + 2), xmppRecord("phone", "dnd", T + 1)]),
    );
    assert.equal(second.aggregate.state, "chat");

    await b.removeRecord("alice", { kind: "xmpp", resource: "laptop" }, T + 4);
    await b.removeRecord("alice", { kind: "xmpp", resource: "phone" }, T + 4);
    assert.deepEqual(await keys().then((k) => k.filter((x) => x.startsWith(`${prefix}presence:`))), []);
    await b.putRecord("alice", deviceRecord("inuse", T + 5), T + 5);
    await b.putRecord("alice", xmppRecord("tablet", "dnd", T + 6), T + 6);
    await b.putRecord("alice", xmppRecord("tablet", "xa", T + 7), T + 7);
    // A last saw two xmpp records, after the third write of the hash's first life; this is the third
    // write of its second life (a version counter would now read as A remembers it).
    const third = await a.putRecord("alice", xmppRecord("laptop", "away", T + 8), T + 8);
    const stored = await b.presence("alice", T + 9);
    assert.deepEqual(
      sortRecords(stored.records),
      sortRecords([
        deviceRecord("inuse", T + 5),
        xmppRecord("tablet", "xa", T + 7),
        xmppRecord("laptop", "away", T + 8),
      ]),
    );
    assert.deepEqual(third.aggregate, stored.aggregate);
  });

  it("answers who subscribed to a contact from its copy of the index, kept current across instances", async function () {
    const prefix = RedisServer.newPrefix("index");
    const [a, b] = [await connect(prefix), await connect(prefix)];
    const contact = "bob@gw.example.org";
    assert.deepEqual(await a.xmppSubscribers(contact), []);
    await b.addXmppSubscriber(contact, "alice@example.org");
    // B's add is announced on the change channel; A's copy gets it.
    await until("A sees B's subscriber", async () => (await a.xmppSubscribers(contact)).length === 1);
    assert.deepEqual(await a.xmppSubscribers(contact), ["alice@example.org"]);
    assert.equal(await b.removeXmppSubscriber(contact, "alice@example.org"), true);
    assert.deepEqual(await a.xmppSubscribers(contact), []);

    // An entry written behind the stores' backs (no announcement) is not seen from the copy, which
    // shows the copy answers; when the change channel's connection is cut and comes back, the index
    // is read again and the entry is seen.
    const other = "carol@gw.example.org";
    const names = presenceStoreKeys(prefix);
    await server.command("SADD", names.subscribers(other), "dave@example.org");
    await server.command("SADD", names.subscribedContactsOf(other), other);
    assert.deepEqual(await a.xmppSubscribers(other), []);
    await server.command("CLIENT", "KILL", "TYPE", "pubsub");
    await until("A reads the index again", async () => (await a.xmppSubscribers(other)).length === 1);
    assert.deepEqual(await b.xmppSubscribers(other), ["dave@example.org"]);
    // And the copy is in use again (not every lookup asking Redis from now on): a new entry behind the
    // stores' backs is, once more, not seen.
    let hidden = 0;
    await until("A answering from its copy again", async () => {
      const contact = `hidden${++hidden}@gw.example.org`;
      await server.command("SADD", names.subscribers(contact), "erin@example.org");
      await server.command("SADD", names.subscribedContactsOf(contact), contact);
      return (await a.xmppSubscribers(contact)).length === 0;
    });
  });

  it("writes only keys under its prefix, and leaves none once everything is removed", async function () {
    await server.command("FLUSHALL"); // only this test's keys from here on
    const prefix = RedisServer.newPrefix("keys");
    const store = await connect(prefix);
    await store.putRecord("alice@example.org", xmppRecord("laptop", "away", T), T);
    await store.putRecord("alice@example.org", deviceRecord("inuse", T), T);
    await store.putRecord(
      "bob@example.org",
      {
        source: { kind: "sip-publish", etag: "e1" },
        state: "dnd",
        note: null,
        updatedAt: T,
        expiresAt: T + 60_000,
      },
      T,
    );
    await store.putRecord(
      "bob@example.org",
      { source: { kind: "pbx-custom" }, state: "xa", updatedAt: T, expiresAt: null },
      T,
    );
    await store.addXmppSubscriber("alice@sip.example.org", "carol@example.org");
    await store.putWatcherSubscription({
      id: "w1",
      event: "dialog",
      person: "alice@example.org",
      presentity: "sip:alice@example.org",
      callId: "c1",
      localTag: "l1",
      remote: "<sip:bob@example.org>;tag=r1",
      local: "<sip:alice@example.org>;tag=l1",
      target: "sip:bob@192.0.2.1",
      routes: [],
      cseq: 1,
      expiresAt: Date.now() + 60_000,
    });
    const written = await keys();
    assert.ok(written.length >= 8, `expected the store's keys, found ${JSON.stringify(written)}`);
    for (const key of written) assert.ok(key.startsWith(prefix), `${key} is outside the prefix ${prefix}`);

    await store.removeRecord("alice@example.org", { kind: "xmpp", resource: "laptop" }, T + 1);
    await store.removeRecord("alice@example.org", { kind: "pbx-device" }, T + 1);
    await store.removeRecord("bob@example.org", { kind: "sip-publish", etag: "e1" }, T + 1);
    await store.removeRecord("bob@example.org", { kind: "pbx-custom" }, T + 1);
    await store.removeXmppSubscriber("alice@sip.example.org", "carol@example.org");
    await store.removeWatcherSubscription("w1");
    assert.deepEqual(await keys(), []);
  });

  it("drops watcher subscriptions past their expiry when listing them", async function () {
    const prefix = RedisServer.newPrefix("expiry");
    const store = await connect(prefix);
    const base = {
      event: "presence" as const,
      person: "alice@example.org",
      presentity: "sip:alice@example.org",
      callId: "c",
      localTag: "l",
      remote: "<sip:bob@example.org>;tag=r",
      local: "<sip:alice@example.org>;tag=l",
      target: "sip:bob@192.0.2.1",
      routes: [],
      cseq: 1,
    };
    const live = { ...base, id: "live", expiresAt: Date.now() + 60_000 };
    await store.putWatcherSubscription({ ...base, id: "expired", expiresAt: Date.now() - 1_000 });
    await store.putWatcherSubscription(live);
    assert.deepEqual(await store.watcherSubscriptions(), [live]);
    // The expired one is gone from Redis too, from both of its keys.
    const names = presenceStoreKeys(prefix);
    const shard = names.watcherShard("expired");
    assert.equal(await server.command("HEXISTS", names.watchers(shard), "expired"), 0);
    assert.equal(await server.command("ZSCORE", names.watchersExpiry(shard), "expired"), null);
    assert.equal(await server.command("HEXISTS", names.watchers(names.watcherShard("live")), "live"), 1);
    // A refresh moves the expiry on: an expired subscription renewed in time is kept.
    await store.putWatcherSubscription({ ...live, expiresAt: Date.now() - 1 });
    await store.putWatcherSubscription({ ...live, cseq: 2 });
    assert.deepEqual(await store.watcherSubscriptions(), [{ ...live, cseq: 2 }]);
  });

  it("logs and ignores a malformed change message", async function () {
    const lines: LogLine[] = [];
    const prefix = RedisServer.newPrefix("bad");
    const store = await connect(prefix, memoryLogger(lines));
    const { seen } = recordChanges(store);
    await server.command("PUBLISH", presenceStoreKeys(prefix).changes, "not JSON {");
    await server.command(
      "PUBLISH",
      presenceStoreKeys(prefix).changes,
      JSON.stringify({ person: "x", aggregate: { state: "bogus" } }),
    );
    await store.putRecord("alice", xmppRecord("laptop", "away", T), T);
    await until("the real change", () => seen.length >= 1);
    assert.deepEqual(
      seen.map(([p, a]) => [p, a.state]),
      [["alice", "away"]],
    );
    const warnings = lines.filter((l) => l.level === "warn" && l.message === "ignoring a malformed change");
    assert.equal(warnings.length, 2);
  });

  it("fails a call that Redis does not answer (frozen) with service-unavailable after the command timeout", async function () {
    this.timeout(10_000);
    const store = await RedisPresenceStore.connect({
      target: server.url,
      prefix: RedisServer.newPrefix("frozen"),
      log: silentLogger,
      commandTimeoutMs: 600,
    });
    opened.push(store);
    await store.putRecord("alice", xmppRecord("laptop", "away", T), T);
    server.process.child.kill("SIGSTOP"); // the connection stays open; nothing answers
    try {
      const started = performance.now();
      const outcomes = await Promise.allSettled([
        store.presence("alice", T),
        store.putRecord("alice", xmppRecord("laptop", "dnd", T + 1), T + 1),
        store.xmppSubscribedContacts(),
      ]);
      const waited = performance.now() - started;
      for (const outcome of outcomes) {
        assert.equal(outcome.status, "rejected");
        assert.ok(isUnavailable(outcome.reason));
        assert.match(String(outcome.reason), /no answer within 750 ms/);
      }
      assert.ok(waited >= 600 && waited < 2_000, `failed after ${waited.toFixed(0)} ms`);
    } finally {
      server.process.child.kill("SIGCONT");
    }
    // Answers again once Redis does. (The write that timed out may have been applied after all, as
    // with any timeout: it was sent. Its caller was told it failed and reports again.)
    await until("a read that succeeds", async () => {
      try {
        return ["away", "dnd"].includes((await store.presence("alice", T + 1)).aggregate.state);
      } catch {
        return false;
      }
    });
  });

  it("keeps its data across a kill -9 of redis-server, and reconnects and works again by itself", async function () {
    const lines: LogLine[] = [];
    const prefix = RedisServer.newPrefix("restart");
    const store = await connect(prefix, memoryLogger(lines));
    const readiness: boolean[] = [];
    store.on("readiness", (ready) => readiness.push(ready));
    const { seen } = recordChanges(store);
    await store.putRecord("alice", xmppRecord("laptop", "dnd", T, { note: "Focus" }), T);
    await store.addXmppSubscriber("alice@sip.example.org", "bob@example.org");
    await until("the first change", () => seen.length === 1);
    assert.equal(store.ready(), true);

    server = await server.restart({ kill: true });
    await until("the store to be ready again", () => readiness.length >= 2 && store.ready(), 20_000);
    assert.deepEqual(readiness.slice(0, 2), [false, true]);

    const { records, aggregate } = await store.presence("alice", T);
    assert.deepEqual(records, [xmppRecord("laptop", "dnd", T, { note: "Focus" })]);
    assert.deepEqual([aggregate.state, aggregate.note], ["dnd", "Focus"]);
    assert.deepEqual(await store.xmppSubscribers("alice@sip.example.org"), ["bob@example.org"]);
    // Writes work, and the change channel was subscribed again.
    const update = await store.putRecord("alice", xmppRecord("laptop", "away", T + 1), T + 1);
    assert.equal(update.changed, true);
    await until("the change after the restart", () => seen.length === 2);
    assert.deepEqual(seen[1]?.[1].state, "away");
    assert.ok(lines.some((l) => l.level === "warn" && l.message === "Redis connection lost"));
  });

  it("fails calls promptly with service-unavailable while redis-server is down, then recovers", async function () {
    const prefix = RedisServer.newPrefix("down");
    const store = await connect(prefix);
    await store.putRecord("alice", xmppRecord("laptop", "away", T), T);

    await server.halt({ kill: true });
    await until("the store to notice", () => !store.ready());
    assert.equal(store.ready(), false);
    await assert.rejects(
      settlesWithin(store.putRecord("alice", xmppRecord("laptop", "dnd", T + 1), T + 1), 10_000),
      isUnavailable,
    );
    await assert.rejects(settlesWithin(store.presence("alice", T + 1), 10_000), isUnavailable);
    await assert.rejects(settlesWithin(store.watcherSubscriptions(), 10_000), isUnavailable);
    await assert.rejects(
      settlesWithin(store.addXmppSubscriber("a@sip.example.org", "b@example.org"), 10_000),
      isUnavailable,
    );
    await assert.rejects(settlesWithin(store.removeWatcherSubscription("w"), 10_000), isUnavailable);
    await assert.rejects(settlesWithin(store.personsWithSource("xmpp"), 10_000), isUnavailable);

    server = await server.restart();
    await until("the store to be ready again", () => store.ready(), 20_000);
    const update = await store.putRecord("alice", xmppRecord("laptop", "dnd", T + 2), T + 2);
    assert.deepEqual([update.aggregate.state, update.changed], ["dnd", true]);
  });

  it("fails to connect with service-unavailable when nothing answers", async function () {
    const port = await freePort();
    await assert.rejects(
      settlesWithin(
        RedisPresenceStore.connect({
          target: `redis://${LOOPBACK}:${port}`,
          prefix: "nowhere:",
          log: silentLogger,
          connectTimeoutMs: 500,
        }),
        10_000,
      ),
      isUnavailable,
    );
  });
});

describe("RedisPresenceStore on a Redis Cluster (three primaries)", function () {
  this.timeout(60_000);
  let cluster: RedisClusterSet;
  const opened: RedisPresenceStore[] = [];

  before(async function () {
    cluster = await RedisClusterSet.start();
  });

  after(async function () {
    await cluster?.stop();
  });

  afterEach(async function () {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  async function connect(prefix: string): Promise<RedisPresenceStore> {
    const store = await RedisPresenceStore.connect({ target: cluster.target, prefix, log: silentLogger });
    opened.push(store);
    return store;
  }

  presenceStoreContract("RedisPresenceStore on a Cluster", async () => {
    const store = await connect(RedisServer.newPrefix("cluster"));
    return { store, close: () => store.close() };
  });

  it("spreads persons over the primaries, and two instances hear each other's changes", async function () {
    const prefix = RedisServer.newPrefix("spread");
    const [a, b] = [await connect(prefix), await connect(prefix)];
    const [heardA, heardB] = [recordChanges(a), recordChanges(b)];
    const persons = Array.from({ length: 40 }, (_, i) => `user${i}@example.org`);
    await Promise.all(persons.map((p, i) => (i % 2 ? a : b).putRecord(p, xmppRecord("r", "away", T), T)));
    await a.addXmppSubscriber("bob@sip.example.org", "alice@example.org");
    await until("40 changes on both", () => heardA.seen.length >= 40 && heardB.seen.length >= 40);
    assert.deepEqual(heardA.seen.map(([p]) => p).sort(), [...persons].sort());
    assert.deepEqual((await b.personsWithSource("xmpp")).sort(), [...persons].sort());
    assert.deepEqual(await b.xmppSubscribers("bob@sip.example.org", { fresh: true }), ["alice@example.org"]);
    // Every primary holds some of the presence hashes.
    for (const server of cluster.servers) {
      const held = (await server.command("KEYS", `${prefix}presence:*`)) as string[];
      assert.ok(held.length > 0, `no presence hash on ${server.address}`);
    }
  });
});

describe("RedisPresenceStore on Redis Sentinel (primary, replica, three sentinels)", function () {
  this.timeout(120_000);
  let set: RedisSentinelSet;
  const opened: RedisPresenceStore[] = [];

  before(async function () {
    set = await RedisSentinelSet.start();
  });

  after(async function () {
    await set?.stop();
  });

  afterEach(async function () {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  async function connect(prefix: string): Promise<RedisPresenceStore> {
    const store = await RedisPresenceStore.connect({
      target: set.target,
      prefix,
      log: silentLogger,
      commandTimeoutMs: 3_000,
    });
    opened.push(store);
    return store;
  }

  presenceStoreContract("RedisPresenceStore on Sentinel", async () => {
    const store = await connect(RedisServer.newPrefix("sentinel"));
    return { store, close: () => store.close() };
  });

  it("follows a failover: down then ready again, what was written is there, and writes and changes go on", async function () {
    const prefix = RedisServer.newPrefix("failover");
    const store = await connect(prefix);
    const readiness: boolean[] = [];
    store.on("readiness", (ready) => readiness.push(ready));
    const { seen } = recordChanges(store);
    await store.putRecord("alice", xmppRecord("laptop", "dnd", T), T);
    await store.addXmppSubscriber("alice@sip.example.org", "bob@example.org");
    await until("the first change", () => seen.length === 1);
    // Written on the primary; the replica has it once the replication offset caught up.
    await (await set.primary()).command("WAIT", "1", "2000");

    const before = await set.primaryPort();
    await set.failover();
    assert.notEqual(await set.primaryPort(), before);
    await until("the store to be ready again", () => readiness.includes(false) && store.ready(), 30_000);
    assert.equal(readiness.at(-1), true);

    assert.equal((await store.presence("alice", T)).aggregate.state, "dnd");
    assert.deepEqual(await store.xmppSubscribers("alice@sip.example.org", { fresh: true }), [
      "bob@example.org",
    ]);
    await until("a write on the new primary", async () => {
      try {
        return (await store.putRecord("alice", xmppRecord("laptop", "away", T + 1), T + 1)).changed;
      } catch {
        return false;
      }
    });
    await until("its change, heard through the new primary", () => seen.at(-1)?.[1].state === "away");
    const primary = await set.primary();
    assert.equal(await primary.command("EXISTS", presenceStoreKeys(prefix).presence("alice")), 1);
  });
});
