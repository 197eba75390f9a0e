// SIP transports from `sip.listen` (RFC 3261 §18): UDP (one message per datagram) and TCP (framed
// by Content-Length). Each message comes with its flow, the way back to the sender: the source
// address and port over UDP (RFC 3581 symmetric response), the same connection over TCP.
// TLS and WebSocket (RFC 7118) are refused at start-up until they are built.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { EventEmitter } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { SwitchboardError } from "../../src/domain/errors.js";
import { frameDatagram, FramingError, StreamFramer, type FramingLimits, DEFAULT_LIMITS } from "./framing.js";
import { splitHostPort } from "./listen-probe.js";

export interface Flow {
  transport: "udp" | "tcp";
  remote: { address: string; port: number };
  /** Reliable transports need no retransmissions (RFC 3261 §17). */
  reliable: boolean;
  send(text: string): Promise<void>;
}

export interface TransportEvents {
  message: [text: string, flow: Flow];
  /** A peer sent something unusable (dropped) or a socket failed; logged, never thrown. */
  problem: [reason: string, remote: string];
}

export class SipTransports extends EventEmitter<TransportEvents> {
  private readonly udp: UdpSocket[] = [];
  private readonly tcp: Server[] = [];
  private readonly connections = new Set<Socket>();

  private constructor(private readonly limits: FramingLimits) {
    super();
  }

  static async listen(
    listen: readonly string[],
    limits: FramingLimits = DEFAULT_LIMITS,
  ): Promise<SipTransports> {
    const transports = new SipTransports(limits);
    try {
      for (const [i, entry] of listen.entries()) {
        const colon = entry.indexOf(":");
        const kind = entry.slice(0, colon).toLowerCase();
        const { host, port } = splitHostPort(entry.slice(colon + 1));
        if (kind === "udp") await transports.listenUdp(host, port);
        else if (kind === "tcp") await transports.listenTcp(host, port);
        else
          throw new SwitchboardError(
            "feature-not-implemented",
            `sip.listen[${i}]: ${kind} is not built yet (udp and tcp are)`,
          );
      }
    } catch (err) {
      await transports.close();
      throw err;
    }
    return transports;
  }

  /**
   * Sends from the first UDP listen socket, so that responses (and retransmissions) come back to
   * the address in our Via; null when there is no UDP listener.
   */
  udpSender(): { sentBy: string; send(host: string, port: number, text: string): Promise<void> } | null {
    const socket = this.udp[0];
    if (!socket) return null;
    const local = socket.address();
    const host = local.address.includes(":") ? `[${local.address}]` : local.address;
    return {
      sentBy: `${host}:${local.port}`,
      send: (targetHost, targetPort, text) =>
        new Promise((resolve, reject) =>
          socket.send(Buffer.from(text, "utf8"), targetPort, targetHost, (err) =>
            err ? reject(err) : resolve(),
          ),
        ),
    };
  }

  /** The bound addresses, e.g. for tests that listened on port 0. */
  addresses(): { transport: "udp" | "tcp"; port: number }[] {
    return [
      ...this.udp.map((s) => ({ transport: "udp" as const, port: s.address().port })),
      ...this.tcp.map((s) => {
        const address = s.address();
        return { transport: "tcp" as const, port: typeof address === "object" && address ? address.port : 0 };
      }),
    ];
  }

  private listenUdp(host: string, port: number): Promise<void> {
    const socket = createSocket({ type: host.includes(":") ? "udp6" : "udp4" });
    socket.on("message", (datagram, rinfo) => {
      const text = frameDatagram(datagram, this.limits);
      const remote = { address: rinfo.address, port: rinfo.port };
      if (text === null) {
        this.emit("problem", "unusable datagram dropped", `${rinfo.address}:${rinfo.port}`);
        return;
      }
      this.emit("message", text, {
        transport: "udp",
        remote,
        reliable: false,
        send: (out) =>
          new Promise((resolve, reject) =>
            socket.send(Buffer.from(out, "utf8"), rinfo.port, rinfo.address, (err) =>
              err ? reject(err) : resolve(),
            ),
          ),
      });
    });
    socket.on("error", (err) => this.emit("problem", `udp socket: ${err.message}`, `${host}:${port}`));
    this.udp.push(socket);
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
  }

  private listenTcp(host: string, port: number): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    server.on("error", (err) => this.emit("problem", `tcp server: ${err.message}`, `${host}:${port}`));
    this.tcp.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  private accept(socket: Socket): void {
    this.connections.add(socket);
    const remote = { address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    const framer = new StreamFramer(this.limits);
    const flow: Flow = {
      transport: "tcp",
      remote,
      reliable: true,
      send: (out) =>
        new Promise((resolve, reject) => socket.write(out, "utf8", (err) => (err ? reject(err) : resolve()))),
    };
    socket.on("data", (chunk: Buffer) => {
      let framed: { messages: string[]; keepalives: number };
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
      for (const text of framed.messages) this.emit("message", text, flow);
    });
    socket.on("error", () => undefined); // a reset peer just goes away
    socket.on("close", () => this.connections.delete(socket));
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await Promise.all([
      ...this.udp.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      ...this.tcp.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    ]);
  }
}
