// SIP transports from `sip.listen` (RFC 3261 §18): UDP (one message per datagram), TCP and TLS
// (framed by Content-Length), WebSocket and secure WebSocket (RFC 7118: one SIP message per
// WebSocket message, subprotocol `sip`). Each message comes with its flow, the way back to the
// sender: the source address and port over UDP (RFC 3581 symmetric response), the same connection
// over the others. The bridge's own requests go out through `connect()`, which reuses an open
// connection to the target (RFC 3261 §18.1.1, RFC 5923 without aliases) or opens one.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect as netConnect, createServer, isIP, type Server, type Socket } from "node:net";
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type TLSSocket,
  type TlsOptions,
} from "node:tls";
import { WebSocketServer, type WebSocket } from "ws";
import { SwitchboardError } from "../../src/domain/errors.js";
import { frameDatagram, FramingError, StreamFramer, type FramingLimits, DEFAULT_LIMITS } from "./framing.js";
import { splitHostPort } from "./listen-probe.js";

export type TransportName = "udp" | "tcp" | "tls" | "ws" | "wss";

export interface Flow {
  transport: TransportName;
  remote: { address: string; port: number };
  /** Reliable transports need no retransmissions (RFC 3261 §17). */
  reliable: boolean;
  /**
   * On a tls: or wss: connection the peer opened, with `sip.tls.clientCa` set: whether the peer
   * presented a certificate that verifies against it. Absent elsewhere.
   */
  clientCertified?: boolean;
  send(text: string): Promise<void>;
}

/** A send on a connection the peer has closed (or reset): the peer went away, nothing failed here. */
export class FlowClosedError extends Error {
  override name = "FlowClosedError";
  constructor(transport: TransportName, remote: { address: string; port: number }) {
    super(`${transport} connection to ${remote.address}:${remote.port} is closed`);
  }
}

export interface TransportEvents {
  /** `raw` holds the message's bytes (from its start line), for bodies in other charsets. */
  message: [text: string, flow: Flow, raw: Buffer];
  /** A message written to a flow (for wire tracing). */
  sent: [text: string, flow: Flow];
  /** A peer sent something unusable (dropped) or a socket failed; logged, never thrown. */
  problem: [reason: string, remote: string];
  /**
   * A datagram whose head is complete but whose body does not match its Content-Length (or the
   * value is not a number): `head` has the Content-Length line taken out, so the request can be
   * answered 400 (RFC 3261 §18.3). Also reported as a `problem`.
   */
  unframed: [head: string, flow: Flow];
}

/** `sip.tls`: the certificate and key files for tls: and wss: listeners, and whom to trust out. */
export interface TlsFiles {
  cert: string;
  key: string;
  /** CA bundle for the bridge's own TLS connections; absent: the system's CAs. */
  ca?: string;
  /**
   * CA bundle that peers' client certificates are verified against: with it, tls: and wss:
   * listeners ask every peer for a certificate (without requiring one) and each flow says whether
   * the peer proved one (`Flow.clientCertified`).
   */
  clientCa?: string;
  /** Oldest TLS version accepted, in and out (default TLSv1.2). */
  minVersion?: "TLSv1.2" | "TLSv1.3";
}

export interface TransportOptions {
  limits?: FramingLimits;
  tls?: TlsFiles;
  /** Longest wait for an outgoing TCP/TLS connection to open. */
  connectTimeoutMs?: number;
  /** Outgoing connections with no traffic for this long are closed. */
  idleTimeoutMs?: number;
  /** The host others reach the bridge at, for Via and Contact (needed with a 0.0.0.0 / :: listener). */
  advertisedHost?: string;
}

interface Listener {
  transport: TransportName;
  host: string;
  port: number;
  close(): Promise<void>;
}

const STREAMS = new Set<TransportName>(["tcp", "tls"]);

/** Receive and send buffer asked for each UDP socket (the kernel may give less). */
const UDP_BUFFER_BYTES = 4 * 1024 * 1024;

