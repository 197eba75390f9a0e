// A managed child process for the test harness: output goes to a log file, start-up waits for a
// readiness probe with a bounded timeout, and every failure carries the tail of the server's log.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface ManagedProcessOptions {
  /** Short name used in errors, e.g. "prosody". */
  name: string;
  command: string;
  args: string[];
  /** File that receives stdout and stderr. */
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra log files to show when the process fails (e.g. a server's own log file). */
  extraLogs?: string[];
}

export class HarnessError extends Error {
  override name = "HarnessError";
}

export function logTail(file: string, lines = 30): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd();
    return text.split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export class ManagedProcess {
  readonly child: ChildProcess;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exitPromise: Promise<void>;

  constructor(readonly options: ManagedProcessOptions) {
    const log = createWriteStream(options.logFile, { flags: "a" });
    this.child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.pipe(log, { end: false });
    this.child.stderr?.pipe(log, { end: false });
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
      this.child.once("error", (err) => {
        log.write(`spawn error: ${err.message}\n`);
        this.exited = { code: null, signal: null };
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.exited === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The tail of the process output and of any extra log files, for error messages. */
  tail(lines = 30): string {
    const parts = [this.options.logFile, ...(this.options.extraLogs ?? [])].map(
      (file) => `--- ${file}\n${logTail(file, lines)}`,
    );
    return parts.join("\n");
  }

  fail(reason: string): HarnessError {
    return new HarnessError(`${this.options.name}: ${reason}\n${this.tail()}`);
  }

  /**
   * Polls `probe` until it resolves true, the process exits, or the timeout passes. Probe errors
   * count as "not ready yet"; the last one is reported on timeout.
   */
  async waitReady(probe: () => Promise<boolean>, timeoutMs = 15_000, intervalMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = "";
    while (Date.now() < deadline) {
      if (!this.running) {
        throw this.fail(`exited during start-up (${JSON.stringify(this.exited)})`);
      }
      if (Date.now() >= deadline) break;
      try {
        // A probe that hangs must not outlive the deadline.
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
        });
        const ready = await Promise.race([probe(), expired]).finally(() => clearTimeout(timer));
        if (ready) return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      await sleep(intervalMs);
    }
    const error = this.fail(
      `not ready after ${timeoutMs} ms${lastError ? ` (last probe error: ${lastError})` : ""}`,
    );
    await this.stop(); // never leave a half-started server behind
    throw error;
  }

  /** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exitPromise.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut && this.running) {
      this.child.kill("SIGKILL");
      await this.exitPromise;
    }
  }

  /** Kill -9 without grace, for fault tests. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exitPromise;
  }
}
