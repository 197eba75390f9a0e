// Per-key token buckets (rate limiting by source address). Each key holds up to `burst` tokens and
// gains `perSecond` tokens a second; a request takes one. Memory is bounded: past `maxKeys` keys,
// the buckets that are full again (their sender has been quiet) are forgotten, and if that frees
// nothing the oldest are, so a flood from many addresses costs at most `maxKeys` entries.

export interface TokenBucketOptions {
  /** Tokens gained per second (the sustained rate allowed). */
  perSecond: number;
  /** Most tokens a bucket holds (the burst allowed after a quiet while). */
  burst: number;
  /** Most keys remembered at once (default 10,000). */
  maxKeys?: number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxKeys: number;

  constructor(private readonly options: TokenBucketOptions) {
    if (!(options.perSecond > 0) || !(options.burst >= 1))
      throw new RangeError("TokenBuckets: perSecond must be > 0 and burst >= 1");
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Takes a token from `key`'s bucket at time `now` (ms), or says how long until one is there. */
  take(key: string, now: number): TakeResult {
    const { perSecond, burst } = this.options;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.prune(now);
      bucket = { tokens: burst, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)) };
  }

  /** How many keys are remembered now. */
  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    const { perSecond, burst } = this.options;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * perSecond >= burst) this.buckets.delete(key);
    }
    // Everyone is busy: forget the oldest tenth (insertion order), so the map stays bounded.
    if (this.buckets.size >= this.maxKeys) {
      let drop = Math.max(1, Math.floor(this.maxKeys / 10));
      for (const key of this.buckets.keys()) {
        if (drop-- <= 0) break;
        this.buckets.delete(key);
      }
    }
  }
}
