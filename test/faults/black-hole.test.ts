// Fault: the SIP side stops answering. Alice writes to Bob's phone at 100 messages/s while the proxy
// in front of it swallows every request without a word (a black hole), then answers again. Each
// MESSAGE times out by Timer F (64·T1; T1 = 50 ms here, so 3.2 s) with its retransmissions capped
// at T2, the message waits in the durable queue, and is delivered when the far end is back: none
// lost, none delivered twice, every one confirmed to Alice with a receipt. The bridge's memory stays
// bounded while hundreds of transactions hang, and the transactions are gone once Timer F has run.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { BridgeProcess } from "../harness/bridge-process.js";
import { FaultScene } from "../harness/fault-scene.js";
import { buildResponse, header } from "../harness/sip-socket.js";
import type { SlixmppClient } from "../harness/xmpp-client.js";

const MESSAGES = 500;
const INTERVAL_MS = 10;

function rssMb(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(line ?? 0) / 1024;
}

async function metric(port: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => pattern.test(line))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

describe("fault: a black-holed SIP receiver", function () {
  this.timeout(180_000);
  let scene: FaultScene;
  let bridge: BridgeProcess;
  let alice: SlixmppClient;
  let answering = false;
  const answered = new Map<string, number>(); // body → how many transactions got a 200 for it

  before(async function () {
    scene = await FaultScene.start({ label: "blackhole", redis: true, autoAnswer: false });
    const proxy = scene.farEnd;
    const transactions = new Set<string>();
    proxy.onMessage((request) => {
      if (!answering || request.method !== "MESSAGE") return; // the black hole: not a word
      // Retransmissions of one transaction (same Call-ID and CSeq) count once.
      const transaction = `${header(request, "call-id")}|${header(request, "cseq")}`;
      if (!transactions.has(transaction)) {
        transactions.add(transaction);
        const body = request.body.trim();
        answered.set(body, (answered.get(body) ?? 0) + 1);
      }
      void proxy.send(buildResponse(request, 200, "OK"), request.from.port, request.from.address);
    });
    bridge = await scene.startBridge({
      sip: { timers: { t1: 50, t2: 400, t4: 500 } },
      store: { queue: { ttlSeconds: 600, retryMinSeconds: 1, retryMaxSeconds: 2 } },
    });
    alice = await scene.signIn();
  });

  after(async function () {
    await scene?.stop();
  });

  it("times out per Timer F with bounded memory, queues, and delivers every message once when answered again", async function () {
    const { httpPort, grant } = scene;
    const rssBefore = rssMb(bridge.pid);
    const bodies: string[] = [];
    for (let i = 1; i <= MESSAGES; i++) {
      const body = `m-${i}`;
      bodies.push(body);
      alice.send({ op: "message", to: `bob@${grant.jid}`, body, id: body, receipt: true });
      await sleep(INTERVAL_MS);
    }
    // All of them are in their transactions now (or already timed out): memory is bounded.
    const rssPeak = rssMb(bridge.pid);
    // Timer F: 64 · T1 = 3.2 s after each was sent, each ends with a 408 and goes to the queue.
    await sleep(3_200 + 1_500);
    const timedOut = await metric(
      httpPort,
      /^switchboard_sip_requests_sent_total\{method="MESSAGE",code="408"\}/,
    );
    const queued = await metric(httpPort, /^switchboard_queue_depth /);
    console.log(
      `      ${MESSAGES} MESSAGEs into a black hole: RSS ${rssBefore.toFixed(0)} → ${rssPeak.toFixed(0)} MB, ` +
        `${timedOut} timed out (408), ${queued} queued`,
    );
    assert.ok(rssPeak - rssBefore < 60, `RSS grew by ${(rssPeak - rssBefore).toFixed(0)} MB`);
    // (A few more: the queue's first retries, a second after queueing, hit the black hole too.)
    assert.ok(timedOut >= MESSAGES, `only ${timedOut} transactions ended by Timer F`);
    assert.equal(queued, MESSAGES, "every message waits in the queue");
    assert.equal(
      alice.events.filter((e) => e.event === "message" && e.type === "error").length,
      0,
      "an error reached Alice although the message is queued",
    );

    // The far end answers again: the queue delivers everything, once, with a receipt each.
    answering = true;
    const deadline = Date.now() + 60_000;
    while (bodies.some((b) => !answered.has(b)) && Date.now() < deadline) await sleep(200);
    await sleep(1_000);
    const lost = bodies.filter((b) => !answered.has(b));
    const twice = bodies.filter((b) => (answered.get(b) ?? 0) > 1);
    const receipts = new Set(
      alice.events
        .filter((e) => e.event === "message" && (e.xml ?? "").includes("<received"))
        .map((e) => /id=['"](m-\d+)['"]/.exec((e.xml ?? "").slice((e.xml ?? "").indexOf("<received")))?.[1]),
    );
    console.log(
      `      answered again: ${MESSAGES - lost.length} delivered, ${twice.length} twice, ${receipts.size} receipts`,
    );
    assert.deepEqual(lost, []);
    assert.deepEqual(twice, []);
    assert.equal(receipts.size, MESSAGES);
    assert.equal(await metric(httpPort, /^switchboard_queue_depth /), 0);
  });
});
