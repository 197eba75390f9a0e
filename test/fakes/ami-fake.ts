// A fake of Asterisk's Manager Interface (AMI, TCP) that only replays what a real Asterisk 22.10.1
// sent, recorded in ../shared/fixtures/asterisk-22.10.1/:
//  - ami-actions.txt: the greeting line, and every action/reply exchange of the three recorded
//    sessions (login bridge/secret with Events: off, Ping, PresenceState, MailboxCount, MailboxStatus,
//    Getvar, DeviceStateList, ExtensionState, PresenceStateList, ExtensionStateList, the error replies,
//    Logoff; a login with a wrong secret; Ping and PresenceState before login);
//  - ami-events.log and ami-events-phone.log: the unsolicited events a test may push with `emit`,
//    and what Asterisk sent right after a login with events on (FullyBooted, SuccessfulAuth).
//
// An action is answered only when an exchange with the same Action and the same fields (ActionID
// ignored; keys case-insensitive as in Asterisk, values exact) was recorded in the same login state
// (before or after a successful Login); the reply blocks are sent byte for byte as recorded, with the
// client's ActionID in place of the recorded one, after the recorded delay (a wrong secret waits
// 1 s, as Asterisk does), and the connection is closed where Asterisk closed it (after Logoff and
// after a refused login). Anything else gets `Response: Error` / `Message: not recorded by the fake`
// and is listed in `unrecorded`, so a test can fail on it. The fake holds no state of its own: where
// a reply depends on the PBX's state (CustomPresence, mailbox counts), a test sets the VALUES with
// `answer()`, built with `like()` from the recorded reply; keys can never be added or removed.
//
// Login: Username and Secret must match a recorded Login (bridge/secret succeeds, bridge/wrong is
// refused). `Events` is not matched, as it does not change the reply: the recorded Login had
// `Events: off`, and ami-events.log shows the same "Authentication accepted" reply for the events-on
// login of the recorder that wrote it. Only `on`, `off` or no Events (= on) are accepted. A session
// with events on gets the blocks Asterisk sent after that login, and `emit()`'s events.
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { AmiBlock } from "../../components/asterisk/ami-client.js";
import { LOOPBACK } from "../harness/net.js";

export const AMI_FIXTURES = fileURLToPath(
  new URL("../../../shared/fixtures/asterisk-22.10.1/", import.meta.url),
);

// The fake parses with its own code, not the client's, so a bug in one is not hidden by the other.

function pairOf(line: string): [string, string] {
  const colon = line.indexOf(":");
  if (colon <= 0) throw new Error(`ami fake: not a header line in the recording: ${JSON.stringify(line)}`);
  const value = line.slice(colon + 1);
  return [line.slice(0, colon), value.startsWith(" ") ? value.slice(1) : value];
}

function blockOf(lines: string[]): AmiBlock {
  return new AmiBlock(lines.map(pairOf));
}

/** The wire form: CRLF after every line and one more at the end, as Asterisk writes it. */
export function wireOf(block: AmiBlock): string {
  return block.lines.map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
}

export interface RecordedExchange {
  session: number;
  title: string;
  /** Whether the session was logged in when the action was sent. */
  loggedIn: boolean;
  request: AmiBlock;
  replies: AmiBlock[];
  /** From the request being sent to the first reply (Asterisk delays a refused login by 1 s). */
  delayMs: number;
  /** Asterisk closed the connection after the replies. */
  closes: boolean;
}

export interface AmiActionsRecording {
  greeting: string;
  exchanges: RecordedExchange[];
}

