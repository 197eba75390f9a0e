// The one place Redis connections are made, for every Redis user of the bridge (presence store,
// message queue, component lease, `switchboard check`): a single server (`store.url`), a Sentinel
// set (`store.sentinel`: node-redis follows the primary the sentinels name), or a Cluster
// (`store.cluster`: node-redis routes each command to the primary that holds its key's slot).
//
// Whatever the kind, a connection offers the node-redis command API (`commands`), one readiness
// (`isReady` and the events `ready`, `error`, `reconnecting`, `end`, as a node-redis client emits
// them), and separate pub/sub connections (`subscriber()`). Multi-key commands and scripts must
// name keys that share a hash tag (docs/store.md): in a Cluster they must be in one slot.
//
// Pub/sub: PUBLISH (also inside a script) reaches every node of a Cluster (the cluster bus relays
// it), so a subscriber listens on any one node, and moves to another when that one fails; with
// Sentinel it listens on the current primary and moves with it at a failover. While it moves,
// announcements are missed: it reports itself down (`reconnecting`) and up again (`ready`), and
// its user reads again what it keeps (the presence store's readiness, see src/app/bridge.ts).
import { EventEmitter } from "node:events";
import {
  createClient,
  createCluster,
  createSentinel,
  type RedisClientType,
  type RedisClusterType,
  type RedisScripts,
  type RedisSentinelType,
} from "redis";

/** No modules, functions, scripts or type mapping. */
type None = Record<never, never>;

/** Where Redis is: the config's `store.url`, `store.sentinel` or `store.cluster` (exactly one). */
export type RedisTarget =
  | { url: string }
  | {
      sentinel: {
        /** The name the sentinels monitor the primary under (sentinel.conf `sentinel monitor <name>`). */
        masterName: string;
        /** The sentinels, as host:port. */
        sentinels: string[];
        /** Password of the Redis servers (primary and replicas). */
        password?: string;
        /** Password of the sentinels (sentinel.conf `requirepass`). */
        sentinelPassword?: string;
      };
    }
  | {
      cluster: {
        /** Some nodes of the cluster, as host:port; the rest is discovered from them. */
        nodes: string[];
        /** Password of the cluster's nodes. */
        password?: string;
      };
    };

export interface RedisConnectionOptions<S extends RedisScripts = None> {
  /** Scripts (node-redis `defineScript`) callable as commands; their keys must share a hash tag. */
  scripts?: S;
  /** How long a connection attempt may take (default 5000 ms). */
  connectTimeoutMs?: number;
  /** How long one command may wait for its reply (default 5000 ms; 0: no limit, the caller bounds it). */
  commandTimeoutMs?: number;
  /** Longest wait between reconnection attempts (default 5000 ms; they grow by 200 ms each). */
  maxReconnectDelayMs?: number;
  /** false: a lost or failed connection is not tried again (one-shot uses such as a probe). */
  reconnect?: boolean;
}

/** The node-redis commands (and the connection's scripts), whatever the kind of connection. */
export type RedisCommands<S extends RedisScripts = None> = Omit<
  RedisClientType<None, None, S, 2, None>,
  keyof EventEmitter | ClientOnlyMember
>;
/** Members of a node-redis client that are about its one connection, not commands. */
type ClientOnlyMember =
  | "connect"
  | "close"
  | "destroy"
  | "disconnect"
  | "quit"
  | "QUIT"
  | "duplicate"
  | "isOpen"
  | "isReady"
  | "isPubSubActive"
  | "sendCommand"
  | "multi"
  | "MULTI"
  | "SUBSCRIBE"
  | "subscribe"
  | "UNSUBSCRIBE"
  | "unsubscribe"
  | "PSUBSCRIBE"
  | "pSubscribe"
  | "PUNSUBSCRIBE"
  | "pUnsubscribe"
  | "SSUBSCRIBE"
  | "sSubscribe"
  | "SUNSUBSCRIBE"
  | "sUnsubscribe"
  | "WATCH"
  | "watch"
  | "UNWATCH"
  | "unwatch"
  | "SELECT"
  | "select"
  | "scanIterator"
  | "hScanIterator"
  | "hScanValuesIterator"
  | "hScanNoValuesIterator"
  | "sScanIterator"
  | "zScanIterator"
  | "MONITOR"
  | "monitor"
  | "RESET"
  | "reset"
  | "ref"
  | "unref"
  | "withTypeMapping"
  | "withCommandOptions"
  | "withAbortSignal"
  | "asap"
  | "executeIsolated"
  | "executeScript";

