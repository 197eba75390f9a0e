// The presence store on Redis: durable (append-only file) and shared by every bridge instance.
//
// Key layout, everything under the configured prefix P. Each script's keys share a hash tag, so in
// a Redis Cluster they are in one slot; the tags are shards of the data (16 of each kind, by a CRC32
// of the person, contact or subscription id), so the data is spread over the cluster's primaries:
//   P presence:{p<n>}:<person>       hash: one field per source ("xmpp:<resource>", "sip-publish:<etag>",
//                                    "pbx-device", "pbx-custom") holding the record's JSON, plus
//                                    "@aggregate" (the aggregate's JSON at the last write) and
//                                    "@version" (a new random token at every write). Deleted when no
//                                    record is left. n is the person's shard.
//   P persons:{p<n>}:<kind>          set of the shard's persons holding a record of that source kind
//                                    (written with the person's hash, in one script).
//   P xmpp-subscribers:{s<n>}:<contact>  set of the XMPP users (bare JIDs) subscribed to a gateway
//                                    contact; n is the contact's shard.
//   P xmpp-subscribed-contacts:{s<n>}  set of the shard's contacts that have at least one subscriber.
//   P watchers:{w<n>}                hash: watcher subscription id → its JSON; n is the id's shard.
//   P watchers-expiry:{w<n>}         sorted set: watcher subscription id, scored by its expiresAt.
//   P watchers-cseq:{w<n>}           hash: watcher subscription id → the CSeq of its last NOTIFY
//                                    (every instance that notifies takes the next one from here).
//   P changes                        pub/sub channel: JSON {person, aggregate} for every change;
//                                    {subscribed: contact} / {unsubscribed: contact} when a contact
//                                    enters or leaves the xmpp-subscribed-contacts index;
//                                    {watcher: subscription} / {watcherGone: id} when a watcher
//                                    subscription is stored or removed. Published by the scripts;
//                                    in a Cluster PUBLISH reaches every node.
// Lists over all persons, contacts or subscriptions read the 16 shards and merge them.
//
// A write computes the new records and aggregate() in TypeScript (the one pure function; no presence
// rule lives in Lua) from the person's hash as this instance last saw it, and commits with one script
// that applies only if the version is still that one, so a change is never computed from records
// another instance has replaced in between; on a conflict the script returns the hash as it is, and
// the write is computed again from it. A person this instance has not seen is guessed to have no
// hash: right, one round trip; wrong, two, as a read first would have cost. Versions are random
// tokens rather than a counter, so a hash deleted and created again never shows an old version. The script publishes the change in the same atomic step, so every
// instance, this one included, hears every change once and in commit order.
import { KeyedQueue } from "../../src/util/keyed-queue.js";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { crc32 } from "node:zlib";
import { defineScript, ErrorReply, type CommandParser } from "redis";
import { SwitchboardError } from "../../src/domain/errors.js";
import {
  aggregate,
  PRESENCE_STATES,
  type AggregatePresence,
  type PresenceRecord,
  type PresenceSource,
} from "../../src/domain/presence.js";
import type { Logger } from "../../src/ports/logger.js";
import type {
  ChangeListener,
  PresenceSnapshot,
  PresenceStore,
  PresenceUpdate,
  WatcherListener,
  WatcherSubscription,
} from "../../src/ports/presence-store.js";
import { sameSource } from "../../src/presence/source.js";
import { randomToken } from "../../src/util/random-token.js";
import {
  createRedisClient,
  type RedisConnection,
  type RedisSubscriber,
  type RedisTarget,
} from "./redis-connection.js";

export interface RedisPresenceStoreOptions {
  /** Where Redis is (config `store.url`, `store.sentinel` or `store.cluster`); a string is a URL. */
  target: RedisTarget | string;
  /** Prefix of every key and of the change channel (config `store.prefix`). */
  prefix: string;
  log: Logger;
  /** How long connect() waits for Redis before failing; also the socket connect timeout. */
  connectTimeoutMs?: number;
  /** How long one command may wait for its reply before it fails as service-unavailable. */
  commandTimeoutMs?: number;
}

export interface RedisPresenceStoreEvents {
  /** Both connections are up (true) or at least one is down and reconnecting (false). */
  readiness: [ready: boolean];
}

/**
 * Attempts of one write when other instances keep committing in between; the backoff between them
 * (random, up to 250 ms each) adds up to less than 1.5 s before it gives up.
 */
const MAX_ATTEMPTS = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** How often calls past the command timeout are failed. */
const SWEEP_MS = 250;
/**
 * Most calls waiting for Redis at once; more fail at once. A call that timed out is failed but its
 * command stays with the client until Redis answers or the connection drops, so while Redis stalls
 * this bounds what piles up.
 */
