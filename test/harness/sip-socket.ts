// A raw SIP socket for protocol-level tests: sends exactly the bytes a test writes and collects what
// comes back, over UDP or TCP on loopback. Parsing here is deliberately minimal (start line,
// headers, body) — enough to assert on, independent of the bridge's own parser.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server, type Socket as TcpSocket } from "node:net";
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  Server as TlsServerClass,
  type ConnectionOptions,
} from "node:tls";
import { LOOPBACK } from "./net.js";
import { EventLog } from "./event-log.js";

export interface RawSipMessage {
  startLine: string;
  /** Status code for responses, undefined for requests. */
  status?: number;
  method?: string;
  headers: Map<string, string[]>;
  body: string;
  raw: string;
  from: { address: string; port: number };
}

const COMPACT: Record<string, string> = {
  i: "call-id",
  m: "contact",
  e: "content-encoding",
  l: "content-length",
  c: "content-type",
  f: "from",
  s: "subject",
  k: "supported",
  t: "to",
  v: "via",
  o: "event",
  u: "allow-events",
};

export function parseRawSip(raw: string, from = { address: "", port: 0 }): RawSipMessage {
  const split = raw.indexOf("\r\n\r\n");
  const head = split >= 0 ? raw.slice(0, split) : raw;
  const body = split >= 0 ? raw.slice(split + 4) : "";
  const [startLine = "", ...lines] = head.replace(/\r\n[ \t]+/g, " ").split("\r\n");
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const rawName = line.slice(0, colon).trim().toLowerCase();
    const name = COMPACT[rawName] ?? rawName;
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const statusMatch = /^SIP\/2\.0 (\d{3}) /.exec(startLine);
  return {
    startLine,
    status: statusMatch ? Number(statusMatch[1]) : undefined,
    method: statusMatch ? undefined : startLine.split(" ")[0],
    headers,
    body,
    raw,
    from,
  };
}

export function header(message: RawSipMessage, name: string): string | undefined {
  return message.headers.get(name.toLowerCase())?.[0];
}

