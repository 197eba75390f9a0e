// Exponential backoff with "equal jitter": the delay doubles with each failed attempt up to a cap,
// and a random half of it is spread so that many instances do not reconnect in lock-step.
export interface BackoffOptions {
  /** Delay before the first retry (ms). */
  baseMs: number;
  /** Largest delay (ms). */
  capMs: number;
}

/** Delay before retry number `attempt` (0 = the first retry), in [ceiling/2, ceiling]. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
