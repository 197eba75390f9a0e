// Loopback helpers: free ports and temporary directories for harness servers.
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { createSocket } from "node:dgram";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const LOOPBACK = "127.0.0.1";

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("no port"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => resolve(false));
    socket.bind(port, LOOPBACK, () => socket.close(() => resolve(true)));
  });
}

function tcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, LOOPBACK, () => server.close(() => resolve(true)));
  });
}

/** Ports this process has handed out (and port + 1 of `withNext` ones). */
const handedOut = new Set<number>();

/**
 * A loopback port free for TCP and, when `udp` is set, for UDP too (DNS, SIP). `withNext` also
 * wants port + 1 free (for servers that bind it themselves, like baresip's TLS listener), and
 * `alsoFree` port + that offset (a Redis Cluster node's bus port, port + 10000).
 */
export async function freePort(
  options: { udp?: boolean; withNext?: boolean; alsoFree?: number } = {},
): Promise<number> {
  // Ports that must be free besides the one returned, as offsets from it.
  const others = [
    ...(options.withNext ? [1] : []),
    ...(options.alsoFree !== undefined ? [options.alsoFree] : []),
  ];
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freeTcpPort();
    // A port is free again as soon as we close it, so the kernel may hand it out twice before
    // anyone binds it (seen in CI: a phone and the bridge both given one port). Never reuse one.
    if (handedOut.has(port) || others.some((offset) => handedOut.has(port + offset))) continue;
    if (options.udp && !(await udpPortFree(port))) continue;
    let othersFree = true;
    for (const offset of others)
      if (port + offset > 65535 || !(await tcpPortFree(port + offset))) othersFree = false;
    if (!othersFree) continue;
    handedOut.add(port);
    for (const offset of others) handedOut.add(port + offset);
    return port;
  }
  throw new Error("could not find a free loopback port for TCP and UDP after 50 attempts");
}

export interface TempDir {
  path: string;
  file(name: string): string;
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `switchboard-${prefix}-`));
  return {
    path,
    file: (name) => join(path, name),
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

/**
 * A TCP connection path the test can cut: listens on a free loopback port and forwards each
 * connection to `target`. `cut()` resets every connection and refuses new ones (a network
 * partition between one client and its server); `mend()` lets them through again.
 */
export class TcpCable {
  private readonly sockets = new Set<Socket>();
  private open = true;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<TcpCable> {
    const cable: { current?: TcpCable } = {};
    const server = createServer((client) => {
      const self = cable.current;
      if (!self?.open) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(target, LOOPBACK);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        self.sockets.add(a);
        a.on("error", () => b.destroy());
        a.on("close", () => {
          self.sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("tcp cable: no port");
    cable.current = new TcpCable(server, address.port);
    return cable.current;
  }

  cut(): void {
    this.open = false;
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  mend(): void {
    this.open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