/** Parses ami-actions.txt (raw bytes with CRLF; `#`, `>>>`, `<<<` lines are the recorder's). */
export function parseAmiActions(text: string): AmiActionsRecording {
  let greeting: string | undefined;
  const exchanges: RecordedExchange[] = [];
  let session = 0;
  let loggedIn = false;
  let title = "";
  let mode: "none" | "greeting" | "send" | "recv" = "none";
  let raw: string[] = [];
  let sentAt = 0;
  let receivedAt = 0;
  let current: RecordedExchange | undefined;
  const flush = (): void => {
    if (mode === "greeting" && raw.length > 0) greeting ??= `${raw[0]}\r\n`;
    if (mode === "send" && raw.length > 0) {
      current = {
        session,
        title,
        loggedIn,
        request: blockOf(raw),
        replies: [],
        delayMs: 0,
        closes: false,
      };
      exchanges.push(current);
    }
    if (mode === "recv" && raw.length > 0 && current) {
      const reply = blockOf(raw);
      // Replies are sent from the parsed block: make sure that is byte for byte what was recorded.
      if (wireOf(reply) !== `${raw.join("\r\n")}\r\n\r\n`) {
        throw new Error(`ami fake: a reply in "${title}" would not be sent as recorded`);
      }
      if (current.replies.length === 0) current.delayMs = Math.max(0, receivedAt - sentAt);
      current.replies.push(reply);
      if (/^login$/i.test(current.request.get("Action") ?? "") && reply.get("Response") === "Success") {
        loggedIn = true;
      }
    }
    raw = [];
    mode = "none";
  };
  for (const line of text.split("\n")) {
    const stamp = /^(?:>>> SEND|<<< RECV|<<<) (\S+)/.exec(line)?.[1];
    if (line.startsWith("########## session")) {
      flush();
      session++;
      loggedIn = false;
      current = undefined;
    } else if (line.startsWith("##### ")) {
      flush();
      title = line.slice(6).trim();
    } else if (line.startsWith(">>> SEND")) {
      flush();
      mode = "send";
      sentAt = Date.parse(stamp ?? "");
    } else if (line.startsWith("<<< RECV")) {
      flush();
      mode = line.includes("(greeting line)") ? "greeting" : "recv";
      receivedAt = Date.parse(stamp ?? "");
    } else if (line.startsWith("<<<") && line.includes("connection closed by Asterisk")) {
      flush();
      if (current) current.closes = true;
    } else if (line.startsWith("#")) {
      flush();
    } else if (mode !== "none" && line.endsWith("\r")) {
      // Traffic: every recorded line ends in CRLF; the empty one ("\r") ends the block.
      if (line === "\r") flush();
      else raw.push(line.slice(0, -1));
    }
  }
  flush();
  if (greeting === undefined) throw new Error("ami fake: no greeting in ami-actions.txt");
  return { greeting, exchanges };
}

/**
 * Parses an AMI event log (`--- <time>` before each block as read, the block's last CRLF pair
 * stripped; `###` lines are marks). Chunks that are not events (the greeting and login reply) are
 * returned too, so the events after a login can be found.
 */
export function parseAmiEventLog(text: string): { chunks: { at: string; lines: string[] }[] } {
  const chunks: { at: string; lines: string[] }[] = [];
  let current: { at: string; lines: string[] } | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("--- ")) {
      current = { at: line.slice(4).trim(), lines: [] };
      chunks.push(current);
    } else if (line.startsWith("###")) {
      current = undefined;
    } else if (current && line !== "") {
      current.lines.push(line.replace(/\r$/, ""));
    }
  }
  return { chunks };
}

type Provenance = "event" | "reply";
/** Blocks taken from the recordings, or made from them by `like()`: the only ones the fake sends. */
const PROVENANCE = new WeakMap<AmiBlock, Provenance>();

function mark<T extends AmiBlock>(block: T, kind: Provenance): T {
  PROVENANCE.set(block, kind);
  return block;
}

interface Recording {
  actions: AmiActionsRecording;
  events: AmiBlock[];
  afterLogin: AmiBlock[];
}

let cached: Recording | undefined;

function loadRecording(): Recording {
  if (cached) return cached;
  const actions = parseAmiActions(readFileSync(`${AMI_FIXTURES}ami-actions.txt`, "utf8"));
  for (const exchange of actions.exchanges) exchange.replies.forEach((r) => mark(r, "reply"));
  const events: AmiBlock[] = [];
  let afterLogin: AmiBlock[] | undefined;
  for (const file of ["ami-events.log", "ami-events-phone.log"]) {
    const { chunks } = parseAmiEventLog(readFileSync(`${AMI_FIXTURES}${file}`, "utf8"));
    chunks.forEach((chunk, index) => {
      if (chunk.lines[0]?.startsWith("Event:")) {
        events.push(mark(blockOf(chunk.lines), "event"));
        return;
      }
      // The login of the recorder (events on): what followed it at the same moment.
      if (afterLogin === undefined && chunk.lines.includes("Message: Authentication accepted")) {
        const loginAt = Date.parse(chunk.at);
        afterLogin = [];
        for (const next of chunks.slice(index + 1)) {
          if (!next.lines[0]?.startsWith("Event:") || Date.parse(next.at) - loginAt > 5) break;
          afterLogin.push(mark(blockOf(next.lines), "event"));
        }
      }
    });
  }
  cached = { actions, events, afterLogin: afterLogin ?? [] };
  return cached;
}

