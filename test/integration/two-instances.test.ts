// Two bridge instances on one Redis (the first step of scale-out): a presence change that enters
// through instance A (Alice's XMPP presence, which reaches A, the instance holding the component)
// reaches a SIP watcher whose subscription was made through instance B, and a desk phone's PUBLISH
// through A reaches it too. Every instance hears every change on the store's channel; the NOTIFYs
// that follow a change are sent by the instance holding the component (A), in the dialog B made and
// answered (B sent the first NOTIFY), with CSeqs that go up whoever sends. Prosody accepts one
// component connection per domain: the instances elect a holder with a Redis lease; B stands by
// (ready, since a live instance holds the component) and takes the component over within 5 s when
// A is killed. A desk phone's MESSAGE to a
// chat user that reaches B goes to A through Redis and is answered 200 once A has it on Prosody.
// Only the holder talks to Asterisk (one ARI connection for the application, the recorded-traffic
// fake) and subscribes to the voicemail boxes; B takes both up with the component.
import assert from "node:assert/strict";
import { buildPidf, parsePidf } from "../../components/sip/pidf.js";
import { BridgeProcess } from "../harness/bridge-process.js";
import { setTimeout as sleep } from "node:timers/promises";
import { AriFake } from "../fakes/ari-fake.js";
import { FaultScene, readyz } from "../harness/fault-scene.js";
import { freePort } from "../harness/net.js";
import {
  header,
  publishPresence,
  sendSipMessage,
  subscribePresence,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";

describe("two instances on one Redis", function () {
  this.timeout(60_000);
  let scene: FaultScene;
  let b: BridgeProcess;
  let bSipPort: number;
  let bHttpPort: number;
  let watcher: UdpSipSocket;
  let ari: AriFake;

  before(async function () {
    scene = await FaultScene.start({ label: "two", redis: true });
    ari = await AriFake.start();
    // Both with the same Asterisk and the same voicemail box (its SUBSCRIBEs go to the far end,
    // the outbound proxy, which leaves them unanswered: the test only looks at who sends them).
    const extra = {
      asterisk: { url: ari.url, username: "bridge", password: "secret", users: [{ user: "alice" }] },
      sip: { mwi: { mailboxes: [{ user: "alice", uri: "sip:alice@127.0.0.1:5062" }] } },
    };
    const a = await scene.startBridge(extra);
    assert.ok(a.running);
    // B: the same gateway and store, its own SIP and HTTP ports.
    bSipPort = await freePort({ udp: true });
    const config = scene.config(extra);
    b = BridgeProcess.start(scene.dir.file("b.yaml"), {
      ...config,
      sip: { ...(config.sip as object), listen: [`udp:127.0.0.1:${bSipPort}`] },
      http: { listen: `127.0.0.1:${(bHttpPort = await freePort())}` },
    });
    await b.lines.waitFor((l) => l.msg === "switchboard started", 15_000);
    watcher = await UdpSipSocket.open();
    watcher.autoAnswer(["NOTIFY"]);
  });

  after(async function () {
    await watcher?.close();
    if (b?.running) await b.stop();
    await scene?.stop();
    await ari?.stop();
  });

  /** The instances' SIP ports that sent a voicemail SUBSCRIBE (message-summary) so far. */
  const mwiSenders = (): Set<number> =>
    new Set(
      scene.farEnd.received
        .filter((m) => m.method === "SUBSCRIBE" && /message-summary/i.test(header(m, "event") ?? ""))
        .map((m) => m.from.port),
    );

  it("talks to Asterisk and subscribes to voicemail from the holder alone", async function () {
    await ari.waitForConnections(1, 10_000);
    await scene.farEnd.waitFor((m) => m.method === "SUBSCRIBE", 10_000);
    await sleep(2_000); // B has had every chance to connect and subscribe as well
    assert.equal(ari.connections, 1, "ARI connections");
    assert.deepEqual([...mwiSenders()], [scene.sipPort], "voicemail SUBSCRIBEs from A alone");
  });

  it("notifies a watcher subscribed through B of changes that entered through A", async function () {
    const alice = await scene.signIn();
    const subscribed = await subscribePresence(watcher, bSipPort, {
      uri: "sip:alice@example.org",
      from: "sip:carol@example.org",
    });
    assert.equal(subscribed.status, 200);
    const firstNotify = await watcher.waitFor((m) => m.method === "NOTIFY");
    assert.equal(firstNotify.from.port, bSipPort, "the first NOTIFY is B's, which took the SUBSCRIBE");
    const dialog = (m: RawSipMessage): string[] => [header(m, "call-id") ?? "", header(m, "from") ?? ""];
    const cseq = (m: RawSipMessage): number => Number((header(m, "cseq") ?? "").split(" ")[0]);

    // Alice's XMPP presence reaches A (it holds the component); the NOTIFY comes from B.
    let mark = watcher.received.length;
    alice.send({ op: "presence", show: "dnd", status: "In a meeting" });
    const fromXmpp = await watcher.waitFor(
      (m) => m.method === "NOTIFY" && watcher.received.indexOf(m) >= mark && m.body.includes("In a meeting"),
      2_000,
    );
    assert.equal(fromXmpp.from.port, scene.sipPort, "the NOTIFY after a change is A's (the holder's)");
    assert.deepEqual(dialog(fromXmpp), dialog(firstNotify), "in the dialog B made");
    assert.ok(cseq(fromXmpp) > cseq(firstNotify), "CSeq went up");
    assert.deepEqual(parsePidf(fromXmpp.body).activities, ["busy"]);

    // A desk phone's PUBLISH through A.
    mark = watcher.received.length;
    const published = await publishPresence(scene.phone, scene.sipPort, {
      uri: "sip:alice@example.org",
      pidf: buildPidf("sip:alice@example.org", "on-the-phone", "On the phone"),
    });
    assert.equal(published.status, 200);
    const fromSip = await watcher.waitFor(
      (m) => m.method === "NOTIFY" && watcher.received.indexOf(m) >= mark && m.body.includes("On the phone"),
      2_000,
    );
    assert.equal(fromSip.from.port, scene.sipPort);
    assert.ok(cseq(fromSip) > cseq(fromXmpp), "CSeq went up");
  });

  it("relays a MESSAGE that reaches B (standby) to Alice through A, the holder", async function () {
    const alice = scene.clients[0] ?? (await scene.signIn());
    const bodies = Array.from({ length: 20 }, (_, i) => `via B ${i}`);
    const answers = await Promise.all(
      bodies.map((body) =>
        sendSipMessage(scene.phone, bSipPort, {
          from: "sip:bob@example.org",
          to: "sip:alice@example.org",
          body,
        }),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      bodies.map(() => 200),
    );
    for (const body of bodies) await alice.waitFor((e) => e.event === "message" && e.body === body, 5_000);
    assert.ok(
      !b.lines.entries.some((l) => l.msg === "xmpp component online"),
      "B connected the component itself",
    );
  });

  it("stands B by while A holds the component, and moves the component to B within 5 s of A's death", async function () {
    assert.equal(
      (await readyz(bHttpPort)).status,
      200,
      "a standby is ready while another instance holds the component",
    );
    assert.ok(
      !b.lines.entries.some((l) => l.msg === "xmpp component online"),
      "B connected the component too",
    );
    const a = scene.bridge ?? assert.fail("no A");
    const killedAt = Date.now();
    assert.equal(await a.stop("SIGKILL"), null);
    const online = await b.lines.waitFor((l) => l.msg === "xmpp component online", 10_000);
    const tookMs = Number(online.time) - killedAt;
    console.log(`      B holds the component ${tookMs} ms after A was killed`);
    assert.ok(tookMs <= 5_000, `took ${tookMs} ms`);
    assert.equal((await readyz(bHttpPort)).status, 200);
    // B talks to Asterisk and subscribes to voicemail now.
    await ari.waitForConnections(1, 5_000);
    await scene.farEnd.waitFor(
      (m) =>
        m.method === "SUBSCRIBE" &&
        m.from.port === bSipPort &&
        /message-summary/i.test(header(m, "event") ?? ""),
      5_000,
    );
    // And B relays a desk phone's MESSAGE to Alice now.
    const alice = scene.clients[0] ?? assert.fail("no Alice");
    const answer = await sendSipMessage(scene.phone, bSipPort, {
      from: "sip:bob@example.org",
      to: "sip:alice@example.org",
      body: "through B",
    });
    assert.equal(answer.status, 200);
    await alice.waitFor((e) => e.event === "message" && e.body === "through B", 5_000);
  });
});