const MAX_PENDING = 10_000;

interface PendingCall {
  /** The sweep count when the call was made. */
  readonly sweep: number;
  readonly what: string;
  readonly fail: (err: SwitchboardError) => void;
}
const KINDS = [
  "xmpp",
  "sip-publish",
  "pbx-device",
  "pbx-custom",
] as const satisfies readonly PresenceSource["kind"][];
const VERSION_FIELD = "@version";
/** How many persons' hashes a store remembers as last seen (the least recently used are forgotten). */
const KNOWN_LIMIT = 20_000;
const AGGREGATE_FIELD = "@aggregate";

/** Shards of each kind of key (hash tags {p<n>}, {s<n>}, {w<n>}); fixed: every instance must agree. */
export const SHARDS = 16;
const ALL_SHARDS = Array.from({ length: SHARDS }, (_, n) => n);

function shardOf(name: string): number {
  return crc32(name) % SHARDS;
}

/** The store's key names under a prefix (also for tests that look at Redis directly). */
export function presenceStoreKeys(prefix: string) {
  return {
    presence: (person: string) => `${prefix}presence:{p${shardOf(person)}}:${person}`,
    persons: (shard: number, kind: PresenceSource["kind"]) => `${prefix}persons:{p${shard}}:${kind}`,
    personsOf: (person: string, kind: PresenceSource["kind"]) =>
      `${prefix}persons:{p${shardOf(person)}}:${kind}`,
    subscribers: (contact: string) => `${prefix}xmpp-subscribers:{s${shardOf(contact)}}:${contact}`,
    subscribedContacts: (shard: number) => `${prefix}xmpp-subscribed-contacts:{s${shard}}`,
    subscribedContactsOf: (contact: string) => `${prefix}xmpp-subscribed-contacts:{s${shardOf(contact)}}`,
    watchers: (shard: number) => `${prefix}watchers:{w${shard}}`,
    watchersExpiry: (shard: number) => `${prefix}watchers-expiry:{w${shard}}`,
    watchersCseq: (shard: number) => `${prefix}watchers-cseq:{w${shard}}`,
    watcherShard: (id: string) => shardOf(id),
    changes: `${prefix}changes`,
  };
}

/** The hash field of a source; the two meta fields start with "@", which no source field does. */
function sourceField(source: PresenceSource): string {
  switch (source.kind) {
    case "xmpp":
      return `xmpp:${source.resource}`;
    case "sip-publish":
      return `sip-publish:${source.etag}`;
    default:
      return source.kind;
  }
}

// Commit contract:
//   KEYS[1] the person's hash; KEYS[2..5] the persons:<kind> sets, in KINDS order.
//   ARGV[1] the version read ("0" when the hash did not exist); ARGV[2] the source's field;
//   ARGV[3] the record's JSON, or "" to delete the field; ARGV[4] the new aggregate's JSON;
//   ARGV[5] the person; ARGV[6..9] "1" if the person holds that kind after the write, else "0";
//   ARGV[10] the change channel; ARGV[11] the change message, or "" when nothing changed;
//   ARGV[12] the new version (a token never used before).
// Returns {"committed"}, or {"conflict", field, value, ...} (the hash as it is now) when another
// writer came in between, so the caller can recompute and retry without another round trip.
const COMMIT_PRESENCE = `
local current = redis.call('HGET', KEYS[1], '${VERSION_FIELD}') or '0'
if current ~= ARGV[1] then
  local now = redis.call('HGETALL', KEYS[1])
  table.insert(now, 1, 'conflict')
  return now
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('HSET', KEYS[1], '${AGGREGATE_FIELD}', ARGV[4], '${VERSION_FIELD}', ARGV[12])
if redis.call('HLEN', KEYS[1]) <= 2 then
  redis.call('DEL', KEYS[1])
end
for i = 1, 4 do
  if ARGV[5 + i] == '1' then
    redis.call('SADD', KEYS[1 + i], ARGV[5])
  else
    redis.call('SREM', KEYS[1 + i], ARGV[5])
  end
end
if ARGV[11] ~= '' then
  redis.call('PUBLISH', ARGV[10], ARGV[11])
end
return {'committed'}
`;

// The two-key updates below are scripts rather than MULTI because node-redis queues a MULTI while
// disconnected (ignoring disableOfflineQueue and the command timeout): a script fails at once.