/** An address as it appears in a Via sent-by or URI host (IPv6 in brackets). */
export function uriHost(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}

export class SipTransports extends EventEmitter<TransportEvents> {
  private readonly bound: Listener[] = [];
  private readonly udp: UdpSocket[] = [];
  /** Open stream and WebSocket connections by `transport|address|port` of the far end. */
  private readonly flows = new Map<string, { flow: Flow; close: () => void }>();
  private readonly limits: FramingLimits;
  private readonly tlsContext: { cert: Buffer; key: Buffer; ca?: Buffer } | undefined;
  /** The listeners' TLS settings (certificate, minimum version, client certificates). */
  private readonly serverTls: TlsOptions | undefined;
  private readonly minVersion: "TLSv1.2" | "TLSv1.3";

  private constructor(private readonly options: TransportOptions) {
    super();
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.tlsContext = options.tls
      ? {
          cert: readFileSync(options.tls.cert),
          key: readFileSync(options.tls.key),
          ...(options.tls.ca ? { ca: readFileSync(options.tls.ca) } : {}),
        }
      : undefined;
    this.minVersion = options.tls?.minVersion ?? "TLSv1.2";
    this.serverTls = this.tlsContext
      ? {
          cert: this.tlsContext.cert,
          key: this.tlsContext.key,
          minVersion: this.minVersion,
          // Asked of everyone, required of no one: users without a certificate still connect and
          // authenticate with digest; the authenticator decides what a missing one means.
          ...(options.tls?.clientCa
            ? { requestCert: true, rejectUnauthorized: false, ca: readFileSync(options.tls.clientCa) }
            : {}),
        }
      : undefined;
  }

  static async listen(listen: readonly string[], options: TransportOptions = {}): Promise<SipTransports> {
    const needsTls = listen.some((entry) => /^(tls|wss):/i.test(entry));
    if (needsTls && !options.tls) {
      throw new SwitchboardError("bad-request", "sip.tls: tls: and wss: listeners need sip.tls.cert and key");
    }
    let transports: SipTransports;
    try {
      transports = new SipTransports(options);
    } catch (err) {
      throw new SwitchboardError("bad-request", `sip.tls: cannot read the files (${(err as Error).message})`);
    }
    try {
      for (const entry of listen) {
        const colon = entry.indexOf(":");
        const kind = entry.slice(0, colon).toLowerCase() as TransportName;
        const { host, port } = splitHostPort(entry.slice(colon + 1));
        transports.bound.push(await transports.open(kind, host, port));
      }
    } catch (err) {
      await transports.close();
      throw err;
    }
    return transports;
  }

  /** The bound addresses, e.g. for tests that listened on port 0. */
  addresses(): { transport: TransportName; host: string; port: number }[] {
    return this.bound.map(({ transport, host, port }) => ({ transport, host, port }));
  }

  /** The transports the bridge can send its own requests over (WebSocket peers only reach us). */
  sendable(): ("udp" | "tcp" | "tls")[] {
    const kinds = new Set(this.bound.map((l) => l.transport));
    return (["udp", "tcp", "tls"] as const).filter((t) => t !== "udp" || kinds.has("udp"));
  }

  /**
   * The sent-by for our Via and Contact over `transport`: the address of a listener of that kind,
   * so that requests and responses can come back to it; for TCP/TLS without a listener, or for
   * WebSocket, the first listener's host with the transport's default port.
   */
  sentBy(transport: TransportName): string {
    const listener =
      this.bound.find((l) => l.transport === transport) ??
      this.bound.find((l) => STREAMS.has(l.transport) === STREAMS.has(transport)) ??
      this.bound[0];
    if (!listener) return "invalid.invalid";
    return `${uriHost(this.options.advertisedHost ?? listener.host)}:${listener.port}`;
  }

