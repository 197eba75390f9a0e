// Drives the independent slixmpp client (xmpp_client.py) from tests: commands go in as JSON lines,
// events come back as JSON lines and are awaited with a bounded wait.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { EventLog } from "./event-log.js";
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
  /** The roster, for the `roster` query: bare JID → item. */
  items?: Record<string, { name: string; subscription: string; groups: string[] }>;
}

export type XmppQuery =
  | { op: "disco_info" | "ping" | "version"; to: string; tag?: string }
  | { op: "roster"; to?: undefined; tag?: string }
  | { op: "iq"; to: string; type?: "get" | "set"; payload: string; tag?: string };

export type XmppCommand =
  | { op: "message"; to: string; body: string; id?: string; type?: string; receipt?: boolean }
  | { op: "presence"; to?: string; type?: string; show?: string; status?: string }
  | { op: "raw"; xml: string }
  | XmppQuery
  | { op: "disconnect" };

export class SlixmppClient {
  private readonly log: EventLog<XmppEvent>;
  private stderr = "";
  private queries = 0;

  private constructor(
    readonly jid: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    this.log = new EventLog(`slixmpp ${jid}`, (e) => e.event);
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        this.log.push(JSON.parse(line) as XmppEvent);
      } catch {
        this.log.push({ event: "output", body: line });
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    // A missing interpreter or a dead child must fail the test, not crash the run.
    child.on("error", (err) => this.log.close(`could not run ${SYSTEM_PYTHON}: ${err.message}`));
    child.stdin.on("error", () => undefined);
    child.once("exit", (code) => this.log.close(`exited (code ${code}); stderr:\n${this.stderr}`));
  }

  get events(): XmppEvent[] {
    return this.log.entries;
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
    return this.log.waitFor(predicate, timeoutMs);
  }

  /** Sends an IQ command and waits for its answer (matched by tag). */
  async query(command: XmppQuery, timeoutMs = 7_000): Promise<XmppEvent> {
    const tag = command.tag ?? `q${++this.queries}`;
    this.send({ ...command, tag });
    return this.waitFor((e) => e.event === "iq" && e.tag === tag, timeoutMs);
  }

  async close(timeoutMs = 5_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
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
