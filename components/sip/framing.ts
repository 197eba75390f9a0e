// Framing SIP messages on a stream transport (RFC 3261 §18.3): a message ends after the blank line
// and as many body *bytes* as Content-Length says (compact form `l`, RFC 3261 §7.3.3). Empty lines
// between messages are keepalives (RFC 5626 §3.5.1) and are skipped. Limits keep a peer from making
// us buffer without bound: an oversize head or body is a framing error and the connection is closed.

export interface FramingLimits {
  maxHeadBytes: number;
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: FramingLimits = { maxHeadBytes: 16 * 1024, maxBodyBytes: 64 * 1024 };

export class FramingError extends Error {
  override name = "FramingError";
}

const HEAD_END = Buffer.from("\r\n\r\n");

/** Content-Length of a head (last occurrence wins, as in a list), or null when absent. */
export function contentLength(head: string): number | null {
  let found: number | null = null;
  for (const line of head.split("\r\n").slice(1)) {
    // One optional-space run only: several in a row backtrack quadratically on a long line that
    // does not match (a 16 KB line cost ~0.2 s), and every packet comes through here first.
    const match = /^(?:content-length|l)[ \t]*:(.*)$/i.exec(line);
    if (!match) continue;
    const value = (match[1] ?? "").replace(/^[ \t]+|[ \t]+$/g, "");
    if (!/^\d{1,9}$/.test(value)) throw new FramingError(`bad Content-Length '${value.slice(0, 40)}'`);
    found = Number(value);
  }
  return found;
}

/** Splits a byte stream into SIP messages (each a complete head + body, as UTF-8 text). */
export class StreamFramer {
  private buffer: Buffer = Buffer.alloc(0);
  /** Line-end bytes seen between messages, carried over reads (a ping may be split across two). */
  private lineEnds = 0;

  constructor(private readonly limits: FramingLimits = DEFAULT_LIMITS) {}

  /**
   * Feeds bytes; returns the complete messages they finish, as text and as the bytes they came in
   * (`bytes[i]` is `messages[i]`, for bodies in other charsets). Throws FramingError on a bad stream.
   */
  push(chunk: Buffer): { messages: string[]; bytes: Buffer[]; keepalives: number } {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const messages: string[] = [];
    const bytes: Buffer[] = [];
    let keepalives = 0;
    for (;;) {
      // Leading CRLFs: keepalive pings ("\r\n\r\n") or stray line ends between messages.
      let start = 0;
      while (this.buffer[start] === 0x0d || this.buffer[start] === 0x0a) start++;
      if (start > 0) {
        this.lineEnds += start;
        keepalives += Math.floor(this.lineEnds / 4);
        this.lineEnds %= 4;
        this.buffer = this.buffer.subarray(start);
      }
      if (this.buffer.length > 0) this.lineEnds = 0; // a message begins: no ping is pending
      const end = this.buffer.indexOf(HEAD_END);
      if (end < 0) {
        if (this.buffer.length > this.limits.maxHeadBytes) throw new FramingError("header section too large");
        break;
      }
      if (end > this.limits.maxHeadBytes) throw new FramingError("header section too large");
      const head = this.buffer.subarray(0, end).toString("utf8");
      const length = contentLength(head);
      // Over a stream Content-Length is mandatory (RFC 3261 §20.14).
      if (length === null) throw new FramingError("no Content-Length on a stream transport");
      if (length > this.limits.maxBodyBytes) throw new FramingError(`body of ${length} bytes is too large`);
      const total = end + 4 + length;
      if (this.buffer.length < total) break;
      const message = this.buffer.subarray(0, total);
      messages.push(message.toString("utf8"));
      bytes.push(message);
      this.buffer = this.buffer.subarray(total);
    }
    return { messages, bytes, keepalives };
  }
}

/**
 * A datagram is one message (RFC 3261 §18.3): bytes beyond Content-Length are discarded; fewer
 * bytes than it announces make the message unusable (null).
 */
export function frameDatagram(datagram: Buffer, limits: FramingLimits = DEFAULT_LIMITS): string | null {
  const end = datagram.indexOf(HEAD_END);
  if (end < 0 || end > limits.maxHeadBytes) return null;
  const head = datagram.subarray(0, end).toString("utf8");
  let length: number | null;
  try {
    length = contentLength(head);
  } catch {
    return null;
  }
  const available = datagram.length - end - 4;
  const bodyLength = length ?? available;
  if (bodyLength > available || bodyLength > limits.maxBodyBytes) return null;
  return datagram.subarray(0, end + 4 + bodyLength).toString("utf8");
}
