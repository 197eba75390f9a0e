// The bridge end to end, as an operator runs it (`switchboard start`), between real Prosody (with
// mod_privilege), slixmpp as Alice's chat client and baresip as Bob's desk phone; raw sockets play
// the SIP watcher and the phone's PUBLISH (baresip's publisher sends only open/closed). The suite
// runs once with the in-memory store, once with a single Redis and once with a Redis Cluster of
// three primaries; with Redis, a message for an offline phone survives a SIGTERM and a SIGKILL of
// the bridge and is delivered once when the phone is back.
import assert from "node:assert/strict";
import { parsePidf, buildPidf } from "../../components/sip/pidf.js";
import { BridgeProcess } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { RedisClusterSet, RedisServer } from "../harness/redis.js";
import { Baresip } from "../harness/sip-clients.js";
import { buildRequest, header, subscribePresence, UdpCable, UdpSipSocket } from "../harness/sip-socket.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

const count = (text: string, needle: string): number => text.split(needle).length - 1;

for (const storeKind of ["memory", "redis", "redis-cluster"] as const) {
  describe(`end to end with the ${storeKind} store (switchboard start, Prosody, slixmpp, baresip)`, function () {
    let prosody: Prosody;
    let redis: RedisServer | undefined;
    let cluster: RedisClusterSet | undefined;
    let grant: ComponentGrant;
    let bridge: BridgeProcess;
    let alice: SlixmppClient;
    let phone: Baresip;
    let sipPort: number;
    let phonePort: number;
    let httpPort: number;
    let cable: UdpCable;
    const dir = tempDir("e2e");
    const sockets: UdpSipSocket[] = [];

    before(async function () {
      prosody = await Prosody.start();
      await prosody.register("alice", "alice-pw");
      if (storeKind === "redis") redis = await RedisServer.start();
      if (storeKind === "redis-cluster") cluster = await RedisClusterSet.start();
      grant = prosody.takeComponent({ privileged: true });
      sipPort = await freePort({ udp: true });
      phonePort = await freePort({ udp: true, withNext: true });
      // Between the bridge and Bob's phone: a cable the queue test pulls out.
      cable = await UdpCable.open(phonePort);
      bridge = BridgeProcess.start(dir.file("switchboard.yaml"), {
        domain: prosody.domain,
        xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
        sip: {
          listen: [`udp:127.0.0.1:${sipPort}`],
          // Bob's phone plays the proxy in front of itself: the bridge's requests for
          // sip:bob@example.org go to it (loose routing), through the cable.
          outboundProxy: `sip:127.0.0.1:${cable.port};lr`,
          timers: { t1: 50, t2: 400, t4: 500 },
          minExpires: 2,
        },
        store: {
          ...(redis ? { url: redis.url } : {}),
          ...(cluster ? cluster.target : {}),
          prefix: RedisServer.newPrefix("e2e"),
          queue: { ttlSeconds: 120, retryMinSeconds: 1, retryMaxSeconds: 2 },
        },
        http: { listen: `127.0.0.1:${(httpPort = await freePort())}` },
        directory: { users: [{ uid: "bob", displayName: "Bob Baker", numbers: ["+44 20 7123 4568"] }] },
      });
      await bridge.online();
      alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
      alice.send({ op: "presence" });
      phone = await Baresip.start({
        user: "bob",
        domain: "example.org",
        sipPort: phonePort,
        contacts: ["sip:alice@example.org"],
        watch: ["sip:alice@example.org"],
        outbound: `sip:127.0.0.1:${sipPort};lr`,
      });
    });
    after(async function () {
      await alice?.close();
      await phone?.stop();
      for (const socket of sockets) await socket.close();
      await cable?.close();
      if (bridge?.running) await bridge.stop();
      await redis?.stop();
      await cluster?.stop();
      await prosody?.stop();
      dir.remove();
    });

    it("1. baresip's MESSAGE reaches Alice's chat client from Bob's phone contact, byte-exact", async function () {
      await phone.message("héllo ☎");
      const got = await alice.waitFor((e) => e.event === "message" && e.body === "héllo ☎", 5_000);
      assert.equal(got.from, `bob@${grant.jid}`);
    });

    it("2. Alice's reply shows on baresip, and she gets a receipt", async function () {
      alice.send({ op: "message", to: `bob@${grant.jid}`, body: "réponse ✓", id: "reply-1", receipt: true });
      await phone.waitForOutput(/réponse ✓/, 5_000);
      const receipt = await alice.waitFor(
        (e) =>
          e.event === "message" && (e.xml ?? "").includes("<received") && (e.xml ?? "").includes("reply-1"),
        5_000,
      );
      assert.equal(receipt.from, `bob@${grant.jid}`);
    });

    it("3. Alice in dnd 'In a meeting': a SIP watcher gets busy and the note within 1 s; baresip shows Busy", async function () {
      const watcher = await UdpSipSocket.open();
      sockets.push(watcher);
      watcher.autoAnswer(["NOTIFY"]);
      const subscribed = await subscribePresence(watcher, sipPort, {
        uri: "sip:alice@example.org",
        from: "sip:carol@example.org",
      });
      assert.equal(subscribed.status, 200);
      await watcher.waitFor((m) => m.method === "NOTIFY");
      const before = watcher.received.length;
      alice.send({ op: "presence", show: "dnd", status: "In a meeting" });
      const notify = await watcher.waitFor(
        (m) =>
          m.method === "NOTIFY" && watcher.received.indexOf(m) >= before && m.body.includes("In a meeting"),
        1_000,
      );
      const pidf = parsePidf(notify.body);
      assert.deepEqual([pidf.basic, pidf.activities, pidf.note], ["open", ["busy"], "In a meeting"]);
      const contacts = async (): Promise<string> => phone.command("contacts");
      let listing = await contacts();
      for (let i = 0; i < 50 && !/Busy.*alice@example\.org/.test(listing); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        listing = await contacts();
      }
      assert.match(listing, /Busy.*alice@example\.org/);
    });

    it("4. the phone PUBLISHes on-the-phone: Alice sees dnd 'On the phone' within 1 s; expiry brings back the state before", async function () {
      alice.send({ op: "presence", to: `bob@${grant.jid}`, type: "subscribe" });
      await alice.waitFor(
        (e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.type === "subscribed",
      );
      const publisher = await UdpSipSocket.open();
      sockets.push(publisher);
      const publish = (state: "available" | "on-the-phone", expires: number, callId: string): string =>
        buildRequest({
          method: "PUBLISH",
          uri: "sip:bob@example.org",
          via: `UDP 127.0.0.1:${publisher.port}`,
          from: "<sip:bob@example.org>",
          to: "<sip:bob@example.org>",
          callId,
          headers: { Event: "presence", Expires: String(expires), "Content-Type": "application/pidf+xml" },
          body: buildPidf("sip:bob@example.org", state, state === "available" ? "At my desk" : null),
        });
      await publisher.send(publish("available", 600, "pub-available"), sipPort);
      await alice.waitFor(
        (e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.status === "At my desk",
        2_000,
      );
      const mark = alice.events.length;
      await publisher.send(publish("on-the-phone", 2, "pub-call"), sipPort);
      assert.equal(
        (await publisher.waitFor((m) => m.status !== undefined && header(m, "call-id") === "pub-call"))
          .status,
        200,
      );
      await alice.waitFor(
        (e) =>
          alice.events.indexOf(e) >= mark &&
          e.event === "presence" &&
          e.from === `bob@${grant.jid}` &&
          e.show === "dnd" &&
          e.status === "On the phone",
        1_000,
      );
      // Two seconds later the on-the-phone publication expires: back to "At my desk".
      await alice.waitFor(
        (e) =>
          alice.events.indexOf(e) >= mark &&
          e.event === "presence" &&
          e.from === `bob@${grant.jid}` &&
          !e.show &&
          e.status === "At my desk",
        5_000,
      );
    });

    if (storeKind !== "memory") {
      it("5. a message for the offline phone waits through SIGTERM and SIGKILL of the bridge, and arrives once", async function () {
        cable.connected = false; // Bob's phone is unplugged
        alice.send({
          op: "message",
          to: `bob@${grant.jid}`,
          body: "while you were out ✉",
          id: "queued-1",
          receipt: true,
        });
        await bridge.lines.waitFor((l) => l.msg === "message queued: recipient offline", 10_000);
        assert.equal(await bridge.stop("SIGTERM"), 0);
        bridge = bridge.restart();
        await bridge.online();
        assert.equal(await bridge.stop("SIGKILL"), null);
        bridge = bridge.restart();
        await bridge.online();
        assert.doesNotMatch(phone.output(), /while you were out/);
        cable.connected = true; // and plugged in again
        const output = await phone.waitForOutput(/while you were out ✉/, 15_000);
        await alice.waitFor(
          (e) =>
            e.event === "message" &&
            (e.xml ?? "").includes("<received") &&
            (e.xml ?? "").includes("queued-1"),
          5_000,
        );
        // Once: a further retry round would show it again.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        assert.equal(count(phone.output(), "while you were out ✉"), 1, output);
      });
    }

    if (storeKind === "redis") {
      it("6. while Redis is away the bridge says it is not ready and still relays a desk phone's message", async function () {
        const readyz = async (): Promise<{ status: number; body: { ready: boolean; reasons: string[] } }> => {
          const response = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
          return {
            status: response.status,
            body: (await response.json()) as { ready: boolean; reasons: string[] },
          };
        };
        assert.equal((await readyz()).status, 200);
        await redis?.halt();
        try {
          let state = await readyz();
          for (let i = 0; i < 50 && state.status === 200; i++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            state = await readyz();
          }
          assert.equal(state.status, 503);
          assert.ok(
            state.body.reasons.some((r) => r.startsWith("redis unreachable")),
            state.body.reasons.join(", "),
          );
          const deskPhone = await UdpSipSocket.open();
          sockets.push(deskPhone);
          await deskPhone.send(
            buildRequest({
              method: "MESSAGE",
              uri: "sip:alice@example.org",
              via: `UDP 127.0.0.1:${deskPhone.port}`,
              from: "<sip:bob@example.org>",
              to: "<sip:alice@example.org>",
              headers: { "Content-Type": "text/plain;charset=UTF-8" },
              body: "Redis is down, messages are not",
            }),
            sipPort,
          );
          assert.equal((await deskPhone.waitFor((m) => m.status !== undefined)).status, 200);
          await alice.waitFor((e) => e.event === "message" && e.body === "Redis is down, messages are not");
        } finally {
          redis = await redis?.restart();
        }
        let state = await readyz();
        for (let i = 0; i < 100 && state.status !== 200; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          state = await readyz();
        }
        assert.equal(state.status, 200, state.body.reasons.join(", "));
      });
    }
  });
}
