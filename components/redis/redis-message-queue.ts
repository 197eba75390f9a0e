// The durable message queue in Redis (the MessageQueue port). With append-only persistence
// (`appendonly yes`, as `switchboard check` reports) an acknowledged enqueue survives a restart of
// Redis and of the bridge. Keys, all under the configured prefix:
//   queue:entries      hash   key → JSON of the message and its times (never rewritten)
//   queue:attempts     hash   key → attempts so far
//   queue:recipient    hash   key → the recipient's person key
//   queue:due          zset   key scored by the next attempt
//   queue:to:{person}  zset   key scored by queuedAt (a recipient's messages, oldest first)
//   queue:queued       zset   key scored by queuedAt (every message, oldest first: the queue's age)
// Every change of an entry is one Lua script, so they never disagree; the scripts never decode the
// JSON (a body Lua's cjson cannot read must not make an entry impossible to remove).
import { createClient, type RedisClientType } from "redis";
import { SwitchboardError } from "../../src/domain/errors.js";
import type { Logger } from "../../src/ports/logger.js";
import type { MessageQueue, QueuedMessage } from "../../src/ports/message-queue.js";

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

// KEYS: entries, attempts, recipient, due, queued; ARGV: key, prefix of the per-recipient key (the one key
// not in KEYS: it is known only here; fine for a single Redis, see docs/store.md).
const REMOVE = `
local person = redis.call('HGET', KEYS[3], ARGV[1])
if not person then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', ARGV[2] .. person, ARGV[1])
return 1`;

// KEYS: entries, queued; ARGV: key, queuedAt. Indexes an entry's age only while it is still queued.
const INDEX_QUEUED = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
return redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])`;

export interface RedisQueueOptions {
  url: string;
  prefix: string;
  log: Logger;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

export class RedisMessageQueue implements MessageQueue {
  private constructor(
    private readonly client: RedisClientType,
    private readonly prefix: string,
  ) {}

  static async connect(options: RedisQueueOptions): Promise<RedisMessageQueue> {
    const client: RedisClientType = createClient({
      url: options.url,
      // While Redis is away, commands fail at once instead of waiting in memory.
      disableOfflineQueue: true,
      // A Redis that stops answering without closing the connection must not stall the queue.
      commandOptions: { timeout: options.commandTimeoutMs ?? 5_000 },
      socket: {
        connectTimeout: options.connectTimeoutMs ?? 5_000,
        reconnectStrategy: (retries) => Math.min(200 * (retries + 1), 5_000),
      },
    });
    client.on("error", (err: Error) =>
      options.log.warn({ err: err.message }, "redis (queue): connection problem"),
    );
    await client.connect();
    const queue = new RedisMessageQueue(client, options.prefix);
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
    for await (const batch of this.client.hScanIterator(entries, { COUNT: 500 })) {
      for (const { field, value } of batch) {
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
    }
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
    const p = `${this.prefix}queue:`;
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
    return this.client.isReady;
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
    return added === 1;
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
    const removed = await this.run("remove", () =>
      this.client.eval(REMOVE, { keys: [entries, attempts, recipient, due, queued], arguments: [key, to] }),
    );
    return removed === 1;
  }

  size(): Promise<number> {
    return this.run("size", () => this.client.hLen(this.keys.entries));
  }

  async oldestQueuedAt(): Promise<number | undefined> {
    const [oldest] = await this.run("oldest", () => this.client.zRangeWithScores(this.keys.queued, 0, 0));
    return oldest?.score;
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close();
  }
}
