// Bounded load: `count` operations at a fixed offered rate (or as fast as the in-flight bound lets,
// for saturation), each started by `start` and ended by `complete(i)` from whoever sees its answer.
// Every loop here is bounded in count and in time: a run ends at its deadline whatever happens.

export interface LoadOptions {
  count: number;
  /** Offered rate in operations per second; Infinity: saturation (only maxInFlight limits). */
  rate: number;
  maxInFlight: number;
  /** Ends the run even if answers are missing (they count as lost). */
  deadlineMs: number;
  /** Starts operation i (sends it); must not throw. */
  start: (i: number) => void;
}

export interface LoadResult {
  started: number;
  completed: number;
  /** From the first start to the last completion (or the deadline), ms. */
  elapsedMs: number;
  /** Per completed operation: start to completion, ms. */
  latencies: number[];
  /** Whether the deadline ended the run before every answer came. */
  timedOut: boolean;
}

/**
 * Runs a load. `complete(i)` must be called once for each operation that got its answer (later
 * calls for the same i are ignored).
 */
export function runLoad(options: LoadOptions): { done: Promise<LoadResult>; complete: (i: number) => void } {
  const startedAt = new Float64Array(options.count);
  const finished = new Uint8Array(options.count);
  const latencies: number[] = [];
  let started = 0;
  let completed = 0;
  let inFlight = 0;
  let lastCompletion = 0;
  const t0 = performance.now();
  let resolveDone: (result: LoadResult) => void = () => undefined;
  const done = new Promise<LoadResult>((resolve) => (resolveDone = resolve));
  let ended = false;
  const end = (timedOut: boolean): void => {
    if (ended) return;
    ended = true;
    clearTimeout(deadline);
    resolveDone({
      started,
      completed,
      elapsedMs: (timedOut ? performance.now() : lastCompletion) - t0,
      latencies,
      timedOut,
    });
  };
  const deadline = setTimeout(() => end(true), options.deadlineMs);
  let scheduled = false;
  const schedule = (delayMs: number): void => {
    if (scheduled) return;
    scheduled = true;
    const run = (): void => {
      scheduled = false;
      pump();
    };
    if (delayMs === 0) setImmediate(run);
    else setTimeout(run, delayMs);
  };
  const pump = (): void => {
    if (ended) return;
    const due =
      options.rate === Infinity
        ? options.count
        : Math.min(options.count, Math.floor(((performance.now() - t0) / 1000) * options.rate) + 1);
    while (started < due && inFlight < options.maxInFlight) {
      const i = started++;
      inFlight++;
      startedAt[i] = performance.now();
      options.start(i);
    }
    // At the in-flight bound, the next completion pumps again; ahead of the pace, the clock does.
    if (started < options.count && inFlight < options.maxInFlight && started >= due) schedule(1);
  };
  const complete = (i: number): void => {
    if (i < 0 || i >= options.count || finished[i] === 1 || ended) return;
    finished[i] = 1;
    completed++;
    inFlight--;
    lastCompletion = performance.now();
    latencies.push(lastCompletion - (startedAt[i] ?? lastCompletion));
    if (completed === options.count) end(false);
    else if (started < options.count) schedule(0);
  };
  schedule(0);
  return { done, complete };
}

/** The q-quantile (0..1) of unsorted values; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** min / median / max of run figures. */
export function spread(values: readonly number[]): { min: number; median: number; max: number } {
  return { min: Math.min(...values), median: quantile(values, 0.5), max: Math.max(...values) };
}
