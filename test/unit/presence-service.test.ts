import assert from "node:assert/strict";
import { SwitchboardError } from "../../src/domain/errors.js";
import type { AggregatePresence } from "../../src/domain/presence.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";

describe("PresenceService with the in-memory store", function () {
  let now = 1_000;
  let service: PresenceService;
  let changes: [string, AggregatePresence][];

  beforeEach(function () {
    now = 1_000;
    service = new PresenceService(new MemoryPresenceStore(), () => now);
    changes = [];
    service.on("change", (person, aggregate) => changes.push([person, aggregate]));
  });

  const xmpp = (resource: string, state: "away" | "dnd" | "available", note: string | null = null) => ({
    source: { kind: "xmpp" as const, resource },
    state,
    note,
    updatedAt: now,
    expiresAt: null,
  });

  it("announces a change once, and not a write that changes nothing", async function () {
    await service.report("alice@example.org", xmpp("laptop", "away", "Lunch"));
    now += 10;
    await service.report("alice@example.org", xmpp("laptop", "away", "Lunch"));
    assert.deepEqual(
      changes.map(([p, a]) => [p, a.state, a.note]),
      [["alice@example.org", "away", "Lunch"]],
    );
  });

  it("replaces a source's record and keeps the others", async function () {
    await service.report("alice@example.org", xmpp("laptop", "away"));
    now += 10;
    await service.report("alice@example.org", xmpp("phone", "dnd"));
    now += 10;
    await service.report("alice@example.org", xmpp("laptop", "available"));
    const { records, aggregate } = await service.snapshot("alice@example.org");
    assert.equal(records.length, 2);
    assert.equal(aggregate.state, "available");
  });

  it("announces unavailable when the last source is withdrawn", async function () {
    await service.report("alice@example.org", xmpp("laptop", "dnd"));
    await service.withdraw("alice@example.org", { kind: "xmpp", resource: "laptop" });
    assert.deepEqual(
      changes.map(([, a]) => a.state),
      ["dnd", "unavailable"],
    );
    assert.deepEqual((await service.snapshot("alice@example.org")).records, []);
  });

  it("lists the persons holding a source kind", async function () {
    await service.report("alice@example.org", xmpp("laptop", "away"));
    await service.report("bob@example.org", {
      source: { kind: "pbx-device" },
      device: "idle",
      updatedAt: now,
      expiresAt: null,
    });
    assert.deepEqual(await service.store.personsWithSource("xmpp"), ["alice@example.org"]);
    assert.deepEqual(await service.store.personsWithSource("pbx-device"), ["bob@example.org"]);
    await service.withdraw("alice@example.org", { kind: "xmpp", resource: "laptop" });
    assert.deepEqual(await service.store.personsWithSource("xmpp"), []);
  });

  it("applies one person's updates in order even when the store answers out of order", async function () {
    // A store whose first write is slow: without ordering, the later write would land first and
    // the earlier (stale) one would be announced last.
    const inner = new MemoryPresenceStore();
    let delay = 50;
    const slowFirst: typeof inner = Object.assign(Object.create(inner) as typeof inner, {
      putRecord: async (...args: Parameters<typeof inner.putRecord>) => {
        const wait = delay;
        delay = 0;
        await new Promise((resolve) => setTimeout(resolve, wait));
        return inner.putRecord(...args);
      },
    });
    const ordered = new PresenceService(slowFirst, () => now);
    const seen: string[] = [];
    ordered.on("change", (_, a) => seen.push(a.state));
    const first = ordered.report("alice@example.org", xmpp("laptop", "away"));
    now += 1;
    const second = ordered.report("alice@example.org", xmpp("laptop", "dnd"));
    await Promise.all([first, second]);
    assert.deepEqual(seen, ["away", "dnd"]);
    assert.equal((await ordered.current("alice@example.org")).state, "dnd");
  });

  it("keeps XMPP subscribers per contact", async function () {
    const store = service.store;
    await store.addXmppSubscriber("alice@sip.example.org", "bob@example.org");
    await store.addXmppSubscriber("alice@sip.example.org", "bob@example.org");
    await store.addXmppSubscriber("alice@sip.example.org", "carol@example.org");
    assert.deepEqual((await store.xmppSubscribers("alice@sip.example.org")).sort(), [
      "bob@example.org",
      "carol@example.org",
    ]);
    assert.deepEqual(await store.xmppSubscribedContacts(), ["alice@sip.example.org"]);
    assert.equal(await store.removeXmppSubscriber("alice@sip.example.org", "bob@example.org"), true);
    assert.equal(await store.removeXmppSubscriber("alice@sip.example.org", "bob@example.org"), false);
    await store.removeXmppSubscriber("alice@sip.example.org", "carol@example.org");
    assert.deepEqual(await store.xmppSubscribedContacts(), []);
  });

  it("announces everyone's current state again on resync", async function () {
    const store = new MemoryPresenceStore();
    const service = new PresenceService(store, () => 1_000);
    await service.report("alice@example.org", {
      source: { kind: "xmpp", resource: "laptop" },
      state: "away",
      note: "Lunch",
      updatedAt: 1_000,
      expiresAt: null,
    });
    await store.putWatcherSubscription({
      id: "w1",
      event: "presence",
      person: "bob@example.org",
      presentity: "sip:bob@example.org",
      callId: "c",
      localTag: "t",
      remote: "<sip:carol@example.org>;tag=x",
      local: "<sip:bob@example.org>",
      target: "sip:carol@127.0.0.1",
      routes: [],
      cseq: 1,
      expiresAt: 9_999_999_999_999,
    });
    const seen: [string, string][] = [];
    service.on("change", (person, aggregate) => seen.push([person, aggregate.state]));
    assert.equal(await service.resync(), 2);
    assert.deepEqual(seen.sort(), [
      ["alice@example.org", "away"],
      ["bob@example.org", "unavailable"],
    ]);
  });
});

