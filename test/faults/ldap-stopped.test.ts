// Fault: the directory goes away under traffic. Desk phones write to Alice by her number and Alice
// writes to Bob by his, both numbers found through LDAP (config/ldap/example.ldif in a real slapd);
// then slapd is stopped. Numbers already looked up are served from the cache, so that traffic goes
// on with nothing lost; a number never looked up fails fast (well within the LDAP timeout plus a
// margin) with an answer that says the directory is unavailable, never a silent drop or a hang.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BridgeProcess } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { sendSipMessage, UdpSipSocket } from "../harness/sip-socket.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, LDAP_SUFFIX, Slapd } from "../harness/slapd.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

const ALICE_NUMBER = "+442071234567";
const BOB_NUMBER = "+442071234568";
const CAROL_EXTENSION = "8003"; // in the directory, never looked up before slapd stops
const LDAP_TIMEOUT_MS = 1_000;
const INTERVAL_MS = 40;

describe("fault: LDAP stopped under traffic both ways", function () {
  this.timeout(120_000);
  let prosody: Prosody;
  let slapd: Slapd;
  let grant: ComponentGrant;
  let bridge: BridgeProcess;
  let sipPort: number;
  let receiver: UdpSipSocket;
  let phone: UdpSipSocket;
  let alice: SlixmppClient;
  const dir = tempDir("fault-ldap");

  before(async function () {
    prosody = await Prosody.start();
    await prosody.register("alice", "alice-pw");
    slapd = await Slapd.start();
    grant = prosody.takeComponent({ privileged: true });
    sipPort = await freePort({ udp: true });
    receiver = await UdpSipSocket.open();
    receiver.autoAnswer(["MESSAGE"]);
    phone = await UdpSipSocket.open();
    bridge = BridgeProcess.start(dir.file("switchboard.yaml"), {
      domain: prosody.domain,
      xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
      sip: { listen: [`udp:127.0.0.1:${sipPort}`], outboundProxy: `sip:127.0.0.1:${receiver.port};lr` },
      ldap: {
        url: slapd.url,
        bindDN: LDAP_ADMIN_DN,
        password: LDAP_ADMIN_PASSWORD,
        base: `ou=people,${LDAP_SUFFIX}`,
        timeoutMs: LDAP_TIMEOUT_MS,
      },
      http: { listen: `127.0.0.1:${await freePort()}` },
    });
    await bridge.online();
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "presence" });
  });

  after(async function () {
    await alice?.close();
    await phone?.close();
    await receiver?.close();
    if (bridge?.running) await bridge.stop();
    await slapd?.stop();
    await prosody?.stop();
    dir.remove();
  });

  const toAlice = (body: string) =>
    sendSipMessage(phone, sipPort, {
      from: "sip:dave@example.org",
      to: `sip:${ALICE_NUMBER}@example.org`,
      body,
    });

  it("serves cached numbers with nothing lost, and fails a new one fast with a clear answer", async function () {
    // Both numbers looked up once (the cache is warm).
    assert.equal((await toAlice("warm-up")).status, 200);
    await alice.waitFor((e) => e.event === "message" && e.body === "warm-up");
    alice.send({ op: "message", to: `${BOB_NUMBER}@${grant.jid}`, body: "warm-up", id: "warm-up" });
    await receiver.waitFor((m) => m.method === "MESSAGE" && m.body.trim() === "warm-up");

    const sipOutcomes = new Map<string, number | "none">();
    const toSip: string[] = [];
    let running = true;
    let n = 0;
    const sipLoop = (async () => {
      const pending: Promise<void>[] = [];
      while (running) {
        const body = `s-${++n}`;
        pending.push(
          toAlice(body).then(
            (answer) => void sipOutcomes.set(body, answer.status ?? 0),
            () => void sipOutcomes.set(body, "none"),
          ),
        );
        await sleep(INTERVAL_MS);
      }
      await Promise.all(pending);
    })();
    let x = 0;
    const xmppLoop = (async () => {
      while (running) {
        const body = `x-${++x}`;
        toSip.push(body);
        alice.send({ op: "message", to: `${BOB_NUMBER}@${grant.jid}`, body, id: body });
        await sleep(INTERVAL_MS);
      }
    })();

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
    running = false;
    await Promise.all([sipLoop, xmppLoop]);
    await sleep(1_000);

    const received = new Set(
      alice.events.filter((e) => e.event === "message" && /^s-\d+$/.test(e.body ?? "")).map((e) => e.body),
    );
    const notOk = [...sipOutcomes].filter(([, s]) => s !== 200);
    const lost = [...sipOutcomes.keys()].filter((b) => !received.has(b));
    const atSip = new Set(receiver.received.filter((m) => m.method === "MESSAGE").map((m) => m.body.trim()));
    const missing = toSip.filter((b) => !atSip.has(b));
    console.log(
      `      cached numbers with slapd stopped: SIP → XMPP ${sipOutcomes.size} sent, ${lost.length} lost; ` +
        `XMPP → SIP ${toSip.length} sent, ${missing.length} lost; a new number refused in ${waited.toFixed(0)} ms`,
    );
    assert.deepEqual(notOk, []);
    assert.deepEqual(lost, []);
    assert.deepEqual(missing, []);
  });
});
