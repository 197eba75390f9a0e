// Fault: the store dies under traffic. Redis is killed (SIGKILL) and started again two seconds later
// while a desk phone and Alice message each other, and Alice changes her presence during the
// outage. Messages do not need the store when their targets are routable: every MESSAGE either way
// is delivered, none lost, none twice. /readyz says 503 (naming Redis) while it is away and 200 after.
// Alice's presence change, made while the store could not take it, is written when it is back
// (held by the presence service): the bridge's presence API reads it from the store.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BridgeProcess } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { RedisServer } from "../harness/redis.js";
import { sendSipMessage, UdpSipSocket } from "../harness/sip-socket.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

const INTERVAL_MS = 40;

async function readyz(port: number): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, body: await response.text() };
}

async function presenceOf(port: number, address: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/api/presence/${encodeURIComponent(address)}`);
  return ((await response.json()) as { aggregate: { state: string } }).aggregate.state;
}

describe("fault: Redis killed and restarted under traffic both ways", function () {
  this.timeout(180_000);
  let prosody: Prosody;
  let redis: RedisServer;
  let grant: ComponentGrant;
  let bridge: BridgeProcess;
  let sipPort: number;
  let httpPort: number;
  let receiver: UdpSipSocket;
  let phone: UdpSipSocket;
  let alice: SlixmppClient;
  const dir = tempDir("fault-redis");

  before(async function () {
    prosody = await Prosody.start();
    await prosody.register("alice", "alice-pw");
    redis = await RedisServer.start();
    grant = prosody.takeComponent({ privileged: true });
    sipPort = await freePort({ udp: true });
    httpPort = await freePort();
    receiver = await UdpSipSocket.open();
    receiver.autoAnswer(["MESSAGE"]);
    phone = await UdpSipSocket.open();
    bridge = BridgeProcess.start(dir.file("switchboard.yaml"), {
      domain: prosody.domain,
      xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
      sip: { listen: [`udp:127.0.0.1:${sipPort}`], outboundProxy: `sip:127.0.0.1:${receiver.port};lr` },
      store: { url: redis.url, prefix: RedisServer.newPrefix("fault-redis") },
      http: { listen: `127.0.0.1:${httpPort}` },
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
    await redis?.stop();
    await prosody?.stop();
    dir.remove();
  });

  it("relays every message both ways, reports the outage in /readyz, and writes presence changed meanwhile", async function () {
    await until(async () => (await presenceOf(httpPort, "alice@example.org")) === "available");
    assert.equal((await readyz(httpPort)).status, 200);

    const sipOutcomes = new Map<string, number | "none">();
    const toSip: string[] = [];
    let running = true;
    let n = 0;
    const sipLoop = (async () => {
      const pending: Promise<void>[] = [];
      while (running) {
        const body = `s-${++n}`;
        pending.push(
          sendSipMessage(phone, sipPort, {
            from: "sip:bob@example.org",
            to: "sip:alice@example.org",
            body,
          }).then(
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
        alice.send({ op: "message", to: `bob@${grant.jid}`, body, id: body });
        await sleep(INTERVAL_MS);
      }
    })();

    await sleep(1_500);
    await redis.halt({ kill: true });
    await until(async () => (await readyz(httpPort)).status === 503);
    const during = await readyz(httpPort);
    assert.match(during.body, /redis/i);
    alice.send({ op: "presence", show: "dnd", status: "In a meeting" }); // while the store is away
    await sleep(2_000);
    redis = await redis.restart();
    await until(async () => (await readyz(httpPort)).status === 200, 20_000);
    await sleep(1_500);
    running = false;
    await Promise.all([sipLoop, xmppLoop]);
    await sleep(1_500);

    // SIP → XMPP: all answered 200 and delivered once.
    const received = new Map<string, number>();
    for (const e of alice.events)
      if (e.event === "message" && e.from === `bob@${grant.jid}` && /^s-\d+$/.test(e.body ?? ""))
        received.set(e.body ?? "", (received.get(e.body ?? "") ?? 0) + 1);
    const notOk = [...sipOutcomes].filter(([, s]) => s !== 200);
    const lost = [...sipOutcomes.keys()].filter((b) => !received.has(b));
    const twice = [...received].filter(([, c]) => c > 1);
    console.log(
      `      SIP → XMPP: ${sipOutcomes.size} sent, ${sipOutcomes.size - notOk.length} answered 200, ${lost.length} lost, ${twice.length} twice`,
    );
    assert.deepEqual(notOk, [], "a MESSAGE not accepted while only the store was away");
    assert.deepEqual(lost, []);
    assert.deepEqual(twice, []);

    // XMPP → SIP: every message Alice sent reached the SIP side, once.
    const atSip = receiver.received.filter((m) => m.method === "MESSAGE").map((m) => m.body.trim());
    const missing = toSip.filter((b) => !atSip.includes(b));
    console.log(`      XMPP → SIP: ${toSip.length} sent, ${missing.length} lost`);
    assert.deepEqual(missing, []);
    assert.equal(new Set(atSip).size, atSip.filter((b) => /^x-\d+$/.test(b)).length, "a duplicate");

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