export interface RedisConnectionEvents {
  /** Commands can be sent (again). */
  ready: [];
  /** A connection failed or was lost; node-redis tries again by itself. */
  error: [err: Error];
  /** Down, trying again. */
  reconnecting: [];
  /** Closed for good. */
  end: [];
}

export interface RedisConnection<S extends RedisScripts = None> extends EventEmitter<RedisConnectionEvents> {
  /** The node-redis command API; in a Cluster each command goes to the primary of its key's slot. */
  readonly commands: RedisCommands<S>;
  readonly isReady: boolean;
  /** "single", "sentinel" or "cluster". */
  readonly kind: RedisKind;
  /** Where it connects, without passwords, for logs and errors. */
  readonly description: string;
  connect(): Promise<void>;
  /**
   * Waits until `replicas` replicas have every write this connection sent so far (Redis WAIT,
   * sent to the primary that holds `key`); returns how many did within `timeoutMs`.
   */
  waitForReplicas(key: string, replicas: number, timeoutMs: number): Promise<number>;
  /** One command by its words, on the primary that holds `key` (or any node when absent). */
  sendCommand(args: string[], key?: string): Promise<unknown>;
  /** A new pub/sub connection to the same Redis (not connected yet). */
  subscriber(): RedisSubscriber;
  /** Closes, letting replies in flight arrive. */
  close(): Promise<void>;
  /** Closes at once, failing what is in flight. */
  destroy(): void;
}

export interface RedisSubscriber extends EventEmitter<RedisConnectionEvents> {
  readonly isReady: boolean;
  connect(): Promise<void>;
  /** Listens to a channel (PUBLISH); kept across reconnections and moves. */
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}

export type RedisKind = "single" | "sentinel" | "cluster";

const DEFAULT_TIMEOUT_MS = 5_000;

/** The target named by a store config section, or undefined when it names none (in-memory store). */
export function redisTargetOf(store: {
  url?: string | undefined;
  sentinel?: Extract<RedisTarget, { sentinel: unknown }>["sentinel"] | undefined;
  cluster?: Extract<RedisTarget, { cluster: unknown }>["cluster"] | undefined;
}): RedisTarget | undefined {
  if (store.url !== undefined) return { url: store.url };
  if (store.sentinel !== undefined) return { sentinel: store.sentinel };
  if (store.cluster !== undefined) return { cluster: store.cluster };
  return undefined;
}

/** `host:port` (IPv6 in brackets) as node-redis wants it. */
export function parseNode(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  if (!match) throw new Error(`expected host:port, got '${address}'`);
  return { host: match[1] ?? match[2] ?? "", port: Number(match[3]) };
}

/** Where a target points, without passwords. */
export function describeTarget(target: RedisTarget): string {
  if ("url" in target) {
    try {
      const parsed = new URL(target.url);
      if (parsed.password !== "") parsed.password = "***";
      return parsed.toString();
    } catch {
      return "(unparsable URL)";
    }
  }
  if ("sentinel" in target)
    return `sentinel ${target.sentinel.masterName} via ${target.sentinel.sentinels.join(",")}`;
  return `cluster via ${target.cluster.nodes.join(",")}`;
}

function reconnectStrategy(maxDelayMs: number): (retries: number) => number {
  return (retries) => Math.min((retries + 1) * 200, maxDelayMs);
}

