// Redis for tests: append-only persistence on (as the durable message queue requires), loopback
// only, no RDB snapshots. Each test takes its own key prefix. Besides a single server: a Sentinel set
// (a primary, a replica and three `redis-sentinel` processes) and a Cluster of three primaries.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "redis";
import type { RedisTarget } from "../../components/redis/redis-connection.js";
import { freePort, LOOPBACK, tempDir, type TempDir } from "./net.js";
import { HarnessError, ManagedProcess } from "./process.js";

const execFileAsync = promisify(execFile);

let prefixCounter = 0;

export class RedisServer {
  private constructor(
    readonly port: number,
    private readonly dir: TempDir,
    readonly process: ManagedProcess,
    private readonly extra: string[] = [],
  ) {}

  get url(): string {
    return `redis://${LOOPBACK}:${this.port}`;
  }

  get address(): string {
    return `${LOOPBACK}:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const dir = tempDir("redis");
    return RedisServer.startIn(dir, await freePort());
  }

  /** A server started with further redis-server arguments (a replica's, a cluster node's). */
  static async startWith(args: string[], port?: number): Promise<RedisServer> {
    const dir = tempDir("redis");
    return RedisServer.startIn(dir, port ?? (await freePort()), args);
  }

  private static async startIn(dir: TempDir, port: number, extra: string[] = []): Promise<RedisServer> {
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
        ...extra,
      ],
      logFile: dir.file("redis.log"),
    });
    const server = new RedisServer(port, dir, proc, extra);
    await proc.waitReady(async () => (await server.command("PING")) === "PONG");
    return server;
  }

  /** A key prefix no other test uses, so tests sharing one server stay isolated. */
  static newPrefix(label = "t"): string {
    return `sbtest:${label}:${process.pid}:${++prefixCounter}:`;
  }

  /** One command on a short-lived connection (for probes and assertions). */
  command(...args: string[]): Promise<unknown> {
    return commandAt(this.port, ...args);
  }

  /** Restarts on the same port and data directory (for persistence and fault tests). */
  async restart(options: { kill?: boolean } = {}): Promise<RedisServer> {
    await (options.kill ? this.process.kill() : this.process.stop());
    return RedisServer.startIn(this.dir, this.port, this.extra);
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

/** `SENTINEL ...` or any command to a server at host:port, on a short-lived connection. */
async function commandAt(port: number, ...args: string[]): Promise<unknown> {
  const client = createClient({
    socket: { host: LOOPBACK, port, connectTimeout: 1_000, reconnectStrategy: false },
  });
  client.on("error", () => undefined); // reported through the rejected promise below
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      if (await condition()) return;
    } catch (err) {
      last = ` (${err instanceof Error ? err.message : String(err)})`;
    }
    if (Date.now() > deadline) throw new HarnessError(`${what}: not within ${timeoutMs} ms${last}`);
    await sleep(100);
  }
}

/**
 * Redis Sentinel: a primary and a replica (both append-only, fsync always), watched by three
 * `redis-sentinel` processes (quorum 2) that call the primary down after 1 s without answers.
 */
export class RedisSentinelSet {
  static readonly MASTER_NAME = "switchboard";

  private constructor(
    /** The servers, the first one the primary at the start. */
    readonly servers: RedisServer[],
    readonly sentinels: { port: number; process: ManagedProcess }[],
    private readonly dir: TempDir,
  ) {}

  static async start(): Promise<RedisSentinelSet> {
    const started: { stop(): Promise<void> }[] = [];
    const dir = tempDir("sentinel");
    try {
      // A replica's first sync at once (not after the 5 s Redis waits for more replicas to join).
      const sync = ["--repl-diskless-sync-delay", "0"];
      const primary = await RedisServer.startWith(sync);
      started.push(primary);
      const replica = await RedisServer.startWith([...sync, "--replicaof", LOOPBACK, String(primary.port)]);
      started.push(replica);
      await until("the replica to be in sync", async () =>
        /master_link_status:up/.test(String(await replica.command("INFO", "replication"))),
      );
      const sentinels: { port: number; process: ManagedProcess }[] = [];
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        const conf = dir.file(`sentinel-${i}.conf`);
        // redis-sentinel rewrites its file (what it learns: replicas, other sentinels, epochs).
        writeFileSync(
          conf,
          [
            `port ${port}`,
            `bind ${LOOPBACK}`,
            `dir ${dir.path}`,
            "daemonize no",
            `sentinel monitor ${RedisSentinelSet.MASTER_NAME} ${LOOPBACK} ${primary.port} 2`,
            `sentinel down-after-milliseconds ${RedisSentinelSet.MASTER_NAME} 1000`,
            `sentinel failover-timeout ${RedisSentinelSet.MASTER_NAME} 10000`,
            `sentinel parallel-syncs ${RedisSentinelSet.MASTER_NAME} 1`,
            "",
          ].join("\n"),
        );
        const proc = new ManagedProcess({
          name: `redis-sentinel ${i}`,
          command: "redis-sentinel",
          args: [conf],
          logFile: dir.file(`sentinel-${i}.log`),
        });
        started.push({ stop: () => proc.stop() });
        await proc.waitReady(async () => (await commandAt(port, "PING")) === "PONG");
        sentinels.push({ port, process: proc });
      }
      const set = new RedisSentinelSet([primary, replica], sentinels, dir);
      // A failover needs the sentinels to know each other and the replica: they learn it from the
      // hello messages on the primary (every 2 s) and from INFO (every 10 s, or at once on start).
      await until("sentinels know each other and the replica", async () => {
        for (const s of sentinels) {
          const others = (await commandAt(
            s.port,
            "SENTINEL",
            "SENTINELS",
            RedisSentinelSet.MASTER_NAME,
          )) as unknown[];
          const replicas = (await commandAt(
            s.port,
            "SENTINEL",
            "REPLICAS",
            RedisSentinelSet.MASTER_NAME,
          )) as unknown[];
          if (others.length < 2 || replicas.length < 1) return false;
        }
        return true;
      });
      return set;
    } catch (err) {
      for (const server of started.reverse()) await server.stop();
      dir.remove();
      throw err;
    }
  }

  /** The store config for it. */
  get target(): Extract<RedisTarget, { sentinel: unknown }> {
    return {
      sentinel: {
        masterName: RedisSentinelSet.MASTER_NAME,
        sentinels: this.sentinels.map((s) => `${LOOPBACK}:${s.port}`),
      },
    };
  }

  /** The primary as the first sentinel names it. */
  async primaryPort(): Promise<number> {
    const [, port] = (await commandAt(
      this.sentinels[0]?.port ?? 0,
      "SENTINEL",
      "GET-MASTER-ADDR-BY-NAME",
      RedisSentinelSet.MASTER_NAME,
    )) as [string, string];
    return Number(port);
  }

  /** The server that is the primary now. */
  async primary(): Promise<RedisServer> {
    const port = await this.primaryPort();
    return this.servers.find((s) => s.port === port) ?? assertNever(`no server on port ${port}`);
  }

  /**
   * Fails the primary over to the replica and waits until every sentinel names the new primary
   * and it takes writes. `kill`: kill -9 the primary instead of asking the sentinels (SENTINEL
   * FAILOVER); the sentinels notice within down-after-milliseconds. Returns the new primary.
   */
  async failover(options: { kill?: boolean } = {}): Promise<RedisServer> {
    const before = await this.primaryPort();
    if (options.kill) await (await this.primary()).halt({ kill: true });
    else await commandAt(this.sentinels[0]?.port ?? 0, "SENTINEL", "FAILOVER", RedisSentinelSet.MASTER_NAME);
    await until(
      "the sentinels to name a new primary",
      async () => {
        for (const s of this.sentinels) {
          const [, port] = (await commandAt(
            s.port,
            "SENTINEL",
            "GET-MASTER-ADDR-BY-NAME",
            RedisSentinelSet.MASTER_NAME,
          )) as [string, string];
          if (Number(port) === before) return false;
        }
        const role = (await commandAt(await this.primaryPort(), "ROLE")) as unknown[];
        return role[0] === "master";
      },
      30_000,
    );
    return this.primary();
  }

  async stop(): Promise<void> {
    for (const s of this.sentinels) await s.process.stop();
    for (const server of this.servers) await server.stop();
    this.dir.remove();
  }
}

/** A Redis Cluster of three primaries (no replicas), slots spread evenly, on loopback. */
export class RedisClusterSet {
  private constructor(readonly servers: RedisServer[]) {}

  static async start(size = 3): Promise<RedisClusterSet> {
    const servers: RedisServer[] = [];
    try {
      for (let i = 0; i < size; i++) {
        // The cluster bus listens on port + 10000.
        const port = await freePort({ alsoFree: 10_000 });
        servers.push(
          await RedisServer.startWith(
            [
              "--cluster-enabled",
              "yes",
              "--cluster-config-file",
              "nodes.conf",
              "--cluster-node-timeout",
              "2000",
            ],
            port,
          ),
        );
      }
      // Slots spread over the three, each node told of the others (CLUSTER ADDSLOTS and MEET).
      await execFileAsync(
        "redis-cli",
        ["--cluster", "create", ...servers.map((s) => s.address), "--cluster-replicas", "0", "--cluster-yes"],
        { timeout: 30_000 },
      ).catch((err: unknown) => {
        throw new HarnessError(`redis-cli --cluster create failed: ${String(err)}`);
      });
      const cluster = new RedisClusterSet(servers);
      await until("every node to report cluster_state:ok", async () => {
        for (const server of servers) {
          const info = String(await server.command("CLUSTER", "INFO"));
          if (!/cluster_state:ok/.test(info)) return false;
        }
        return true;
      });
      return cluster;
    } catch (err) {
      for (const server of servers.reverse()) await server.stop();
      throw err;
    }
  }

  get nodes(): string[] {
    return this.servers.map((s) => s.address);
  }

  /** The store config for it. */
  get target(): Extract<RedisTarget, { cluster: unknown }> {
    return { cluster: { nodes: this.nodes } };
  }

  /** Every key on every node (for assertions). */
  async keys(): Promise<string[]> {
    const all: string[] = [];
    for (const server of this.servers) all.push(...((await server.command("KEYS", "*")) as string[]));
    return all.sort();
  }

  async stop(): Promise<void> {
    for (const server of this.servers) await server.stop();
  }
}

function assertNever(reason: string): never {
  throw new HarnessError(reason);
}