  /** An open connection to `address:port` over `transport`, if there is one. */
  existing(transport: TransportName, address: string, port: number, servername?: string): Flow | undefined {
    // A TLS connection is reused only for the name it was verified for.
    const name = transport === "tls" && servername ? `|${servername}` : "";
    return this.flows.get(`${transport}|${address}|${port}${name}`)?.flow;
  }

  /**
   * A flow to a target for the bridge's own request: over UDP from the first UDP listener; over
   * TCP or TLS an open connection to it or a new one (bounded by connectTimeoutMs). WebSocket
   * peers can only be reached over the connection they opened.
   */
  async connect(transport: TransportName, address: string, port: number, servername?: string): Promise<Flow> {
    const open = this.existing(transport, address, port, servername);
    if (open) return open;
    if (transport === "udp") {
      const socket = this.udp[0];
      if (!socket)
        throw new SwitchboardError("service-unavailable", "no udp: listener in sip.listen to send from");
      return this.udpFlow(socket, { address, port });
    }
    if (transport === "ws" || transport === "wss") {
      throw new SwitchboardError(
        "recipient-unavailable",
        `no open ${transport} connection to ${address}:${port}`,
      );
    }
    const socket = await this.dial(transport, address, port, servername);
    return this.attach(socket, transport, true, transport === "tls" ? servername : undefined);
  }