describe("PresenceService while the store is away", function () {
  /** The in-memory store, made to fail with service-unavailable while `away`. */
  function flakyStore(): { store: MemoryPresenceStore; setAway: (away: boolean) => void } {
    const store = new MemoryPresenceStore();
    let away = false;
    const unavailable = (): SwitchboardError =>
      new SwitchboardError("service-unavailable", "presence store: away");
    const put = store.putRecord.bind(store);
    const remove = store.removeRecord.bind(store);
    store.putRecord = (...args) => (away ? Promise.reject(unavailable()) : put(...args));
    store.removeRecord = (...args) => (away ? Promise.reject(unavailable()) : remove(...args));
    return { store, setAway: (value) => (away = value) };
  }
  const device = (state: "inuse" | "idle", at: number) => ({
    source: { kind: "pbx-device" as const },
    device: state,
    updatedAt: at,
    expiresAt: null,
  });

  it("holds retained reports (the latest per source) and writes them when asked, oldest first", async function () {
    const { store, setAway } = flakyStore();
    const service = new PresenceService(store, () => 5_000);
    const changes: string[] = [];
    service.on("change", (person, aggregate) => changes.push(`${person}:${aggregate.state}`));
    setAway(true);
    await assert.rejects(
      service.report("bob@example.org", device("idle", 1), { retain: true }),
      SwitchboardError,
    );
    await assert.rejects(
      service.report("bob@example.org", device("inuse", 2), { retain: true }),
      SwitchboardError,
    );
    await assert.rejects(
      service.report("carol@example.org", device("inuse", 3), { retain: true }),
      SwitchboardError,
    );
    // Not retained: answered 503 to its sender, who sends it again; nothing held.
    await assert.rejects(
      service.report("dave@example.org", {
        source: { kind: "sip-publish", etag: "e1" },
        state: "away",
        updatedAt: 4,
        expiresAt: 9_000,
      }),
      SwitchboardError,
    );
    assert.equal(service.heldCount, 2);
    assert.equal(await service.retryHeld(), 0); // still away: kept
    assert.equal(service.heldCount, 2);

    setAway(false);
    assert.equal(await service.retryHeld(), 2);
    assert.equal(service.heldCount, 0);
    assert.deepEqual(changes, ["bob@example.org:on-the-phone", "carol@example.org:on-the-phone"]);
    assert.equal((await service.current("dave@example.org")).state, "unavailable");
  });

  it("does not write a held report over a newer one queued before the retry's turn", async function () {
    const { store, setAway } = flakyStore();
    const service = new PresenceService(store, () => 5_000);
    setAway(true);
    await assert.rejects(service.report("bob@example.org", device("inuse", 1), { retain: true }));
    setAway(false);
    // The PBX says the call ended just as the store comes back: its write is queued first.
    const newer = service.report("bob@example.org", device("idle", 2), { retain: true });
    const retried = await service.retryHeld();
    await newer;
    assert.equal(retried, 0);
    assert.equal((await service.current("bob@example.org")).state, "available");
  });

  it("drops a held report when the same source reports again, and holds withdrawals too", async function () {
    const { store, setAway } = flakyStore();
    const service = new PresenceService(store, () => 5_000);
    await service.report("bob@example.org", device("inuse", 1));
    setAway(true);
    await assert.rejects(service.withdraw("bob@example.org", { kind: "pbx-device" }, { retain: true }));
    assert.equal(service.heldCount, 1);
    setAway(false);
    // A newer report for the same source: the held withdrawal must not undo it.
    await service.report("bob@example.org", device("inuse", 2), { retain: true });
    assert.equal(service.heldCount, 0);
    assert.equal(await service.retryHeld(), 0);
    assert.equal((await service.current("bob@example.org")).state, "on-the-phone");

    setAway(true);
    await assert.rejects(service.withdraw("bob@example.org", { kind: "pbx-device" }, { retain: true }));
    setAway(false);
    assert.equal(await service.retryHeld(), 1);
    assert.equal((await service.current("bob@example.org")).state, "unavailable");
  });
});
