// The durable message queue in Redis (the MessageQueue port). With append-only persistence
// (`appendonly yes`, as `switchboard check` reports) an acknowledged enqueue survives a restart of
// Redis and of the bridge. Keys, all under the configured prefix:
//   queue:entries      hash   key → JSON QueuedMessage
//   queue:due          zset   key scored by nextAttemptAt
//   queue:to:{person}  zset   key scored by queuedAt (a recipient's messages, oldest first)
// Every change of an entry is one Lua script, so the three never disagree.
import { createClient, type RedisClientType } from "redis";
import { SwitchboardError } from "../../src/domain/errors.js";
import type { Logger } from "../../src/ports/logger.js";
import type { MessageQueue, QueuedMessage } from "../../src/ports/message-queue.js";

// KEYS: entries, due, to:{person}; ARGV: key, json, nextAttemptAt, queuedAt. Returns 1 when added.
const ENQUEUE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1`;

// KEYS: entries, due; ARGV: key, nextAttemptAt, attempts.
const RESCHEDULE = `
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return 0 end
local entry = cjson.decode(json)
entry.nextAttemptAt = tonumber(ARGV[2])
entry.attempts = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1`;

// KEYS: entries, due; ARGV: key, prefix of the per-recipient key. Returns 1 when it was there.
const REMOVE = `
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return 0 end
local entry = cjson.decode(json)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[2] .. entry.message.to, ARGV[1])
return 1`;

export interface RedisQueueOptions {
  url: string;
  prefix: string;
  log: Logger;
  connectTimeoutMs?: number;
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
      socket: {
        connectTimeout: options.connectTimeoutMs ?? 5_000,
        reconnectStrategy: (retries) => Math.min(200 * (retries + 1), 5_000),
      },
    });
    client.on("error", (err: Error) =>
      options.log.warn({ err: err.message }, "redis (queue): connection problem"),
    );
    await client.connect();
    return new RedisMessageQueue(client, options.prefix);
  }

  private get keys(): { entries: string; due: string; to: string } {
    return {
      entries: `${this.prefix}queue:entries`,
      due: `${this.prefix}queue:due`,
      to: `${this.prefix}queue:to:`,
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
    const { entries, due, to } = this.keys;
    const added = await this.run("enqueue", () =>
      this.client.eval(ENQUEUE, {
        keys: [entries, due, `${to}${entry.message.to}`],
        arguments: [entry.key, JSON.stringify(entry), String(entry.nextAttemptAt), String(entry.queuedAt)],
      }),
    );
    return added === 1;
  }

  private async read(keys: string[]): Promise<QueuedMessage[]> {
    if (keys.length === 0) return [];
    const values = await this.run("read", () => this.client.hmGet(this.keys.entries, keys));
    return values.flatMap((json) => {
      if (typeof json !== "string") return [];
      try {
        return [JSON.parse(json) as QueuedMessage];
      } catch {
        return [];
      }
    });
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
    const { entries, due } = this.keys;
    await this.run("reschedule", () =>
      this.client.eval(RESCHEDULE, {
        keys: [entries, due],
        arguments: [key, String(nextAttemptAt), String(attempts)],
      }),
    );
  }

  async remove(key: string): Promise<boolean> {
    const { entries, due, to } = this.keys;
    const removed = await this.run("remove", () =>
      this.client.eval(REMOVE, { keys: [entries, due], arguments: [key, to] }),
    );
    return removed === 1;
  }

  size(): Promise<number> {
    return this.run("size", () => this.client.hLen(this.keys.entries));
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close();
  }
}