/** Builds a request with the mandatory headers (RFC 3261 §8.1.1); `extra` may add or override. */
export function buildRequest(options: {
  method: string;
  uri: string;
  via: string;
  from: string;
  to: string;
  callId?: string;
  cseq?: number;
  /** The From tag (in-dialog requests); absent: a new one. */
  fromTag?: string;
  headers?: Record<string, string>;
  body?: string;
}): string {
  const body = options.body ?? "";
  const branch = `z9hG4bK${Math.random().toString(36).slice(2)}`;
  const lines = [
    `${options.method} ${options.uri} SIP/2.0`,
    `Via: SIP/2.0/${options.via};branch=${branch};rport`,
    `Max-Forwards: 70`,
    `From: ${options.from};tag=${options.fromTag ?? Math.random().toString(36).slice(2, 10)}`,
    `To: ${options.to}`,
    `Call-ID: ${options.callId ?? `${Math.random().toString(36).slice(2)}@${LOOPBACK}`}`,
    `CSeq: ${options.cseq ?? 1} ${options.method}`,
    ...Object.entries(options.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ];
  return lines.join("\r\n");
}

/** A response to `request` copying Via, From, To (with a tag), Call-ID and CSeq (RFC 3261 §8.2.6). */
export function buildResponse(
  request: RawSipMessage,
  status: number,
  reason: string,
  extra: Record<string, string> = {},
): string {
  const to = header(request, "to") ?? "";
  const lines = [
    `SIP/2.0 ${status} ${reason}`,
    ...(request.headers.get("via") ?? []).map((v) => `Via: ${v}`),
    `From: ${header(request, "from") ?? ""}`,
    `To: ${/;\s*tag=/i.test(to) ? to : `${to};tag=harness`}`,
    `Call-ID: ${header(request, "call-id") ?? ""}`,
    `CSeq: ${header(request, "cseq") ?? ""}`,
    ...Object.entries(extra).map(([k, v]) => `${k}: ${v}`),
    "Content-Length: 0",
    "",
    "",
  ];
  return lines.join("\r\n");
}

abstract class Collector {
  readonly log = new EventLog<RawSipMessage>("sip socket", (m) => m.startLine);

  get received(): RawSipMessage[] {
    return this.log.entries;
  }

  protected push(message: RawSipMessage): void {
    this.log.push(message);
  }

  /** The first message (already received or future) matching `predicate`, within `timeoutMs`. */
  waitFor(predicate: (m: RawSipMessage) => boolean, timeoutMs = 5_000): Promise<RawSipMessage> {
    return this.log.waitFor(predicate, timeoutMs);
  }
}

export class UdpSipSocket extends Collector {
  private constructor(private readonly socket: UdpSocket) {
    super();
    socket.on("message", (data, rinfo) => this.push(parseRawSip(data.toString("utf8"), rinfo)));
    socket.on("error", (err) => this.log.close(`udp socket error: ${err.message}`));
  }

  /** `host`: another loopback address (127.0.0.2 ...) to send from a second source address. */
  static async open(port = 0, host = LOOPBACK): Promise<UdpSipSocket> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => resolve());
    });
    return new UdpSipSocket(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(text: string | Buffer, port: number, address = LOOPBACK): Promise<void> {
    const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, port, address, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Also hands every message received to `handler` (for fakes that answer). */
  onMessage(handler: (message: RawSipMessage) => void): void {
    this.socket.on("message", (data, rinfo) => handler(parseRawSip(data.toString("utf8"), rinfo)));
  }

  /** Answers every request matching `methods` with `status` (a tiny UAS for client tests). */
  autoAnswer(methods: string[], status = 200, reason = "OK"): void {
    this.socket.on("message", (data, rinfo) => {
      const request = parseRawSip(data.toString("utf8"), rinfo);
      if (request.method && methods.includes(request.method)) {
        void this.send(buildResponse(request, status, reason), rinfo.port, rinfo.address);
      }
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A TCP connection that frames incoming messages by Content-Length (RFC 3261 §18.3). */
export class TcpSipSocket extends Collector {
  private buffer = Buffer.alloc(0);

  /** `onMessage` also sees each message (a server's collector). */
  constructor(
    private readonly socket: TcpSocket,
    private readonly onMessage?: (message: RawSipMessage, connection: TcpSipSocket) => void,
  ) {
    super();
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.drain();
    });
    socket.on("error", () => undefined); // a reset shows up as a missing response in waitFor
  }

  static connect(port: number, host = LOOPBACK): Promise<TcpSipSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host }, () => resolve(new TcpSipSocket(socket)));
      socket.once("error", reject);
    });
  }

  /** A TLS connection verified against `ca` (the harness's test certificate). */
  /** `options`: a client certificate to present, or TLS versions and ciphers to limit the client to. */
  static connectTls(
    port: number,
    ca: Buffer,
    host = LOOPBACK,
    options: Pick<ConnectionOptions, "cert" | "key" | "minVersion" | "maxVersion" | "ciphers"> = {},
  ): Promise<TcpSipSocket> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ port, host, ca, ...options }, () => resolve(new TcpSipSocket(socket)));
      socket.once("error", reject);
    });
  }

  private drain(): void {
    for (;;) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.buffer.subarray(0, end).toString("utf8");
      const length = Number(/^(?:content-length|l)\s*:\s*(\d+)/im.exec(head)?.[1] ?? 0);
      const total = end + 4 + length;
      if (this.buffer.length < total) return;
      const raw = this.buffer.subarray(0, total).toString("utf8");
      this.buffer = this.buffer.subarray(total);
      const message = parseRawSip(raw, {
        address: this.socket.remoteAddress ?? "",
        port: this.socket.remotePort ?? 0,
      });
      this.push(message);
      this.onMessage?.(message, this);
    }
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  /** Whether the far end closed the connection within `timeoutMs`. */
  closedWithin(timeoutMs: number): Promise<boolean> {
    if (this.socket.destroyed || this.socket.readableEnded) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.socket.once("close", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  send(text: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(text, "utf8", (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Exactly these bytes (e.g. half of a multi-byte character), for framing tests. */
  sendBytes(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A SIP server over TCP (a far end the bridge connects to): collects what every connection sends. */
export class TcpSipServer extends Collector {
  readonly connections: TcpSipSocket[] = [];

  private constructor(private readonly server: Server) {
    super();
    server.on(server instanceof TlsServerClass ? "secureConnection" : "connection", (socket: TcpSocket) => {
      this.connections.push(new TcpSipSocket(socket, (message) => this.push(message)));
    });
  }

  /** Plain TCP, or TLS with `tls` (certificate and key PEM). */
  static async listen(port = 0, tls?: { cert: Buffer; key: Buffer }): Promise<TcpSipServer> {
    const server: Server = tls ? createTlsServer(tls) : createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, LOOPBACK, () => resolve());
    });
    return new TcpSipServer(server);
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  /** Answers `request` on the connection it came over. */
  answer(request: RawSipMessage, status: number, reason = "OK"): Promise<void> {
    const connection = this.connections.find((c) => c.received.includes(request));
    if (!connection) throw new Error(`no connection received ${request.startLine}`);
    return connection.send(buildResponse(request, status, reason));
  }

  close(): Promise<void> {
    for (const connection of this.connections) connection.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A cable between the bridge and a UA that a test can pull: datagrams sent to `port` go on to the
 * UA while `connected`, and are dropped otherwise (the UA is unreachable, as an offline phone);
 * what the UA sends back goes to whoever sent last.
 */
export class UdpCable {
  connected = true;
  private last?: { address: string; port: number };

  private constructor(
    private readonly socket: UdpSocket,
    private readonly target: number,
  ) {
    socket.on("message", (data, rinfo) => {
      if (rinfo.port === target && rinfo.address === LOOPBACK) {
        if (this.last && this.connected) socket.send(data, this.last.port, this.last.address);
        return;
      }
      this.last = { address: rinfo.address, port: rinfo.port };
      if (this.connected) socket.send(data, target, LOOPBACK);
    });
  }

  static async open(target: number): Promise<UdpCable> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, () => resolve()));
    return new UdpCable(socket, target);
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/**
 * A desk phone's MESSAGE (text/plain, UTF-8) from `from` to `to` (SIP URIs), sent from `socket` to
 * the bridge's UDP `port`; resolves with the final response to it.
 */
export async function sendSipMessage(
  socket: UdpSipSocket,
  port: number,
  /** `uri`: a Request-URI other than the To. */
  message: { from: string; to: string; body: string; callId?: string; uri?: string },
): Promise<RawSipMessage> {
  const callId = message.callId ?? `${Math.random().toString(36).slice(2)}@${LOOPBACK}`;
  await socket.send(
    buildRequest({
      method: "MESSAGE",
      uri: message.uri ?? message.to,
      via: `UDP ${LOOPBACK}:${socket.port}`,
      from: `<${message.from}>`,
      to: `<${message.to}>`,
      callId,
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: message.body,
    }),
    port,
  );
  return socket.waitFor((m) => m.status !== undefined && m.status >= 200 && header(m, "call-id") === callId);
}

/**
 * A watcher's SUBSCRIBE to `uri`'s presence (RFC 3856) from `from` (a SIP URI), its Contact the
 * socket itself; resolves with the final response. The NOTIFYs arrive on the socket.
 */
export async function subscribePresence(
  socket: UdpSipSocket,
  port: number,
  subscription: { uri: string; from: string; expires?: number },
): Promise<RawSipMessage> {
  const callId = `${Math.random().toString(36).slice(2)}@${LOOPBACK}`;
  const user = /^sips?:([^@]+)@/.exec(subscription.from)?.[1] ?? "watcher";
  await socket.send(
    buildRequest({
      method: "SUBSCRIBE",
      uri: subscription.uri,
      via: `UDP ${LOOPBACK}:${socket.port}`,
      from: `<${subscription.from}>`,
      to: `<${subscription.uri}>`,
      callId,
      headers: {
        Event: "presence",
        Expires: String(subscription.expires ?? 600),
        Contact: `<sip:${user}@${LOOPBACK}:${socket.port}>`,
      },
    }),
    port,
  );
  return socket.waitFor((m) => m.status !== undefined && m.status >= 200 && header(m, "call-id") === callId);
}

/** A PUBLISH of `pidf` for `uri` (Event: presence), sent like sendSipMessage; resolves with the final response. */
export async function publishPresence(
  socket: UdpSipSocket,
  port: number,
  publication: { uri: string; pidf: string; expires?: number },
): Promise<RawSipMessage> {
  const callId = `${Math.random().toString(36).slice(2)}@${LOOPBACK}`;
  await socket.send(
    buildRequest({
      method: "PUBLISH",
      uri: publication.uri,
      via: `UDP ${LOOPBACK}:${socket.port}`,
      from: `<${publication.uri}>`,
      to: `<${publication.uri}>`,
      callId,
      headers: {
        Event: "presence",
        Expires: String(publication.expires ?? 600),
        "Content-Type": "application/pidf+xml",
      },
      body: publication.pidf,
    }),
    port,
  );
  return socket.waitFor((m) => m.status !== undefined && m.status >= 200 && header(m, "call-id") === callId);
}