// KEYS[1] a contact's subscriber set, KEYS[2] the contact index; ARGV[1] subscriber, ARGV[2] contact,
// ARGV[3] the change channel, ARGV[4] the message announcing that the contact entered the index.
const ADD_XMPP_SUBSCRIBER = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
`;

// Same keys and arguments (ARGV[4] announces that the contact left the index). Returns 1 if the
// subscriber was there. The index loses the contact with its last subscriber.
const REMOVE_XMPP_SUBSCRIBER = `
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 and redis.call('SREM', KEYS[2], ARGV[2]) == 1 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return removed
`;

// KEYS[1] the watchers hash, KEYS[2] their expiry zset, KEYS[3] their CSeq hash; ARGV[1] id,
// ARGV[2] JSON, ARGV[3] expiresAt, ARGV[4] the change channel, ARGV[5] the announcement.
const PUT_WATCHER = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`;

// Same keys; ARGV[1] id, ARGV[2] the change channel, ARGV[3] the announcement, ARGV[4] "1" to keep
// the CSeq counter for the final NOTIFY that follows (which removes it, NEXT_CSEQ).
const REMOVE_WATCHER = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[4] ~= '1' then
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`;

// KEYS[1] the CSeq hash; ARGV[1] id, ARGV[2] "1" when this is the subscription's last NOTIFY.
const NEXT_CSEQ = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if ARGV[2] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return n
`;