/** Field values of a request (or of `answer()`), ActionID and Action left out; keys lower-cased, sorted. */
function fieldKey(fields: readonly (readonly [string, string])[], ignore: string[]): string {
  return JSON.stringify(
    fields
      .map(([k, v]): [string, string] => [k.toLowerCase(), v])
      .filter(([k]) => !["action", "actionid", ...ignore].includes(k))
      .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : av > bv ? 1 : 0) : a < b ? -1 : 1)),
  );
}

function fieldNames(fields: readonly (readonly [string, string])[], ignore: string[]): string {
  return JSON.stringify(
    fields
      .map(([k]) => k.toLowerCase())
      .filter((k) => !["action", "actionid", ...ignore].includes(k))
      .sort(),
  );
}

const ignoredFor = (action: string): string[] => (/^login$/i.test(action) ? ["events"] : []);

function sameShape(a: AmiBlock, b: AmiBlock): boolean {
  return JSON.stringify(a.keys()) === JSON.stringify(b.keys());
}

interface Connection {
  socket: Socket;
  loggedIn: boolean;
  events: boolean;
  buffer: string;
  queue: Promise<void>;
}

interface Answer {
  template: RecordedExchange;
  replies: AmiBlock[];
}

export class AmiFake {
  /** Actions that no recording covers, as "Action Key=Value ..." (with the login state). */
  readonly unrecorded: string[] = [];
  /** Every action block received, in order. */
  readonly received: AmiBlock[] = [];
  /** TCP connections accepted so far. */
  connections = 0;
  /** Successful logins so far. */
  logins = 0;
  private readonly open = new Set<Connection>();
  private readonly answers = new Map<string, Answer>();
  private readonly recording: Recording;

  private readonly server: Server;
  private _port = 0;

  private constructor() {
    this.recording = loadRecording();
    this.server = createServer((socket) => this.accept(socket));
  }

  /**
   * Listens on a loopback port: a new one, or `port` (to stand in for an Asterisk that restarts on
   * the same address after a test stopped the previous fake).
   */
  static async start(options: { port?: number } = {}): Promise<AmiFake> {
    const fake = new AmiFake();
    await new Promise<void>((resolve, reject) => {
      fake.server.once("error", reject);
      fake.server.listen(options.port ?? 0, LOOPBACK, () => {
        fake.server.off("error", reject);
        resolve();
      });
    });
    const address = fake.server.address();
    fake._port = typeof address === "object" && address ? address.port : 0;
    return fake;
  }

  get port(): number {
    return this._port;
  }

  get host(): string {
    return LOOPBACK;
  }

  /** The recorded greeting line, with its CRLF. */
  get greeting(): string {
    return this.recording.actions.greeting;
  }

  /** The recorded exchanges (read-only use: a hostile-peer test may quote a recorded reply). */
  get exchanges(): readonly RecordedExchange[] {
    return this.recording.actions.exchanges;
  }

  /** Every recorded event block (ami-events.log, then ami-events-phone.log). */
  get recordedEvents(): readonly AmiBlock[] {
    return this.recording.events;
  }

  /** The first recorded event that satisfies `predicate`; throws when none was recorded. */
  recordedEvent(predicate: (block: AmiBlock) => boolean): AmiBlock {
    const found = this.recording.events.find(predicate);
    if (!found) throw new Error("ami fake: no recorded event matches the predicate");
    return found;
  }

  /**
   * The recorded reply blocks of an action with exactly these fields, as answered while logged in
   * (or else before login: the Login itself). For a list: the response, the events and the closing
   * event. Throws when it was not recorded.
   */
  recordedReplies(action: string, fields: Record<string, string> = {}): AmiBlock[] {
    const wanted = fieldKey(Object.entries(fields), ignoredFor(action));
    const matches = this.recording.actions.exchanges.filter(
      (e) => eq(e.request.get("Action"), action) && fieldKey(e.request.lines, ignoredFor(action)) === wanted,
    );
    const found = matches.find((e) => e.loggedIn) ?? matches[0];
    if (!found) throw new Error(`ami fake: ${describe(action, fields)} was not recorded`);
    return found.replies;
  }

  /** The (first) recorded reply of an action; see recordedReplies. */
  recordedReply(action: string, fields: Record<string, string> = {}): AmiBlock {
    const [first] = this.recordedReplies(action, fields);
    if (!first) throw new Error(`ami fake: ${describe(action, fields)} has no recorded reply`);
    return first;
  }

