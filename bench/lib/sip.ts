// SIP over UDP for load: a socket that sends prepared requests, reads the few fields the counting
// needs (status, Call-ID, body) without a full parser, and answers requests it receives (NOTIFY,
// MESSAGE) with 200 at once, as a desk phone or a proxy would.
import { createSocket, type Socket } from "node:dgram";
import { buildPidf } from "../../components/sip/pidf.js";
import type { PresenceState } from "../../src/domain/presence.js";
import { buildRequest } from "../../test/harness/sip-socket.js";

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

/** A desk phone's MESSAGE from `from` to `to`, its body `seq sentAt` for the counting peer. */
export function sipMessage(from: string, to: string, seq: number, callId: string, viaPort: number): string {
  return buildRequest({
    method: "MESSAGE",
    uri: to,
    via: `UDP 127.0.0.1:${viaPort}`,
    from: `<${from}>`,
    to: `<${to}>`,
    callId,
    headers: { "Content-Type": "text/plain;charset=UTF-8" },
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
  return buildRequest({
    method: "PUBLISH",
    uri,
    via: `UDP 127.0.0.1:${viaPort}`,
    from: `<${uri}>`,
    to: `<${uri}>`,
    callId,
    headers: { Event: "presence", Expires: String(expires), "Content-Type": "application/pidf+xml" },
    body: buildPidf(uri, state, null),
  });
}
