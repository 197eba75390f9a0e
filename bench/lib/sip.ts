// SIP over UDP for load: a socket that sends prepared requests, reads the few fields the counting
// needs (status, Call-ID, body) without a full parser, and answers requests it receives (NOTIFY,
// MESSAGE) with 200 at once, as a desk phone or a proxy would.
import { createSocket, type Socket } from "node:dgram";
import { buildPidf } from "../../components/sip/pidf.js";
import type { PresenceState } from "../../src/domain/presence.js";

export interface SipSeen {
  /** Status of a response; undefined for a request. */
  status: number | undefined;
  method: string | undefined;
  callId: string;
  body: string;
  at: number;
}

const HEADER_END = "\r\n\r\n";

function headerValue(head: string, name: string, compact: string): string {
  const match = new RegExp(`\\r\\n(?:${name}|${compact})[ \\t]*:[ \\t]*([^\\r\\n]*)`, "i").exec(head);
  return match?.[1]?.trim() ?? "";
}

/** 200 OK for a request: its Via, From, To (with a tag), Call-ID and CSeq. */
function ok(head: string): string {
  const lines = head.split("\r\n");
  const keep = lines.filter((l) => /^(via|v|from|f|call-id|i|cseq)[ \t]*:/i.test(l));
  const to = lines.find((l) => /^(to|t)[ \t]*:/i.test(l)) ?? "To: <sip:x@x>";
  return [
    "SIP/2.0 200 OK",
    ...keep,
    /;\s*tag=/i.test(to) ? to : `${to};tag=bench`,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

export class SipLoadSocket {
  private listener: ((seen: SipSeen) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on("message", (data, from) => {
      const text = data.toString("utf8");
      const split = text.indexOf(HEADER_END);
      const head = split >= 0 ? text.slice(0, split) : text;
      const body = split >= 0 ? text.slice(split + HEADER_END.length) : "";
      const first = head.slice(0, head.indexOf("\r\n"));
      const isResponse = first.startsWith("SIP/2.0 ");
      if (!isResponse) socket.send(ok(head), from.port, from.address);
      this.listener?.({
        status: isResponse ? Number(first.slice(8, 11)) : undefined,
        method: isResponse ? undefined : first.slice(0, first.indexOf(" ")),
        callId: headerValue(head, "call-id", "i"),
        body,
        at: performance.now(),
      });
    });
    socket.on("error", () => undefined);
  }

  static async open(): Promise<SipLoadSocket> {
    const socket = createSocket({
      type: "udp4",
      recvBufferSize: 8 * 1024 * 1024,
      sendBufferSize: 8 * 1024 * 1024,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => resolve());
    });
    return new SipLoadSocket(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  onSeen(listener: (seen: SipSeen) => void): void {
    this.listener = listener;
  }

  send(text: string, port: number): void {
    this.socket.send(text, port, "127.0.0.1");
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A request with the mandatory headers (RFC 3261 §8.1.1) and a fresh branch. */
export function sipRequest(options: {
  method: string;
  uri: string;
  from: string;
  to: string;
  callId: string;
  viaPort: number;
  headers?: string[];
  body?: string;
  contentType?: string;
}): string {
  const body = options.body ?? "";
  return [
    `${options.method} ${options.uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${options.viaPort};branch=z9hG4bK${options.callId};rport`,
    "Max-Forwards: 70",
    `From: <${options.from}>;tag=b${options.callId}`,
    `To: <${options.to}>`,
    `Call-ID: ${options.callId}`,
    `CSeq: 1 ${options.method}`,
    ...(options.headers ?? []),
    ...(body ? [`Content-Type: ${options.contentType ?? "text/plain;charset=UTF-8"}`] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
}

/** A desk phone's MESSAGE from `from` to `to`, its body `seq sentAt` for the counting peer. */
export function sipMessage(from: string, to: string, seq: number, callId: string, viaPort: number): string {
  return sipRequest({
    method: "MESSAGE",
    uri: to,
    from,
    to,
    callId,
    viaPort,
    body: `${seq} ${performance.now().toFixed(3)}`,
  });
}

/** A PUBLISH of `state` for `uri` (Event: presence, PIDF), as a phone sends it for its user. */
export function sipPublish(
  uri: string,
  state: PresenceState,
  callId: string,
  viaPort: number,
  expires: number,
): string {
  return sipRequest({
    method: "PUBLISH",
    uri,
    from: uri,
    to: uri,
    callId,
    viaPort,
    headers: ["Event: presence", `Expires: ${expires}`],
    contentType: "application/pidf+xml",
    body: buildPidf(uri, state, null),
  });
}
