// A TCP relay between the bridge and Prosody's component port that timestamps what the bridge
// writes: how many times a marker (e.g. "</presence>") went by, and when the first and last did.
// It forwards every byte unchanged both ways.
import { connect, createServer, type Server, type Socket } from "node:net";

export class ComponentTap {
  count = 0;
  first = 0;
  last = 0;
  private marker = "</presence>";
  private tail = "";
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async start(targetPort: number): Promise<ComponentTap> {
    const server = createServer();
    const tap = new ComponentTap(server);
    server.on("connection", (inbound) => {
      const outbound = connect({ host: "127.0.0.1", port: targetPort });
      tap.sockets.add(inbound);
      tap.sockets.add(outbound);
      inbound.setNoDelay(true);
      outbound.setNoDelay(true);
      inbound.on("data", (chunk: Buffer) => {
        tap.scan(chunk.toString("latin1"));
        if (!outbound.write(chunk)) inbound.pause();
      });
      outbound.on("drain", () => inbound.resume());
      outbound.pipe(inbound);
      const close = (): void => {
        inbound.destroy();
        outbound.destroy();
        tap.sockets.delete(inbound);
        tap.sockets.delete(outbound);
      };
      inbound.on("close", close);
      outbound.on("close", close);
      inbound.on("error", close);
      outbound.on("error", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return tap;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  /** Counts `marker` from now on. */
  reset(marker: string): void {
    this.marker = marker;
    this.count = 0;
    this.first = 0;
    this.last = 0;
    this.tail = "";
  }

  private scan(text: string): void {
    const window = this.tail + text;
    let from = 0;
    let found = 0;
    for (;;) {
      const at = window.indexOf(this.marker, from);
      if (at < 0) break;
      found++;
      from = at + this.marker.length;
    }
    if (found > 0) {
      const now = performance.now();
      if (this.count === 0) this.first = now;
      this.count += found;
      this.last = now;
    }
    // Keep what could be the start of a marker cut by the chunk boundary (and was not counted).
    this.tail = window.slice(Math.max(from, window.length - this.marker.length + 1));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