// Same keys; ARGV[1] now (ms). Drops the subscriptions
// that expired before now and returns the JSON of the others, in one step so that a concurrent
// refresh (putWatcherSubscription) is never dropped by a stale read.
const LIST_WATCHERS = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
return redis.call('HVALS', KEYS[1])
`;

/** The hash after a committed write: `hash` with the source's field set (or deleted) and new meta fields. */
function committedHash(
  hash: Record<string, string>,
  field: string,
  value: string,
  aggregateJson: string,
  version: string,
): Record<string, string> {
  const next: Record<string, string> = {
    ...hash,
    [AGGREGATE_FIELD]: aggregateJson,
    [VERSION_FIELD]: version,
  };
  if (value === "") delete next[field];
  else next[field] = value;
  return next;
}

function stringArray(reply: unknown): string[] {
  if (!Array.isArray(reply) || !reply.every((item) => typeof item === "string")) {
    throw new Error(`unexpected script reply ${JSON.stringify(reply)}`);
  }
  return reply;
}

interface CommitArgs {
  keys: string[];
  version: string;
  field: string;
  value: string;
  aggregate: string;
  person: string;
  kinds: boolean[];
  channel: string;
  message: string;
  newVersion: string;
}

interface SubscriberArgs {
  set: string;
  index: string;
  subscriber: string;
  contact: string;
  channel: string;
  message: string;
}

const SCRIPTS = {
  commitPresence: defineScript({
    SCRIPT: COMMIT_PRESENCE,
    NUMBER_OF_KEYS: 5,
    parseCommand(parser: CommandParser, a: CommitArgs) {
      parser.pushKeys(a.keys);
      parser.push(a.version, a.field, a.value, a.aggregate, a.person);
      parser.push(...a.kinds.map((k) => (k ? "1" : "0")), a.channel, a.message, a.newVersion);
    },
    transformReply: stringArray,
  }),
  addXmppSubscriber: defineScript({
    SCRIPT: ADD_XMPP_SUBSCRIBER,
    NUMBER_OF_KEYS: 2,
    parseCommand(parser: CommandParser, a: SubscriberArgs) {
      parser.pushKeys([a.set, a.index]);
      parser.push(a.subscriber, a.contact, a.channel, a.message);
    },
    transformReply: () => undefined,
  }),
  removeXmppSubscriber: defineScript({
    SCRIPT: REMOVE_XMPP_SUBSCRIBER,
    NUMBER_OF_KEYS: 2,
    parseCommand(parser: CommandParser, a: SubscriberArgs) {
      parser.pushKeys([a.set, a.index]);
      parser.push(a.subscriber, a.contact, a.channel, a.message);
    },
    transformReply: (reply: unknown) => reply === 1,
  }),
  putWatcher: defineScript({
    SCRIPT: PUT_WATCHER,
    NUMBER_OF_KEYS: 3,
    parseCommand(
      parser: CommandParser,
      keys: WatcherKeys,
      a: { id: string; json: string; expiresAt: number; channel: string; message: string },
    ) {
      parser.pushKeys(keys);
      parser.push(a.id, a.json, String(a.expiresAt), a.channel, a.message);
    },
    transformReply: () => undefined,
  }),
  removeWatcher: defineScript({
    SCRIPT: REMOVE_WATCHER,
    NUMBER_OF_KEYS: 3,
    parseCommand(
      parser: CommandParser,
      keys: WatcherKeys,
      a: { id: string; channel: string; message: string; keepCseq: boolean },
    ) {
      parser.pushKeys(keys);
      parser.push(a.id, a.channel, a.message, a.keepCseq ? "1" : "0");
    },
    transformReply: () => undefined,
  }),
  nextCseq: defineScript({
    SCRIPT: NEXT_CSEQ,
    NUMBER_OF_KEYS: 1,
    parseCommand(parser: CommandParser, key: string, id: string, last: boolean) {
      parser.pushKey(key);
      parser.push(id, last ? "1" : "0");
    },
    transformReply: (reply: unknown) => Number(reply),
  }),
  listWatchers: defineScript({
    SCRIPT: LIST_WATCHERS,
    NUMBER_OF_KEYS: 3,
    parseCommand(parser: CommandParser, keys: WatcherKeys, now: number) {
      parser.pushKeys(keys);
      parser.push(String(now));
    },
    transformReply: stringArray,
  }),
};

/** The watchers hash, their expiry zset and their CSeq hash (one shard). */
type WatcherKeys = [hash: string, zset: string, cseq: string];

type StoreClient = RedisConnection<typeof SCRIPTS>;
type Connection = StoreClient | RedisSubscriber;

/** Redis replies that mean "not now" rather than "wrong": loading the AOF, read-only replica, … */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MISCONF|READONLY|OOM|MASTERDOWN|TRYAGAIN|NOREPLICAS)\b/;

function storeError(what: string, err: unknown): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  const condition =
    err instanceof ErrorReply && !TRANSIENT_REPLY.test(reason)
      ? "internal-server-error"
      : "service-unavailable";
  return new SwitchboardError(condition, `presence store (Redis): ${what}: ${reason}`, { cause: err });
}

function isAggregate(value: unknown): value is AggregatePresence {
  if (typeof value !== "object" || value === null) return false;
  const a = value as Record<string, unknown>;
  return (
    PRESENCE_STATES.includes(a.state as never) &&
    (a.note === null || typeof a.note === "string") &&
    (a.since === null || typeof a.since === "number") &&
    (a.winner === null || typeof a.winner === "object")
  );
}

function isRecord(value: unknown): value is PresenceRecord {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  const source = r.source as Record<string, unknown> | null | undefined;
  return (
    typeof source === "object" &&
    source !== null &&
    KINDS.includes(source.kind as never) &&
    typeof r.updatedAt === "number" &&
    (r.expiresAt === null || typeof r.expiresAt === "number")
  );
}

export class RedisPresenceStore extends EventEmitter<RedisPresenceStoreEvents> implements PresenceStore {
  private readonly changeListeners = new Set<ChangeListener>();
  private readonly watcherListeners = new Set<WatcherListener>();
  /** One write at a time per person from this instance: conflicts only come from other instances. */
  private readonly queues = new KeyedQueue();
  /** Each person's hash as this instance last read or wrote it, by key; a hint, checked by version. */
  private readonly known = new Map<string, Record<string, string>>();
  private readonly channel: string;
  /** Calls waiting for Redis, oldest first; see sweep(). */
  private readonly pending = new Set<PendingCall>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly timeoutSweeps: number;
  private sweeps = 0;
  /**
   * The contacts with XMPP subscribers: a copy of the xmpp-subscribed-contacts index, loaded once the
   * change channel is subscribed and kept current by its announcements; null while not known (before
   * it is loaded, or while the channel is down and announcements may be missed), when every lookup
   * asks Redis.
   */
  private subscribedIndex: Set<string> | null = null;
  /** Contacts announced as entering the index while it loads; added to it once loaded. */
  private indexAdds = new Set<string>();
  private indexGeneration = 0;
  /** Set once connect() has subscribed to the change channel: from then on a "ready" reloads the index. */
  private subscribed = false;
  private wasReady = false;
  private closed = false;
  /** The last connection error, to say why connect() gave up. */
  private lastError: string | null = null;

  private readonly keys: ReturnType<typeof presenceStoreKeys>;

  private constructor(
    private readonly client: StoreClient,
    private readonly subscriber: RedisSubscriber,
    private readonly prefix: string,
    private readonly log: Logger,
    commandTimeoutMs: number,
  ) {
    super();
    this.keys = presenceStoreKeys(prefix);
    this.channel = this.keys.changes;
    this.timeoutSweeps = Math.max(1, Math.ceil(commandTimeoutMs / SWEEP_MS));
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  /**
   * Fails the calls that have waited for Redis longer than the command timeout (within one sweep).
   * One timer for all calls rather than one per command: node-redis's own per-command timeout
   * makes an AbortSignal and a timer for each, which cost a tenth of the store's time under load.
   */
  private sweep(): void {
    this.sweeps++;
    for (const entry of this.pending) {
      if (this.sweeps - entry.sweep <= this.timeoutSweeps) break; // the rest are younger (insertion order)
      this.pending.delete(entry);
      entry.fail(
        new SwitchboardError(
          "service-unavailable",
          `presence store (Redis): ${entry.what}: no answer within ${this.timeoutSweeps * SWEEP_MS} ms`,
        ),
      );
    }
  }

  /**
   * Connects both connections (commands, and the dedicated pub/sub one) and subscribes to the
   * change channel; fails with service-unavailable if Redis does not answer within the timeout.
   * Afterwards the connections reconnect by themselves, with backoff, for as long as the store is open.
   */
  static async connect(options: RedisPresenceStoreOptions): Promise<RedisPresenceStore> {
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const client = createRedisClient(options.target, {
      scripts: SCRIPTS,
      connectTimeoutMs,
      // No per-command timer (node-redis defaults to 5 s each): the store's sweep fails late calls.
      commandTimeoutMs: 0,
    });
    const subscriber = client.subscriber();
    const log = options.log.child({ component: "redis-presence-store" });
    const store = new RedisPresenceStore(
      client,
      subscriber,
      options.prefix,
      log,
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    );
    store.watchConnection(client, "commands");
    store.watchConnection(subscriber, "pub/sub");

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const why = store.lastError === null ? "" : ` (${store.lastError})`;
        reject(new Error(`not ready within ${connectTimeoutMs} ms${why}`));
      }, connectTimeoutMs);
    });
    const connecting = (async () => {
      // The commands first: a Sentinel subscriber listens on the primary they found.
      await client.connect();
      await subscriber.connect();
      await subscriber.subscribe(store.channel, (message) => store.deliver(message));
      store.subscribed = true;
      await store.loadIndex();
    })();
    try {
      await Promise.race([connecting, timeout]);
    } catch (err) {
      connecting.catch(() => undefined); // destroy() below makes it reject; the reason is `err`
      store.closed = true;
      clearInterval(store.sweeper);
      client.destroy();
      subscriber.destroy();
      throw storeError(`connect to ${client.description}`, err);
    } finally {
      clearTimeout(timer);
    }
    store.updateReadiness();
    log.info(
      { redis: client.description, kind: client.kind, prefix: options.prefix },
      "presence store connected",
    );
    return store;
  }

  /**
   * Both connections are up. While false, writes fail with service-unavailable, and so do reads
   * while the command connection is the one down.
   */
  ready(): boolean {
    return !this.closed && this.client.isReady && this.subscriber.isReady;
  }

  private watchConnection(connection: Connection, name: string): void {
    // node-redis reports every failed (re)connect attempt as an error event, and an error event
    // without a listener would throw. Report the loss once, the attempts that follow at debug level.
    let up = false;
    connection.on("error", (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      this.lastError = message;
      if (connection === this.subscriber) this.forgetIndex();
      if (up) this.log.warn({ connection: name, err: message }, "Redis connection lost");
      else this.log.debug({ connection: name, err: message }, "Redis unreachable");
      up = false;
      this.updateReadiness();
    });
    connection.on("ready", () => {
      up = true;
      this.updateReadiness();
      // The channel is subscribed again before the subscriber reports ready, so every announcement
      // after the index is read arrives.
      if (
        this.subscribed &&
        this.subscriber.isReady &&
        (connection === this.subscriber || this.subscribedIndex === null)
      )
        void this.loadIndex();
    });
    for (const event of ["end", "reconnecting"] as const)
      connection.on(event, () => {
        if (connection === this.subscriber) this.forgetIndex();
        this.updateReadiness();
      });
  }

  /** The channel is down: announcements may be missed, so the index is unknown until loaded again. */
  private forgetIndex(): void {
    this.indexGeneration++;
    this.subscribedIndex = null;
  }

  /** Reads the index; a load overtaken by a disconnect or a newer load is dropped. */
  private async loadIndex(): Promise<void> {
    const generation = ++this.indexGeneration;
    this.subscribedIndex = null;
    this.indexAdds = new Set();
    try {
      const members = await this.subscribedContacts();
      // Announcements may have been missed unless the channel stayed up throughout (forgetIndex
      // bumps the generation when it goes down).
      if (generation !== this.indexGeneration || this.closed || !this.subscriber.isReady) return;
      const index = new Set(members);
      for (const contact of this.indexAdds) index.add(contact);
      this.indexAdds = new Set();
      this.subscribedIndex = index;
    } catch (err) {
      // Stays unknown (every lookup asks Redis) until a connection is ready again.
      this.log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        "could not read the index of subscribed contacts; asking Redis for each",
      );
    }
  }

  private updateReadiness(): void {
    const ready = this.ready();
    if (ready === this.wasReady) return;
    this.wasReady = ready;
    if (ready) this.log.info({}, "Redis ready");
    this.emit("readiness", ready);
  }

  private deliver(message: string): void {
    let change: unknown;
    try {
      change = JSON.parse(message);
    } catch {
      change = undefined;
    }
    const c = change as
      | {
          person?: unknown;
          aggregate?: unknown;
          subscribed?: unknown;
          unsubscribed?: unknown;
          watcher?: unknown;
          watcherGone?: unknown;
        }
      | undefined;
    if (c?.watcher !== undefined || c?.watcherGone !== undefined) {
      this.announceWatcher(c.watcher, c.watcherGone);
      return;
    }
    if (typeof c?.subscribed === "string") {
      if (this.subscribedIndex === null) this.indexAdds.add(c.subscribed);
      else this.subscribedIndex.add(c.subscribed);
      return;
    }
    if (typeof c?.unsubscribed === "string") {
      this.subscribedIndex?.delete(c.unsubscribed);
      return;
    }
    if (typeof c !== "object" || c === null || typeof c.person !== "string" || !isAggregate(c.aggregate)) {
      this.log.warn({ channel: this.channel, message: message.slice(0, 200) }, "ignoring a malformed change");
      return;
    }
    for (const listener of [...this.changeListeners]) {
      try {
        listener(c.person, c.aggregate);
      } catch (err) {
        this.log.error(
          { person: c.person, err: err instanceof Error ? err.message : String(err) },
          "change listener failed",
        );
      }
    }
  }

  private announceWatcher(stored: unknown, gone: unknown): void {
    const subscription = stored as WatcherSubscription | undefined;
    const id = typeof gone === "string" ? gone : subscription?.id;
    if (
      typeof id !== "string" ||
      (subscription !== undefined && typeof subscription.expiresAt !== "number")
    ) {
      this.log.warn({ channel: this.channel }, "ignoring a malformed watcher announcement");
      return;
    }
    for (const listener of [...this.watcherListeners]) {
      try {
        listener(id, typeof gone === "string" ? null : (subscription ?? null));
      } catch (err) {
        this.log.error(
          { id, err: err instanceof Error ? err.message : String(err) },
          "watcher listener failed",
        );
      }
    }
  }

  /** Closes both connections; later calls fail. Waits for this instance's writes in progress. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queues.idle();
    this.closed = true;
    clearInterval(this.sweeper);
    this.changeListeners.clear();
    this.watcherListeners.clear();
    // close() lets replies in flight arrive; bounded, since a peer that stopped answering never would.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([this.client.close(), this.subscriber.close()]),
      new Promise((resolve) => (timer = setTimeout(resolve, 1_000))),
    ]);
    clearTimeout(timer);
    this.client.destroy();
    this.subscriber.destroy();
    this.updateReadiness();
  }

  /** Every shard's contacts with subscribers, merged. */
  private async subscribedContacts(): Promise<string[]> {
    const shards = await Promise.all(
      ALL_SHARDS.map((n) => this.client.commands.sMembers(this.keys.subscribedContacts(n))),
    );
    return shards.flat();
  }

  private call<T>(what: string, command: () => Promise<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(
        new SwitchboardError("service-unavailable", `presence store (Redis): ${what}: closed`),
      );
    if (this.pending.size >= MAX_PENDING)
      return Promise.reject(
        new SwitchboardError(
          "service-unavailable",
          `presence store (Redis): ${what}: ${MAX_PENDING} calls already waiting for Redis`,
        ),
      );
    return new Promise<T>((resolve, reject) => {
      const entry: PendingCall = { sweep: this.sweeps, what, fail: reject };
      this.pending.add(entry);
      command().then(
        (value) => {
          this.pending.delete(entry);
          resolve(value);
        },
        (err: unknown) => {
          this.pending.delete(entry);
          reject(storeError(what, err));
        },
      );
    });
  }

  watchChanges(listener: ChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** The records in a person's hash; a field that does not parse is logged and left out. */
  private decode(
    person: string,
    hash: Record<string, string>,
  ): { version: string; records: PresenceRecord[] } {
    const records: PresenceRecord[] = [];
    for (const [field, value] of Object.entries(hash)) {
      if (field.startsWith("@")) continue;
      let record: unknown;
      try {
        record = JSON.parse(value);
      } catch {
        record = undefined;
      }
      if (isRecord(record)) records.push(record);
      else this.log.warn({ person, field }, "ignoring a malformed presence record");
    }
    return { version: hash[VERSION_FIELD] ?? "0", records };
  }

  private inTurn<T>(person: string, update: () => Promise<T>): Promise<T> {
    return this.queues.run(person, update);
  }

  /** Notes a person's hash as just read or written, forgetting the least recently used beyond the limit. */
  private remember(key: string, hash: Record<string, string>): void {
    this.known.delete(key);
    this.known.set(key, hash);
    if (this.known.size > KNOWN_LIMIT) {
      const oldest = this.known.keys().next();
      if (oldest.done !== true) this.known.delete(oldest.value);
    }
  }

  /** The aggregate written with the last change (state and note are what was announced). */
  private storedAggregate(hash: Record<string, string>): Pick<AggregatePresence, "state" | "note"> | null {
    const json = hash[AGGREGATE_FIELD];
    if (json === undefined) return null;
    try {
      const parsed = JSON.parse(json) as Partial<AggregatePresence>;
      return typeof parsed.state === "string" ? { state: parsed.state, note: parsed.note ?? null } : null;
    } catch {
      return null;
    }
  }

  private write(
    person: string,
    source: PresenceSource,
    record: PresenceRecord | null,
    now: number,
  ): Promise<PresenceUpdate> {
    return this.inTurn(person, async () => {
      // Without the change channel this instance would not hear its own change: refuse (the source
      // retries) rather than store a change that nobody here announces.
      if (!this.closed && !this.subscriber.isReady) {
        throw new SwitchboardError(
          "service-unavailable",
          `presence store (Redis): write presence of ${person}: change channel disconnected`,
        );
      }
      const key = this.keys.presence(person);
      const remembered = this.known.get(key);
      let hash: Record<string, string> = remembered ?? {};
      this.known.delete(key); // until this write is done, what is stored is not known here
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const { version, records } = this.decode(person, hash);
        const others = records.filter((r) => !sameSource(r.source, source));
        const next = record === null ? others : [...others, record];
        // Compared with the aggregate stored at the last write, not one recomputed now: a record
        // that has just expired (its withdrawal) is already invisible to aggregate(records, now).
        const before = this.storedAggregate(hash) ?? aggregate(records, now);
        const after = aggregate(next, now);
        const changed = before.state !== after.state || before.note !== after.note;
        const newVersion = randomToken(12, "base64url");
        const field = sourceField(source);
        const value = record === null ? "" : JSON.stringify(record);
        const aggregateJson = JSON.stringify(after);
        const reply = await this.call(`write presence of ${person}`, () =>
          this.client.commands.commitPresence({
            keys: [key, ...KINDS.map((kind) => this.keys.personsOf(person, kind))],
            version,
            field,
            value,
            aggregate: aggregateJson,
            person,
            kinds: KINDS.map((kind) => next.some((r) => r.source.kind === kind)),
            channel: this.channel,
            message: changed ? JSON.stringify({ person, aggregate: after }) : "",
            newVersion,
          }),
        );
        if (reply[0] === "committed") {
          this.remember(
            key,
            next.length === 0 ? {} : committedHash(hash, field, value, aggregateJson, newVersion),
          );
          return { aggregate: after, changed };
        }
        if (attempt === MAX_ATTEMPTS) break;
        if (attempt > 1 || remembered !== undefined)
          this.log.debug({ person, attempt }, "presence write conflicted with another instance; retrying");
        if (attempt === 1) {
          // At once, from the hash the script returned: usually the other writer is done by now.
          hash = {};
          for (let i = 1; i + 1 < reply.length; i += 2) hash[reply[i] as string] = reply[i + 1] as string;
        } else {
          // Several instances keep writing this person: back off a random while, so that they
          // stop colliding round after round, then read afresh.
          await sleep(Math.random() * Math.min(5 * 2 ** attempt, 250));
          hash = await this.call(`read presence of ${person}`, () => this.client.commands.hGetAll(key));
        }
      }
      throw new SwitchboardError(
        "service-unavailable",
        `presence store (Redis): write presence of ${person}: ${MAX_ATTEMPTS} conflicting writes in a row`,
      );
    });
  }

  putRecord(person: string, record: PresenceRecord, now: number): Promise<PresenceUpdate> {
    return this.write(person, record.source, record, now);
  }

  removeRecord(person: string, source: PresenceSource, now: number): Promise<PresenceUpdate> {
    return this.write(person, source, null, now);
  }

  async presence(person: string, now: number): Promise<PresenceSnapshot> {
    const key = this.keys.presence(person);
    const hash = await this.call(`read presence of ${person}`, () => this.client.commands.hGetAll(key));
    this.remember(key, hash);
    const { records } = this.decode(person, hash);
    return { records, aggregate: aggregate(records, now) };
  }

  personsWithSource(kind: PresenceSource["kind"]): Promise<string[]> {
    return this.call(`list persons with ${kind}`, async () => {
      const shards = await Promise.all(
        ALL_SHARDS.map((n) => this.client.commands.sMembers(this.keys.persons(n, kind))),
      );
      return shards.flat();
    });
  }

  private subscriberArgs(contact: string, subscriber: string, event: "subscribed" | "unsubscribed") {
    return {
      set: this.keys.subscribers(contact),
      index: this.keys.subscribedContactsOf(contact),
      subscriber,
      contact,
      channel: this.channel,
      message: JSON.stringify({ [event]: contact }),
    };
  }

  async addXmppSubscriber(contact: string, subscriber: string): Promise<void> {
    await this.call(`add XMPP subscriber of ${contact}`, () =>
      this.client.commands.addXmppSubscriber(this.subscriberArgs(contact, subscriber, "subscribed")),
    );
    // At once, not when the announcement comes back: the next change must already reach them.
    this.subscribedIndex?.add(contact);
  }

  removeXmppSubscriber(contact: string, subscriber: string): Promise<boolean> {
    return this.call(`remove XMPP subscriber of ${contact}`, () =>
      this.client.commands.removeXmppSubscriber(this.subscriberArgs(contact, subscriber, "unsubscribed")),
    );
  }

  async xmppSubscribers(contact: string, options: { fresh?: boolean } = {}): Promise<string[]> {
    // Most changes are of contacts nobody subscribed to: the index, kept here, answers those without
    // a round trip. It may hold contacts that lost their subscribers meanwhile (then Redis answers
    // with none), never miss one that has any.
    if (!options.fresh && this.subscribedIndex !== null && !this.subscribedIndex.has(contact)) return [];
    return this.call(`list XMPP subscribers of ${contact}`, () =>
      this.client.commands.sMembers(this.keys.subscribers(contact)),
    );
  }

  xmppSubscribedContacts(): Promise<string[]> {
    return this.call("list XMPP-subscribed contacts", () => this.subscribedContacts());
  }

  private watcherKeys(shard: number): WatcherKeys {
    return [this.keys.watchers(shard), this.keys.watchersExpiry(shard), this.keys.watchersCseq(shard)];
  }

  putWatcherSubscription(subscription: WatcherSubscription): Promise<void> {
    const json = JSON.stringify(subscription);
    return this.call(`store watcher subscription ${subscription.id}`, () =>
      this.client.commands.putWatcher(this.watcherKeys(this.keys.watcherShard(subscription.id)), {
        id: subscription.id,
        json,
        expiresAt: subscription.expiresAt,
        channel: this.channel,
        message: `{"watcher":${json}}`,
      }),
    );
  }

  removeWatcherSubscription(id: string, options: { keepCseq?: boolean } = {}): Promise<void> {
    return this.call(`remove watcher subscription ${id}`, () =>
      this.client.commands.removeWatcher(this.watcherKeys(this.keys.watcherShard(id)), {
        id,
        channel: this.channel,
        message: JSON.stringify({ watcherGone: id }),
        keepCseq: options.keepCseq === true,
      }),
    );
  }

  async watcherSubscription(id: string): Promise<WatcherSubscription | null> {
    const value = await this.call(`read watcher subscription ${id}`, () =>
      this.client.commands.hGet(this.keys.watchers(this.keys.watcherShard(id)), id),
    );
    if (value === null || value === undefined) return null;
    try {
      const subscription = JSON.parse(value) as WatcherSubscription;
      return subscription.expiresAt > Date.now() ? subscription : null;
    } catch {
      this.log.warn({ value: value.slice(0, 200) }, "ignoring a malformed watcher subscription");
      return null;
    }
  }

  nextWatcherCseq(id: string, options: { last?: boolean } = {}): Promise<number> {
    return this.call(`next CSeq of watcher subscription ${id}`, () =>
      this.client.commands.nextCseq(
        this.keys.watchersCseq(this.keys.watcherShard(id)),
        id,
        options.last === true,
      ),
    );
  }

  watchWatchers(listener: WatcherListener): () => void {
    this.watcherListeners.add(listener);
    return () => this.watcherListeners.delete(listener);
  }

  async watcherSubscriptions(): Promise<WatcherSubscription[]> {
    const now = Date.now();
    const values = await this.call("list watcher subscriptions", async () => {
      const shards = await Promise.all(
        ALL_SHARDS.map((n) => this.client.commands.listWatchers(this.watcherKeys(n), now)),
      );
      return shards.flat();
    });
    const subscriptions: WatcherSubscription[] = [];
    for (const value of values) {
      try {
        subscriptions.push(JSON.parse(value) as WatcherSubscription);
      } catch {
        this.log.warn({ value: value.slice(0, 200) }, "ignoring a malformed watcher subscription");
      }
    }
    return subscriptions;
  }
}
