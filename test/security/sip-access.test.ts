// Who gets in over SIP, and what is written down when someone does not: per-source rate limiting
// (503 + Retry-After), scanners dropped unanswered, failed authentication logged as security events
// (source, account, reason; never the password), TLS 1.2 at least, and client certificates for
// trusted peers over TLS (sip.tls.clientCa).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer as createTlsServer } from "node:tls";
import { rateLimitKey, type SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { noMetrics, type Metrics } from "../../src/ports/metrics.js";
import { digestAnswer } from "../harness/digest.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import {
  buildRequest,
  header,
  TcpSipSocket,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";
import { testCertificate, type TestCertificate } from "../harness/tls.js";
import { clientFrame, RawWebSocket } from "../harness/ws-socket.js";

let n = 0;
function request(
  method: "OPTIONS" | "MESSAGE",
  via: string,
  options: { headers?: Record<string, string>; callId?: string; cseq?: number } = {},
): { text: string; callId: string } {
  const callId = options.callId ?? `access-${++n}@test`;
  const text = buildRequest({
    method,
    uri: "sip:alice@example.org",
    via,
    from: "<sip:bob@example.org>",
    to: "<sip:alice@example.org>",
    callId,
    cseq: options.cseq ?? 1,
    headers: method === "MESSAGE" ? { "Content-Type": "text/plain", ...options.headers } : options.headers,
    body: method === "MESSAGE" ? "hello" : undefined,
  });
  return { text, callId };
}

const finalFor =
  (callId: string, cseq?: number) =>
  (m: RawSipMessage): boolean =>
    m.status !== undefined &&
    m.status >= 200 &&
    header(m, "call-id") === callId &&
    (cseq === undefined || header(m, "cseq")?.startsWith(`${cseq} `) === true);

/** Security events counted through the metrics port. */
function countingMetrics(): Metrics & { events: string[] } {
  const events: string[] = [];
  return { ...noMetrics, events, securityEvent: (event) => events.push(event) };
}

const securityLines = (lines: LogLine[], event?: string): LogLine[] =>
  lines.filter((l) => "security" in l.fields && (event === undefined || l.fields.security === event));

describe("SIP access: rate limits, scanners, the security log, TLS versions and client certificates", function () {
  const opened: { stop(): Promise<void> }[] = [];
  const sockets: { close(): unknown }[] = [];
  afterEach(async function () {
    for (const socket of sockets.splice(0)) await socket.close();
    await Promise.all(opened.splice(0).map((e) => e.stop()));
  });

  async function endpointWith(options: Parameters<typeof startSipEndpoint>[0]): Promise<{
    endpoint: SipEndpoint;
    port: number;
    lines: LogLine[];
    metrics: ReturnType<typeof countingMetrics>;
  }> {
    const lines: LogLine[] = [];
    const metrics = countingMetrics();
    const started = await startSipEndpoint({ log: memoryLogger(lines), metrics, ...options });
    opened.push(started.endpoint);
    return { ...started, lines, metrics };
  }

  async function udp(host?: string): Promise<UdpSipSocket> {
    const socket = await UdpSipSocket.open(0, host);
    sockets.push(socket);
    return socket;
  }

  it("answers 503 with Retry-After beyond a source's rate, per source address, and logs it once per burst", async function () {
    const { port, lines, metrics } = await endpointWith({
      trustedPeers: ["192.0.2.1/32"],
      rateLimit: { perSecond: 2, burst: 5, trustedPeers: false },
    });
    const first = await udp("127.0.0.1");
    const statuses: number[] = [];
    let retryAfter = "";
    for (let i = 0; i < 12; i++) {
      const { text, callId } = request("OPTIONS", `UDP 127.0.0.1:${first.port}`);
      await first.send(text, port);
      const answer = await first.waitFor(finalFor(callId));
      statuses.push(answer.status ?? 0);
      if (answer.status === 503) retryAfter = header(answer, "retry-after") ?? "";
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 503, 503, 503, 503, 503, 503, 503]);
    assert.match(retryAfter, /^[1-9]\d*$/);

    // A retransmission of a refused request is answered the same, not counted again.
    const { text: again, callId: againId } = request("OPTIONS", `UDP 127.0.0.1:${first.port}`);
    await first.send(again, port);
    assert.equal((await first.waitFor(finalFor(againId))).status, 503);
    await first.send(again, port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(first.received.filter((m) => header(m, "call-id") === againId).length, 2);

    // Another source address has its own bucket.
    const second = await udp("127.0.0.2");
    const { text, callId } = request("OPTIONS", `UDP 127.0.0.2:${second.port}`);
    await second.send(text, port);
    assert.equal((await second.waitFor(finalFor(callId))).status, 200);

    // Every refusal is counted; the log has one line for the burst, naming the source.
    assert.equal(metrics.events.filter((e) => e === "RateLimited").length, 8);
    const logged = securityLines(lines, "RateLimited");
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.level, "warn");
    assert.match(String(logged[0]?.fields.remote), /^127\.0\.0\.1:\d+$/);

    // After Retry-After, the source is served again.
    await new Promise((resolve) => setTimeout(resolve, Number(retryAfter) * 1000));
    const later = request("OPTIONS", `UDP 127.0.0.1:${first.port}`);
    await first.send(later.text, port);
    assert.equal((await first.waitFor(finalFor(later.callId))).status, 200);
  });

  it("does not limit trusted peers unless told to", async function () {
    const exempt = await endpointWith({ rateLimit: { perSecond: 1, burst: 2, trustedPeers: false } });
    const limited = await endpointWith({ rateLimit: { perSecond: 1, burst: 2, trustedPeers: true } });
    const socket = await udp();
    const run = async (port: number): Promise<number[]> => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const { text, callId } = request("OPTIONS", `UDP 127.0.0.1:${socket.port}`);
        await socket.send(text, port);
        statuses.push((await socket.waitFor(finalFor(callId))).status ?? 0);
      }
      return statuses;
    };
    assert.deepEqual(await run(exempt.port), [200, 200, 200, 200, 200, 200]);
    assert.deepEqual(await run(limited.port), [200, 200, 503, 503, 503, 503]);
  });

  it("drops scanners without an answer and logs them as ScannerDropped", async function () {
    const { port, lines, metrics } = await endpointWith({});
    const socket = await udp();
    const scan = request("OPTIONS", `UDP 127.0.0.1:${socket.port}`, {
      headers: { "User-Agent": "friendly-scanner" },
    });
    await socket.send(scan.text, port);
    // A normal request after it is answered, so the scan has been handled by then.
    const normal = request("OPTIONS", `UDP 127.0.0.1:${socket.port}`);
    await socket.send(normal.text, port);
    assert.equal((await socket.waitFor(finalFor(normal.callId))).status, 200);
    assert.equal(socket.received.filter((m) => header(m, "call-id") === scan.callId).length, 0);
    assert.deepEqual(metrics.events, ["ScannerDropped"]);
    const [line] = securityLines(lines, "ScannerDropped");
    assert.match(String(line?.fields.reason), /friendly-scanner/);
  });

  it("logs failed authentication as security events with source, account and reason, never the password", async function () {
    const { port, lines, metrics } = await endpointWith({
      trustedPeers: ["192.0.2.1/32"],
      users: [{ username: "bob", password: "s3cret-pw" }],
    });
    const socket = await udp();
    const via = `UDP 127.0.0.1:${socket.port}`;
    const challenge = async (): Promise<string> => {
      const { text, callId } = request("MESSAGE", via);
      await socket.send(text, port);
      const answer = await socket.waitFor(finalFor(callId));
      assert.equal(answer.status, 401);
      return answer.headers.get("www-authenticate")?.find((c) => /MD5/.test(c)) ?? "";
    };
    const attempt = async (
      username: string,
      password: string,
      nc = "00000001",
      wwwAuthenticate?: string,
    ): Promise<number> => {
      const authorization = digestAnswer(wwwAuthenticate ?? (await challenge()), {
        username,
        password,
        method: "MESSAGE",
        uri: "sip:alice@example.org",
        nc,
        cnonce: "c0ffee",
      });
      const { text, callId } = request("MESSAGE", via, { headers: { Authorization: authorization } });
      await socket.send(text, port);
      return (await socket.waitFor(finalFor(callId))).status ?? 0;
    };

    assert.equal(await attempt("mallory", "guess"), 401);
    assert.equal(await attempt("bob", "wrong-pw"), 401);
    const nonce = await challenge();
    assert.equal(await attempt("bob", "s3cret-pw", "00000001", nonce), 200);
    assert.equal(await attempt("bob", "s3cret-pw", "00000001", nonce), 401); // the same count again

    assert.deepEqual(metrics.events, ["InvalidAccountID", "ChallengeResponseFailed", "NonceReplayed"]);
    const events = securityLines(lines);
    assert.deepEqual(
      events.map((l) => [l.fields.security, l.fields.account]),
      [
        ["InvalidAccountID", "mallory"],
        ["ChallengeResponseFailed", "bob"],
        ["NonceReplayed", "bob"],
      ],
    );
    for (const line of events) {
      assert.match(String(line.fields.remote), new RegExp(`^127\\.0\\.0\\.1:${socket.port}$`));
      assert.equal(line.fields.transport, "udp");
      assert.ok(String(line.fields.reason).length > 0);
    }
    const everything = JSON.stringify(lines);
    assert.ok(!everything.includes("s3cret-pw") && !everything.includes("wrong-pw"), "a password was logged");
  });

  it("logs FailedACL for an untrusted peer when no SIP users are configured", async function () {
    const { port, lines } = await endpointWith({ trustedPeers: ["192.0.2.1/32"] });
    const socket = await udp();
    const { text, callId } = request("MESSAGE", `UDP 127.0.0.1:${socket.port}`);
    await socket.send(text, port);
    assert.equal((await socket.waitFor(finalFor(callId))).status, 403);
    assert.equal(securityLines(lines, "FailedACL").length, 1);
  });

  describe("over TLS", function () {
    let server: TestCertificate;
    let peer: TestCertificate;
    let stranger: TestCertificate;
    before(function () {
      server = testCertificate();
      peer = testCertificate(["DNS:proxy.example.org"]);
      stranger = testCertificate(["DNS:stranger.example.org"]);
    });
    after(function () {
      for (const cert of [server, peer, stranger]) cert?.dir.remove();
    });

    async function tlsEndpoint(
      extra: { clientCa?: string } = {},
      rateLimit?: { perSecond: number; burst: number; trustedPeers: boolean },
    ) {
      const started = await endpointWith({
        listen: ["udp:127.0.0.1:0", "tls:127.0.0.1:0"],
        tls: { cert: server.cert, key: server.key, ...extra },
        users: [{ username: "bob", password: "s3cret-pw" }],
        ...(rateLimit ? { rateLimit } : {}),
      });
      const tlsPort = started.endpoint.transports.addresses().find((a) => a.transport === "tls")?.port ?? 0;
      return { ...started, tlsPort };
    }

    it("refuses clients that offer nothing newer than TLS 1.1", async function () {
      const { tlsPort } = await tlsEndpoint();
      const old = {
        minVersion: "TLSv1" as const,
        maxVersion: "TLSv1.1" as const,
        ciphers: "DEFAULT@SECLEVEL=0",
      };
      // The same client settings do connect to a server that allows TLS 1.0/1.1: so the refusal below
      // is the endpoint's minimum version, not this client's inability.
      const lenient = createTlsServer({
        cert: server.pem,
        key: readFileSync(server.key),
        minVersion: "TLSv1",
        ciphers: "DEFAULT@SECLEVEL=0",
      });
      await new Promise<void>((resolve) => lenient.listen(0, "127.0.0.1", () => resolve()));
      try {
        const address = lenient.address();
        const lenientPort = typeof address === "object" && address ? address.port : 0;
        const ok = await TcpSipSocket.connectTls(lenientPort, server.pem, "127.0.0.1", old);
        ok.close();
      } finally {
        lenient.close();
      }
      await assert.rejects(
        TcpSipSocket.connectTls(tlsPort, server.pem, "127.0.0.1", old),
        /version|protocol|handshake|alert/i,
      );
      const modern = await TcpSipSocket.connectTls(tlsPort, server.pem, "127.0.0.1", {
        minVersion: "TLSv1.2",
      });
      modern.close();
    });

    it("trusts a trusted address over TLS only with a client certificate from sip.tls.clientCa", async function () {
      const { tlsPort, port, lines, metrics } = await tlsEndpoint({ clientCa: peer.cert });
      const send = async (socket: TcpSipSocket): Promise<number> => {
        const { text, callId } = request("MESSAGE", `TLS 127.0.0.1:${socket.localPort}`);
        await socket.send(text);
        return (await socket.waitFor(finalFor(callId))).status ?? 0;
      };
      // The proxy's certificate: trusted, served without a challenge.
      const proxy = await TcpSipSocket.connectTls(tlsPort, server.pem, "127.0.0.1", {
        cert: peer.pem,
        key: readFileSync(peer.key),
      });
      assert.equal(await send(proxy), 200);
      proxy.close();
      // No certificate, or one from elsewhere: treated as anyone else (digest challenge), and logged.
      const bare = await TcpSipSocket.connectTls(tlsPort, server.pem, "127.0.0.1");
      assert.equal(await send(bare), 401);
      bare.close();
      const other = await TcpSipSocket.connectTls(tlsPort, server.pem, "127.0.0.1", {
        cert: stranger.pem,
        key: readFileSync(stranger.key),
      });
      assert.equal(await send(other), 401);
      other.close();
      assert.deepEqual(metrics.events, ["FailedACL", "FailedACL"]);
      assert.match(String(securityLines(lines, "FailedACL")[0]?.fields.reason), /client certificate/);
      // Over UDP the address alone still decides (client certificates are a TLS matter).
      const socket = await udp();
      const { text, callId } = request("MESSAGE", `UDP 127.0.0.1:${socket.port}`);
      await socket.send(text, port);
      assert.equal((await socket.waitFor(finalFor(callId))).status, 200);
    });

    it("applies the same TLS minimum and client certificates to wss:", async function () {
      const started = await endpointWith({
        listen: ["wss:127.0.0.1:0"],
        tls: { cert: server.cert, key: server.key, clientCa: peer.cert },
        users: [{ username: "bob", password: "s3cret-pw" }],
      });
      const wssPort = started.endpoint.transports.addresses().find((a) => a.transport === "wss")?.port ?? 0;
      const old = {
        minVersion: "TLSv1" as const,
        maxVersion: "TLSv1.1" as const,
        ciphers: "DEFAULT@SECLEVEL=0",
      };
      await assert.rejects(
        RawWebSocket.open(wssPort, { tls: { ca: server.pem, ...old } }),
        /version|protocol|handshake|alert|socket/i,
      );
      const send = async (ws: RawWebSocket): Promise<number> => {
        const { text, callId } = request("MESSAGE", "WSS df7jal23ls0d.invalid");
        await ws.write(clientFrame(text));
        return (await ws.waitFor(finalFor(callId))).status ?? 0;
      };
      const proxy = await RawWebSocket.open(wssPort, {
        tls: { ca: server.pem, cert: peer.pem, key: readFileSync(peer.key) },
      });
      const bare = await RawWebSocket.open(wssPort, { tls: { ca: server.pem } });
      try {
        assert.equal(await send(proxy), 200, "with the peer's certificate: trusted");
        assert.equal(await send(bare), 401, "without one: challenged");
      } finally {
        proxy.close();
        bare.close();
      }
      assert.deepEqual(started.metrics.events, ["FailedACL"]);
    });

    it("rate limits a trusted address over TLS without its client certificate, as anyone else", async function () {
      const { tlsPort } = await tlsEndpoint(
        { clientCa: peer.cert },
        { perSecond: 1, burst: 2, trustedPeers: false },
      );
      const send = async (socket: TcpSipSocket): Promise<number> => {
        const { text, callId } = request("OPTIONS", `TLS 127.0.0.1:${socket.localPort}`);
        await socket.send(text);
        return (await socket.waitFor(finalFor(callId))).status ?? 0;
      };
      const bare = await TcpSipSocket.connectTls(tlsPort, server.pem, "127.0.0.1");
      const statuses = [await send(bare), await send(bare), await send(bare)];
      bare.close();
      assert.deepEqual(statuses, [200, 200, 503]);
      // With the certificate: trusted, not limited.
      const proxy = await TcpSipSocket.connectTls(tlsPort, server.pem, "127.0.0.1", {
        cert: peer.pem,
        key: readFileSync(peer.key),
      });
      const trusted = [await send(proxy), await send(proxy), await send(proxy), await send(proxy)];
      proxy.close();
      assert.deepEqual(trusted, [200, 200, 200, 200]);
    });
  });
});

describe("rateLimitKey", function () {
  it("is the address for IPv4 (also IPv4-mapped IPv6) and the /64 for IPv6", function () {
    assert.equal(rateLimitKey("203.0.113.7"), "203.0.113.7");
    assert.equal(rateLimitKey("::ffff:203.0.113.7"), "203.0.113.7");
    assert.equal(rateLimitKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    assert.equal(rateLimitKey("2001:db8:1:2::99"), "2001:db8:1:2::/64");
    assert.equal(rateLimitKey("2001:DB8:0001:0002:ffff::1"), "2001:db8:1:2::/64");
    assert.equal(rateLimitKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(rateLimitKey("::1"), "0:0:0:0::/64");
  });
});
