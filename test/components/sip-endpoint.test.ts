// The SIP endpoint against raw sockets and independent user agents (sipsak, baresip): MESSAGE in,
// retransmissions absorbed, OPTIONS, final answers for everything else, TCP framing.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { ConfigDirectory } from "../../src/directory/config-directory.js";
import { XmppSideRecorder } from "../harness/message-recorder.js";
import { memoryLogger } from "../harness/memory-logger.js";
import { Baresip, sipsak } from "../harness/sip-clients.js";
import {
  buildRequest,
  buildResponse,
  header,
  TcpSipSocket,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";

const harnessResponse = (request: RawSipMessage, status: number): string =>
  buildResponse(request, status, status < 300 ? "OK" : "Refused");

const T1 = 50; // shortened for the timer tests; the default is 500 ms

describe("SIP endpoint: MESSAGE in, OPTIONS, final answers (raw sockets, sipsak, baresip)", function () {
  let endpoint: SipEndpoint;
  let udpPort: number;
  let tcpPort: number;
  let socket: UdpSipSocket;
  const xmpp = new XmppSideRecorder();
  const log = memoryLogger();

  before(async function () {
    endpoint = await SipEndpoint.start({
      listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
      domains: { homeDomain: "example.org", gatewayDomain: "sip.example.org" },
      directory: new ConfigDirectory(
        [{ uid: "alice", displayName: "Alice", extension: "8001", numbers: ["+44 20 7123 4567"] }],
        "example.org",
      ),
      toXmpp: xmpp,
      trustedPeers: ["127.0.0.1/32"],
      maxMessageBytes: 1024,
      timers: { t1: T1, t2: 8 * T1, t4: 5 * T1 },
      log,
    });
    const addresses = endpoint.transports.addresses();
    udpPort = addresses.find((a) => a.transport === "udp")?.port ?? 0;
    tcpPort = addresses.find((a) => a.transport === "tcp")?.port ?? 0;
    socket = await UdpSipSocket.open();
  });
  after(async function () {
    await socket?.close();
    await endpoint?.stop();
  });

  let n = 0;
  function request(
    method: string,
    options: { uri?: string; headers?: Record<string, string>; body?: string; via?: string } = {},
  ): {
    text: string;
    callId: string;
  } {
    const callId = `call-${++n}@127.0.0.1`;
    const text = buildRequest({
      method,
      uri: options.uri ?? "sip:alice@example.org",
      via: options.via ?? `UDP 127.0.0.1:${socket.port}`,
      from: "<sip:bob@example.org>",
      to: "<sip:alice@example.org>",
      callId,
      headers: options.headers,
      body: options.body,
    });
    return { text, callId };
  }
  const answerTo = (callId: string) => (m: RawSipMessage) =>
    m.status !== undefined && header(m, "call-id") === callId;

  it("hands a MESSAGE to the XMPP side once, however often it is retransmitted, and re-sends the 200", async function () {
    const { text, callId } = request("MESSAGE", {
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: "Grüße ✓",
    });
    await socket.send(text, udpPort);
    const first = await socket.waitFor(answerTo(callId));
    assert.equal(first.status, 200);
    assert.match(header(first, "via") ?? "", /;rport=\d+/);
    assert.match(header(first, "via") ?? "", /;received=127\.0\.0\.1/);
    assert.match(header(first, "to") ?? "", /;tag=/);
    await socket.send(text, udpPort); // the same branch: a retransmission
    await socket.waitFor((m) => answerTo(callId)(m) && socket.received.filter(answerTo(callId)).length >= 2);
    await sleep(50);
    const delivered = xmpp.received.filter((m) => m.id === callId);
    assert.deepEqual(delivered, [
      { id: callId, from: "bob@example.org", to: "alice@example.org", body: "Grüße ✓" },
    ]);
  });

  it("finds the chat user behind a number through the directory, and answers 404 for nobody", async function () {
    const byNumber = request("MESSAGE", {
      uri: "sip:+442071234567@example.org",
      headers: { "Content-Type": "text/plain" },
      body: "hi",
    });
    await socket.send(byNumber.text, udpPort);
    assert.equal((await socket.waitFor(answerTo(byNumber.callId))).status, 200);
    assert.equal(xmpp.received.find((m) => m.id === byNumber.callId)?.to, "alice@example.org");
    for (const uri of ["sip:+15550000000@example.org", "sip:bob@elsewhere.example"]) {
      const nobody = request("MESSAGE", { uri, headers: { "Content-Type": "text/plain" }, body: "hi" });
      await socket.send(nobody.text, udpPort);
      assert.equal((await socket.waitFor(answerTo(nobody.callId))).status, 404);
    }
  });

  it("answers 415 with Accept for other body types, 413 for a body too large, and the XMPP side's refusal as a status", async function () {
    const cpim = request("MESSAGE", { headers: { "Content-Type": "application/pidf+xml" }, body: "<x/>" });
    await socket.send(cpim.text, udpPort);
    const unsupported = await socket.waitFor(answerTo(cpim.callId));
    assert.equal(unsupported.status, 415);
    assert.equal(header(unsupported, "accept"), "text/plain, message/cpim, application/im-iscomposing+xml");

    const big = request("MESSAGE", { headers: { "Content-Type": "text/plain" }, body: "x".repeat(1025) });
    await socket.send(big.text, udpPort);
    assert.equal((await socket.waitFor(answerTo(big.callId))).status, 413);

    xmpp.failWith = "recipient-unavailable";
    try {
      const refused = request("MESSAGE", { headers: { "Content-Type": "text/plain" }, body: "hi" });
      await socket.send(refused.text, udpPort);
      assert.equal((await socket.waitFor(answerTo(refused.callId))).status, 480);
    } finally {
      xmpp.failWith = null;
    }
  });

  it("answers OPTIONS with 200 and Allow, other methods with 405 and Allow", async function () {
    const options = request("OPTIONS");
    await socket.send(options.text, udpPort);
    const ok = await socket.waitFor(answerTo(options.callId));
    assert.equal(ok.status, 200);
    assert.equal(header(ok, "allow"), "MESSAGE, OPTIONS");
    for (const method of ["PUBLISH", "SUBSCRIBE", "REGISTER", "FOO"]) {
      const other = request(method);
      await socket.send(other.text, udpPort);
      const answer = await socket.waitFor(answerTo(other.callId));
      assert.equal(answer.status, 405, method);
      assert.equal(header(answer, "allow"), "MESSAGE, OPTIONS");
    }
  });

  it("answers INVITE 405 and retransmits it (Timer G) until the ACK", async function () {
    const invite = request("INVITE", { headers: { "Content-Type": "application/sdp" }, body: "v=0\r\n" });
    await socket.send(invite.text, udpPort);
    await socket.waitFor(answerTo(invite.callId));
    // T1, 2·T1, 4·T1 ... : within 5·T1 the answer came again at least twice (T1 = 50 ms here).
    await sleep(5 * T1);
    const before = socket.received.filter(answerTo(invite.callId)).length;
    assert.ok(before >= 3, `${before} copies of the 405 before the ACK`);
    const branch = /branch=([^;\r\n]+)/.exec(invite.text)?.[1] ?? "";
    const ack = [
      "ACK sip:alice@example.org SIP/2.0",
      `Via: SIP/2.0/UDP 127.0.0.1:${socket.port};branch=${branch};rport`,
      "Max-Forwards: 70",
      `From: ${/^From: (.*)$/m.exec(invite.text)?.[1] ?? ""}`,
      `To: <sip:alice@example.org>;tag=${/;tag=([^;\s]+)/.exec(header(socket.received.find(answerTo(invite.callId)) as RawSipMessage, "to") ?? "")?.[1] ?? ""}`,
      `Call-ID: ${invite.callId}`,
      "CSeq: 1 ACK",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    await socket.send(ack, udpPort);
    await sleep(T1);
    const atAck = socket.received.filter(answerTo(invite.callId)).length;
    await sleep(10 * T1);
    assert.equal(
      socket.received.filter(answerTo(invite.callId)).length,
      atAck,
      "no retransmission after the ACK",
    );
  });

  it("answers 400 to a request without Call-ID, and drops scanners", async function () {
    const broken = request("MESSAGE", { headers: { "Content-Type": "text/plain" }, body: "x" });
    await socket.send(broken.text.replace(/^Call-ID: .*\r\n/m, ""), udpPort);
    const bad = await socket.waitFor((m) => m.status === 400);
    assert.match(bad.startLine, /^SIP\/2\.0 400 Missing Call-ID/);

    const scan = request("OPTIONS", { headers: { "User-Agent": "friendly-scanner" } });
    await socket.send(scan.text, udpPort);
    await sleep(200);
    assert.ok(!socket.received.some(answerTo(scan.callId)));
  });

  it("frames TCP: two messages in one read and one message split across reads", async function () {
    const tcp = await TcpSipSocket.connect(tcpPort);
    try {
      const via = `TCP 127.0.0.1:${tcp.localPort}`;
      const a = request("MESSAGE", { via, headers: { "Content-Type": "text/plain" }, body: "één" });
      const b = request("MESSAGE", { via, headers: { "Content-Type": "text/plain" }, body: "two" });
      await tcp.send(a.text + b.text);
      assert.equal((await tcp.waitFor(answerTo(a.callId))).status, 200);
      assert.equal((await tcp.waitFor(answerTo(b.callId))).status, 200);
      const c = request("MESSAGE", { via, headers: { "Content-Type": "text/plain" }, body: "split ✓" });
      // Split inside the body's last character ("✓" is three UTF-8 bytes): framing counts bytes.
      const bytes = Buffer.from(c.text, "utf8");
      await tcp.sendBytes(bytes.subarray(0, bytes.length - 2));
      await sleep(50);
      await tcp.sendBytes(bytes.subarray(bytes.length - 2));
      assert.equal((await tcp.waitFor(answerTo(c.callId))).status, 200);
      assert.equal(xmpp.received.find((m) => m.id === a.callId)?.body, "één");
      assert.equal(xmpp.received.find((m) => m.id === c.callId)?.body, "split ✓");
    } finally {
      tcp.close();
    }
  });

  it("sipsak's MESSAGE gets 200", async function () {
    const { text } = request("MESSAGE", { headers: { "Content-Type": "text/plain" }, body: "from sipsak" });
    const result = await sipsak({ target: `sip:alice@127.0.0.1:${udpPort}`, request: text });
    // sipsak sends the template as written (Request-URI sip:alice@example.org) to -s's address.
    assert.equal(result.exitCode, 0, result.output);
    assert.equal(result.response?.status, 200);
  });

  it("baresip's MESSAGE reaches the XMPP side", async function () {
    const baresip = await Baresip.start({
      user: "bob",
      contacts: ["sip:alice@example.org"],
      outbound: `sip:127.0.0.1:${udpPort};lr`,
    });
    try {
      await baresip.message("hello from baresip");
      for (let i = 0; i < 40 && !xmpp.received.some((m) => m.body === "hello from baresip"); i++)
        await sleep(50);
      const got = xmpp.received.find((m) => m.body === "hello from baresip");
      assert.ok(got, `not delivered; log: ${JSON.stringify(log.lines.slice(-5))}`);
      assert.equal(got.to, "alice@example.org");
    } finally {
      await baresip.stop();
    }
  });

  it("refuses peers that are not trusted with 403", async function () {
    const strict = await SipEndpoint.start({
      listen: ["udp:127.0.0.1:0"],
      domains: { homeDomain: "example.org", gatewayDomain: "sip.example.org" },
      directory: new ConfigDirectory([], "example.org"),
      toXmpp: xmpp,
      trustedPeers: ["10.0.0.0/8"],
      maxMessageBytes: 1024,
      log: memoryLogger(),
    });
    try {
      const port = strict.transports.addresses()[0]?.port ?? 0;
      const { text, callId } = request("MESSAGE", {
        headers: { "Content-Type": "text/plain" },
        body: "let me in",
      });
      await socket.send(text, port);
      assert.equal((await socket.waitFor(answerTo(callId))).status, 403);
      assert.ok(!xmpp.received.some((m) => m.id === callId));
    } finally {
      await strict.stop();
    }
  });
});

describe("SIP endpoint: MESSAGE out (client transactions, Timers E and F)", function () {
  let endpoint: SipEndpoint;
  let proxy: UdpSipSocket;
  let sipPort: number;
  const log = memoryLogger();

  before(async function () {
    proxy = await UdpSipSocket.open();
    endpoint = await SipEndpoint.start({
      listen: ["udp:127.0.0.1:0"],
      domains: { homeDomain: "example.org", gatewayDomain: "sip.example.org" },
      directory: new ConfigDirectory(
        [{ uid: "bob", displayName: "Bob", extension: "8002", numbers: [] }],
        "example.org",
      ),
      toXmpp: new XmppSideRecorder(),
      trustedPeers: ["127.0.0.1/32"],
      maxMessageBytes: 1024,
      outboundProxy: `sip:127.0.0.1:${proxy.port};lr`,
      timers: { t1: T1, t2: 8 * T1, t4: 5 * T1 },
      log,
    });
    sipPort = endpoint.transports.addresses()[0]?.port ?? 0;
  });
  after(async function () {
    await endpoint?.stop();
    await proxy?.close();
  });

  let n = 0;
  async function sendAndAnswer(
    to: string,
    status: number | null,
  ): Promise<{ outcome: Promise<string>; request: RawSipMessage }> {
    const id = `x${++n}`;
    const outcome = endpoint.sendMessage({ id, from: "alice@example.org", to, body: `hello ${id} ✓` });
    outcome.catch(() => undefined); // inspected by the caller
    const request = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === `hello ${id} ✓`);
    if (status !== null)
      await proxy.send(harnessResponse(request, status), request.from.port, request.from.address);
    return { outcome, request };
  }

  it("sends through the outbound proxy with a Route, as UTF-8 text, and a 200 means delivered", async function () {
    const { outcome, request } = await sendAndAnswer("bob@example.org", 200);
    assert.equal(await outcome, "delivered");
    assert.equal(request.startLine, "MESSAGE sip:bob@example.org SIP/2.0");
    assert.equal(header(request, "route"), `<sip:127.0.0.1:${proxy.port};lr>`);
    assert.match(header(request, "from") ?? "", /^<sip:alice@example\.org>;tag=/);
    assert.equal(header(request, "content-type"), "text/plain;charset=UTF-8");
    assert.match(
      header(request, "via") ?? "",
      new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${sipPort};branch=z9hG4bK`),
    );
  });

  it("maps 202 to accepted and failures to conditions", async function () {
    assert.equal(await (await sendAndAnswer("bob@example.org", 202)).outcome, "accepted");
    await assert.rejects((await sendAndAnswer("bob@example.org", 480)).outcome, {
      condition: "recipient-unavailable",
    });
    await assert.rejects((await sendAndAnswer("bob@example.org", 404)).outcome, {
      condition: "item-not-found",
    });
  });

  it("addresses numbers through the directory, else as E.164 on the home domain", async function () {
    const byExtension = await sendAndAnswer("8002", 200);
    assert.equal(byExtension.request.startLine, "MESSAGE sip:bob@example.org SIP/2.0");
    const unknown = await sendAndAnswer("+15550000000", 200);
    assert.equal(unknown.request.startLine, "MESSAGE sip:+15550000000@example.org;user=phone SIP/2.0");
    await assert.rejects(
      endpoint.sendMessage({ id: "e", from: "alice@example.org", to: "8999", body: "x" }),
      {
        condition: "item-not-found",
      },
    );
  });

  it("retransmits to a silent far end at T1·2ⁿ capped at T2, and gives up with a timeout at 64·T1", async function () {
    const started = Date.now();
    const { outcome, request } = await sendAndAnswer("bob@example.org", null);
    await assert.rejects(outcome, { condition: "remote-server-timeout" });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 64 * T1 && elapsed < 64 * T1 + 1_000, `Timer F fired after ${elapsed} ms`);
    const copies = proxy.log.entries.filter((m) => m.method === "MESSAGE" && m.body === request.body);
    // 0, 50, 150, 350, 750, then every 400 ms (T2) until 3200: 1 + 4 + 6 = 11 sends, give or take one.
    assert.ok(copies.length >= 10 && copies.length <= 12, `${copies.length} sends`);
  });

  it("answers 482 when its own request comes back to it", async function () {
    const { request } = await sendAndAnswer("bob@example.org", 200);
    const probe = await UdpSipSocket.open();
    try {
      await probe.send(request.raw, sipPort); // the proxy routed it straight back
      const answer = await probe.waitFor((m) => m.status !== undefined);
      assert.equal(answer.status, 482);
    } finally {
      await probe.close();
    }
  });

  it("refuses a message too large for UDP with policy-violation", async function () {
    await assert.rejects(
      endpoint.sendMessage({
        id: "big",
        from: "alice@example.org",
        to: "bob@example.org",
        body: "x".repeat(1400),
      }),
      {
        condition: "policy-violation",
      },
    );
  });

  it("delivers to baresip directly when the target's host is an address", async function () {
    const direct = await SipEndpoint.start({
      listen: ["udp:127.0.0.1:0"],
      domains: { homeDomain: "example.org", gatewayDomain: "sip.example.org" },
      directory: new ConfigDirectory([], "example.org"),
      toXmpp: new XmppSideRecorder(),
      trustedPeers: ["127.0.0.1/32"],
      maxMessageBytes: 1024,
      log: memoryLogger(),
    });
    const baresip = await Baresip.start({ user: "bob" });
    try {
      const outcome = await direct.sendMessage({
        id: "b1",
        from: "alice@example.org",
        to: baresip.aor,
        body: "hello baresip ✓",
      });
      assert.equal(outcome, "delivered");
    } finally {
      await baresip.stop();
      await direct.stop();
    }
  });
});
