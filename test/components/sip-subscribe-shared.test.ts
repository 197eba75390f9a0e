// Presence subscriptions shared by two SIP endpoints on one store (two bridge instances, in one
// process here): either takes a SUBSCRIBE, new or in-dialog; only the leader notifies on changes;
// CSeqs go up whoever sends, the final NOTIFY's too; leadership moves and the new leader takes up
// every subscription. On the in-memory store, and on a real Redis with one store connection per
// instance (the announcements then go through pub/sub).
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { RedisPresenceStore } from "../../components/redis/redis-presence-store.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import type { PresenceStore } from "../../src/ports/presence-store.js";
import { memoryLogger } from "../harness/memory-logger.js";
import { RedisServer } from "../harness/redis.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import { buildRequest, header, UdpSipSocket, type RawSipMessage } from "../harness/sip-socket.js";

const DIALOG_CONTACT = "sip:switchboard@127.0.0.1:5999";

interface TwoStores {
  a: PresenceStore;
  b: PresenceStore;
  close: () => Promise<void>;
}

function sharedSubscriptionTests(name: string, open: () => Promise<TwoStores>): void {
  describe(`SIP presence subscriptions shared by two instances: ${name}`, function () {
    let stores: TwoStores;
    let store: PresenceStore;
    // One presence service per instance, as in two processes; they meet in the store.
    let presenceA: PresenceService;
    let presenceB: PresenceService;
    let a: { endpoint: SipEndpoint; port: number };
    let b: { endpoint: SipEndpoint; port: number };
    let watcher: UdpSipSocket;
    let cseq = 0;
    let toTag = "";

    before(async function () {
      stores = await open();
      store = stores.a;
      presenceA = new PresenceService(stores.a);
      presenceB = new PresenceService(stores.b);
      a = await startSipEndpoint({ presence: presenceA, sharedStore: { dialogContact: DIALOG_CONTACT } });
      b = await startSipEndpoint({ presence: presenceB, sharedStore: { dialogContact: DIALOG_CONTACT } });
      assert.equal(await a.endpoint.notifier?.lead(), 0);
      watcher = await UdpSipSocket.open();
      watcher.autoAnswer(["NOTIFY"], 200, "OK");
    });
    after(async function () {
      await watcher?.close();
      await a?.endpoint.stop();
      await b?.endpoint.stop();
      presenceA?.close();
      presenceB?.close();
      await stores?.close();
    });

    const subscribe = async (port: number, expires = 600): Promise<RawSipMessage> => {
      cseq += 1;
      await watcher.send(
        buildRequest({
          method: "SUBSCRIBE",
          uri: toTag ? DIALOG_CONTACT : "sip:alice@example.org",
          via: `UDP 127.0.0.1:${watcher.port}`,
          from: "<sip:bob@example.org>",
          to: `<sip:alice@example.org>${toTag ? `;tag=${toTag}` : ""}`,
          callId: "shared-1",
          cseq,
          fromTag: "watcher",
          headers: {
            Event: "presence",
            Expires: String(expires),
            Contact: `<sip:bob@127.0.0.1:${watcher.port}>`,
          },
        }),
        port,
      );
      const answer = await watcher.waitFor(
        (m) => m.status !== undefined && header(m, "cseq") === `${cseq} SUBSCRIBE`,
      );
      toTag ||= /;tag=([^;>\s]+)/.exec(header(answer, "to") ?? "")?.[1] ?? "";
      return answer;
    };
    const notifies = (): RawSipMessage[] => watcher.received.filter((m) => m.method === "NOTIFY");
    const next = (after: number, what: (m: RawSipMessage) => boolean = () => true) =>
      watcher.waitFor((m) => m.method === "NOTIFY" && notifies().indexOf(m) >= after && what(m), 3_000);
    const report = (service: PresenceService, note: string) =>
      service.report("alice@example.org", {
        source: { kind: "xmpp", resource: "laptop" },
        state: "away",
        note,
        updatedAt: Date.now(),
        expiresAt: null,
      });

    it("answers a SUBSCRIBE on the follower, with the dialog Contact given, and notifies changes from the leader alone", async function () {
      const answer = await subscribe(b.port);
      assert.equal(answer.status, 200);
      assert.equal(header(answer, "contact"), `<${DIALOG_CONTACT}>`);
      const first = await next(0);
      assert.equal(first.from.port, b.port, "the first NOTIFY comes from the instance that answered");

      const count = notifies().length;
      await report(presenceB, "entered through B");
      const change = await next(count, (m) => m.body.includes("entered through B"));
      assert.equal(change.from.port, a.port, "the leader notifies");
      await sleep(300);
      assert.equal(notifies().length, count + 1, "one NOTIFY per change, not one per instance");
    });

    it("takes an in-dialog refresh on the leader for a dialog the follower made, CSeqs going up", async function () {
      const count = notifies().length;
      const refreshed = await subscribe(a.port, 900);
      assert.equal(refreshed.status, 200);
      assert.equal(header(refreshed, "expires"), "900");
      await next(count);
      const cseqs = notifies().map((m) => Number((header(m, "cseq") ?? "").split(" ")[0]));
      assert.deepEqual(
        cseqs,
        cseqs.map((_, i) => i + 1),
        `CSeqs ${cseqs.join(" ")}`,
      );
    });

    it("moves the NOTIFYs to the new leader, which takes up the subscription", async function () {
      a.endpoint.notifier?.follow();
      const count = notifies().length;
      assert.equal(await b.endpoint.notifier?.lead(), 1);
      const resumed = await next(count);
      assert.equal(resumed.from.port, b.port, "the new leader says the state now");
      const afterTakeover = notifies().length;
      await report(presenceA, "entered through A");
      const change = await next(afterTakeover, (m) => m.body.includes("entered through A"));
      assert.equal(change.from.port, b.port);
      await sleep(300);
      assert.equal(notifies().length, afterTakeover + 1);
    });

    it("ends the subscription through the other instance: final NOTIFY, then none", async function () {
      const count = notifies().length;
      const ended = await subscribe(a.port, 0);
      assert.equal(ended.status, 200);
      const final = await next(count);
      assert.match(header(final, "subscription-state") ?? "", /^terminated/);
      // Every NOTIFY of the dialog, the final one included, a CSeq above the one before.
      const cseqs = notifies().map((m) => Number((header(m, "cseq") ?? "").split(" ")[0]));
      assert.deepEqual(
        cseqs,
        cseqs.map((_, i) => i + 1),
        `CSeqs ${cseqs.join(" ")}`,
      );
      assert.equal(await store.watcherSubscription("shared-1|watcher"), null);
      const afterEnd = notifies().length;
      await report(presenceA, "nobody hears this");
      await sleep(300);
      assert.equal(notifies().length, afterEnd, "a NOTIFY after the subscription ended");
      // And a refresh of the ended dialog is refused, on either instance.
      assert.equal((await subscribe(a.port)).status, 481);
      assert.equal((await subscribe(b.port)).status, 481);
    });
  });
}

sharedSubscriptionTests("in-memory store", () => {
  const store = new MemoryPresenceStore();
  return Promise.resolve({ a: store, b: store, close: () => Promise.resolve() });
});

sharedSubscriptionTests("Redis, one connection per instance", async () => {
  const server = await RedisServer.start();
  const prefix = RedisServer.newPrefix("shared-subs");
  const connect = () => RedisPresenceStore.connect({ target: server.url, prefix, log: memoryLogger() });
  const [a, b] = await Promise.all([connect(), connect()]);
  return {
    a,
    b,
    close: async () => {
      await a.close();
      await b.close();
      await server.stop();
    },
  };
});
