// SIP over TLS, WebSocket and secure WebSocket (RFC 7118) into the endpoint, and the bridge's own
// requests out over TCP and TLS: framing, the `sip` subprotocol, answers on the same connection,
// NOTIFYs over the connection the watcher opened, a message too large for UDP over TCP.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { DnsServer } from "../harness/dns.js";
import { XmppSideRecorder } from "../harness/message-recorder.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import {
  buildRequest,
  header,
  TcpSipServer,
  TcpSipSocket,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";
import { testCertificate, type TestCertificate } from "../harness/tls.js";
import { clientFrame, RawWebSocket } from "../harness/ws-socket.js";

let n = 0;
function message(via: string, body = "hello"): { text: string; callId: string } {
  const callId = `transport-${++n}@test`;
  const text = buildRequest({
    method: "MESSAGE",
    uri: "sip:alice@example.org",
    via,
    from: "<sip:bob@example.org>",
    to: "<sip:alice@example.org>",
    callId,
    cseq: 1,
    headers: { "Content-Type": "text/plain;charset=UTF-8" },
    body,
  });
  return { text, callId };
}
const answerTo =
  (callId: string) =>
  (m: RawSipMessage): boolean =>
    m.status !== undefined && header(m, "call-id") === callId;

describe("SIP transports: TLS, WebSocket (RFC 7118), and sending over TCP/TLS", function () {
  let cert: TestCertificate;
  let endpoint: SipEndpoint;
  const ports: Record<string, number> = {};
  const xmpp = new XmppSideRecorder();
  const presence = new PresenceService(new MemoryPresenceStore());

  before(async function () {
    cert = testCertificate();
    ({ endpoint } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0", "ws:127.0.0.1:0", "wss:127.0.0.1:0"],
      tls: { cert: cert.cert, key: cert.key, ca: cert.cert },
      toXmpp: xmpp,
      presence,
    }));
    for (const { transport, port } of endpoint.transports.addresses()) ports[transport] = port;
  });
  after(async function () {
    await endpoint?.stop();
    cert?.dir.remove();
  });

  it("takes a MESSAGE over TLS and answers on the same connection", async function () {
    const tls = await TcpSipSocket.connectTls(ports.tls ?? 0, cert.pem);
    try {
      const { text, callId } = message(`TLS 127.0.0.1:${tls.localPort}`, "über TLS");
      await tls.send(text);
      assert.equal((await tls.waitFor(answerTo(callId))).status, 200);
      assert.equal(xmpp.received.find((m) => m.id === callId)?.body, "über TLS");
    } finally {
      tls.close();
    }
  });

  it("refuses a TLS client that does not trust the certificate, and keeps serving", async function () {
    const other = testCertificate();
    try {
      await assert.rejects(TcpSipSocket.connectTls(ports.tls ?? 0, other.pem), /certificate|self.signed/i);
    } finally {
      other.dir.remove();
    }
    const tls = await TcpSipSocket.connectTls(ports.tls ?? 0, cert.pem);
    const { text, callId } = message(`TLS 127.0.0.1:${tls.localPort}`);
    await tls.send(text);
    assert.equal((await tls.waitFor(answerTo(callId))).status, 200);
    tls.close();
  });

  for (const transport of ["ws", "wss"] as const) {
    it(`frames ${transport}: the sip subprotocol, two messages in one write, one message split across writes`, async function () {
      const ws = await RawWebSocket.open(ports[transport] ?? 0, {
        protocols: ["foo", "sip"],
        ...(transport === "wss" ? { tls: { ca: cert.pem } } : {}),
      });
      try {
        assert.match(ws.handshake, /^HTTP\/1\.1 101/);
        assert.equal(ws.protocol, "sip");
        const via = `${transport.toUpperCase()} df7jal23ls0d.invalid`;
        const first = message(via, "eins");
        const second = message(via, "zwei");
        await ws.write(Buffer.concat([clientFrame(first.text), clientFrame(second.text)]));
        assert.equal((await ws.waitFor(answerTo(first.callId))).status, 200);
        assert.equal((await ws.waitFor(answerTo(second.callId))).status, 200);

        const third = message(via, "drei — in Stücken");
        const frame = clientFrame(third.text);
        for (const [from, to] of [
          [0, 1],
          [1, 9],
          [9, 60],
          [60, frame.length],
        ] as const) {
          await ws.write(frame.subarray(from, to));
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.equal((await ws.waitFor(answerTo(third.callId))).status, 200);
        assert.deepEqual(
          [first, second, third].map(({ callId }) => xmpp.received.find((m) => m.id === callId)?.body),
          ["eins", "zwei", "drei — in Stücken"],
        );
      } finally {
        ws.close();
      }
    });
  }

  it("refuses a WebSocket handshake without the sip subprotocol (RFC 7118 §4.1)", async function () {
    const ws = await RawWebSocket.open(ports.ws ?? 0, { protocols: ["chat"] });
    try {
      assert.doesNotMatch(ws.handshake, /^HTTP\/1\.1 101/);
      assert.match(ws.handshake, /^HTTP\/1\.1 4\d\d/);
    } finally {
      ws.close();
    }
  });

  it("NOTIFYs a WebSocket watcher over the connection it subscribed on", async function () {
    const ws = await RawWebSocket.open(ports.ws ?? 0);
    try {
      const callId = "ws-watch@test";
      await ws.send(
        buildRequest({
          method: "SUBSCRIBE",
          uri: "sip:alice@example.org",
          via: "WS df7jal23ls0d.invalid",
          from: "<sip:bob@example.org>",
          to: "<sip:alice@example.org>",
          callId,
          cseq: 1,
          headers: {
            Event: "presence",
            Expires: "600",
            Contact: "<sip:bob@df7jal23ls0d.invalid;transport=ws>",
          },
        }),
      );
      assert.equal((await ws.waitFor(answerTo(callId))).status, 200);
      const notify = await ws.waitFor((m) => m.method === "NOTIFY" && header(m, "call-id") === callId);
      assert.match(header(notify, "via") ?? "", /^SIP\/2\.0\/WS /);
      assert.match(notify.body, /<basic>closed<\/basic>/);
      await ws.send(
        [
          "SIP/2.0 200 OK",
          ...(notify.headers.get("via") ?? []).map((v) => `Via: ${v}`),
          `From: ${header(notify, "from") ?? ""}`,
          `To: ${header(notify, "to") ?? ""}`,
          `Call-ID: ${callId}`,
          `CSeq: ${header(notify, "cseq") ?? ""}`,
          "Content-Length: 0",
          "",
          "",
        ].join("\r\n"),
      );
      await presence.report("alice@example.org", {
        source: { kind: "xmpp", resource: "laptop" },
        state: "away",
        note: "Lunch",
        updatedAt: Date.now(),
        expiresAt: null,
      });
      const change = await ws.waitFor(
        (m) => m.method === "NOTIFY" && header(m, "call-id") === callId && m.body.includes("Lunch"),
      );
      assert.match(change.body, /<rpid:away\/>/);
    } finally {
      ws.close();
    }
  });

  it("sends a message too large for UDP over TCP, and one to a sips: or transport=tls target over TLS", async function () {
    const tcp = await TcpSipServer.listen();
    const udp = await UdpSipSocket.open(tcp.port); // the same port: the far end offers both
    const tls = await TcpSipServer.listen(0, { cert: readFileSync(cert.cert), key: readFileSync(cert.key) });
    try {
      {
        const body = "ü".repeat(800); // 1600 bytes
        const outcome = endpoint.sendMessage({
          id: "big",
          from: "alice@example.org",
          to: `sip:bob@127.0.0.1:${udp.port}`,
          body,
        });
        const request = await tcp.waitFor((m) => m.method === "MESSAGE");
        assert.match(header(request, "via") ?? "", /^SIP\/2\.0\/TCP /);
        assert.equal(request.body, body);
        await tcp.answer(request, 200);
        assert.equal(await outcome, "delivered");
        assert.equal(udp.received.length, 0);
      }
      const secure = endpoint.sendMessage({
        id: "secure",
        from: "alice@example.org",
        to: `sip:bob@127.0.0.1:${tls.port};transport=tls`,
        body: "secret",
      });
      const overTls = await tls.waitFor((m) => m.method === "MESSAGE");
      assert.match(header(overTls, "via") ?? "", /^SIP\/2\.0\/TLS /);
      assert.match(header(overTls, "contact") ?? "", /;transport=tls>/);
      await tls.answer(overTls, 202, "Accepted");
      assert.equal(await secure, "accepted");
    } finally {
      await tcp.close();
      await tls.close();
      await udp.close();
    }
  });

  it("locates the target's server by DNS without an outbound proxy: NAPTR to TCP, SRV, A (RFC 3263)", async function () {
    const tcp = await TcpSipServer.listen();
    const udp = await UdpSipSocket.open();
    const dns = await DnsServer.start(
      [
        {
          name: "tcp-only.example.com",
          order: 10,
          preference: 10,
          flags: "s",
          service: "SIP+D2T",
          regexp: "",
          replacement: "_sip._tcp.tcp-only.example.com",
        },
      ],
      ["example.com"],
      {
        srv: [
          { name: "_sip._tcp.tcp-only.example.com", target: "pbx.example.com", port: tcp.port },
          { name: "_sip._udp.udp.example.com", target: "phones.example.com", port: udp.port },
        ],
        hosts: [
          { name: "pbx.example.com", address: "127.0.0.1" },
          { name: "phones.example.com", address: "127.0.0.1" },
        ],
      },
    );
    const { endpoint: located } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0"],
      dnsServers: [dns.address],
    });
    try {
      const viaTcp = located.sendMessage({
        id: "naptr",
        from: "alice@example.org",
        to: "sip:carol@tcp-only.example.com",
        body: "found by NAPTR",
      });
      const overTcp = await tcp.waitFor((m) => m.method === "MESSAGE");
      assert.equal(overTcp.startLine, "MESSAGE sip:carol@tcp-only.example.com SIP/2.0");
      assert.match(header(overTcp, "via") ?? "", /^SIP\/2\.0\/TCP /);
      await tcp.answer(overTcp, 200);
      assert.equal(await viaTcp, "delivered");

      udp.autoAnswer(["MESSAGE"], 200, "OK");
      assert.equal(
        await located.sendMessage({
          id: "srv",
          from: "alice@example.org",
          to: "sip:dave@udp.example.com",
          body: "found by SRV",
        }),
        "delivered",
      );
      assert.equal(udp.received[0]?.startLine, "MESSAGE sip:dave@udp.example.com SIP/2.0");

      await assert.rejects(
        located.sendMessage({
          id: "nx",
          from: "alice@example.org",
          to: "sip:erin@nowhere.example.com",
          body: "x",
        }),
        { condition: "remote-server-not-found" },
      );
    } finally {
      await located.stop();
      await dns.stop();
      await tcp.close();
      await udp.close();
    }
  });

  it("checks a TLS server's certificate against the domain it was located from (RFC 5922)", async function () {
    const named = testCertificate(["DNS:tls.example.com"]);
    const server = await TcpSipServer.listen(0, {
      cert: readFileSync(named.cert),
      key: readFileSync(named.key),
    });
    const dns = await DnsServer.start([], ["example.com"], {
      hosts: [
        { name: "tls.example.com", address: "127.0.0.1" },
        { name: "impostor.example.com", address: "127.0.0.1" },
      ],
    });
    const { endpoint: client } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0"],
      tls: { cert: named.cert, key: named.key, ca: named.cert },
      dnsServers: [dns.address],
    });
    try {
      const outcome = client.sendMessage({
        id: "sni",
        from: "alice@example.org",
        to: `sip:bob@tls.example.com:${server.port};transport=tls`,
        body: "for tls.example.com",
      });
      const request = await server.waitFor((m) => m.method === "MESSAGE");
      await server.answer(request, 200);
      assert.equal(await outcome, "delivered");
      // The same server under another name cannot prove it: nothing is sent.
      await assert.rejects(
        client.sendMessage({
          id: "impostor",
          from: "alice@example.org",
          to: `sip:bob@impostor.example.com:${server.port};transport=tls`,
          body: "for the impostor",
        }),
        { condition: "service-unavailable" },
      );
      assert.equal(server.received.filter((m) => m.body === "for the impostor").length, 0);
    } finally {
      await client.stop();
      await dns.stop();
      await server.close();
      named.dir.remove();
    }
  });

  it("sends to the SIP URI ENUM gives for a number nobody in the directory has", async function () {
    const dave = await UdpSipSocket.open();
    dave.autoAnswer(["MESSAGE"]);
    const { endpoint: withEnum } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0"],
      enumSip: (e164) => Promise.resolve(e164 === "+442079460000" ? `sip:dave@127.0.0.1:${dave.port}` : null),
    });
    try {
      assert.equal(
        await withEnum.sendMessage({
          id: "enum",
          from: "alice@example.org",
          to: "+442079460000",
          body: "via ENUM",
        }),
        "delivered",
      );
      assert.equal(dave.received[0]?.startLine, `MESSAGE sip:dave@127.0.0.1:${dave.port} SIP/2.0`);
    } finally {
      await withEnum.stop();
      await dave.close();
    }
  });
});
