// Drives the independent slixmpp client (xmpp_client.py) from tests: commands go in as JSON lines,
// events come back as JSON lines and are awaited with a bounded wait.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HarnessError } from "./process.js";

/** Debian's python3 sees python3-slixmpp; a python3 earlier on PATH (pyenv) may not. */
export const SYSTEM_PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./xmpp_client.py", import.meta.url));

export interface XmppEvent {
  event: string;
  from?: string;
  to?: string;
  type?: string;
  id?: string;
  body?: string;
  show?: string;
  status?: string;
  xml?: string;
  reason?: string;
  jid?: string;
  /** IQ answers: the tag of the command, the stanza error condition and text. */
  tag?: string;
  condition?: string;
  text?: string;
}

export type XmppQuery =
  | { op: "disco_info" | "ping" | "version"; to: string; tag?: string }
  | { op: "iq"; to: string; type?: "get" | "set"; payload: string; tag?: string };

export type XmppCommand =
  | { op: "message"; to: string; body: string; id?: string; type?: string; receipt?: boolean }
  | { op: "presence"; to?: string; type?: string; show?: string; status?: string }
  | { op: "raw"; xml: string }
  | XmppQuery
  | { op: "disconnect" };

export class SlixmppClient {
  readonly events: XmppEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private stderr = "";
  private exited = false;
  private queries = 0;

  private constructor(
    readonly jid: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        this.events.push(JSON.parse(line) as XmppEvent);
      } catch {
        this.events.push({ event: "output", body: line });
      }
      for (const wake of this.waiters) wake();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    // A missing interpreter or a dead child must fail the test, not crash the run.
    child.on("error", (err) => {
      this.stderr += `\nspawn error: ${err.message}`;
      this.exited = true;
      for (const wake of this.waiters) wake();
    });
    child.stdin.on("error", () => undefined);
    child.once("exit", () => {
      this.exited = true;
      for (const wake of this.waiters) wake();
    });
  }

  /** Logs in and resolves once the session has started (roster fetched, presence sent). */
  static async connect(
    jid: string,
    password: string,
    host: string,
    port: number,
    timeoutMs = 10_000,
  ): Promise<SlixmppClient> {
    const child = spawn(SYSTEM_PYTHON, [SCRIPT, jid, password, host, String(port)], { stdio: "pipe" });
    const client = new SlixmppClient(jid, child);
    try {
      const first = await client.waitFor((e) => e.event === "ready" || e.event === "failed", timeoutMs);
      if (first.event === "failed") throw new HarnessError(`slixmpp ${jid}: login failed (${first.reason})`);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
    return client;
  }

  send(command: XmppCommand): void {
    this.child.stdin.write(JSON.stringify(command) + "\n");
  }

  /** Waits for the first event (already received or future) matching `predicate`. */
  waitFor(predicate: (event: XmppEvent) => boolean, timeoutMs = 5_000): Promise<XmppEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(predicate);
        if (found) {
          done();
          resolve(found);
          return true;
        }
        if (this.exited) {
          done();
          reject(new HarnessError(`slixmpp ${this.jid} exited; stderr:\n${this.stderr}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.events.map((e) => e.event).join(", ");
        reject(
          new HarnessError(
            `slixmpp ${this.jid}: no matching event within ${timeoutMs} ms (seen: ${seen})\n${this.stderr}`,
          ),
        );
      }, timeoutMs);
      const wake = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      this.waiters.add(wake);
      check();
    });
  }

  /** Sends an IQ command and waits for its answer (matched by tag). */
  async query(command: XmppQuery, timeoutMs = 7_000): Promise<XmppEvent> {
    const tag = command.tag ?? `q${++this.queries}`;
    this.send({ ...command, tag });
    return this.waitFor((e) => e.event === "iq" && e.tag === tag, timeoutMs);
  }

  async close(timeoutMs = 5_000): Promise<void> {
    if (this.exited) return;
    this.send({ op: "disconnect" });
    this.child.stdin.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        resolve();
      }, timeoutMs);
      this.child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
