// Fault: the store's primary dies under traffic, with the store on Redis Sentinel (a primary, a
// replica, three sentinels). The primary is killed (SIGKILL) while a desk phone and Alice message
// each other; the sentinels promote the replica, and the bridge (`switchboard start`, store.sentinel)
// follows it. Account of every message: each SIP MESSAGE answered 200 reached Alice once, each of
// Alice's messages reached the SIP side once or came back to her as an error; /readyz names Redis
// while the store is away and is 200 again on the new primary. Presence written before the failover
// is still there, and a change made after it is written on the new primary and read back.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { presenceStoreKeys } from "../../components/redis/redis-presence-store.js";
import { FaultScene, presenceOf, readyz } from "../harness/fault-scene.js";
import { account, receivedAtSip } from "../harness/traffic.js";
import type { SlixmppClient } from "../harness/xmpp-client.js";

describe("fault: the Redis primary killed under traffic both ways, store on Sentinel", function () {
  this.timeout(180_000);
  let scene: FaultScene;
  let alice: SlixmppClient;

  before(async function () {
    scene = await FaultScene.start({ label: "sentinel", sentinel: true });
    await scene.startBridge();
    alice = await scene.signIn();
  });

  after(async function () {
    await scene?.stop();
  });

  it("follows the new primary: every accepted message delivered, presence written before and after it kept", async function () {
    const { httpPort, farEnd: receiver, grant } = scene;
    const set = scene.sentinel ?? assert.fail("no sentinel set");
    await until(async () => (await presenceOf(httpPort, "alice@example.org")) === "available");
    assert.equal((await readyz(httpPort)).status, 200);
    const firstPrimary = await set.primaryPort();

    const traffic = scene.traffic(() => alice);

    await sleep(1_500);
    const killedAt = Date.now();
    const newPrimary = set.failover({ kill: true });
    // The bridge notices the primary is gone (its connection drops) and says so.
    await until(async () => (await readyz(httpPort)).status === 503, 10_000);
    assert.match((await readyz(httpPort)).body, /redis/i);
    const promoted = await newPrimary;
    assert.notEqual(promoted.port, firstPrimary);
    await until(async () => (await readyz(httpPort)).status === 200, 30_000);
    const followedMs = Date.now() - killedAt;
    alice.send({ op: "presence", show: "dnd", status: "In a meeting" }); // after the failover
    await sleep(1_500);
    const result = await traffic.stop();
    await sleep(1_500);

    const { notOk, lost, twice, missing } = account(result, [alice], receiver.received, `bob@${grant.jid}`);
    const atSip = receivedAtSip(receiver.received);
    // Alice's messages that came back to her as errors (none expected: the far end is reachable).
    const errored = new Set(
      alice.events.filter((e) => e.event === "message" && e.type === "error").map((e) => e.id ?? ""),
    );
    const unaccounted = missing.filter((body) => !errored.has(body));
    console.log(
      `      failover followed in ${followedMs} ms (kill -9 to /readyz 200); ` +
        `SIP → XMPP: ${result.sipOutcomes.size} sent, ${notOk.length} not 200, ${lost.length} lost, ` +
        `${twice.length} twice; XMPP → SIP: ${result.toSip.length} sent, ${errored.size} errored, ` +
        `${unaccounted.length} lost`,
    );
    assert.deepEqual(notOk, [], "a MESSAGE not accepted while only the store failed over");
    assert.deepEqual(lost, []);
    assert.deepEqual(twice, []);
    assert.deepEqual(unaccounted, []);
    assert.equal(new Set(atSip).size, atSip.length, "a message of Alice's reached the SIP side twice");

    // Presence: the change made after the failover is read back through the bridge, and it is on
    // the new primary.
    await until(async () => (await presenceOf(httpPort, "alice@example.org")) === "dnd", 10_000);
    const stored = await promoted.command(
      "EXISTS",
      presenceStoreKeys(scene.prefix).presence("alice@example.org"),
    );
    assert.equal(stored, 1, "Alice's presence is not on the new primary");
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
