// `switchboard start` as a real child process, as an operator runs it: its JSON log lines are
// collected in an EventLog, and it can be stopped (SIGTERM), killed (SIGKILL) and started again
// with the same config, for the tests of what survives a restart.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { childEnv } from "./cli.js";
import { EventLog } from "./event-log.js";

const RUN = fileURLToPath(new URL("../../src/cli/run.ts", import.meta.url));

export interface LogLine {
  msg: string;
  [field: string]: unknown;
}

export class BridgeProcess {
  readonly lines = new EventLog<LogLine>("switchboard start", (l) => l.msg);
  stderr = "";
  private child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;

  private constructor(readonly configFile: string) {
    this.child = spawn(process.execPath, ["--import", "tsx", RUN, "start", "--config", configFile], {
      stdio: "pipe",
      env: childEnv(),
    });
    this.child.stderr.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    let buffered = "";
    this.child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: `(not JSON) ${line}` });
        }
      }
    });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  /** Writes `config` (as YAML) to `file` and starts the bridge on it. */
  static start(file: string, config?: unknown): BridgeProcess {
    if (config !== undefined) writeFileSync(file, stringify(config));
    return new BridgeProcess(file);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once the XMPP component is online (bounded). */
  async online(timeoutMs = 15_000): Promise<void> {
    await this.lines.waitFor((l) => l.msg === "xmpp component online", timeoutMs);
  }

  /** SIGTERM (a clean stop) or SIGKILL (a crash); resolves with the exit code (null when killed). */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM", timeoutMs = 10_000): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      this.exited,
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (code === "timeout") {
      this.child.kill("SIGKILL");
      throw new Error(
        `switchboard did not exit on ${signal} within ${timeoutMs} ms (stderr: ${this.stderr})`,
      );
    }
    return code;
  }

  /** The process id (to read its memory from /proc). */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Sends a signal without waiting (SIGHUP: reload the config). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** A new process on the same config file. */
  restart(): BridgeProcess {
    return new BridgeProcess(this.configFile);
  }
}
