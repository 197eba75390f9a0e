// The behaviour every PresenceStore adapter must have (src/ports/presence-store.ts), as one mocha
// suite that each adapter's test file runs against its own store. The in-memory store is the
// reference; an adapter that announces changes asynchronously (Redis pub/sub) is waited for, with a
// bound, and never timed.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import {
  aggregate,
  type AggregatePresence,
  type DeviceRecord,
  type DeviceState,
  type ExplicitRecord,
  type PresenceRecord,
  type PresenceState,
} from "../../src/domain/presence.js";
import type { PresenceStore, PresenceUpdate, WatcherSubscription } from "../../src/ports/presence-store.js";

export interface StoreUnderTest {
  store: PresenceStore;
  close(): Promise<void>;
}

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export type Change = [person: string, aggregate: AggregatePresence];

/** Records every change the store announces, until `stop()`. */
export function recordChanges(store: PresenceStore): { seen: Change[]; stop: () => void } {
  const seen: Change[] = [];
  const stop = store.watchChanges((person, aggregate) => seen.push([person, aggregate]));
  return { seen, stop };
}

const T = 1_700_000_000_000;

export function xmppRecord(
  resource: string,
  state: PresenceState | null,
  updatedAt: number,
  options: { note?: string | null; expiresAt?: number | null } = {},
): ExplicitRecord {
  return {
    source: { kind: "xmpp", resource },
    state,
    note: options.note ?? null,
    updatedAt,
    expiresAt: options.expiresAt ?? null,
  };
}

export function deviceRecord(device: DeviceState, updatedAt: number): DeviceRecord {
  return { source: { kind: "pbx-device" }, device, updatedAt, expiresAt: null };
}

function sourceOrder(r: PresenceRecord): string {
  const s = r.source;
  return `${s.kind}:${s.kind === "xmpp" ? s.resource : s.kind === "sip-publish" ? s.etag : ""}`;
}

export function sortRecords(records: readonly PresenceRecord[]): PresenceRecord[] {
  return [...records].sort((a, b) => (sourceOrder(a) < sourceOrder(b) ? -1 : 1));
}

function watcher(id: string, cseq: number, expiresAt: number): WatcherSubscription {
  return {
    id,
    event: "presence",
    person: "alice@example.org",
    presentity: "sip:alice@example.org",
    callId: `call-${id}`,
    localTag: `tag-${id}`,
    remote: `<sip:bob@example.org>;tag=remote-${id}`,
    local: "<sip:alice@example.org>",
    target: "sip:bob@192.0.2.10:5060;transport=tcp",
    routes: ["<sip:proxy.example.org;lr>", "<sip:edge.example.org;lr>"],
    cseq,
    expiresAt,
  };
}

const brief = ([person, a]: Change): [string, string, string | null] => [person, a.state, a.note];

