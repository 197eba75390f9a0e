// Fault: the XMPP server dies under traffic. Prosody is frozen (SIGSTOP: the bridge's writes pile up
// unread in the kernel), then killed (SIGKILL: those writes are gone) and restarted, while a desk
// phone sends MESSAGEs to Alice and Alice sends messages to the phone. The choice made (see
// docs/security.md "Faults"): while the component is offline, a SIP MESSAGE is refused up front
// with 503 + Retry-After, never held in memory; a message answered 200 was written to Prosody, and
// if Prosody died before handling it, it is written again after the reconnect. Accounting at the
// end: every MESSAGE answered 200 reached Alice (duplicates, same id, only for the ones in flight
// at the kill, and counted); none answered 503 did; none went unanswered; Bob's phone presence is
// announced to Alice again after the restart.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { buildPidf } from "../../components/sip/pidf.js";
import { FaultScene } from "../harness/fault-scene.js";
import { header, publishPresence } from "../harness/sip-socket.js";
import { receivedAtSip, receivedByChatUser } from "../harness/traffic.js";
import type { SlixmppClient } from "../harness/xmpp-client.js";

describe("fault: Prosody frozen, killed and restarted under traffic both ways", function () {
  this.timeout(180_000);
  let scene: FaultScene;

  before(async function () {
    // Offline storage: Alice's client dies with the server; what arrives meanwhile waits for her.
    scene = await FaultScene.start({ label: "prosody", prosody: { offlineStorage: true }, redis: true });
    await scene.startBridge();
  });

  after(async function () {
    await scene?.stop();
  });

  it("loses no accepted message, refuses with 503 while Prosody is away, and re-announces presence", async function () {
    const { phone, sipPort, farEnd: receiver, grant, prosody, clients } = scene;
    const bridge = scene.bridge ?? assert.fail("no bridge");
    const signIn = (): Promise<SlixmppClient> => scene.signIn();
    let alice = await signIn();
    // Alice watches Bob's phone; Bob's phone is on a call.
    alice.send({ op: "presence", to: `bob@${grant.jid}`, type: "subscribe" });
    await alice.waitFor((e) => e.event === "presence" && e.type === "subscribed", 5_000);
    const published = await publishPresence(phone, sipPort, {
      uri: "sip:bob@example.org",
      pidf: buildPidf("sip:bob@example.org", "on-the-phone", "On the phone"),
    });
    assert.equal(published.status, 200);
    await alice.waitFor((e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.show === "dnd");

    // Traffic both ways until told to stop; while Prosody is away Alice's messages go nowhere
    // (not to the bridge), and after it her new client sends them.
    const traffic = scene.traffic(() => alice);

    await sleep(1_500);
    const frozenAt = Date.now();
    prosody.freeze();
    await sleep(400); // the bridge keeps writing (and answering 200) into the frozen server's socket
    await prosody.kill();
    const killedAt = Date.now();
    await sleep(1_500); // the bridge refuses meanwhile
    await prosody.resume();
    await bridge.lines.waitFor((l) => l.msg === "xmpp component online" && Number(l.time) > killedAt, 30_000);
    alice = await signIn(); // her old client died with the server
    await sleep(2_000);
    const { sipOutcomes, sentAt, toSip } = await traffic.stop();
    await sleep(2_000); // the last answers and deliveries

    // --- SIP → XMPP accounting
    const received = receivedByChatUser(clients, `bob@${grant.jid}`);
    const accepted = [...sipOutcomes].filter(([, s]) => s === 200).map(([b]) => b);
    const refused = [...sipOutcomes].filter(([, s]) => s === 503).map(([b]) => b);
    const other = [...sipOutcomes].filter(([, s]) => s !== 200 && s !== 503);
    const lost = accepted.filter((b) => !received.has(b));
    const duplicates = [...received].filter(([, count]) => count > 1).map(([b]) => b);
    console.log(
      `      SIP → XMPP: ${sipOutcomes.size} sent, ${accepted.length} accepted (200), ${refused.length} refused (503), ` +
        `${lost.length} lost, ${duplicates.length} duplicated`,
    );
    assert.deepEqual(other, [], "every MESSAGE gets 200 or 503");
    assert.deepEqual(lost, [], "accepted but never delivered");
    assert.deepEqual(
      refused.filter((b) => received.has(b)),
      [],
      "refused with 503, yet delivered",
    );
    assert.ok(refused.length > 0, "the outage was never seen: no 503");
    // Written into the frozen server: accepted, and delivered after the restart.
    const duringFreeze = accepted.filter(
      (b) => (sentAt.get(b) ?? 0) >= frozenAt && (sentAt.get(b) ?? 0) < killedAt,
    );
    assert.ok(duringFreeze.length > 0, "no message was accepted while Prosody was frozen");
    // Duplicates only for messages in flight at the kill (written, not yet confirmed by Prosody).
    for (const b of duplicates) assert.ok((sentAt.get(b) ?? 0) < killedAt, `${b} duplicated`);
    const unavailable = phone.received.find((m) => m.status === 503);
    assert.ok(unavailable, "no 503 seen by the phone");
    assert.match(header(unavailable, "retry-after") ?? "", /^\d+$/);

    // --- XMPP → SIP: what reached the bridge was delivered; traffic flowed before and after.
    const atSip = new Set(receivedAtSip(receiver.received));
    const firstAfter = toSip.findIndex((b) => atSip.has(b) && Number(b.slice(2)) > toSip.length / 2);
    assert.ok(atSip.has("x-1"), "XMPP → SIP before the outage");
    assert.ok(firstAfter >= 0, "XMPP → SIP after the restart");

    // --- Presence: Bob's phone is still on a call for Alice's new client.
    await alice.waitFor(
      (e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.show === "dnd",
      5_000,
    );
  });
});