  /**
   * A copy of a recorded block (or of a copy) where only values change: every key of `overrides`
   * must be in the block (case-insensitive), Event and Response stay as recorded, and a key that
   * occurs n times needs an array of n values. Throws otherwise, so a test cannot invent a shape.
   */
  like(recorded: AmiBlock, overrides: Record<string, string | readonly string[]>): AmiBlock {
    const kind = PROVENANCE.get(recorded);
    if (!kind) throw new Error("ami fake: like() takes a block from the recordings (or made by like())");
    const lines = recorded.lines.map(([k, v]): [string, string] => [k, v]);
    for (const [key, value] of Object.entries(overrides)) {
      if (/^(event|response)$/i.test(key)) throw new Error(`ami fake: ${key} cannot be changed`);
      const positions = lines.flatMap(([k], i) => (k.toLowerCase() === key.toLowerCase() ? [i] : []));
      if (positions.length === 0) {
        throw new Error(
          `ami fake: ${key} is not in the recorded block (keys: ${recorded.keys().join(", ")})`,
        );
      }
      const values = typeof value === "string" ? [value] : [...value];
      if (values.length !== positions.length) {
        throw new Error(
          `ami fake: ${key} occurs ${positions.length} times; give ${positions.length} value(s)`,
        );
      }
      positions.forEach((position, n) => {
        const line = lines[position];
        const v = values[n] ?? "";
        if (/[\r\n]/.test(v)) throw new Error(`ami fake: a value with a line break would change the shape`);
        if (line) line[1] = v;
      });
    }
    return mark(new AmiBlock(lines), kind);
  }

  /**
   * From now on, answers `action` with these fields by `replies` instead of the recording. There
   * must be a recorded exchange of that action with the same field names (the values may differ:
   * another presentity or mailbox), and each block must have exactly the keys of the recorded
   * reply block in its place (list items: of a recorded item), so only values change.
   */
  answer(action: string, fields: Record<string, string>, replies: AmiBlock | readonly AmiBlock[]): void {
    const blocks = replies instanceof AmiBlock ? [replies] : [...replies];
    const ignore = ignoredFor(action);
    const entries = Object.entries(fields);
    const candidates = this.recording.actions.exchanges.filter(
      (e) =>
        e.loggedIn &&
        eq(e.request.get("Action"), action) &&
        fieldNames(e.request.lines, ignore) === fieldNames(entries, ignore),
    );
    const template =
      candidates.find((e) => fieldKey(e.request.lines, ignore) === fieldKey(entries, ignore)) ??
      candidates[0];
    if (!template)
      throw new Error(`ami fake: no recorded ${action} with the fields ${fieldNames(entries, ignore)}`);
    for (const block of blocks) {
      if (!PROVENANCE.has(block)) throw new Error("ami fake: answer() takes blocks made with like()");
    }
    const recorded = template.replies;
    const shapeError = (): Error =>
      new Error(
        `ami fake: the answer to ${action} must have the recorded shape (${recorded.length} block(s))`,
      );
    if (recorded.length === 1) {
      if (blocks.length !== 1 || !sameShape(blocks[0] ?? new AmiBlock([]), recorded[0] ?? new AmiBlock([]))) {
        throw shapeError();
      }
    } else {
      // A list: the response, items shaped like recorded items, the closing event.
      const [response, ...rest] = blocks;
      const complete = rest.pop();
      const recordedItems = recorded.slice(1, -1);
      const ok =
        response !== undefined &&
        complete !== undefined &&
        sameShape(response, recorded[0] ?? new AmiBlock([])) &&
        sameShape(complete, recorded.at(-1) ?? new AmiBlock([])) &&
        rest.every((item) => recordedItems.some((r) => sameShape(item, r)));
      if (!ok) throw shapeError();
    }
    this.answers.set(`${action.toLowerCase()} ${fieldKey(entries, ignore)}`, { template, replies: blocks });
  }

  /** Pushes an event to every logged-in session with events on; returns how many got it. */
  emit(block: AmiBlock): number {
    if (PROVENANCE.get(block) !== "event") {
      throw new Error("ami fake: emit() sends only events from the event recordings (recordedEvent/like)");
    }
    let sent = 0;
    for (const connection of this.open) {
      if (!connection.loggedIn || !connection.events || connection.socket.destroyed) continue;
      connection.socket.write(wireOf(block));
      sent++;
    }
    return sent;
  }