/**
 * A connection to `target` (a URL string is a single server), not connected yet. Commands fail at
 * once while it is down (no offline queue): callers answer service-unavailable and retry later.
 */
export function createRedisClient<S extends RedisScripts = None>(
  target: RedisTarget | string,
  options: RedisConnectionOptions<S> = {},
): RedisConnection<S> {
  const resolved: RedisTarget = typeof target === "string" ? { url: target } : target;
  if ("url" in resolved) return new SingleConnection(resolved.url, options);
  if ("sentinel" in resolved) return new SentinelConnection(resolved, options);
  return new ClusterConnection(resolved, options);
}

/** Node client options every kind shares. */
function nodeOptions(options: RedisConnectionOptions<RedisScripts>) {
  return {
    // While Redis is unreachable, commands fail at once instead of queueing until it returns.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      reconnectStrategy:
        options.reconnect === false
          ? (false as const)
          : reconnectStrategy(options.maxReconnectDelayMs ?? DEFAULT_TIMEOUT_MS),
    },
  };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Forwards a node-redis client's lifecycle events to `to`. */
function forwardEvents(from: EventEmitter, to: EventEmitter<RedisConnectionEvents>): void {
  from.on("error", (err: unknown) => to.emit("error", asError(err)));
  from.on("ready", () => to.emit("ready"));
  from.on("reconnecting", () => to.emit("reconnecting"));
  from.on("end", () => to.emit("end"));
}

