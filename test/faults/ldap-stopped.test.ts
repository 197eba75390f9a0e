// Fault: the directory goes away under traffic. Desk phones write to Alice by her number and Alice
// writes to Bob by his, both numbers found through LDAP (config/ldap/example.ldif in a real slapd);
// then slapd is stopped. Numbers already looked up are served from the cache, so that traffic goes
// on with nothing lost; a number never looked up fails fast (well within the LDAP timeout plus a
// margin) with an answer that says the directory is unavailable, never a silent drop or a hang.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { FaultScene } from "../harness/fault-scene.js";
import { sendSipMessage } from "../harness/sip-socket.js";
import { account } from "../harness/traffic.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, LDAP_SUFFIX, Slapd } from "../harness/slapd.js";
import type { SlixmppClient } from "../harness/xmpp-client.js";

const ALICE_NUMBER = "+442071234567";
const BOB_NUMBER = "+442071234568";
const CAROL_EXTENSION = "8003"; // in the directory, never looked up before slapd stops
const LDAP_TIMEOUT_MS = 1_000;

describe("fault: LDAP stopped under traffic both ways", function () {
  this.timeout(120_000);
  let scene: FaultScene;
  let slapd: Slapd;
  let alice: SlixmppClient;

  before(async function () {
    scene = await FaultScene.start({ label: "ldap" });
    slapd = await Slapd.start();
    await scene.startBridge({
      ldap: {
        url: slapd.url,
        bindDN: LDAP_ADMIN_DN,
        password: LDAP_ADMIN_PASSWORD,
        base: `ou=people,${LDAP_SUFFIX}`,
        timeoutMs: LDAP_TIMEOUT_MS,
      },
    });
    alice = await scene.signIn();
  });

  after(async function () {
    await scene?.stop();
    await slapd?.stop();
  });

  const toAlice = (body: string) =>
    sendSipMessage(scene.phone, scene.sipPort, {
      from: "sip:dave@example.org",
      to: `sip:${ALICE_NUMBER}@example.org`,
      body,
    });

  it("serves cached numbers with nothing lost, and fails a new one fast with a clear answer", async function () {
    const { phone, sipPort, farEnd: receiver, grant } = scene;
    // Both numbers looked up once (the cache is warm).
    assert.equal((await toAlice("warm-up")).status, 200);
    await alice.waitFor((e) => e.event === "message" && e.body === "warm-up");
    alice.send({ op: "message", to: `${BOB_NUMBER}@${grant.jid}`, body: "warm-up", id: "warm-up" });
    await receiver.waitFor((m) => m.method === "MESSAGE" && m.body.trim() === "warm-up");

    const traffic = scene.traffic(() => alice, {
      from: "sip:dave@example.org",
      to: `sip:${ALICE_NUMBER}@example.org`,
      contact: `${BOB_NUMBER}@${grant.jid}`,
    });

    await sleep(1_000);
    await slapd.stop();
    await sleep(1_000);

    // A number nobody looked up before: a clear, prompt refusal on the SIP side.
    const started = performance.now();
    const miss = await sendSipMessage(phone, sipPort, {
      from: "sip:dave@example.org",
      to: `sip:${CAROL_EXTENSION}@example.org`,
      body: "to carol's extension",
    });
    const waited = performance.now() - started;
    assert.ok(miss.status !== undefined && miss.status >= 400, `answered ${miss.status}`);
    assert.equal(miss.status, 503);
    assert.match(miss.startLine, /directory/i);
    assert.ok(waited < LDAP_TIMEOUT_MS + 1_500, `answered after ${waited.toFixed(0)} ms`);

    // And on the XMPP side: an error stanza, not silence.
    alice.send({ op: "message", to: `${CAROL_EXTENSION}@${grant.jid}`, body: "to carol", id: "to-carol" });
    const error = await alice.waitFor(
      (e) => e.event === "message" && e.type === "error" && (e.xml ?? "").includes("to-carol"),
      LDAP_TIMEOUT_MS + 3_000,
    );
    assert.match(error.xml ?? "", /service-unavailable|remote-server-timeout|directory/);

    await sleep(1_000);
    const result = await traffic.stop();
    await sleep(1_000);

    const { notOk, lost, missing } = account(result, [alice], receiver.received);
    console.log(
      `      cached numbers with slapd stopped: SIP → XMPP ${result.sipOutcomes.size} sent, ${lost.length} lost; ` +
        `XMPP → SIP ${result.toSip.length} sent, ${missing.length} lost; a new number refused in ${waited.toFixed(0)} ms`,
    );
    assert.deepEqual(notOk, []);
    assert.deepEqual(lost, []);
    assert.deepEqual(missing, []);
  });
});