  /** Cuts every connection at once (as if Asterisk restarted). */
  dropConnections(): void {
    for (const connection of this.open) connection.socket.destroy();
    this.open.clear();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.connections++;
    const connection: Connection = {
      socket,
      loggedIn: false,
      events: false,
      buffer: "",
      queue: Promise.resolve(),
    };
    this.open.add(connection);
    socket.setEncoding("utf8");
    socket.on("error", () => undefined); // a client that goes away is not the fake's failure
    socket.on("close", () => this.open.delete(connection));
    socket.on("data", (text: string) => {
      connection.buffer += text;
      for (;;) {
        const end = /\r?\n\r?\n/.exec(connection.buffer);
        if (!end) break;
        const head = connection.buffer.slice(0, end.index);
        connection.buffer = connection.buffer.slice(end.index + end[0].length);
        if (head.trim() === "") continue;
        connection.queue = connection.queue.then(() => this.onAction(connection, head));
      }
      if (connection.buffer.length > 64 * 1024) {
        this.unrecorded.push(`an action over 64 KiB without an end`);
        socket.destroy();
      }
    });
    socket.write(this.recording.actions.greeting);
  }

  private async onAction(connection: Connection, head: string): Promise<void> {
    const { socket } = connection;
    const lines = head.split(/\r?\n/);
    const pairs = lines.map((line) => (line.indexOf(":") > 0 ? pairOf(line) : undefined));
    const actionId = pairs.find((p) => p?.[0].toLowerCase() === "actionid")?.[1];
    const request = new AmiBlock(pairs.filter((p): p is [string, string] => p !== undefined));
    this.received.push(request);
    const action = request.get("Action") ?? "";
    const ignore = ignoredFor(action);
    const key = fieldKey(request.lines, ignore);
    const eventsValue = request.get("Events");
    const loginEventsOk =
      !/^login$/i.test(action) || eventsValue === undefined || /^(on|off)$/i.test(eventsValue);

    let exchange: RecordedExchange | undefined;
    let replies: AmiBlock[] = [];
    const answered = connection.loggedIn ? this.answers.get(`${action.toLowerCase()} ${key}`) : undefined;
    if (answered) {
      exchange = answered.template;
      replies = answered.replies;
    } else if (!pairs.includes(undefined) && loginEventsOk) {
      exchange = this.recording.actions.exchanges.find(
        (e) =>
          e.loggedIn === connection.loggedIn &&
          eq(e.request.get("Action"), action) &&
          fieldKey(e.request.lines, ignore) === key,
      );
      replies = exchange?.replies ?? [];
    }

    if (!exchange) {
      const state = connection.loggedIn ? "logged in" : "not logged in";
      this.unrecorded.push(`${describe(action, Object.fromEntries(request.lines))} (${state})`);
      const error: [string, string][] = [["Response", "Error"]];
      if (actionId !== undefined) error.push(["ActionID", actionId]);
      error.push(["Message", "not recorded by the fake"]);
      if (!socket.destroyed) socket.write(wireOf(new AmiBlock(error)));
      return;
    }

    if (exchange.delayMs > 0) await sleep(exchange.delayMs);
    if (socket.destroyed) return;
    for (const reply of replies) socket.write(wireOf(withActionId(reply, actionId)));
    const first = replies[0];
    if (/^login$/i.test(action) && first?.get("Response") === "Success") {
      connection.loggedIn = true;
      connection.events = !/^off$/i.test(eventsValue ?? "on");
      this.logins++;
      if (connection.events) for (const event of this.recording.afterLogin) socket.write(wireOf(event));
    }
    if (exchange.closes) socket.end();
  }
}

/** The recorded block with the client's ActionID (none when the client sent none, as Asterisk does). */
function withActionId(block: AmiBlock, actionId: string | undefined): AmiBlock {
  return new AmiBlock(
    block.lines.flatMap(([k, v]): [string, string][] =>
      k.toLowerCase() !== "actionid" ? [[k, v]] : actionId === undefined ? [] : [[k, actionId]],
    ),
  );
}

function eq(a: string | undefined, b: string): boolean {
  return a !== undefined && a.toLowerCase() === b.toLowerCase();
}

function describe(action: string, fields: Record<string, string>): string {
  const rest = Object.entries(fields)
    .filter(([k]) => !/^action(id)?$/i.test(k))
    .map(([k, v]) => `${k}=${v}`);
  return [action || "(no Action)", ...rest].join(" ");
}