class SingleConnection<S extends RedisScripts>
  extends EventEmitter<RedisConnectionEvents>
  implements RedisConnection<S>
{
  readonly kind = "single";
  readonly description: string;
  private readonly client;

  constructor(
    private readonly url: string,
    private readonly options: RedisConnectionOptions<S>,
  ) {
    super();
    this.description = describeTarget({ url });
    this.client = createClient({
      url,
      RESP: 2,
      ...(options.scripts ? { scripts: options.scripts } : {}),
      ...nodeOptions(options),
      commandOptions: { timeout: options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS },
    });
    forwardEvents(this.client, this);
  }

  get commands(): RedisCommands<S> {
    return this.client;
  }

  get isReady(): boolean {
    return this.client.isReady;
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  async waitForReplicas(_key: string, replicas: number, timeoutMs: number): Promise<number> {
    return Number(await this.client.sendCommand(["WAIT", String(replicas), String(timeoutMs)]));
  }

  sendCommand(args: string[]): Promise<unknown> {
    return this.client.sendCommand(args);
  }

  subscriber(): RedisSubscriber {
    return new NodeSubscriber(() => createClient({ url: this.url, RESP: 2, ...nodeOptions(this.options) }));
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close();
  }

  destroy(): void {
    if (this.client.isOpen) this.client.destroy();
  }
}

/**
 * Sentinel: node-redis asks the sentinels for the primary, listens to their announcements
 * (+switch-master), and moves its connection to the new primary at a failover; a write that meets
 * a demoted primary (READONLY) is sent again to the new one. It is ready when its connection to the
 * primary is (node-redis alone reports ready until the sentinels have named a new primary).
 */
class SentinelConnection<S extends RedisScripts>
  extends EventEmitter<RedisConnectionEvents>
  implements RedisConnection<S>
{
  readonly kind = "sentinel";
  readonly description: string;
  private readonly sentinel: RedisSentinelType<None, None, S, 2, None>;
  private readonly watch: NodeJS.Timeout;
  private wasReady = false;
  private readonly subscribers = new Set<NodeSubscriber>();

  constructor(
    private readonly target: Extract<RedisTarget, { sentinel: unknown }>,
    private readonly options: RedisConnectionOptions<S>,
  ) {
    super();
    this.description = describeTarget(target);
    const { sentinel } = target;
    const node = nodeOptions(options);
    this.sentinel = createSentinel({
      name: sentinel.masterName,
      sentinelRootNodes: sentinel.sentinels.map(parseNode),
      RESP: 2,
      ...(options.scripts ? { scripts: options.scripts } : {}),
      masterPoolSize: 1,
      replicaPoolSize: 0,
      // One-shot: a master name the sentinels do not know fails at once, not after 16 tries.
      ...(options.reconnect === false ? { maxCommandRediscovers: 1 } : {}),
      // The sentinels announce a failover at once; the scan is for a missed announcement.
      scanInterval: 2_000,
      commandOptions: { timeout: options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS },
      nodeClientOptions: {
        ...node,
        ...(sentinel.password !== undefined ? { password: sentinel.password } : {}),
      },
      sentinelClientOptions: {
        socket: node.socket,
        ...(sentinel.sentinelPassword !== undefined ? { password: sentinel.sentinelPassword } : {}),
      },
    });
    this.sentinel.on("error", (err: unknown) => this.emit("error", asError(err)));
    this.sentinel.on("client-error", (event: { type: string; error: Error }) => {
      if (event.type === "MASTER") this.emit("error", event.error);
      this.check();
    });
    this.sentinel.on("ready", () => this.check());
    this.sentinel.on("reconnecting", () => this.check());
    this.sentinel.on("topology-change", () => this.check());
    this.sentinel.on("end", () => {
      this.check();
      this.emit("end");
    });
    // node-redis reports no event when its connection to the primary comes back by itself.
    this.watch = setInterval(() => this.check(), 100).unref();
  }

  get commands(): RedisCommands<S> {
    return this.sentinel as unknown as RedisCommands<S>;
  }

  get isReady(): boolean {
    return this.sentinel.isReady && this.sentinel.getMasterNode() !== undefined;
  }

  /** The primary as node-redis is connected to it now. */
  get primary(): { host: string; port: number } | undefined {
    return this.sentinel.getMasterNode();
  }

  private check(): void {
    const ready = this.isReady;
    if (ready) for (const subscriber of this.subscribers) subscriber.moveTo(this.primary);
    if (ready === this.wasReady) return;
    this.wasReady = ready;
    this.emit(ready ? "ready" : "reconnecting");
  }

  async connect(): Promise<void> {
    await this.sentinel.connect();
    this.check();
  }

  async waitForReplicas(_key: string, replicas: number, timeoutMs: number): Promise<number> {
    // One connection to the primary (masterPoolSize 1): WAIT covers every write sent before it.
    return Number(await this.sentinel.sendCommand(false, ["WAIT", String(replicas), String(timeoutMs)]));
  }

  sendCommand(args: string[]): Promise<unknown> {
    return this.sentinel.sendCommand(false, args);
  }

  subscriber(): RedisSubscriber {
    const { password } = this.target.sentinel;
    const subscriber = new NodeSubscriber((node) =>
      createClient({
        RESP: 2,
        ...nodeOptions(this.options),
        ...(password !== undefined ? { password } : {}),
        socket: { ...nodeOptions(this.options).socket, ...node },
      }),
    );
    // To the new primary as soon as node-redis learns of it (it names the node before its own
    // connection there is up); check() moves any subscriber left behind once that connection is.
    this.sentinel.on("topology-change", (event: { type: string; node?: { host: string; port: number } }) => {
      if (event.type === "MASTER_CHANGE") subscriber.moveTo(event.node);
    });
    subscriber.moveTo(this.primary);
    subscriber.nextNode = () => this.primary;
    this.subscribers.add(subscriber);
    subscriber.on("end", () => this.subscribers.delete(subscriber));
    return subscriber;
  }

  async close(): Promise<void> {
    clearInterval(this.watch);
    if (this.sentinel.isOpen) await this.sentinel.close();
  }

  destroy(): void {
    clearInterval(this.watch);
    if (this.sentinel.isOpen) void this.sentinel.destroy();
  }
}

/**
 * Cluster: node-redis learns the slots from the seed nodes, sends each command to the primary of
 * its key's slot, and follows MOVED/ASK redirections. Ready when it is connected to every primary.
 */
class ClusterConnection<S extends RedisScripts>
  extends EventEmitter<RedisConnectionEvents>
  implements RedisConnection<S>
{
  readonly kind = "cluster";
  readonly description: string;
  private readonly cluster: RedisClusterType<None, None, S, 2, None>;
  private readonly watch: NodeJS.Timeout;
  private wasReady = false;

  constructor(
    private readonly target: Extract<RedisTarget, { cluster: unknown }>,
    private readonly options: RedisConnectionOptions<S>,
  ) {
    super();
    this.description = describeTarget(target);
    const { cluster } = target;
    this.cluster = createCluster({
      rootNodes: cluster.nodes.map((address) => ({ socket: parseNode(address) })),
      RESP: 2,
      ...(options.scripts ? { scripts: options.scripts } : {}),
      commandOptions: { timeout: options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS },
      defaults: {
        ...nodeOptions(options),
        ...(cluster.password !== undefined ? { password: cluster.password } : {}),
      },
    });
    this.cluster.on("error", (err: unknown) => this.emit("error", asError(err)));
    this.cluster.on("node-error", (err: unknown) => {
      this.emit("error", asError(err));
      this.check();
    });
    for (const event of ["node-ready", "node-reconnecting", "node-disconnect", "connect", "disconnect"])
      this.cluster.on(event, () => this.check());
    this.watch = setInterval(() => this.check(), 250).unref();
  }

  get commands(): RedisCommands<S> {
    return this.cluster as unknown as RedisCommands<S>;
  }

  get isReady(): boolean {
    if (!this.cluster.isReady) return false;
    const masters = this.cluster.masters;
    return masters.length > 0 && masters.every((m) => m.client?.isReady === true);
  }

  /** Every node the cluster knows (primaries first), for the subscriber to choose from. */
  get nodes(): { host: string; port: number }[] {
    return [...this.cluster.masters, ...this.cluster.replicas].map(({ host, port }) => ({ host, port }));
  }

  private check(): void {
    const ready = this.isReady;
    if (ready === this.wasReady) return;
    this.wasReady = ready;
    this.emit(ready ? "ready" : "reconnecting");
  }

  async connect(): Promise<void> {
    await this.cluster.connect();
    this.check();
  }

  async waitForReplicas(key: string, replicas: number, timeoutMs: number): Promise<number> {
    return Number(await this.cluster.sendCommand(key, false, ["WAIT", String(replicas), String(timeoutMs)]));
  }

  sendCommand(args: string[], key?: string): Promise<unknown> {
    return this.cluster.sendCommand(key, false, args);
  }

  subscriber(): RedisSubscriber {
    const { password } = this.target.cluster;
    const subscriber = new NodeSubscriber((node) =>
      createClient({
        RESP: 2,
        ...nodeOptions(this.options),
        ...(password !== undefined ? { password } : {}),
        socket: { ...nodeOptions(this.options).socket, ...node },
      }),
    );
    // Any node hears every PUBLISH; when the one listened on fails, the next known one is tried.
    let turn = 0;
    const seeds = this.target.cluster.nodes.map(parseNode);
    subscriber.nextNode = () => {
      const known = this.nodes.length > 0 ? this.nodes : seeds;
      return known[turn++ % known.length];
    };
    subscriber.moveTo(subscriber.nextNode());
    return subscriber;
  }

  async close(): Promise<void> {
    clearInterval(this.watch);
    if (this.cluster.isOpen) await this.cluster.close();
  }

  destroy(): void {
    clearInterval(this.watch);
    if (this.cluster.isOpen) this.cluster.destroy();
  }
}

type NodeClient = RedisClientType<None, None, None, 2, None>;

/**
 * A pub/sub connection to one node, which can move to another (`moveTo`): the sentinel's new
 * primary, or the next node of a Cluster when the one it listens on keeps failing. The channels
 * are subscribed again on the new node before it reports ready.
 */
/** How long a subscriber waits for a node to listen on (Sentinel: the primary's name). */
const NODE_WAIT_MS = 5_000;

class NodeSubscriber extends EventEmitter<RedisConnectionEvents> implements RedisSubscriber {
  private client: NodeClient | undefined;
  private node: { host: string; port: number } | undefined;
  private readonly channels = new Map<string, (message: string) => void>();
  private connecting: Promise<void> | undefined;
  private closed = false;
  private failures = 0;
  /** connect() was called: moves take effect at once from then on. */
  private started = false;
  /** Where to go when the current node keeps failing (undefined: stay). */
  nextNode: (() => { host: string; port: number } | undefined) | undefined;

  constructor(
    private readonly make: (
      node: { host: string; port: number } | Record<string, never>,
    ) => ReturnType<typeof createClient>,
  ) {
    super();
  }

  get isReady(): boolean {
    return !this.closed && this.client?.isReady === true && this.connecting === undefined;
  }

  /** Listens on `node` from now on (no change if it is already the one). */
  moveTo(node: { host: string; port: number } | undefined): void {
    if (node === undefined || this.closed) return;
    if (this.node && this.node.host === node.host && this.node.port === node.port && this.client) return;
    this.node = node;
    if (this.client === undefined && this.connecting === undefined && !this.started) return;
    this.emit("reconnecting");
    void this.open().catch((err: unknown) => this.emit("error", asError(err)));
  }

  async connect(): Promise<void> {
    this.started = true;
    await this.open();
  }

  private async open(): Promise<void> {
    // Sentinel or Cluster: a node to listen on must be known first (never node-redis's default
    // localhost:6379); the sentinels may not have named the primary yet. Bounded.
    for (let waited = 0; this.node === undefined && this.nextNode && waited < NODE_WAIT_MS; waited += 100) {
      this.node = this.nextNode();
      if (this.node === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (this.node === undefined && this.nextNode)
      throw new Error(`no Redis node to listen on within ${NODE_WAIT_MS} ms (no primary named yet)`);
    const node = this.node;
    const previous = this.client;
    this.client = undefined;
    if (previous?.isOpen) previous.destroy();
    const client = this.make(node ?? {}) as unknown as NodeClient;
    this.client = client;
    this.failures = 0;
    client.on("error", (err: unknown) => {
      if (this.client !== client) return;
      this.emit("error", asError(err));
      // A Cluster node that keeps failing: listen on another one.
      if (++this.failures >= 3 && this.nextNode && !this.closed) {
        const next = this.nextNode();
        if (next && (next.host !== this.node?.host || next.port !== this.node.port)) this.moveTo(next);
      }
    });
    client.on("ready", () => {
      if (this.client !== client || this.connecting !== undefined) return;
      this.failures = 0;
      this.emit("ready");
    });
    client.on("reconnecting", () => {
      if (this.client === client) this.emit("reconnecting");
    });
    const connecting = (async () => {
      await client.connect();
      for (const [channel, listener] of this.channels) await client.subscribe(channel, listener);
    })();
    this.connecting = connecting;
    return connecting.then(
      () => {
        if (this.connecting !== connecting) return;
        this.connecting = undefined;
        if (this.client === client && client.isReady) this.emit("ready");
      },
      (err: unknown) => {
        // Replaced by a newer attempt (a move meanwhile): that one reports how it goes.
        if (this.connecting !== connecting) return;
        this.connecting = undefined;
        throw err;
      },
    );
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    this.channels.set(channel, listener);
    if (this.client?.isReady) await this.client.subscribe(channel, listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (client?.isOpen) await client.close();
    this.emit("end");
  }

  destroy(): void {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (client?.isOpen) client.destroy();
  }
}
