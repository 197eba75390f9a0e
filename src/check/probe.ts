// `switchboard check`: each configured component contributes a probe; the probes run concurrently,
// each bounded by a timeout, and every result is one line naming the component and its key path.
export interface Probe {
  /** Component name shown first on the line, e.g. "redis". */
  component: string;
  /** Config key path the probe depends on, e.g. "store.url". */
  keyPath: string;
  /** What to try when the probe fails. */
  hint: string;
  /** Resolves with what was found (e.g. "PONG, Redis 7.0.15"); rejects with the reason. */
  run(signal: AbortSignal): Promise<string>;
}

export interface ProbeResult {
  component: string;
  keyPath: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

function reason(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(reason).join("; ");
  if (err instanceof Error) {
    // Libraries name their errors (ldapts: NoSuchObjectError) but may leave the message empty.
    const text = err.message.trim();
    const message = err.name === "Error" ? text || "error" : text ? `${err.name}: ${text}` : err.name;
    // fetch() and others wrap the useful reason (ECONNREFUSED...) in `cause`.
    return err.cause === undefined ? message : `${message}: ${reason(err.cause)}`;
  }
  return String(err);
}

export async function runProbe(probe: Probe, timeoutMs: number): Promise<ProbeResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const detail = await Promise.race([probe.run(controller.signal), timeout]);
    return { component: probe.component, keyPath: probe.keyPath, ok: true, detail };
  } catch (err) {
    controller.abort();
    return {
      component: probe.component,
      keyPath: probe.keyPath,
      ok: false,
      detail: reason(err),
      hint: probe.hint,
    };
  } finally {
    clearTimeout(timer);
  }
}

export function runProbes(probes: Probe[], timeoutMs = 5_000): Promise<ProbeResult[]> {
  return Promise.all(probes.map((probe) => runProbe(probe, timeoutMs)));
}

export function formatResult(result: ProbeResult): string {
  const head = `${result.ok ? "ok  " : "FAIL"} ${result.component.padEnd(10)} ${result.keyPath}: ${result.detail}`;
  return result.ok || !result.hint ? head : `${head}\n     hint: ${result.hint}`;
}
