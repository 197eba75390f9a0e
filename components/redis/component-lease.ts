// Who holds the XMPP component when several bridge instances share one Redis. Prosody accepts one
// connection per component domain (a second gets `conflict`), so the instances elect a holder: a
// Redis lease (SET NX PX), renewed well before it runs out, with a fencing token (a counter bumped
// at each acquisition). Only the holder connects the component; the others try to take the lease
// every `renewMs` and take over when a holder stops renewing (it died): within ttlMs + renewMs.
// Prosody is the final arbiter: it accepts one connection per component domain, so two instances
// that both believe they hold the lease (one cut off from Redis) never both connect; the one that
// finds, once Redis answers, that the lease is another's, gives the component up.
//
// Keys, under the store prefix P: `P component-lease:{<gateway>}` (the holder's id and token, with
// its expiry), `P component-fence:{<gateway>}` (the fencing counter); the gateway is their hash tag,
// so a Cluster keeps both in one slot.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "../../src/ports/logger.js";
import { createRedisClient, type RedisConnection, type RedisTarget } from "./redis-connection.js";

/** The lease's key: the holder's id, with its expiry (also read by `switchboard check`). */
export function componentLeaseKey(prefix: string, gateway: string): string {
  return `${prefix}component-lease:{${gateway}}`;
}

export interface ComponentLeaseOptions {
  /** Where Redis is (config `store.url`, `store.sentinel` or `store.cluster`); a string is a URL. */
  target: RedisTarget | string;
  prefix: string;
  /** The gateway domain (the component's JID): one lease per component. */
  gateway: string;
  log: Logger;
  /** How long a lease lasts without renewal (default 2500 ms). */
  ttlMs?: number;
  /** How often the holder renews and the others try (default 800 ms). */
  renewMs?: number;
}

export interface ComponentLeaseEvents {
  /** This instance holds the lease now (connect the component). */
  acquired: [token: number];
  /** This instance no longer holds it (disconnect the component at once). */
  lost: [];
}

// KEYS[1] the lease; ARGV[1] this holder's value, ARGV[2] the ttl. 1 if renewed (or taken again,
// when it ran out and nobody took it meanwhile: a Redis outage longer than the ttl), 0 if another
// instance holds it now.
const RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;
// KEYS[1] the lease; ARGV[1] this holder's value. Deletes it only if it is ours.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

export class ComponentLease extends EventEmitter<ComponentLeaseEvents> {
  readonly instance = randomUUID();
  private readonly redis: RedisConnection;
  private readonly key: string;
  private readonly fenceKey: string;
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private timer: NodeJS.Timeout | undefined;
  private value: string | null = null;
  private _token = 0;
  /** Whether another instance held the lease when last looked at (for readiness on a standby). */
  private othersHold = false;
  private stopped = false;

  constructor(private readonly options: ComponentLeaseOptions) {
    super();
    this.ttlMs = options.ttlMs ?? 2_500;
    this.renewMs = options.renewMs ?? 800;
    this.key = componentLeaseKey(options.prefix, options.gateway);
    this.fenceKey = `${options.prefix}component-fence:{${options.gateway}}`;
    this.redis = createRedisClient(options.target, { connectTimeoutMs: 3_000, maxReconnectDelayMs: 2_000 });
    this.redis.on("error", (err: unknown) =>
      options.log.debug(
        { err: err instanceof Error ? err.message : String(err) },
        "lease: Redis unreachable",
      ),
    );
  }

  /** Whether this instance holds the lease. */
  get held(): boolean {
    return this.value !== null;
  }

  /** The fencing token of the current holding (0 when not holding). */
  get token(): number {
    return this.value === null ? 0 : this._token;
  }

  /** Whether a live instance other than this one holds it (as last seen). */
  get heldElsewhere(): boolean {
    return this.value === null && this.othersHold;
  }

  /**
   * Connects and makes the first attempt (bounded: a Redis that does not answer within 3 s does not
   * hold up the start; the client goes on connecting, and the attempts every `renewMs` go on).
   */
  async start(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const connected = await Promise.race([
      this.redis.connect().then(
        () => true,
        (err: unknown) => {
          this.options.log.warn(
            { err: err instanceof Error ? err.message : String(err) },
            "lease: cannot reach Redis yet; trying again",
          );
          return false;
        },
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3_000))),
    ]);
    clearTimeout(timer);
    if (connected) await this.round();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.round().finally(() => this.schedule());
    }, this.renewMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    try {
      if (this.value !== null) {
        const renewed = await this.client.eval(RENEW, {
          keys: [this.key],
          arguments: [this.value, String(this.ttlMs)],
        });
        if (renewed !== 1) this.lose("the lease was taken or ran out");
        return;
      }
      const value = `${this.instance}`;
      const set = await this.client.set(this.key, value, {
        condition: "NX",
        expiration: { type: "PX", value: this.ttlMs },
      });
      if (set === "OK") {
        this._token = Number(await this.client.incr(this.fenceKey));
        this.value = value;
        this.othersHold = false;
        this.options.log.info(
          { token: this._token, instance: this.instance },
          "holding the XMPP component lease",
        );
        this.emit("acquired", this._token);
        return;
      }
      this.othersHold = (await this.client.exists(this.key)) === 1;
    } catch (err) {
      // Redis is away. A holder keeps the component: Prosody itself refuses a second connection for
      // the domain, so no other instance can take over while this one is connected, and messages
      // go on without the store. It learns whether it still holds the lease when Redis is back.
      this.options.log.debug(
        { err: err instanceof Error ? err.message : String(err) },
        "lease: Redis unreachable; keeping what is held",
      );
      this.othersHold = false;
    }
  }

  /**
   * Gives the holding up without waiting for Redis: the XMPP server replaced this instance's
   * component connection by another instance's, which can only be the lease's new holder (this
   * one was frozen, or cut off from Redis, past the lease's expiry). Goes on as a standby.
   */
  relinquish(reason: string): void {
    const value = this.value;
    if (value === null) return;
    this.othersHold = true;
    this.lose(reason);
    // Still ours only if nobody took it (then the XMPP server's other connection is not an
    // instance of this deployment): given back, so that a holder of this deployment connects.
    this.client
      .eval(RELEASE, { keys: [this.key], arguments: [value] })
      .catch(() => undefined /* it runs out by itself */);
  }

  private lose(reason: string): void {
    this.value = null;
    this.options.log.warn({ reason, instance: this.instance }, "lost the XMPP component lease");
    this.emit("lost");
  }

  /** Stops trying; gives the lease back if held, so another instance takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    try {
      if (this.value !== null) await this.client.eval(RELEASE, { keys: [this.key], arguments: [this.value] });
    } catch {
      // it runs out by itself
    }
    this.value = null;
    this.redis.destroy();
  }

  private get client() {
    return this.redis.commands;
  }
}
