// Faults of the instance holding the XMPP component that Prosody cannot see, with Prosody's
// component_conflict_resolve = "kick_old" (docs/scaling.md):
// - it freezes (SIGSTOP: its connections stay open and the kernel still acknowledges what Prosody
//   writes, so Prosody never sees it die): the standby that takes the lease over replaces the
//   frozen connection within 5 s; the woken instance gives the lease up and stays a standby, and a
//   desk phone's MESSAGE through it reaches the chat user through the new holder;
// - it is cut off from Redis (its XMPP connection fine): it keeps the component while it can, the
//   standby takes the lease when it runs out and replaces the connection, and the cut-off instance
//   does not take it back (no tug of war between the two).
// `switchboard check` run next to them does not take the component from the holder either.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BridgeProcess } from "../harness/bridge-process.js";
import { switchboard } from "../harness/cli.js";
import { FaultScene } from "../harness/fault-scene.js";
import { freePort, TcpCable } from "../harness/net.js";
import { sendSipMessage } from "../harness/sip-socket.js";

describe("fault: the component holder frozen (SIGSTOP), Prosody replacing old connections", function () {
  this.timeout(120_000);
  let scene: FaultScene;
  let b: BridgeProcess;
  let bSipPort: number;

  before(async function () {
    scene = await FaultScene.start({ label: "frozen", redis: true, prosody: { kickOld: true } });
    await scene.startBridge();
    bSipPort = await freePort({ udp: true });
    const config = scene.config();
    b = BridgeProcess.start(scene.dir.file("b.yaml"), {
      ...config,
      sip: { ...(config.sip as object), listen: [`udp:127.0.0.1:${bSipPort}`] },
      http: { listen: `127.0.0.1:${await freePort()}` },
    });
    await b.lines.waitFor((l) => l.msg === "switchboard started", 15_000);
  });

  after(async function () {
    const a = scene?.bridge;
    if (a?.running) process.kill(a.pid, "SIGCONT");
    if (b?.running) await b.stop();
    await scene?.stop();
  });

  it("`switchboard check` leaves the running holder its component", async function () {
    const a = scene.bridge ?? assert.fail("no A");
    const marks = a.lines.entries.length;
    // (Its SIP and HTTP listen probes fail: the running bridge has those ports.)
    const result = await switchboard(["check", "--config", scene.dir.file("switchboard.yaml")]);
    assert.match(result.stdout, /^ok +xmpp .*held by running instance .*handshake not tried/m, result.stdout);
    await sleep(1_000);
    const since = a.lines.entries.slice(marks);
    assert.ok(!since.some((l) => l.msg === "xmpp component offline"), "the check took the component");
  });

  it("moves the component to the standby within 5 s, and the woken holder stays a standby", async function () {
    const a = scene.bridge ?? assert.fail("no A");
    const alice = await scene.signIn();
    const frozenAt = Date.now();
    process.kill(a.pid, "SIGSTOP");
    const online = await b.lines.waitFor((l) => l.msg === "xmpp component online", 10_000);
    const tookMs = Number(online.time) - frozenAt;
    console.log(`      B holds the component ${tookMs} ms after A froze`);
    assert.ok(tookMs <= 5_000, `took ${tookMs} ms`);

    // A wakes: its connection was replaced, so it gives the lease up instead of taking it back.
    const marks = b.lines.entries.length;
    process.kill(a.pid, "SIGCONT");
    await a.lines.waitFor(
      (l) => l.msg === "lost the XMPP component lease" && Number(l.time) > frozenAt,
      10_000,
    );
    await sleep(3_000);
    const bSince = b.lines.entries.slice(marks);
    assert.ok(!bSince.some((l) => l.msg === "xmpp component offline"), "A took the component back from B");
    const aOnline = a.lines.entries.filter(
      (l) => l.msg === "xmpp component online" && Number(l.time) > frozenAt,
    );
    assert.deepEqual(aOnline, [], "A connected the component again");

    // Both ways still work: a MESSAGE through A (now a standby) and one through B reach Alice.
    for (const [port, body] of [
      [scene.sipPort, "through woken A"],
      [bSipPort, "through B"],
    ] as const) {
      const answer = await sendSipMessage(scene.phone, port, {
        from: "sip:bob@example.org",
        to: "sip:alice@example.org",
        body,
      });
      assert.equal(answer.status, 200, body);
      await alice.waitFor((e) => e.event === "message" && e.body === body, 5_000);
    }
  });
});

describe("fault: the component holder cut off from Redis, Prosody replacing old connections", function () {
  this.timeout(120_000);
  let scene: FaultScene;
  let cable: TcpCable;
  let b: BridgeProcess;

  before(async function () {
    scene = await FaultScene.start({ label: "cutoff", redis: true, prosody: { kickOld: true } });
    const redis = scene.redis ?? assert.fail("no redis");
    // A reaches Redis through a cable the test cuts; B directly.
    cable = await TcpCable.start(redis.port);
    await scene.startBridge({ store: { url: `redis://127.0.0.1:${cable.port}` } });
    const config = scene.config();
    b = BridgeProcess.start(scene.dir.file("b.yaml"), {
      ...config,
      sip: { ...(config.sip as object), listen: [`udp:127.0.0.1:${await freePort({ udp: true })}`] },
      http: { listen: `127.0.0.1:${await freePort()}` },
    });
    await b.lines.waitFor((l) => l.msg === "switchboard started", 15_000);
  });

  after(async function () {
    if (b?.running) await b.stop();
    await cable?.close();
    await scene?.stop();
  });

  it("hands the component to the standby once the lease runs out, and never takes it back", async function () {
    const a = scene.bridge ?? assert.fail("no A");
    const alice = await scene.signIn();
    const cutAt = Date.now();
    cable.cut();
    const online = await b.lines.waitFor((l) => l.msg === "xmpp component online", 10_000);
    console.log(`      B holds the component ${Number(online.time) - cutAt} ms after A lost Redis`);
    assert.ok(Number(online.time) - cutAt <= 5_000);
    await a.lines.waitFor((l) => l.msg === "lost the XMPP component lease" && Number(l.time) > cutAt, 5_000);
    // Five seconds later B still has it: A did not connect again (it would replace B's connection).
    const marks = b.lines.entries.length;
    await sleep(5_000);
    assert.ok(
      !b.lines.entries.slice(marks).some((l) => l.msg === "xmpp component offline"),
      "A took the component back",
    );
    const aOnline = a.lines.entries.filter(
      (l) => l.msg === "xmpp component online" && Number(l.time) > cutAt,
    );
    assert.deepEqual(aOnline, [], "A connected the component again");
    // With Redis back, A is a standby of B, and messages go on through B.
    cable.mend();
    await sleep(2_000);
    const answer = await sendSipMessage(scene.phone, scene.sipPort, {
      from: "sip:bob@example.org",
      to: "sip:alice@example.org",
      body: "after the cut",
    });
    assert.equal(answer.status, 200);
    await alice.waitFor((e) => e.event === "message" && e.body === "after the cut", 5_000);
  });
});
