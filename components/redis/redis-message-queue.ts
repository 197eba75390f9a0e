// The durable message queue in Redis (the MessageQueue port). With append-only persistence
// (`appendonly yes`, as `switchboard check` reports) an acknowledged enqueue survives a restart of
// Redis and of the bridge; with `waitReplicas`, an enqueue counts only once that many replicas have
// it too (Redis WAIT), so it also survives a failover to one of them (docs/store.md). Keys, all
// under the configured prefix and all with the hash tag {q}, so that each script's keys are in one
// Cluster slot (the queue holds only messages for offline phones: one slot carries it):
//   queue:{q}:entries        hash   key → JSON of the message and its times (never rewritten)
//   queue:{q}:attempts       hash   key → attempts so far
//   queue:{q}:recipient      hash   key → the recipient's person key
//   queue:{q}:due            zset   key scored by the next attempt
//   queue:{q}:to:<person>    zset   key scored by queuedAt (a recipient's messages, oldest first)
//   queue:{q}:queued         zset   key scored by queuedAt (every message, oldest first: the queue's age)
// Every change of an entry is one Lua script, so they never disagree; the scripts never decode the
// JSON (a body Lua's cjson cannot read must not make an entry impossible to remove), and name every
// key they touch in KEYS.
import { SwitchboardError } from "../../src/domain/errors.js";
import type { Logger } from "../../src/ports/logger.js";
import type { MessageQueue, QueuedMessage } from "../../src/ports/message-queue.js";
import { createRedisClient, type RedisConnection, type RedisTarget } from "./redis-connection.js";

// KEYS: entries, attempts, recipient, due, to:{person}, queued; ARGV: key, json, attempts,
// nextAttemptAt, queuedAt, person. Returns 1 when added.
const ENQUEUE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[1])
return 1`;

// KEYS: entries, attempts, due; ARGV: key, nextAttemptAt, attempts.
const RESCHEDULE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1`;

// KEYS: entries, attempts, recipient, due, queued, to:<person>; ARGV: key, person. The caller read the
// recipient first (a script may touch only the keys it names); -1 if it is another one now, so the
// caller reads it again.
const REMOVE = `
local person = redis.call('HGET', KEYS[3], ARGV[1])
if not person then return 0 end
if person ~= ARGV[2] then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1`;