  /** `servername`: the domain the TLS server must prove (SNI and certificate check); else the address. */
  private dial(
    transport: "tcp" | "tls",
    address: string,
    port: number,
    servername?: string,
  ): Promise<Socket> {
    const timeout = this.options.connectTimeoutMs ?? 5_000;
    return new Promise((resolve, reject) => {
      const socket: Socket | TLSSocket =
        transport === "tcp"
          ? netConnect({ host: address, port })
          : tlsConnect({
              host: address,
              port,
              minVersion: this.minVersion,
              ...(this.tlsContext?.ca ? { ca: this.tlsContext.ca } : {}),
              ...(servername ? { servername } : isIP(address) === 0 ? { servername: address } : {}),
            });
      const ready = transport === "tcp" ? "connect" : "secureConnect";
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new SwitchboardError(
            "remote-server-timeout",
            `${transport} connection to ${address}:${port} timed out`,
          ),
        );
      }, timeout);
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(socket);
      });
      socket.once("error", (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(
          new SwitchboardError(
            "recipient-unavailable",
            `${transport} connection to ${address}:${port}: ${err.message}`,
          ),
        );
      });
    });
  }

  private open(kind: TransportName, host: string, port: number): Promise<Listener> {
    switch (kind) {
      case "udp":
        return this.listenUdp(host, port);
      case "tcp":
        return this.listenStream(
          "tcp",
          createServer((socket) => this.attach(socket, "tcp", false)),
          host,
          port,
        );
      case "tls":
        return this.listenStream(
          "tls",
          createTlsServer({ ...this.serverTls }, (socket) => this.attach(socket, "tls", false)),
          host,
          port,
        );
      case "ws":
      case "wss":
        return this.listenWebSocket(kind, host, port);
    }
  }

  /** Emits `sent` after each successful send on the flow (wire tracing), when anyone listens. */
  private traced(flow: Flow): Flow {
    // Wire tracing listens from the start or not at all: without it a send is not wrapped (a UDP
    // flow is made for every datagram).
    if (this.listenerCount("sent") === 0) return flow;
    const send = flow.send.bind(flow);
    flow.send = async (out) => {
      await send(out);
      if (this.listenerCount("sent") > 0) this.emit("sent", out, flow);
    };
    return flow;
  }

  private udpFlow(socket: UdpSocket, remote: { address: string; port: number }): Flow {
    return this.traced({
      transport: "udp",
      remote,
      reliable: false,
      send: (out) =>
        new Promise((resolve, reject) =>
          socket.send(Buffer.from(out, "utf8"), remote.port, remote.address, (err) =>
            err ? reject(err) : resolve(),
          ),
        ),
    });
  }

  private listenUdp(host: string, port: number): Promise<Listener> {
    // A burst of requests (a proxy relaying many phones at once) must not overflow the kernel's
    // default ~200 KB receive queue, where datagrams are dropped before anyone sees them; the
    // kernel caps this at net.core.rmem_max.
    const socket = createSocket({
      type: host.includes(":") ? "udp6" : "udp4",
      recvBufferSize: UDP_BUFFER_BYTES,
      sendBufferSize: UDP_BUFFER_BYTES,
    });
    socket.on("message", (datagram, rinfo) => {
      const text = frameDatagram(datagram, this.limits);
      const remote = { address: rinfo.address, port: rinfo.port };
      if (text === null) {
        this.emit("problem", "unusable datagram dropped", `${rinfo.address}:${rinfo.port}`);
        const head = datagramHead(datagram, this.limits);
        if (head !== null) this.emit("unframed", head, this.udpFlow(socket, remote));
        return;
      }
      this.emit("message", text, this.udpFlow(socket, remote), datagram);
    });
    socket.on("error", (err) => this.emit("problem", `udp socket: ${err.message}`, `${host}:${port}`));
    this.udp.push(socket);
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.off("error", reject);
        resolve({
          transport: "udp",
          host,
          port: socket.address().port,
          close: () => new Promise<void>((done) => socket.close(() => done())),
        });
      });
    });
  }

  private listenStream(
    transport: TransportName,
    server: Server,
    host: string,
    port: number,
  ): Promise<Listener> {
    server.on("error", (err) =>
      this.emit("problem", `${transport} server: ${err.message}`, `${host}:${port}`),
    );
    server.on("tlsClientError", (err: Error, socket: Socket) =>
      this.emit("problem", `tls handshake: ${err.message}`, `${socket.remoteAddress}:${socket.remotePort}`),
    );
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        const address = server.address();
        resolve({
          transport,
          host,
          port: typeof address === "object" && address ? address.port : port,
          close: () => new Promise<void>((done) => server.close(() => done())),
        });
      });
    });
  }

  /** A TCP or TLS connection, accepted or dialled: framed by Content-Length (RFC 3261 §18.3). */
  private attach(socket: Socket, transport: "tcp" | "tls", outgoing: boolean, servername?: string): Flow {
    const remote = { address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    const key = `${transport}|${remote.address}|${remote.port}${servername ? `|${servername}` : ""}`;
    const framer = new StreamFramer(this.limits);
    const flow: Flow = this.traced({
      transport,
      remote,
      reliable: true,
      ...(transport === "tls" && !outgoing && this.options.tls?.clientCa
        ? { clientCertified: (socket as TLSSocket).authorized }
        : {}),
      send: (out) =>
        new Promise((resolve, reject) => {
          if (socket.destroyed) {
            reject(new FlowClosedError(transport, remote));
            return;
          }
          socket.write(out, "utf8", (err) => (err ? reject(err) : resolve()));
        }),
    });
    this.flows.set(key, { flow, close: () => socket.destroy() });
    if (outgoing) {
      // Our own connections close when idle; a peer's connection is the peer's to close.
      socket.setTimeout(this.options.idleTimeoutMs ?? 300_000, () => socket.destroy());
    }
    socket.on("data", (chunk: Buffer) => {
      let framed: ReturnType<StreamFramer["push"]>;
      try {
        framed = framer.push(chunk);
      } catch (err) {
        // A stream we cannot frame cannot be resynchronised: close it (RFC 3261 §18.3).
        this.emit(
          "problem",
          err instanceof FramingError ? err.message : String(err),
          `${remote.address}:${remote.port}`,
        );
        socket.destroy();
        return;
      }
      for (let i = 0; i < framed.keepalives; i++) socket.write("\r\n"); // RFC 5626 §3.5.1 pong
      framed.messages.forEach((text, i) =>
        this.emit("message", text, flow, framed.bytes[i] ?? Buffer.alloc(0)),
      );
    });
    socket.on("error", () => undefined); // a reset peer just goes away
    socket.on("close", () => {
      if (this.flows.get(key)?.flow === flow) this.flows.delete(key);
    });
    return flow;
  }

  /** RFC 7118 §4.1: the handshake must offer the `sip` subprotocol, or it is refused. */
  private listenWebSocket(transport: "ws" | "wss", host: string, port: number): Promise<Listener> {
    const http: HttpServer =
      transport === "ws" ? createHttpServer() : createHttpsServer({ ...this.serverTls });
    http.on("request", (_req, res) => {
      res.writeHead(426, { Upgrade: "websocket", Connection: "close" }).end("SIP over WebSocket only\n");
    });
    const wss = new WebSocketServer({
      server: http,
      maxPayload: this.limits.maxHeadBytes + this.limits.maxBodyBytes,
      verifyClient: (info: { req: IncomingMessage }) =>
        (info.req.headers["sec-websocket-protocol"] ?? "")
          .split(",")
          .some((p) => p.trim().toLowerCase() === "sip"),
      handleProtocols: (protocols) => [...protocols].find((p) => p.toLowerCase() === "sip") ?? false,
    });
    wss.on("connection", (ws, req) => this.attachWebSocket(ws, req, transport));
    wss.on("error", (err) => this.emit("problem", `${transport} server: ${err.message}`, `${host}:${port}`));
    return this.listenStream(transport, http, host, port).then((listener) => ({
      ...listener,
      close: async () => {
        for (const client of wss.clients) client.terminate();
        await new Promise<void>((done) => wss.close(() => done()));
        await listener.close();
      },
    }));
  }

  private attachWebSocket(ws: WebSocket, req: IncomingMessage, transport: "ws" | "wss"): void {
    const remote = { address: req.socket.remoteAddress ?? "", port: req.socket.remotePort ?? 0 };
    const key = `${transport}|${remote.address}|${remote.port}`;
    const flow: Flow = this.traced({
      transport,
      remote,
      reliable: true,
      ...(transport === "wss" && this.options.tls?.clientCa
        ? { clientCertified: (req.socket as TLSSocket).authorized }
        : {}),
      send: (out) =>
        new Promise((resolve, reject) => {
          if (ws.readyState !== ws.OPEN) {
            reject(new FlowClosedError(transport, remote));
            return;
          }
          // RFC 7118 §5.4: text frames for UTF-8 messages.
          ws.send(out, { binary: false }, (err) => (err ? reject(err) : resolve()));
        }),
    });
    this.flows.set(key, { flow, close: () => ws.terminate() });
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      // RFC 7118 §5.2: each WebSocket message is exactly one SIP message.
      const text = frameDatagram(bytes, this.limits);
      if (text === null) {
        this.emit("problem", `unusable ${transport} message dropped`, `${remote.address}:${remote.port}`);
        return;
      }
      this.emit("message", text, flow, bytes);
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      if (this.flows.get(key)?.flow === flow) this.flows.delete(key);
    });
  }

  async close(): Promise<void> {
    for (const { close } of this.flows.values()) close();
    this.flows.clear();
    await Promise.all(this.bound.map((l) => l.close()));
    this.bound.length = 0;
    this.udp.length = 0;
  }
}

/**
 * The head of a datagram that could not be framed, without its Content-Length line(s), when the
 * head itself is whole and within the limits (so only the body's length was wrong); else null.
 */
function datagramHead(datagram: Buffer, limits: FramingLimits): string | null {
  const end = datagram.indexOf("\r\n\r\n");
  if (end < 0 || end > limits.maxHeadBytes) return null;
  const lines = datagram.subarray(0, end).toString("utf8").split("\r\n");
  return lines.filter((line) => !/^(content-length|l)\s*:/i.test(line)).join("\r\n");
}
