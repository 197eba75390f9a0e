// Redis for tests: append-only persistence on (as the durable message queue requires), loopback
// only, no RDB snapshots. Each test takes its own key prefix.
import { createClient } from "redis";
import { freePort, LOOPBACK, tempDir, type TempDir } from "./net.js";
import { ManagedProcess } from "./process.js";

let prefixCounter = 0;

export class RedisServer {
  private constructor(
    readonly port: number,
    private readonly dir: TempDir,
    readonly process: ManagedProcess,
  ) {}

  get url(): string {
    return `redis://${LOOPBACK}:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const dir = tempDir("redis");
    return RedisServer.startIn(dir, await freePort());
  }

  private static async startIn(dir: TempDir, port: number): Promise<RedisServer> {
    const proc = new ManagedProcess({
      name: "redis-server",
      command: "redis-server",
      args: [
        "--port",
        String(port),
        "--bind",
        LOOPBACK,
        "--dir",
        dir.path,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always", // so a kill -9 loses nothing that Redis acknowledged
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
      ],
      logFile: dir.file("redis.log"),
    });
    const server = new RedisServer(port, dir, proc);
    await proc.waitReady(async () => (await server.command("PING")) === "PONG");
    return server;
  }

  /** A key prefix no other test uses, so tests sharing one server stay isolated. */
  static newPrefix(label = "t"): string {
    return `sbtest:${label}:${process.pid}:${++prefixCounter}:`;
  }

  /** One command on a short-lived connection (for probes and assertions). */
  async command(...args: string[]): Promise<unknown> {
    const client = createClient({
      url: this.url,
      socket: { connectTimeout: 1_000, reconnectStrategy: false },
    });
    client.on("error", () => undefined); // reported through the rejected promise below
    await client.connect();
    try {
      return await client.sendCommand(args);
    } finally {
      client.destroy();
    }
  }

  /** Restarts on the same port and data directory (for persistence and fault tests). */
  async restart(options: { kill?: boolean } = {}): Promise<RedisServer> {
    await (options.kill ? this.process.kill() : this.process.stop());
    return RedisServer.startIn(this.dir, this.port);
  }

  /**
   * Stops the server (kill -9 with `kill`) and keeps its data directory, for outage tests;
   * `restart()` brings it back on the same port with the same data.
   */
  async halt(options: { kill?: boolean } = {}): Promise<void> {
    await (options.kill ? this.process.kill() : this.process.stop());
  }

  async stop(): Promise<void> {
    await this.process.stop();
    this.dir.remove();
  }
}