// KEYS: entries, queued; ARGV: key, queuedAt. Indexes an entry's age only while it is still queued.
const INDEX_QUEUED = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
return redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])`;

export interface RedisQueueOptions {
  /** Where Redis is (config `store.url`, `store.sentinel` or `store.cluster`); a string is a URL. */
  target: RedisTarget | string;
  prefix: string;
  log: Logger;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Replicas that must hold an entry before enqueue() resolves (Redis WAIT); default 0. */
  waitReplicas?: number;
  /** How long enqueue() waits for them (default 1000 ms). */
  waitTimeoutMs?: number;
}

export class RedisMessageQueue implements MessageQueue {
  private constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly log: Logger,
    private readonly waitReplicas: number,
    private readonly waitTimeoutMs: number,
  ) {}

  private get client() {
    return this.redis.commands;
  }

  static async connect(options: RedisQueueOptions): Promise<RedisMessageQueue> {
    // While Redis is away, commands fail at once instead of waiting in memory; a Redis that stops
    // answering without closing the connection must not stall the queue (the command timeout).
    const redis = createRedisClient(options.target, {
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
    });
    redis.on("error", (err: Error) =>
      options.log.warn({ err: err.message }, "redis (queue): connection problem"),
    );
    await redis.connect();
    const queue = new RedisMessageQueue(
      redis,
      options.prefix,
      options.log,
      options.waitReplicas ?? 0,
      options.waitTimeoutMs ?? 1_000,
    );
    await queue.indexQueuedTimes(options.log);
    return queue;
  }

  /**
   * Entries queued by a version without the `queued` index get their place in it (read from their
   * JSON), so the queue's age counts them too. Costs one HSCAN, only when the index is short.
   */
  private async indexQueuedTimes(log: Logger): Promise<void> {
    const { entries, queued } = this.keys;
    const [total, indexed] = await Promise.all([this.client.hLen(entries), this.client.zCard(queued)]);
    if (indexed >= total) return;
    let added = 0;
    let cursor = "0";
    do {
      const reply = await this.client.hScan(entries, cursor, { COUNT: 500 });
      cursor = String(reply.cursor);
      for (const { field, value } of reply.entries) {
        let queuedAt: unknown;
        try {
          queuedAt = (JSON.parse(value) as { queuedAt?: unknown }).queuedAt;
        } catch {
          continue;
        }
        if (typeof queuedAt !== "number") continue;
        added += Number(
          await this.client.eval(INDEX_QUEUED, {
            keys: [entries, queued],
            arguments: [field, String(queuedAt)],
          }),
        );
      }
    } while (cursor !== "0");
    log.info({ added }, "message queue: queued times indexed");
  }

  private get keys(): {
    entries: string;
    attempts: string;
    recipient: string;
    due: string;
    to: string;
    queued: string;
  } {
    const p = `${this.prefix}queue:{q}:`;
    return {
      queued: `${p}queued`,
      entries: `${p}entries`,
      attempts: `${p}attempts`,
      recipient: `${p}recipient`,
      due: `${p}due`,
      to: `${p}to:`,
    };
  }

  ready(): boolean {
    return this.redis.isReady;
  }

  /** Runs a command, turning an unreachable Redis into service-unavailable. */
  private async run<T>(what: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new SwitchboardError("service-unavailable", `message queue: ${what}: ${(err as Error).message}`);
    }
  }

  async enqueue(entry: QueuedMessage): Promise<boolean> {
    const { entries, attempts, recipient, due, to, queued } = this.keys;
    const { attempts: tries, nextAttemptAt, ...fixed } = entry;
    const added = await this.run("enqueue", () =>
      this.client.eval(ENQUEUE, {
        keys: [entries, attempts, recipient, due, `${to}${entry.message.to}`, queued],
        arguments: [
          entry.key,
          JSON.stringify(fixed),
          String(tries),
          String(nextAttemptAt),
          String(entry.queuedAt),
          entry.message.to,
        ],
      }),
    );
    if (added === 1 && this.waitReplicas > 0) await this.replicate(entry.key, entries);
    return added === 1;
  }

  /**
   * Waits until the replicas have the entry just written. If too few do in time, the entry is taken
   * back (a failover now could lose it) and the enqueue fails: the sender hears it was not queued.
   */
  private async replicate(key: string, entries: string): Promise<void> {
    const acknowledged = await this.run("enqueue (waiting for replicas)", () =>
      this.redis.waitForReplicas(entries, this.waitReplicas, this.waitTimeoutMs),
    );
    if (acknowledged >= this.waitReplicas) return;
    await this.remove(key).catch((err: unknown) =>
      this.log.warn({ key, err: String(err) }, "message queue: could not take back an unreplicated entry"),
    );
    throw new SwitchboardError(
      "service-unavailable",
      `message queue: enqueue: ${acknowledged} of ${this.waitReplicas} replicas acknowledged within ${this.waitTimeoutMs} ms`,
    );
  }

  private async read(keys: string[]): Promise<QueuedMessage[]> {
    if (keys.length === 0) return [];
    const { entries, attempts, due } = this.keys;
    const [values, tries, scores] = await this.run("read", () =>
      Promise.all([
        this.client.hmGet(entries, keys),
        this.client.hmGet(attempts, keys),
        this.client.zmScore(due, keys),
      ]),
    );
    return values.flatMap((json, i) => {
      if (typeof json !== "string") return [];
      try {
        const fixed = JSON.parse(json) as Omit<QueuedMessage, "attempts" | "nextAttemptAt">;
        return [{ ...fixed, attempts: Number(tries[i] ?? 1), nextAttemptAt: Number(scores[i] ?? 0) }];
      } catch {
        return [];
      }
    });
  }

  async get(key: string): Promise<QueuedMessage | undefined> {
    return (await this.read([key]))[0];
  }

  async due(now: number, limit: number): Promise<QueuedMessage[]> {
    const keys = await this.run("due", () =>
      this.client.zRangeByScore(this.keys.due, "-inf", now, { LIMIT: { offset: 0, count: limit } }),
    );
    return this.read(keys);
  }

  async forRecipient(person: string): Promise<QueuedMessage[]> {
    const keys = await this.run("recipient", () => this.client.zRange(`${this.keys.to}${person}`, 0, -1));
    return this.read(keys);
  }

  async reschedule(key: string, nextAttemptAt: number, attempts: number): Promise<void> {
    const { entries, attempts: tries, due } = this.keys;
    await this.run("reschedule", () =>
      this.client.eval(RESCHEDULE, {
        keys: [entries, tries, due],
        arguments: [key, String(nextAttemptAt), String(attempts)],
      }),
    );
  }

  async remove(key: string): Promise<boolean> {
    const { entries, attempts, recipient, due, to, queued } = this.keys;
    for (;;) {
      const person = await this.run("remove", () => this.client.hGet(recipient, key));
      if (person === null) return false;
      const removed = await this.run("remove", () =>
        this.client.eval(REMOVE, {
          keys: [entries, attempts, recipient, due, queued, `${to}${person}`],
          arguments: [key, person],
        }),
      );
      if (removed !== -1) return removed === 1;
    }
  }

  size(): Promise<number> {
    return this.run("size", () => this.client.hLen(this.keys.entries));
  }

  async oldestQueuedAt(): Promise<number | undefined> {
    const [oldest] = await this.run("oldest", () => this.client.zRangeWithScores(this.keys.queued, 0, 0));
    return oldest?.score;
  }

  async close(): Promise<void> {
    await this.redis.close();
  }
}
