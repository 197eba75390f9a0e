// What a process costs, read from /proc: CPU seconds (user + system), resident memory now and at
// its peak, open file descriptors. And the bridge itself, started as an operator starts it.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Resident memory now and its peak (VmHWM), in bytes. */
export function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const RUN = fileURLToPath(new URL("../../src/cli/run.ts", import.meta.url));

/** `switchboard start` on `configFile`, its log to `logFile` (JSON lines, not parsed here). */
export class BenchBridge {
  private constructor(
    readonly child: ChildProcess,
    readonly exited: Promise<number | null>,
  ) {}

  static start(configFile: string, logFile: string): BenchBridge {
    const log = openSync(logFile, "a");
    // BENCH_PROFILE=dir: a V8 CPU profile of the bridge is written there when it exits.
    const profile = process.env.BENCH_PROFILE
      ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_PROFILE]
      : [];
    const child = spawn(
      process.execPath,
      [...profile, "--import", "tsx", RUN, "start", "--config", configFile],
      {
        stdio: ["ignore", log, log],
        env: { ...process.env, NODE_V8_COVERAGE: "" },
      },
    );
    closeSync(log);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    return new BenchBridge(child, exited);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error("the bridge did not start");
    return this.child.pid;
  }

  /** Polls /readyz until 200 (bounded); resolves with the ms it took from `since`. */
  async ready(httpBase: string, since: number, timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`the bridge exited with ${this.child.exitCode}`);
      try {
        const answer = await fetch(`${httpBase}/readyz`, { signal: AbortSignal.timeout(2_000) });
        if (answer.status === 200) return performance.now() - since;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`the bridge was not ready within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}
