// Parsing (components/sip/sip-parse.ts) and building responses per RFC 3261 §8.2.6: Via (all, the
// top one marked with received/rport, RFC 3581), From, To (tagged), Call-ID and CSeq copied;
// Content-Length in bytes.
import { parseSipMessage, SipRequest, type SipResponse } from "./sip-parse.js";

export { SipRequest, SipResponse } from "./sip-parse.js";

/** A parsed request, a parsed response, or undefined when the text is not a SIP message we can read. */
export function parseSip(text: string): SipRequest | SipResponse | undefined {
  return parseSipMessage(text);
}

export function isRequest(message: SipRequest | SipResponse): message is SipRequest {
  return message instanceof SipRequest;
}

/** The mandatory headers of a request (RFC 3261 §8.1.1) that a response needs; the missing ones. */
export function missingHeaders(request: SipRequest): string[] {
  const missing: string[] = [];
  if (!request.via) missing.push("Via");
  if (!request.from) missing.push("From");
  if (!request.to) missing.push("To");
  if (!request.callId) missing.push("Call-ID");
  if (!request.cseq || !request.getHeader("CSeq")) missing.push("CSeq");
  return missing;
}

export const REASONS: Record<number, string> = {
  100: "Trying",
  200: "OK",
  202: "Accepted",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Request Entity Too Large",
  415: "Unsupported Media Type",
  416: "Unsupported URI Scheme",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  482: "Loop Detected",
  488: "Not Acceptable Here",
  500: "Server Internal Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  513: "Message Too Large",
};

export interface ResponseOptions {
  /** Tag for To when the request's To has none (RFC 3261 §8.2.6.2). */
  toTag: string;
  /** The address the request came from, for the top Via's received/rport (RFC 3581 §4). */
  source?: { address: string; port: number };
  headers?: [string, string][];
  body?: { contentType: string; text: string };
  reason?: string;
}

function markTopVia(via: string, source: { address: string; port: number } | undefined): string {
  if (!source) return via;
  let marked = via.replace(/;\s*received=[^;,]*/i, "");
  if (/;\s*rport(?=;|$|\s|,)/i.test(marked))
    marked = marked.replace(/;\s*rport(?=;|$|\s|,)/i, `;rport=${source.port}`);
  return `${marked};received=${source.address}`;
}

export function buildResponse(request: SipRequest, status: number, options: ResponseOptions): string {
  const vias = request.getHeaders("via");
  const to = request.getHeader("To") ?? "";
  const body = options.body?.text ?? "";
  const lines = [
    // A reason phrase may carry text from elsewhere: no line breaks into the header section.
    `SIP/2.0 ${status} ${(options.reason ?? REASONS[status] ?? "Unknown").replace(/[\r\n]+/g, " ")}`,
    ...vias.map((via, i) => `Via: ${i === 0 ? markTopVia(via, options.source) : via}`),
    // A header the request lacked (answered 400) is left out rather than invented.
    ...(request.getHeader("From") ? [`From: ${request.getHeader("From")}`] : []),
    ...(to ? [`To: ${request.toTag || status === 100 ? to : `${to};tag=${options.toTag}`}`] : []),
    ...(request.callId ? [`Call-ID: ${request.callId}`] : []),
    ...(request.getHeader("CSeq") ? [`CSeq: ${request.getHeader("CSeq")}`] : []),
    ...(options.headers ?? []).map(([name, value]) => `${name}: ${value}`),
    ...(options.body ? [`Content-Type: ${options.body.contentType}`] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ];
  return lines.join("\r\n");
}
