// A SIP-over-WebSocket client written against RFC 6455 directly (handshake, masked frames), so tests
// control exactly how frames fall into TCP writes: two messages in one write, one message split
// across writes. Received frames are collected as SIP messages (RFC 7118: one per WebSocket message).
import { createHash, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { LOOPBACK } from "./net.js";
import { EventLog } from "./event-log.js";
import { parseRawSip, type RawSipMessage } from "./sip-socket.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** One masked client frame (RFC 6455 §5.2): FIN set, the given opcode (1 text, 2 binary, 8 close). */
export function clientFrame(payload: Buffer | string, opcode = 1): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const mask = randomBytes(4);
  const length = data.length;
  const head =
    length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | length])
      : length < 65536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), bigLength(length)]);
  const masked = Buffer.from(data.map((byte, i) => byte ^ (mask[i % 4] ?? 0)));
  return Buffer.concat([head, mask, masked]);
}

function bigLength(length: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(length));
  return out;
}

export class RawWebSocket {
  readonly log = new EventLog<RawSipMessage>("websocket", (m) => m.startLine);
  /** The server's handshake response head. */
  handshake = "";
  private buffer = Buffer.alloc(0);
  private upgraded = false;

  private constructor(private readonly socket: Socket) {}

  /**
   * Connects and performs the opening handshake offering `protocols`; resolves once the server
   * answered (whatever it answered: see `handshake`).
   */
  static open(
    port: number,
    options: {
      protocols?: string[];
      /** wss: the CA to trust, and optionally a client certificate or TLS versions to limit to. */
      tls?: Pick<ConnectionOptions, "cert" | "key" | "minVersion" | "maxVersion" | "ciphers"> & {
        ca: Buffer;
      };
      host?: string;
    } = {},
  ): Promise<RawWebSocket> {
    const host = options.host ?? LOOPBACK;
    const protocols = options.protocols ?? ["sip"];
    return new Promise((resolve, reject) => {
      const socket = options.tls ? tlsConnect({ port, host, ...options.tls }) : connect({ port, host });
      const ws = new RawWebSocket(socket);
      const key = randomBytes(16).toString("base64");
      socket.once(options.tls ? "secureConnect" : "connect", () => {
        socket.write(
          [
            "GET / HTTP/1.1",
            `Host: ${host}:${port}`,
            "Upgrade: websocket",
            "Connection: Upgrade",
            `Sec-WebSocket-Key: ${key}`,
            "Sec-WebSocket-Version: 13",
            ...(protocols.length ? [`Sec-WebSocket-Protocol: ${protocols.join(", ")}`] : []),
            "",
            "",
          ].join("\r\n"),
        );
      });
      socket.on("error", reject);
      socket.on("data", (chunk: Buffer) => {
        ws.buffer = Buffer.concat([ws.buffer, chunk]);
        if (!ws.upgraded) {
          const end = ws.buffer.indexOf("\r\n\r\n");
          if (end < 0) return;
          ws.handshake = ws.buffer.subarray(0, end).toString("utf8");
          ws.buffer = ws.buffer.subarray(end + 4);
          ws.upgraded = true;
          const accept = createHash("sha1")
            .update(key + GUID)
            .digest("base64");
          if (ws.handshake.startsWith("HTTP/1.1 101") && !ws.handshake.includes(accept)) {
            reject(new Error("bad Sec-WebSocket-Accept"));
            return;
          }
          resolve(ws);
        }
        ws.drain();
      });
    });
  }

  get protocol(): string | undefined {
    return /^sec-websocket-protocol:\s*(.*)$/im.exec(this.handshake)?.[1]?.trim();
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  /** Server frames are unmasked (RFC 6455 §5.1); text and binary ones carry SIP messages. */
  private drain(): void {
    for (;;) {
      if (this.buffer.length < 2) return;
      const opcode = (this.buffer[0] ?? 0) & 0x0f;
      let length = (this.buffer[1] ?? 0) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const payload = this.buffer.subarray(offset, offset + length);
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode === 1 || opcode === 2) {
        this.log.push(
          parseRawSip(payload.toString("utf8"), {
            address: this.socket.remoteAddress ?? "",
            port: this.socket.remotePort ?? 0,
          }),
        );
      }
    }
  }

  get received(): RawSipMessage[] {
    return this.log.entries;
  }

  waitFor(predicate: (m: RawSipMessage) => boolean, timeoutMs = 5_000): Promise<RawSipMessage> {
    return this.log.waitFor(predicate, timeoutMs);
  }

  /** One SIP message as one text frame. */
  send(text: string): Promise<void> {
    return this.write(clientFrame(text));
  }

  /** Exactly these bytes (frames built with clientFrame, possibly cut anywhere). */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Resolves when the server has closed the connection. */
  closed(timeoutMs = 2_000): Promise<boolean> {
    if (this.socket.destroyed || this.socket.readyState === "closed") return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.socket.once("close", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