export function presenceStoreContract(name: string, make: () => Promise<StoreUnderTest>): void {
  describe(`PresenceStore contract: ${name}`, function () {
    let subject: StoreUnderTest | undefined;
    let store: PresenceStore;

    beforeEach(async function () {
      subject = await make();
      store = subject.store;
    });

    afterEach(async function () {
      await subject?.close();
      subject = undefined;
    });

    describe("records and the aggregate", function () {
      it("knows nobody at first: no records, unavailable since never", async function () {
        assert.deepEqual(await store.presence("alice@example.org", T), {
          records: [],
          aggregate: { state: "unavailable", note: null, since: null, winner: null },
        });
      });

      it("returns the new aggregate and whether its state or note changed", async function () {
        const first = await store.putRecord("alice", xmppRecord("laptop", "away", T, { note: "Lunch" }), T);
        assert.deepEqual(first, {
          aggregate: {
            state: "away",
            note: "Lunch",
            since: T,
            winner: { kind: "xmpp", resource: "laptop" },
          },
          changed: true,
        });
        const same = await store.putRecord(
          "alice",
          xmppRecord("laptop", "away", T + 10, { note: "Lunch" }),
          T + 10,
        );
        assert.deepEqual([same.changed, same.aggregate.since], [false, T + 10]);
        const note = await store.putRecord(
          "alice",
          xmppRecord("laptop", "away", T + 20, { note: "Back soon" }),
          T + 20,
        );
        assert.deepEqual([note.changed, note.aggregate.note], [true, "Back soon"]);
        const state = await store.putRecord(
          "alice",
          xmppRecord("laptop", "dnd", T + 30, { note: "Back soon" }),
          T + 30,
        );
        assert.deepEqual([state.changed, state.aggregate.state], [true, "dnd"]);
      });

      it("replaces a source's record with its new one", async function () {
        await store.putRecord("alice", xmppRecord("laptop", "away", T), T);
        const latest = xmppRecord("laptop", "dnd", T + 10, { note: "Meeting" });
        await store.putRecord("alice", latest, T + 10);
        const { records, aggregate: now } = await store.presence("alice", T + 10);
        assert.deepEqual(records, [latest]);
        assert.deepEqual([now.state, now.note], ["dnd", "Meeting"]);
      });

      it("keeps several XMPP resources: the most recent state wins, withdrawing it reveals the other", async function () {
        await store.putRecord("alice", xmppRecord("laptop", "away", T), T);
        const dnd = await store.putRecord("alice", xmppRecord("phone", "dnd", T + 10), T + 10);
        assert.deepEqual([dnd.aggregate.state, dnd.changed], ["dnd", true]);
        // A resource reporting unavailable contributes nothing, so the other still shows.
        const offline = await store.putRecord("alice", xmppRecord("tablet", "unavailable", T + 20), T + 20);
        assert.deepEqual([offline.aggregate.state, offline.changed], ["dnd", false]);
        const revealed = await store.removeRecord("alice", { kind: "xmpp", resource: "phone" }, T + 30);
        assert.deepEqual([revealed.aggregate.state, revealed.changed], ["away", true]);
        const { records } = await store.presence("alice", T + 30);
        assert.deepEqual(sortRecords(records), [
          xmppRecord("laptop", "away", T),
          xmppRecord("tablet", "unavailable", T + 20),
        ]);
      });

      it("shows a call in progress over the explicit state, and the explicit state after it", async function () {
        await store.putRecord("alice", xmppRecord("laptop", "available", T, { note: "Working" }), T);
        const call = await store.putRecord("alice", deviceRecord("inuse", T + 10), T + 10);
        assert.deepEqual(call, {
          aggregate: {
            state: "on-the-phone",
            note: "On the phone",
            since: T + 10,
            winner: { kind: "pbx-device" },
          },
          changed: true,
        });
        // A newer explicit state does not hide the call.
        const during = await store.putRecord("alice", xmppRecord("laptop", "dnd", T + 20), T + 20);
        assert.deepEqual([during.aggregate.state, during.changed], ["on-the-phone", false]);
        const after = await store.putRecord("alice", deviceRecord("idle", T + 30), T + 30);
        assert.deepEqual([after.aggregate.state, after.aggregate.note, after.changed], ["dnd", null, true]);
      });

      it("shows a registered phone alone as available, an unregistered one as nothing", async function () {
        const idle = await store.putRecord("bob", deviceRecord("idle", T), T);
        assert.deepEqual(idle.aggregate, {
          state: "available",
          note: null,
          since: T,
          winner: { kind: "pbx-device" },
        });
        const off = await store.putRecord("bob", deviceRecord("unavailable", T + 10), T + 10);
        assert.deepEqual([off.aggregate.state, off.changed], ["unavailable", true]);
      });

      it("drops an expired record at `now`, and compares a write with the aggregate at its `now`", async function () {
        await store.putRecord("alice", xmppRecord("laptop", "away", T, { expiresAt: T + 100 }), T);
        assert.equal((await store.presence("alice", T + 50)).aggregate.state, "away");
        assert.deepEqual((await store.presence("alice", T + 100)).aggregate, {
          state: "unavailable",
          note: null,
          since: T + 100,
          winner: null,
        });
        // The laptop expired before this write, so the write changes unavailable to available.
        const phone = await store.putRecord("alice", deviceRecord("idle", T + 200), T + 200);
        assert.deepEqual([phone.aggregate.state, phone.changed], ["available", true]);
        // Refreshing the expired resource brings it back.
        const back = await store.putRecord(
          "alice",
          xmppRecord("laptop", "away", T + 300, { expiresAt: T + 400 }),
          T + 300,
        );
        assert.deepEqual([back.aggregate.state, back.changed], ["away", true]);
      });

      it("announces the change when a record is withdrawn at the instant it expires", async function () {
        const { seen, stop } = recordChanges(store);
        try {
          await store.putRecord("alice", xmppRecord("desk", "available", T, { note: "At my desk" }), T);
          await store.putRecord("alice", xmppRecord("call", "dnd", T + 10, { expiresAt: T + 2_000 }), T + 10);
          // The expiry timer fires at T + 2000: the record is invisible at that `now` already, but
          // what was announced last (dnd) is not what holds now (available): a change.
          const update = await store.removeRecord("alice", { kind: "xmpp", resource: "call" }, T + 2_000);
          assert.deepEqual(
            [update.aggregate.state, update.aggregate.note, update.changed],
            ["available", "At my desk", true],
          );
          await until("three changes", () => seen.length >= 3);
          assert.deepEqual(
            seen.map(([, aggregate]) => aggregate.state),
            ["available", "dnd", "available"],
          );
        } finally {
          stop();
        }
      });

      it("removes a record; removing a source that is not there changes nothing", async function () {
        const nobody = await store.removeRecord("alice", { kind: "pbx-custom" }, T);
        assert.deepEqual(nobody, {
          aggregate: { state: "unavailable", note: null, since: null, winner: null },
          changed: false,
        });
        await store.putRecord("alice", xmppRecord("laptop", "chat", T), T);
        const other = await store.removeRecord("alice", { kind: "sip-publish", etag: "e1" }, T + 10);
        assert.deepEqual([other.aggregate.state, other.changed], ["chat", false]);
        const last = await store.removeRecord("alice", { kind: "xmpp", resource: "laptop" }, T + 20);
        assert.deepEqual([last.aggregate.state, last.changed], ["unavailable", true]);
        assert.deepEqual((await store.presence("alice", T + 20)).records, []);
      });

      it("returns every source's record as written, and the aggregate of them at `now`", async function () {
        const written: PresenceRecord[] = [
          xmppRecord("laptop", "xa", T, { note: "Holidays — back in 2 weeks <3", expiresAt: T + 3_600_000 }),
          {
            source: { kind: "sip-publish", etag: "etag-1" },
            state: "away",
            note: null,
            updatedAt: T + 5,
            expiresAt: T + 3_600,
          },
          deviceRecord("ringing", T + 7),
          { source: { kind: "pbx-custom" }, state: null, note: null, updatedAt: T + 9, expiresAt: null },
        ];
        for (const record of written) await store.putRecord("alice", record, T + 10);
        const snapshot = await store.presence("alice", T + 10);
        assert.deepEqual(sortRecords(snapshot.records), sortRecords(written));
        assert.deepEqual(snapshot.aggregate, aggregate(written, T + 10));
        // The snapshot is a copy.
        snapshot.records.length = 0;
        assert.equal((await store.presence("alice", T + 10)).records.length, 4);
        // Other persons are untouched.
        assert.deepEqual((await store.presence("bob", T + 10)).records, []);
      });

      it("lists the persons holding a source kind, and forgets them with their last such record", async function () {
        await store.putRecord("alice", xmppRecord("laptop", "away", T), T);
        await store.putRecord("alice", xmppRecord("phone", "away", T), T);
        await store.putRecord("bob", deviceRecord("idle", T), T);
        await store.putRecord("carol", xmppRecord("desktop", "dnd", T), T);
        assert.deepEqual((await store.personsWithSource("xmpp")).sort(), ["alice", "carol"]);
        assert.deepEqual(await store.personsWithSource("pbx-device"), ["bob"]);
        assert.deepEqual(await store.personsWithSource("sip-publish"), []);
        await store.removeRecord("alice", { kind: "xmpp", resource: "laptop" }, T + 1);
        assert.deepEqual((await store.personsWithSource("xmpp")).sort(), ["alice", "carol"]);
        await store.removeRecord("alice", { kind: "xmpp", resource: "phone" }, T + 2);
        assert.deepEqual(await store.personsWithSource("xmpp"), ["carol"]);
      });
    });

    describe("XMPP subscribers and watcher subscriptions", function () {
      it("keeps XMPP subscribers per contact", async function () {
        await store.addXmppSubscriber("alice@sip.example.org", "bob@example.org");
        await store.addXmppSubscriber("alice@sip.example.org", "bob@example.org");
        await store.addXmppSubscriber("alice@sip.example.org", "carol@example.org");
        await store.addXmppSubscriber("dave@sip.example.org", "carol@example.org");
        assert.deepEqual((await store.xmppSubscribers("alice@sip.example.org")).sort(), [
          "bob@example.org",
          "carol@example.org",
        ]);
        assert.deepEqual(await store.xmppSubscribers("nobody@sip.example.org"), []);
        assert.deepEqual((await store.xmppSubscribedContacts()).sort(), [
          "alice@sip.example.org",
          "dave@sip.example.org",
        ]);
        assert.equal(await store.removeXmppSubscriber("alice@sip.example.org", "bob@example.org"), true);
        assert.equal(await store.removeXmppSubscriber("alice@sip.example.org", "bob@example.org"), false);
        assert.equal(await store.removeXmppSubscriber("nobody@sip.example.org", "bob@example.org"), false);
        await store.removeXmppSubscriber("alice@sip.example.org", "carol@example.org");
        assert.deepEqual(await store.xmppSubscribers("alice@sip.example.org"), []);
        assert.deepEqual(await store.xmppSubscribedContacts(), ["dave@sip.example.org"]);
      });

      it("stores, replaces and removes watcher subscriptions by id", async function () {
        const later = Date.now() + 3_600_000;
        const one = watcher("one", 1, later);
        const two = watcher("two", 7, later + 1);
        await store.putWatcherSubscription(one);
        await store.putWatcherSubscription(two);
        const byId = (list: WatcherSubscription[]) => [...list].sort((a, b) => (a.id < b.id ? -1 : 1));
        assert.deepEqual(byId(await store.watcherSubscriptions()), [one, two]);

        const refreshed = { ...one, cseq: 2, routes: [], expiresAt: later + 60_000 };
        await store.putWatcherSubscription(refreshed);
        assert.deepEqual(byId(await store.watcherSubscriptions()), [refreshed, two]);

        // What the store returns is a copy, and it kept a copy of what it was given.
        const listed = await store.watcherSubscriptions();
        for (const s of listed) s.cseq = 999;
        refreshed.cseq = 998;
        assert.deepEqual(
          byId(await store.watcherSubscriptions()).map((s) => s.cseq),
          [2, 7],
        );

        await store.removeWatcherSubscription("two");
        await store.removeWatcherSubscription("never-there");
        assert.deepEqual(
          (await store.watcherSubscriptions()).map((s) => s.id),
          ["one"],
        );
      });

      it("reads one subscription by id, while in force", async function () {
        const later = Date.now() + 60_000;
        await store.putWatcherSubscription(watcher("one", 1, later));
        await store.putWatcherSubscription(watcher("gone-by", 1, Date.now() - 1));
        assert.deepEqual(await store.watcherSubscription("one"), watcher("one", 1, later));
        assert.equal(await store.watcherSubscription("gone-by"), null);
        assert.equal(await store.watcherSubscription("never-there"), null);
      });

      it("hands out NOTIFY CSeqs that only go up, to concurrent takers too, and starts again once removed", async function () {
        const taken = await Promise.all(Array.from({ length: 20 }, () => store.nextWatcherCseq("one")));
        assert.deepEqual(
          [...taken].sort((a, b) => a - b),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
        assert.equal(await store.nextWatcherCseq("two"), 1);
        await store.removeWatcherSubscription("one");
        assert.equal(await store.nextWatcherCseq("one"), 1, "a removed subscription's counter is gone");
      });

      it("keeps the counter for the final NOTIFY after a removal, and drops it with the last CSeq", async function () {
        const later = Date.now() + 60_000;
        await store.putWatcherSubscription(watcher("ending", 0, later));
        assert.equal(await store.nextWatcherCseq("ending"), 1);
        assert.equal(await store.nextWatcherCseq("ending"), 2);
        await store.removeWatcherSubscription("ending", { keepCseq: true });
        assert.equal(await store.watcherSubscription("ending"), null);
        assert.equal(
          await store.nextWatcherCseq("ending", { last: true }),
          3,
          "the final NOTIFY goes on counting",
        );
        assert.equal(await store.nextWatcherCseq("ending"), 1, "the counter went with the last CSeq");
        await store.removeWatcherSubscription("ending");
      });

      it("announces every subscription stored and removed, to every listener", async function () {
        const heard: [string, number | null][] = [];
        const stop = store.watchWatchers((id, s) => heard.push([id, s ? s.expiresAt : null]));
        const later = Date.now() + 60_000;
        await store.putWatcherSubscription(watcher("one", 1, later));
        await store.putWatcherSubscription(watcher("one", 1, later + 5));
        await store.removeWatcherSubscription("one");
        await until("three announcements", () => heard.length === 3);
        assert.deepEqual(heard, [
          ["one", later],
          ["one", later + 5],
          ["one", null],
        ]);
        stop();
        await store.putWatcherSubscription(watcher("two", 1, later));
        await store.nextWatcherCseq("two"); // a round trip after it: any announcement has arrived
        await sleep(50);
        assert.equal(heard.length, 3, "heard after it stopped listening");
      });
    });

    describe("watchChanges", function () {
      it("announces each change once, in order per person, and not a write that changes nothing", async function () {
        const { seen, stop } = recordChanges(store);
        const updates: [string, PresenceUpdate][] = [];
        const put = async (person: string, record: PresenceRecord, now: number) =>
          updates.push([person, await store.putRecord(person, record, now)]);
        await put("alice", xmppRecord("laptop", "away", T, { note: "Lunch" }), T);
        await put("alice", xmppRecord("laptop", "away", T + 1, { note: "Lunch" }), T + 1); // no change
        await put("alice", xmppRecord("laptop", "dnd", T + 2), T + 2);
        await put("bob", deviceRecord("inuse", T + 3), T + 3);
        await put("alice", xmppRecord("phone", "unavailable", T + 4), T + 4); // no change
        updates.push([
          "alice",
          await store.removeRecord("alice", { kind: "xmpp", resource: "laptop" }, T + 5),
        ]);
        await store.removeRecord("alice", { kind: "xmpp", resource: "laptop" }, T + 6); // no change
        await put("carol", xmppRecord("desk", "chat", T + 7), T + 7);
        // In order per person, as the port promises: a Redis Cluster relays the changes of persons
        // on different primaries along different paths, so the persons' changes may interleave.
        // A last change of each person: once heard, that person's earlier ones have been heard too.
        await put("alice", xmppRecord("laptop", "xa", T + 8), T + 8);
        await put("bob", deviceRecord("idle", T + 9), T + 9);
        await until("everyone's last change", () =>
          [
            ["alice", "xa"],
            ["bob", "available"],
            ["carol", "chat"],
          ].every(([p, state]) => seen.some(([person, a]) => person === p && a.state === state)),
        );
        stop();
        // A stable sort by person keeps each person's changes in the order heard.
        const perPerson = <C extends [string, ...unknown[]]>(changes: C[]): C[] =>
          [...changes].sort((x, y) => x[0].localeCompare(y[0]));
        assert.deepEqual(
          perPerson(seen.map(brief)),
          perPerson([
            ["alice", "away", "Lunch"],
            ["alice", "dnd", null],
            ["bob", "on-the-phone", "On the phone"],
            ["alice", "unavailable", null],
            ["carol", "chat", null],
            ["alice", "xa", null],
            ["bob", "available", null],
          ]),
        );
        const announced = updates
          .filter(([, u]) => u.changed)
          .map(([person, u]): Change => [person, u.aggregate]);
        assert.deepEqual(perPerson(seen), perPerson(announced));
      });

      it("announces to every watcher; one that stopped hears no more", async function () {
        const a = recordChanges(store);
        const b = recordChanges(store);
        await store.putRecord("alice", xmppRecord("laptop", "away", T), T);
        await until("both watchers hear the first change", () => a.seen.length === 1 && b.seen.length === 1);
        a.stop();
        await store.putRecord("alice", xmppRecord("laptop", "dnd", T + 1), T + 1);
        await until("the remaining watcher hears the second change", () => b.seen.length === 2);
        b.stop();
        assert.deepEqual(a.seen.map(brief), [["alice", "away", null]]);
        assert.deepEqual(b.seen.map(brief), [
          ["alice", "away", null],
          ["alice", "dnd", null],
        ]);
        a.stop(); // stopping twice is harmless
      });

      it("keeps every record of concurrent writers on one person, and announces the stored aggregate last", async function () {
        const { seen, stop } = recordChanges(store);
        const states: PresenceState[] = ["away", "dnd", "chat", "xa", "available"];
        const records = Array.from({ length: 50 }, (_, i) =>
          // updatedAt in a scrambled order, so that many writes change the aggregate and some do not.
          xmppRecord(
            `r${String(i).padStart(2, "0")}`,
            states[i % states.length] ?? "away",
            T + ((i * 37) % 50),
            {
              note: `n${i}`,
            },
          ),
        );
        const now = T + 100;
        const updates = await Promise.all(records.map((r) => store.putRecord("alice", r, now)));
        const snapshot = await store.presence("alice", now);
        assert.deepEqual(sortRecords(snapshot.records), sortRecords(records));
        assert.deepEqual(snapshot.aggregate, aggregate(records, now));

        const changes = updates.filter((u) => u.changed).length;
        assert.ok(changes >= 1);
        await until(`${changes} changes announced`, () => seen.length >= changes);
        stop();
        assert.equal(seen.length, changes);
        const last = seen.at(-1);
        assert.ok(last !== undefined);
        assert.deepEqual(brief(last), ["alice", snapshot.aggregate.state, snapshot.aggregate.note]);
      });
    });
  });
}
