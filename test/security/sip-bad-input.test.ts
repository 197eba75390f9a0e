// Targeted bad SIP input against the live endpoint (the fuzz in sip-fuzz.test.ts covers the rest at
// random): oversize messages, absurd Content-Length values, missing mandatory headers, and control
// characters (CR, LF, NUL) smuggled into values that would end up in a chat message, a JID or a log
// line. Each gets a clear answer (400, 413) or is dropped, nothing reaches the XMPP side, the
// endpoint keeps serving, and log lines stay one line each.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { XmppSideRecorder } from "../harness/message-recorder.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import { header, TcpSipSocket, UdpSipSocket, type RawSipMessage } from "../harness/sip-socket.js";

let n = 0;
const nextCallId = (): string => `bad-${++n}@test`;
/** Call-IDs of the well-formed MESSAGEs sent to check the endpoint still serves. */
const good = new Set<string>();

/** A MESSAGE's head and body with every header given (in order); `headers` values are sent as is. */
function rawRequest(
  headers: [string, string][],
  body = "hello",
  requestLine = "MESSAGE sip:alice@example.org SIP/2.0",
): string {
  return [requestLine, ...headers.map(([k, v]) => `${k}: ${v}`), "", body].join("\r\n");
}

function standardHeaders(port: number, callId: string, transport = "UDP"): [string, string][] {
  return [
    ["Via", `SIP/2.0/${transport} 127.0.0.1:${port};branch=z9hG4bK${callId.replace(/\W/g, "")};rport`],
    ["Max-Forwards", "70"],
    ["From", "<sip:bob@example.org>;tag=b0b"],
    ["To", "<sip:alice@example.org>"],
    ["Call-ID", callId],
    ["CSeq", "1 MESSAGE"],
    ["Content-Type", "text/plain"],
  ];
}

const finalFor =
  (callId: string) =>
  (m: RawSipMessage): boolean =>
    m.status !== undefined && m.status >= 200 && header(m, "call-id") === callId;

