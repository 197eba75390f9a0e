// Fault: the PBX connection drops while a call ends. Alice's desk phone on Asterisk is in a call
// (ARI DeviceStateChanged INUSE, from the recorded traffic); the events connection is cut without a
// close frame, as a lost network or a crashed Asterisk would, and while it is down the call ends, so
// the NOT_INUSE event is never received. When the bridge connects again it reads every mapped
// phone (GET /ari/deviceStates/..., answered as Asterisk 22.10.1 recorded it, with the state now
// NOT_INUSE): Alice is no longer shown on the phone. Messages both ways do not go through the PBX
// and flow throughout, nothing lost.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { AmiFake } from "../fakes/ami-fake.js";
import { AriFake, like, recordedEvent } from "../fakes/ari-fake.js";
import { FaultScene } from "../harness/fault-scene.js";
import { account } from "../harness/traffic.js";
import type { SlixmppClient } from "../harness/xmpp-client.js";

const ALICE_DEVICE = "/ari/deviceStates/PJSIP%2Falice";

describe("fault: the PBX (ARI) connection dropped and restored while a call ends", function () {
  this.timeout(120_000);
  let scene: FaultScene;
  let ari: AriFake;
  let ami: AmiFake;
  let alice: SlixmppClient;

  before(async function () {
    scene = await FaultScene.start({ label: "ari" });
    ari = await AriFake.start();
    ami = await AmiFake.start();
    // The reading at start (before the call) is the recorded one.
    await scene.startBridge({
      asterisk: {
        url: ari.url,
        username: "bridge",
        password: "secret",
        ami: { host: ami.host, port: ami.port, username: "bridge", password: "secret" },
        users: [{ user: "alice" }],
      },
    });
    await ari.waitForConnections(1, 10_000);
    alice = await scene.signIn();
  });

  after(async function () {
    await scene?.stop();
    await ari?.stop();
    await ami?.stop();
  });

  async function stateOfAlice(): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${scene.httpPort}/api/presence/alice%40example.org`);
    return ((await response.json()) as { aggregate: { state: string } }).aggregate.state;
  }

  async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  it("reads the phones again on reconnect (no stale 'on the phone'), and loses no message meanwhile", async function () {
    const { farEnd: receiver, grant } = scene;
    await until("Alice available", async () => (await stateOfAlice()) === "available");
    const device = recordedEvent((e) => e.type === "DeviceStateChanged");
    ari.emit(like(device, { device_state: { name: "PJSIP/alice", state: "INUSE" } }));
    await until("Alice on the phone", async () => (await stateOfAlice()) === "on-the-phone", 2_000);

    // Traffic both ways from here on.
    const traffic = scene.traffic(() => alice, {
      from: "sip:dave@example.org",
      contact: `dave@${grant.jid}`,
    });
    await sleep(500);
    // The call ends while the events connection is down: the PBX now reads NOT_INUSE.
    const reading = ari.recordedReply<{ name: string; state: string }>("GET", ALICE_DEVICE);
    ari.answer("GET", ALICE_DEVICE, { ...reading, state: "NOT_INUSE" });
    assert.ok(ari.dropEvents() >= 1, "no events connection to drop");
    assert.equal(await stateOfAlice(), "on-the-phone", "nothing said the call ended yet");
    await ari.waitForConnections(1, 15_000);
    await until(
      "Alice off the phone after the reconnect",
      async () => (await stateOfAlice()) === "available",
    );
    await sleep(500);
    const result = await traffic.stop();
    await sleep(1_000);

    const { notOk, lost, missing } = account(result, [alice], receiver.received);
    console.log(
      `      during the PBX outage: SIP → XMPP ${result.sipOutcomes.size} sent, ${lost.length} lost; XMPP → SIP ${result.toSip.length} sent, ${missing.length} lost`,
    );
    assert.deepEqual(notOk, []);
    assert.deepEqual(lost, []);
    assert.deepEqual(missing, []);
    // The bridge asked the PBX nothing the recordings lack but the CustomPresence writes of Alice's
    // chat states (the recording has one of them; the fake answers the others 501, logged).
    assert.deepEqual(
      ari.unrecorded.filter(
        (line) =>
          !line.startsWith("POST /ari/asterisk/variable?variable=PRESENCE_STATE(CustomPresence:alice)&"),
      ),
      [],
    );
  });
});
