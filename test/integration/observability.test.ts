// What an operator watches and does to a running bridge, against a real `switchboard start`
// process and a real Prosody: /metrics parsed by an independent Prometheus parser, its counters
// moving as messages and presence flow; /readyz turning 503 while Prosody is down; a config reload
// on SIGHUP (applied without dropping the component; an invalid file refused, the old config
// kept); a graceful SIGTERM that finishes a transaction in flight; and no secret in the log, wire
// tracing on.
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { BridgeProcess, type LogLine } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { parsePrometheus, sampleValue, type Exposition } from "../harness/prometheus.js";
import { Prosody } from "../harness/prosody.js";
import {
  buildRequest,
  buildResponse,
  header,
  sendSipMessage,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";
import { SlixmppClient } from "../harness/xmpp-client.js";
import { writeFileSync } from "node:fs";

const SIP_PASSWORD = "desk-phone-Pa55";

async function get(base: string, path: string): Promise<{ status: number; body: string }> {
  const answer = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: answer.status, body: await answer.text() };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("operating a running bridge: metrics, readiness, reload, shutdown (real process, real Prosody)", function () {
  this.timeout(120_000);
  let prosody: Prosody;
  const dir = tempDir("observability");
  let bridge: BridgeProcess | undefined;
  let alice: SlixmppClient | undefined;
  const sockets: UdpSipSocket[] = [];

  before(async function () {
    prosody = await Prosody.start();
    await prosody.register("alice", "alice-pw");
  });
  after(async function () {
    if (bridge?.running) await bridge.stop("SIGKILL");
    await alice?.close();
    for (const socket of sockets) await socket.close();
    await prosody?.stop();
    dir.remove();
  });

  it("counts what flows, reports readiness, reloads on SIGHUP and stops gracefully on SIGTERM", async function () {
    const grant = prosody.takeComponent();
    const gw = grant.jid;
    const sipPort = await freePort({ udp: true });
    const httpPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const proxy = await UdpSipSocket.open(); // the SIP proxy in front of Bob's phone
    const phone = await UdpSipSocket.open(); // a desk phone on a trusted address
    sockets.push(proxy, phone);
    const file = dir.file("switchboard.yaml");
    const config = {
      domain: prosody.domain,
      xmpp: { component: { jid: gw, host: grant.host, port: grant.port, secret: grant.secret } },
      sip: {
        listen: [`udp:127.0.0.1:${sipPort}`],
        outboundProxy: `sip:127.0.0.1:${proxy.port};lr`,
        auth: { username: "switchboard", password: SIP_PASSWORD },
      },
      http: { listen: `127.0.0.1:${httpPort}` },
      log: { level: "info", wire: { sip: true, xmpp: true } },
      directory: { users: [{ uid: "bob", displayName: "Bob Baker", numbers: ["+44 20 7123 4568"] }] },
    };
    bridge = BridgeProcess.start(file, config);
    const lines = bridge.lines;
    await bridge.online();
    assert.deepEqual(JSON.parse((await get(base, "/readyz")).body), { ready: true, reasons: [] });

    const scrape = async (): Promise<Exposition> => {
      const answer = await get(base, "/metrics");
      assert.equal(answer.status, 200);
      return parsePrometheus(answer.body);
    };
    const before = await scrape();
    const families = new Set(before.families.map((f) => f.name));
    for (const family of [
      "switchboard_messages",
      "switchboard_message_relay_seconds",
      "switchboard_presence_updates",
      "switchboard_sip_requests_sent",
      "switchboard_sip_requests_answered",
      "switchboard_xmpp_stanzas_sent",
      "switchboard_sip_subscriptions",
      "switchboard_xmpp_subscriptions",
      "switchboard_queue_depth",
      "switchboard_queue_oldest_age_seconds",
      "switchboard_connection_up",
      "switchboard_lookup_seconds",
      "switchboard_cache_lookups",
      "process_resident_memory_bytes",
      "process_open_fds",
    ]) {
      assert.ok(families.has(family), `/metrics has ${family}`);
    }
    assert.equal(sampleValue(before, "switchboard_connection_up", { component: "xmpp" }), 1);

    // Traffic: Alice comes online (presence from XMPP), Bob's desk phone writes to her (SIP → XMPP),
    // she writes to Bob's number (a directory lookup, then XMPP → SIP through the proxy).
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "presence", show: "chat", status: "Around" });
    const lunch = await sendSipMessage(phone, sipPort, {
      from: "sip:bob@example.org",
      to: "sip:alice@example.org",
      body: "Lunch?",
    });
    assert.equal(lunch.status, 200);
    await alice.waitFor((e) => e.event === "message" && e.body === "Lunch?");
    alice.send({ op: "message", to: `+442071234568@${gw}`, body: "Yes, 12:30", id: "m-1" });
    // The proxy challenges it (407); the bridge answers with its digest credentials (sip.auth).
    const out = await proxy.waitFor((m) => m.method === "MESSAGE");
    assert.equal(out.startLine, "MESSAGE sip:bob@example.org SIP/2.0");
    await proxy.send(
      buildResponse(out, 407, "Proxy Authentication Required", {
        "Proxy-Authenticate": 'Digest realm="example.org", nonce="n0nce-1", algorithm=MD5, qop="auth"',
      }),
      out.from.port,
      out.from.address,
    );
    const signed = await proxy.waitFor((m) => m.method === "MESSAGE" && header(m, "cseq") === "2 MESSAGE");
    const digestResponse = /response="([0-9a-f]+)"/.exec(header(signed, "proxy-authorization") ?? "")?.[1];
    assert.ok(digestResponse, "the bridge answered the challenge");
    await proxy.send(buildResponse(signed, 200, "OK"), signed.from.port, signed.from.address);

    const after = await until("the counters to move", async () => {
      const now = await scrape();
      const moved =
        sampleValue(now, "switchboard_messages_total", { direction: "xmpp-to-sip", outcome: "delivered" }) >
        sampleValue(before, "switchboard_messages_total", { direction: "xmpp-to-sip", outcome: "delivered" });
      return moved ? now : undefined;
    });
    const delta = (name: string, labels: Record<string, string> = {}): number =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);
    assert.equal(delta("switchboard_messages_total", { direction: "sip-to-xmpp", outcome: "accepted" }), 1);
    assert.equal(delta("switchboard_messages_total", { direction: "xmpp-to-sip", outcome: "delivered" }), 1);
    assert.equal(delta("switchboard_message_relay_seconds_count", { direction: "sip-to-xmpp" }), 1);
    assert.equal(delta("switchboard_message_relay_seconds_count", { direction: "xmpp-to-sip" }), 1);
    assert.equal(delta("switchboard_sip_requests_answered_total", { method: "MESSAGE", code: "200" }), 1);
    assert.equal(delta("switchboard_sip_requests_sent_total", { method: "MESSAGE", code: "200" }), 1);
    assert.ok(delta("switchboard_xmpp_stanzas_sent_total", { name: "message" }) >= 1);
    assert.ok(delta("switchboard_xmpp_stanzas_received_total", { name: "message" }) >= 1);
    assert.ok(delta("switchboard_presence_updates_total", { source: "xmpp" }) >= 1);
    assert.ok(delta("switchboard_lookup_seconds_count", { step: "config", outcome: "found" }) >= 1);

    // Prosody stops: /readyz says why with 503, and the connection gauge drops; back when it returns.
    await prosody.halt();
    const down = await until("/readyz to turn 503", async () => {
      const answer = await get(base, "/readyz");
      return answer.status === 503 ? answer : undefined;
    });
    assert.deepEqual(JSON.parse(down.body), { ready: false, reasons: ["xmpp component offline"] });
    assert.equal(sampleValue(await scrape(), "switchboard_connection_up", { component: "xmpp" }), 0);
    await prosody.resume();
    await until(
      "/readyz to be 200 again",
      async () => ((await get(base, "/readyz")).status === 200 ? true : undefined),
      15_000,
    );
    await alice.close();
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    const onlineCount = lines.entries.filter((l) => l.msg === "xmpp component online").length;

    // SIGHUP with a new directory entry, a new log level, another allowed domain, and a change that
    // needs a restart: the first three apply at once, the last is named, the component stays up.
    writeFileSync(
      file,
      stringify({
        ...config,
        sip: { ...config.sip, listen: [`udp:127.0.0.1:${sipPort}`, `tcp:127.0.0.1:${sipPort}`] },
        xmpp: { ...config.xmpp, allowedDomains: ["example.net"] },
        log: { ...config.log, level: "debug" },
        directory: {
          users: [
            ...config.directory.users,
            { uid: "dave", displayName: "Dave Dent", numbers: ["+442071234569"] },
          ],
        },
      }),
    );
    // A watcher from example.net is refused before the reload...
    const watcher = await UdpSipSocket.open();
    sockets.push(watcher);
    watcher.autoAnswer(["NOTIFY"]);
    const subscribe = (callId: string): Promise<void> =>
      watcher.send(
        buildRequest({
          method: "SUBSCRIBE",
          uri: "sip:alice@example.org",
          via: `UDP 127.0.0.1:${watcher.port}`,
          from: "<sip:erin@example.net>",
          to: "<sip:alice@example.org>",
          callId,
          headers: { Event: "presence", Expires: "60", Contact: `<sip:erin@127.0.0.1:${watcher.port}>` },
        }),
        sipPort,
      );
    const answerTo = (callId: string): Promise<RawSipMessage> =>
      watcher.waitFor((m) => m.status !== undefined && header(m, "call-id") === callId);
    await subscribe("watch-1");
    assert.equal((await answerTo("watch-1")).status, 403);
    const reloadedAt = lines.entries.length;
    bridge.signal("SIGHUP");
    const reloaded = await lines.waitFor((l) => l.msg === "config reloaded", 5_000);
    assert.deepEqual(reloaded.applied, ["directory.users", "log.level", "xmpp.allowedDomains"]);
    const restart = await lines.waitFor(
      (l) => l.msg === "config changes that need a restart were not applied",
    );
    assert.deepEqual(restart.keys, ["sip.listen"]);
    const vcard = await alice.query({ op: "iq", to: `dave@${gw}`, payload: "<vCard xmlns='vcard-temp'/>" });
    assert.match(vcard.xml ?? "", /<FN>Dave Dent<\/FN>/, "the new directory entry answers at once");
    // ...and accepted after it (xmpp.allowedDomains applies to the SIP watchers too).
    await subscribe("watch-2");
    assert.equal((await answerTo("watch-2")).status, 200);
    // The new level: a stray SIP response is a debug line now.
    await phone.send(
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstray\r\nFrom: <sip:x@y>;tag=1\r\n" +
        "To: <sip:x@y>\r\nCall-ID: stray\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
      sipPort,
    );
    await lines.waitFor(
      (l) => l.msg === "sip: response without a client transaction dropped" && l.level === 20,
    );
    assert.ok(
      lines.entries.slice(0, reloadedAt).every((l) => l.level !== 20),
      "no debug line before the reload",
    );

    // An invalid file is refused with the key path; the running config stays (Dave still known).
    writeFileSync(file, stringify({ ...config, http: { listen: "nowhere" } }));
    bridge.signal("SIGHUP");
    const refused = await lines.waitFor((l) => l.msg === "config reload refused: the running config stays");
    assert.match(String(refused.reason), /http\.listen/);
    const still = await alice.query({ op: "iq", to: `dave@${gw}`, payload: "<vCard xmlns='vcard-temp'/>" });
    assert.match(still.xml ?? "", /<FN>Dave Dent<\/FN>/);
    assert.equal(
      lines.entries.filter((l) => l.msg === "xmpp component online").length,
      onlineCount,
      "the component was never reconnected by the reloads",
    );

    // SIGTERM while Alice's message to Bob is in flight (the proxy has not answered): the bridge
    // refuses new SIP requests with 503, waits for the answer, sends Alice her receipt, exits 0.
    alice.send({ op: "message", to: `bob@${gw}`, body: "Leaving now", id: "m-2", receipt: true });
    const inFlight = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === "Leaving now");
    const exit = bridge.stop("SIGTERM", 20_000);
    await lines.waitFor((l) => l.msg === "stopping");
    const late = await sendSipMessage(phone, sipPort, {
      from: "sip:bob@example.org",
      to: "sip:alice@example.org",
      body: "too late",
    });
    assert.equal(late.status, 503);
    assert.equal(header(late, "retry-after"), "5");
    const stopping = await get(base, "/readyz");
    assert.equal(stopping.status, 503, "not ready while stopping");
    assert.ok((JSON.parse(stopping.body) as { reasons: string[] }).reasons.includes("shutting down"));
    await proxy.send(buildResponse(inFlight, 200, "OK"), inFlight.from.port, inFlight.from.address);
    await alice.waitFor(
      (e) =>
        e.event === "message" && (e.xml ?? "").includes('id="m-2"') && (e.xml ?? "").includes("<received"),
    );
    assert.equal(await exit, 0, `exit code (stderr: ${bridge.stderr})`);

    // No secret anywhere in the log, wire tracing included.
    const text = lines.entries.map((l: LogLine) => JSON.stringify(l)).join("\n") + bridge.stderr;
    assert.ok(
      lines.entries.some((l) => l.msg === "sip wire"),
      "SIP wire tracing was on",
    );
    assert.ok(
      lines.entries.some((l) => l.msg === "xmpp wire"),
      "XMPP wire tracing was on",
    );
    assert.ok(text.includes("Proxy-Authorization: Digest"), "the authenticated request was traced");
    for (const secret of [grant.secret, SIP_PASSWORD, digestResponse]) {
      assert.ok(!text.includes(secret), `the log does not contain ${secret.slice(0, 3)}…`);
    }
  });
});