describe("SIP bad input: oversize, Content-Length, missing headers, injected control characters", function () {
  let endpoint: SipEndpoint;
  let udpPort: number;
  let tcpPort: number;
  let socket: UdpSipSocket;
  const xmpp = new XmppSideRecorder();
  const lines: LogLine[] = [];

  before(async function () {
    ({ endpoint } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
      toXmpp: xmpp,
      maxMessageBytes: 1024,
      log: memoryLogger(lines),
    }));
    const addresses = endpoint.transports.addresses();
    udpPort = addresses.find((a) => a.transport === "udp")?.port ?? 0;
    tcpPort = addresses.find((a) => a.transport === "tcp")?.port ?? 0;
    socket = await UdpSipSocket.open();
  });
  after(async function () {
    await socket?.close();
    await endpoint?.stop();
  });

  /** Sends `text` over UDP; the final answer, or null when none comes within 700 ms (dropped). */
  async function answerTo(text: string, callId: string): Promise<RawSipMessage | null> {
    await socket.send(text, udpPort);
    try {
      return await socket.waitFor(finalFor(callId), 700);
    } catch {
      return null;
    }
  }

  /** Nothing but the well-formed checks reached the XMPP side. */
  function nothingDelivered(): void {
    assert.deepEqual(
      xmpp.received.filter((m) => !good.has(m.id)).map((m) => m.id),
      [],
      "a bad request reached the XMPP side",
    );
  }

  async function stillServes(): Promise<void> {
    const callId = nextCallId();
    good.add(callId);
    const answer = await answerTo(rawRequest(standardHeaders(socket.port, callId), "still there"), callId);
    assert.equal(answer?.status, 200, "a valid MESSAGE after the bad one");
  }

  it("answers 413 to a body over sip.maxMessageBytes, and drops a datagram too large to frame", async function () {
    const callId = nextCallId();
    const big = await answerTo(rawRequest(standardHeaders(socket.port, callId), "x".repeat(5_000)), callId);
    assert.equal(big?.status, 413);
    // 60 kB of headers: more than any SIP head may be; dropped (no transaction can be trusted to it).
    const hugeId = nextCallId();
    const huge = rawRequest([...standardHeaders(socket.port, hugeId), ["X-Pad", "p".repeat(60_000)]]);
    assert.equal(await answerTo(huge, hugeId), null);
    nothingDelivered();
    await stillServes();
  });

  it("refuses absurd Content-Length values over UDP with 400, and closes a TCP stream it cannot frame", async function () {
    for (const value of ["99999999999999999999", "-1", "12abc", "4000", "1e3"]) {
      const callId = nextCallId();
      const text = rawRequest([...standardHeaders(socket.port, callId), ["Content-Length", value]]);
      const answer = await answerTo(text, callId);
      // The body does not match its Content-Length (or the value is no number): the head is whole,
      // so the request is answered 400 (RFC 3261 §18.3), never delivered.
      assert.equal(answer?.status, 400, `Content-Length ${value}`);
      assert.match(answer?.startLine ?? "", /Content-Length/i);
    }
    const tcp = await TcpSipSocket.connect(tcpPort);
    const closed = tcp.closedWithin(2_000);
    await tcp.send(
      rawRequest([
        ...standardHeaders(tcp.localPort, nextCallId(), "TCP"),
        ["Content-Length", "99999999999999999999"],
      ]),
    );
    assert.equal(await closed, true, "the stream is closed");
    nothingDelivered();
    await stillServes();
  });

  it("answers 400 naming what is missing when a mandatory header is absent (dropped without Via)", async function () {
    for (const missing of ["From", "To", "Call-ID", "CSeq"]) {
      const callId = nextCallId();
      const headers = standardHeaders(socket.port, callId).filter(([k]) => k !== missing);
      await socket.send(rawRequest([...headers, ["Content-Length", "5"]]), udpPort);
      if (missing === "Call-ID") {
        // Answered, but its answer cannot carry the Call-ID: find it by the Via branch.
        const branch = /branch=([^;]+)/.exec(headers[0]?.[1] ?? "")?.[1] ?? "";
        const answer = await socket.waitFor((m) => (header(m, "via") ?? "").includes(branch), 2_000);
        assert.equal(answer.status, 400);
        assert.match(answer.startLine, /Call-ID/i);
        continue;
      }
      const answer = await socket.waitFor(finalFor(callId), 2_000);
      assert.equal(answer.status, 400, `without ${missing}`);
      assert.match(answer.startLine, new RegExp(missing, "i"));
    }
    const noVia = nextCallId();
    const withoutVia = standardHeaders(socket.port, noVia).filter(([k]) => k !== "Via");
    assert.equal(await answerTo(rawRequest([...withoutVia, ["Content-Length", "5"]]), noVia), null);
    nothingDelivered();
    await stillServes();
  });

  it("keeps CR, LF and NUL smuggled into values out of chat messages, JIDs and log lines", async function () {
    const before = xmpp.received.length;
    // Raw control characters make the message unparsable: dropped (a response could echo them).
    // Percent-encoded ones parse, and are refused where the address is mapped: 400.
    const attempts: {
      name: string;
      expect: number | null;
      headers: (port: number, callId: string) => [string, string][];
    }[] = [
      {
        name: "a bare CR in a display name",
        expect: null,
        headers: (port, callId) =>
          standardHeaders(port, callId).map(([k, v]) =>
            k === "From" ? [k, '"Bob\rX-Injected: yes" <sip:bob@example.org>;tag=1'] : [k, v],
          ),
      },
      {
        name: "a NUL in the From URI",
        expect: null,
        headers: (port, callId) =>
          standardHeaders(port, callId).map(([k, v]) =>
            k === "From" ? [k, "<sip:bo\u0000b@example.org>;tag=1"] : [k, v],
          ),
      },
      {
        name: "percent-encoded CRLF in the From user (it would become the JID's local part)",
        expect: 400,
        headers: (port, callId) =>
          standardHeaders(port, callId).map(([k, v]) =>
            k === "From" ? [k, "<sip:bob%0d%0aX-Injected:%20yes@example.org>;tag=1"] : [k, v],
          ),
      },
      {
        name: "percent-encoded CRLF in the Request-URI user",
        expect: 400,
        headers: (port, callId) => standardHeaders(port, callId),
      },
    ];
    for (const attempt of attempts) {
      const callId = nextCallId();
      const requestLine =
        attempt.name === "percent-encoded CRLF in the Request-URI user"
          ? "MESSAGE sip:alice%0d%0aX-Injected:%20yes@example.org SIP/2.0"
          : undefined;
      const text = rawRequest(
        [...attempt.headers(socket.port, callId), ["Content-Length", "5"]],
        "hello",
        requestLine,
      );
      const answer = await answerTo(text, callId);
      assert.equal(answer === null ? null : answer.status, attempt.expect, attempt.name);
      // Whatever was answered, the answer itself carries no injected header.
      assert.doesNotMatch(answer?.raw ?? "", /^X-Injected/im, attempt.name);
    }
    // Nothing reached the chat side with a control character in it.
    for (const message of xmpp.received.slice(before)) {
      // eslint-disable-next-line no-control-regex -- control characters are what is looked for
      assert.doesNotMatch(`${message.from} ${message.to}`, /[\u0000-\u001f]/, JSON.stringify(message));
    }
    // Log lines are structured: every value with a control character is inside a JSON string.
    for (const line of lines) JSON.parse(JSON.stringify(line));
    assert.ok(!lines.some((l) => l.level === "error"), "an error line");
    await sleep(50);
    await stillServes();
  });
});
