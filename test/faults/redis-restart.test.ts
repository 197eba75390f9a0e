// Fault: the store dies under traffic. Redis is killed (SIGKILL) and started again two seconds later
// while a desk phone and Alice message each other, and Alice changes her presence during the
// outage. Messages do not need the store when their targets are routable: every MESSAGE either way
// is delivered, none lost, none twice. /readyz says 503 (naming Redis) while it is away and 200 after.
// Alice's presence change, made while the store could not take it, is written when it is back
// (held by the presence service): the bridge's presence API reads it from the store.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { FaultScene, presenceOf, readyz } from "../harness/fault-scene.js";
import { account, receivedAtSip } from "../harness/traffic.js";
import type { SlixmppClient } from "../harness/xmpp-client.js";

describe("fault: Redis killed and restarted under traffic both ways", function () {
  this.timeout(180_000);
  let scene: FaultScene;
  let alice: SlixmppClient;

  before(async function () {
    scene = await FaultScene.start({ label: "redis", redis: true });
    await scene.startBridge();
    alice = await scene.signIn();
  });

  after(async function () {
    await scene?.stop();
  });

  it("relays every message both ways, reports the outage in /readyz, and writes presence changed meanwhile", async function () {
    const { httpPort, farEnd: receiver, grant } = scene;
    const redis = scene.redis ?? assert.fail("no redis");
    await until(async () => (await presenceOf(httpPort, "alice@example.org")) === "available");
    assert.equal((await readyz(httpPort)).status, 200);

    const traffic = scene.traffic(() => alice);

    await sleep(1_500);
    await redis.halt({ kill: true });
    await until(async () => (await readyz(httpPort)).status === 503);
    const during = await readyz(httpPort);
    assert.match(during.body, /redis/i);
    alice.send({ op: "presence", show: "dnd", status: "In a meeting" }); // while the store is away
    await sleep(2_000);
    scene.redis = await redis.restart();
    await until(async () => (await readyz(httpPort)).status === 200, 20_000);
    await sleep(1_500);
    const result = await traffic.stop();
    await sleep(1_500);

    // Every MESSAGE answered 200 and delivered once; every message of Alice's at the SIP side, once.
    const { notOk, lost, twice, missing } = account(result, [alice], receiver.received, `bob@${grant.jid}`);
    const atSip = receivedAtSip(receiver.received);
    console.log(
      `      SIP → XMPP: ${result.sipOutcomes.size} sent, ${lost.length} lost, ${twice.length} twice; ` +
        `XMPP → SIP: ${result.toSip.length} sent, ${missing.length} lost`,
    );
    assert.deepEqual(notOk, [], "a MESSAGE not accepted while only the store was away");
    assert.deepEqual(lost, []);
    assert.deepEqual(twice, []);
    assert.deepEqual(missing, []);
    assert.equal(new Set(atSip).size, atSip.length, "a message of Alice's reached the SIP side twice");

    // Presence: Alice's change made during the outage is in the store now.
    await until(async () => (await presenceOf(httpPort, "alice@example.org")) === "dnd", 10_000);
  });
});

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await condition()) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}
