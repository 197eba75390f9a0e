// A small client of the Asterisk Manager Interface (AMI, TCP 5038) over node:net, no library.
//
// The wire format, as recorded from Asterisk 22.10.1 (../shared/fixtures/asterisk-22.10.1/
// ami-actions.txt): on connect Asterisk sends one greeting LINE ("Asterisk Call Manager/11.0.0\r\n",
// no blank line after it); after that every message is a block of "Key: Value\r\n" lines ended by
// an empty line. Keys may repeat (PresenceState's reply carries two `Message:`), so a block is an
// ordered list of pairs, and Asterisk compares keys case-insensitively (astman_get_header). A reply
// carries `Response:` and the ActionID we sent; an event carries `Event:`. A list action answers
// `Response: Success` + `EventList: start`, then events with our ActionID, then one whose name ends
// in "Complete" (DeviceStateListComplete, ExtensionStateListComplete, PresenceStateListComplete).
//
// What the client adds around the wire: a connection state machine whose every wait is bounded
// (greeting, login, each action, the keepalive Ping), reconnect with capped exponential backoff and
// jitter, a refused login retried only at the longest delay (Asterisk itself makes a wrong secret
// wait one second and then closes the connection), a bound on the size of a block, and no throw
// ever reaching the process: a peer that sends garbage is logged and the connection started over.
import { EventEmitter } from "node:events";
import { Socket } from "node:net";
import { SwitchboardError, quote, type Condition } from "../../src/domain/errors.js";
import type { Logger } from "../../src/ports/logger.js";
import { backoffDelay } from "../../src/util/backoff.js";

/** One AMI message: the key/value lines in the order they came; keys may repeat. */
export class AmiBlock {
  constructor(readonly lines: readonly (readonly [string, string])[]) {}

  /** The first value of `name`, the key compared case-insensitively as Asterisk does. */
  get(name: string): string | undefined {
    const wanted = name.toLowerCase();
    return this.lines.find(([key]) => key.toLowerCase() === wanted)?.[1];
  }

  /** Every value of `name`, in order (e.g. both `Message:` lines of a PresenceState reply). */
  all(name: string): string[] {
    const wanted = name.toLowerCase();
    return this.lines.filter(([key]) => key.toLowerCase() === wanted).map(([, value]) => value);
  }

  /** The keys in order (with repeats): the block's shape. */
  keys(): string[] {
    return this.lines.map(([key]) => key);
  }

  /** The block as `Key: Value` lines (for logs and tests; the wire form is `formatAmiBlock`). */
  toString(): string {
    return this.lines.map(([key, value]) => `${key}: ${value}`).join("\n");
  }
}

/** The largest block (or greeting line) we buffer; a peer that sends more is dropped. */
export const MAX_AMI_BLOCK_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

/**
 * One `Key: Value` line. The key ends at the first colon (AMI keys have none); the value is all the
 * rest after one optional space, kept as it is ("Message: Lunch, back at 2", "Subtype: " → "").
 * A line without a colon is not a header line: undefined.
 */
export function parseAmiLine(line: string): [string, string] | undefined {
  const colon = line.indexOf(":");
  if (colon <= 0) return undefined;
  const key = line.slice(0, colon).trim();
  if (key === "") return undefined;
  const rest = line.slice(colon + 1);
  return [key, rest.startsWith(" ") ? rest.slice(1) : rest];
}

/** The blocks that a buffer completes, and the bytes left over (an unfinished block). */
export interface AmiFrames {
  blocks: AmiBlock[];
  /** Lines that had no colon (garbage), counted so the caller can log them. */
  skippedLines: number;
  rest: Buffer;
}

/**
 * Splits a byte stream into AMI blocks: lines end in CRLF (LF alone is tolerated), a block ends at an
 * empty line, and empty lines between blocks are skipped. Pure; call it again with `rest` followed
 * by the next chunk. Each line is decoded as UTF-8 only once complete, so a character split across
 * two reads is never mangled.
 */
export function parseAmiBlocks(buffer: Buffer): AmiFrames {
  const blocks: AmiBlock[] = [];
  let skippedLines = 0;
  let blockStart = 0;
  let lineStart = 0;
  let current: [string, string][] = [];
  let currentSkipped = 0;
  for (;;) {
    const newline = buffer.indexOf(LF, lineStart);
    if (newline < 0) break;
    const end = newline > lineStart && buffer[newline - 1] === CR ? newline - 1 : newline;
    const line = buffer.toString("utf8", lineStart, end);
    lineStart = newline + 1;
    if (line !== "") {
      const pair = parseAmiLine(line);
      if (pair) current.push(pair);
      else currentSkipped++;
      continue;
    }
    // An empty line ends the block; a block of garbage only (or none: stray line ends) yields nothing.
    if (current.length > 0) blocks.push(new AmiBlock(current));
    skippedLines += currentSkipped;
    current = [];
    currentSkipped = 0;
    blockStart = lineStart;
  }
  return { blocks, skippedLines, rest: buffer.subarray(blockStart) };
}

/**
 * The greeting line at the start of a connection ("Asterisk Call Manager/11.0.0"). `undefined` while
 * the line is incomplete; `greeting` is the line without its line end, `rest` what follows it.
 */
export function splitGreeting(buffer: Buffer): { greeting: string; rest: Buffer } | undefined {
  const newline = buffer.indexOf(LF);
  if (newline < 0) return undefined;
  const end = newline > 0 && buffer[newline - 1] === CR ? newline - 1 : newline;
  return { greeting: buffer.toString("utf8", 0, end), rest: buffer.subarray(newline + 1) };
}

/** Is this the greeting of an AMI server? The version after the slash is the protocol's, not Asterisk's. */
export function isAmiGreeting(line: string): boolean {
  return /^Asterisk Call Manager\/\d+(\.\d+)*$/.test(line);
}

/**
 * The wire form of an action: `Action:`, `ActionID:`, then the fields in the order given, each line
 * ended by CRLF and the block by an empty line. A key or value with CR or LF would let a caller
 * smuggle in more fields or a second action, so it is refused (`bad-request`), as is a key that is
 * empty, has a colon, or names Action/ActionID (those are ours).
 */
export function formatAmiAction(name: string, actionId: string, fields: Record<string, string> = {}): string {
  const lines: [string, string][] = [
    ["Action", name],
    ["ActionID", actionId],
  ];
  for (const [key, value] of Object.entries(fields)) {
    if (/^action(id)?$/i.test(key)) {
      throw new SwitchboardError("bad-request", `AMI field ${quote(key)} is set by the client`);
    }
    lines.push([key, value]);
  }
  for (const [key, value] of lines) {
    if (key === "" || /[\r\n:]/.test(key) || key.trim() !== key) {
      throw new SwitchboardError("bad-request", `AMI field name ${quote(key)} is not a header name`);
    }
    if (/[\r\n]/.test(value)) {
      throw new SwitchboardError("bad-request", `AMI field ${key} has a line break: ${quote(value)}`);
    }
  }
  return formatAmiBlock(lines);
}

/** A block on the wire: `Key: Value` CRLF per line, then CRLF. */
export function formatAmiBlock(lines: readonly (readonly [string, string])[]): string {
  return lines.map(([key, value]) => `${key}: ${value}\r\n`).join("") + "\r\n";
}

/**
 * The condition for a `Response: Error` Message (texts as Asterisk 22 words them). Anything not
 * known is `service-unavailable`: the PBX could not do it, and retrying later may help.
 */
export function amiErrorCondition(message: string): Condition {
  if (/^Permission denied/i.test(message)) return "forbidden";
  if (/^Authentication failed/i.test(message)) return "not-authorized";
  if (/^Invalid\/unknown command/i.test(message)) return "feature-not-implemented";
  if (/^No \S+ specified|\bnot specified\b|^Missing /i.test(message)) return "bad-request";
  return "service-unavailable";
}

export interface AmiClientOptions {
  host: string;
  port: number;
  username: string;
  password: string;
  log: Logger;
  /** `Events: on|off` at login: whether Asterisk sends this session unsolicited events. Default true. */
  events?: boolean;
  /** Longest wait for a reply (for a list: between two of its blocks); also bounds connect+greeting. Default 5000. */
  actionTimeoutMs?: number;
  /** Ping this often while logged in; an unanswered Ping drops the connection. Default 30000. */
  keepaliveMs?: number;
  /** Reconnect delays: doubling from minMs (default 500) up to maxMs (default 30000), with jitter. */
  reconnect?: { minMs?: number; maxMs?: number };
  /** Log every block sent and received at debug level (the Secret masked). Default false. */
  trace?: boolean;
}

export interface AmiClientEvents {
  /** An unsolicited event (or one caused by an action but not part of a list we collect). */
  event: [AmiBlock];
  /** Logged in. */
  connected: [];
  /** The logged-in connection is gone (a reconnect is scheduled unless stopped). */
  disconnected: [reason: string];
}

export type AmiState = "stopped" | "connecting" | "greeting" | "login" | "online" | "waiting";

export interface AmiList {
  /** The `Response: Success` / `EventList: start` block. */
  response: AmiBlock;
  /** The events of the list, in order, without the closing one. */
  events: AmiBlock[];
  /** The closing event (`...Complete`, `EventList: Complete`, `ListItems: n`). */
  complete: AmiBlock | undefined;
}

interface Pending {
  name: string;
  timer: NodeJS.Timeout;
  resolve: (value: AmiList) => void;
  reject: (err: Error) => void;
  /** Set for list actions: collects until the closing event. */
  list?: { response?: AmiBlock; events: AmiBlock[] };
}

export class AmiClient extends EventEmitter<AmiClientEvents> {
  private readonly log: Logger;
  private readonly actionTimeoutMs: number;
  private readonly keepaliveMs: number;
  private readonly minMs: number;
  private readonly maxMs: number;
  private _state: AmiState = "stopped";
  private socket: Socket | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<string, Pending>();
  private nextActionId = 1;
  private attempt = 0;
  private loginRefused = false;
  /** Why we are dropping the current socket (else the socket's own error or "closed by Asterisk"). */
  private dropReason: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attemptTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pinging = false;

  constructor(private readonly options: AmiClientOptions) {
    super();
    this.log = options.log.child({ component: "ami", ami: `${options.host}:${options.port}` });
    this.actionTimeoutMs = options.actionTimeoutMs ?? 5000;
    this.keepaliveMs = options.keepaliveMs ?? 30_000;
    this.minMs = options.reconnect?.minMs ?? 500;
    this.maxMs = Math.max(this.minMs, options.reconnect?.maxMs ?? 30_000);
  }

  get state(): AmiState {
    return this._state;
  }

  /** Logged in. */
  get connected(): boolean {
    return this._state === "online";
  }

  /** Connects and logs in; resolves at once. `connected` is emitted when Asterisk accepts the login. */
  start(): void {
    if (this._state !== "stopped") return;
    this.connect();
  }

  /** Logs off (bounded), closes the connection and stops reconnecting. */
  async stop(): Promise<void> {
    if (this._state === "stopped") return;
    const wasOnline = this._state === "online";
    this.clearTimers();
    const socket = this.socket;
    if (wasOnline && socket) {
      // Asterisk answers `Response: Goodbye` and closes (recorded); either ends the wait.
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      const logoff = this.request("Logoff", {}, false, Math.min(this.actionTimeoutMs, 2000)).then(
        () => undefined,
        () => undefined,
      );
      this._state = "stopped";
      await Promise.race([logoff, closed]);
    }
    this._state = "stopped";
    this.dropReason = "stopped";
    if (socket && !socket.destroyed) {
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.destroy();
      await closed;
    }
    this.socket = undefined;
    this.rejectAll("AMI client stopped");
    if (wasOnline) this.safeEmit("disconnected", "stopped");
  }

  /**
   * Sends an action and resolves with its reply. `Response: Error` rejects with a SwitchboardError
   * carrying Asterisk's Message (condition from `amiErrorCondition`); no reply within
   * actionTimeoutMs rejects with `remote-server-timeout`; not logged in rejects at once with
   * `service-unavailable`.
   */
  async action(name: string, fields: Record<string, string> = {}): Promise<AmiBlock> {
    this.assertOnline(name);
    const { response } = await this.request(name, fields, false);
    return response;
  }

  /** A list action: the reply and the events that carry its ActionID, up to the closing "…Complete". */
  async actionList(name: string, fields: Record<string, string> = {}): Promise<AmiList> {
    this.assertOnline(name);
    return this.request(name, fields, true);
  }

  private assertOnline(name: string): void {
    if (this._state !== "online") {
      throw new SwitchboardError(
        "service-unavailable",
        `AMI not connected (${this._state}): ${name} not sent`,
      );
    }
  }

  private request(
    name: string,
    fields: Record<string, string>,
    list: boolean,
    timeoutMs = this.actionTimeoutMs,
  ): Promise<AmiList> {
    const socket = this.socket;
    if (!socket || socket.destroyed) {
      return Promise.reject(
        new SwitchboardError("service-unavailable", `AMI not connected: ${name} not sent`),
      );
    }
    const actionId = String(this.nextActionId++);
    let wire: string;
    try {
      wire = formatAmiAction(name, actionId, fields);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return new Promise<AmiList>((resolve, reject) => {
      const pending: Pending = {
        name,
        resolve,
        reject,
        timer: this.timeout(actionId, name, timeoutMs),
        ...(list ? { list: { events: [] } } : {}),
      };
      this.pending.set(actionId, pending);
      if (this.options.trace) this.log.debug({ actionId, fields: masked(fields) }, `AMI > ${name}`);
      socket.write(wire, (err) => {
        if (err)
          this.settle(
            actionId,
            new SwitchboardError("service-unavailable", `AMI write failed: ${err.message}`),
          );
      });
    });
  }

  private timeout(actionId: string, name: string, ms: number): NodeJS.Timeout {
    return setTimeout(() => {
      this.settle(
        actionId,
        new SwitchboardError(
          "remote-server-timeout",
          `AMI ${name} (ActionID ${actionId}) unanswered within ${ms} ms`,
        ),
      );
    }, ms);
  }

  /** Ends a pending action with a result or an error. */
  private settle(actionId: string, outcome: AmiList | Error): void {
    const pending = this.pending.get(actionId);
    if (!pending) return;
    this.pending.delete(actionId);
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  private rejectAll(reason: string): void {
    for (const actionId of [...this.pending.keys()]) {
      this.settle(actionId, new SwitchboardError("service-unavailable", reason));
    }
  }

  private connect(): void {
    this._state = "connecting";
    this.buffer = Buffer.alloc(0);
    this.dropReason = undefined;
    this.loginRefused = false;
    const socket = new Socket();
    this.socket = socket;
    socket.setNoDelay(true);
    this.attemptTimer = setTimeout(() => {
      if (this.socket === socket && (this._state === "connecting" || this._state === "greeting")) {
        this.drop(socket, `no AMI greeting within ${this.actionTimeoutMs} ms`);
      }
    }, this.actionTimeoutMs);
    socket.on("connect", () => {
      if (this.socket === socket && this._state === "connecting") this._state = "greeting";
    });
    socket.on("data", (chunk: Buffer) => {
      if (this.socket !== socket) return;
      try {
        this.onData(socket, chunk);
      } catch (err) {
        // Nothing we parse should throw; if it does, the connection is what we give up, not the process.
        this.log.error({ err }, "AMI: unexpected failure reading from Asterisk");
        this.drop(socket, `unexpected failure: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    socket.on("error", (err) => {
      if (this.socket === socket && this.dropReason === undefined) this.dropReason = err.message;
    });
    socket.on("close", () => this.onClose(socket));
    socket.connect({ host: this.options.host, port: this.options.port });
  }

  /** Closes the socket on purpose; `close` follows and schedules the retry. */
  private drop(socket: Socket, reason: string): void {
    if (this.socket === socket && this.dropReason === undefined) this.dropReason = reason;
    socket.destroy();
  }

  private onData(socket: Socket, chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this._state === "connecting" || this._state === "greeting") {
      const split = splitGreeting(this.buffer);
      if (!split) {
        if (this.buffer.length > MAX_AMI_BLOCK_BYTES) this.drop(socket, "AMI greeting line too long");
        return;
      }
      if (!isAmiGreeting(split.greeting)) {
        this.drop(socket, `not an AMI greeting: ${quote(split.greeting)}`);
        return;
      }
      this.log.debug({ greeting: split.greeting }, "AMI greeting");
      this.buffer = split.rest;
      this.login(socket);
    }
    const frames = parseAmiBlocks(this.buffer);
    this.buffer = frames.rest;
    if (frames.skippedLines > 0)
      this.log.warn({ lines: frames.skippedLines }, "AMI: lines without a colon ignored");
    for (const block of frames.blocks) {
      if (this.socket !== socket) return;
      this.onBlock(block);
    }
    if (this.buffer.length > MAX_AMI_BLOCK_BYTES) {
      this.drop(socket, `AMI block over ${MAX_AMI_BLOCK_BYTES} bytes without an end`);
    }
  }

  private login(socket: Socket): void {
    this._state = "login";
    const fields = {
      Username: this.options.username,
      Secret: this.options.password,
      Events: this.options.events === false ? "off" : "on",
    };
    this.request("Login", fields, false).then(
      () => {
        if (this.socket !== socket || this._state !== "login") return;
        clearTimeout(this.attemptTimer);
        this._state = "online";
        this.attempt = 0;
        this.startKeepalive(socket);
        this.log.info({ username: this.options.username }, "AMI logged in");
        this.safeEmit("connected");
      },
      (err: unknown) => {
        if (this.socket !== socket) return;
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof SwitchboardError && err.condition !== "remote-server-timeout") {
          // A refused login will not get better by hammering: retry at the longest delay.
          this.loginRefused = true;
          this.log.error(
            { username: this.options.username, reason: message, retryMs: this.maxMs },
            "AMI login refused; check manager.conf (secret, permit/deny) and the configured credentials",
          );
        }
        this.drop(socket, `login failed: ${message}`);
      },
    );
  }

  private onBlock(block: AmiBlock): void {
    if (this.options.trace) this.log.debug({ block: block.toString() }, "AMI <");
    const actionId = block.get("ActionID");
    const response = block.get("Response");
    if (response !== undefined) {
      const pending = actionId === undefined ? undefined : this.pending.get(actionId);
      if (!pending || actionId === undefined) {
        this.log.debug({ actionId, response }, "AMI reply to no pending action ignored (late or foreign)");
        return;
      }
      if (/^error$/i.test(response)) {
        const message = block.get("Message") ?? "(no Message)";
        this.settle(
          actionId,
          new SwitchboardError(amiErrorCondition(message), `AMI ${pending.name}: ${message}`),
        );
        return;
      }
      if (pending.list && /^start$/i.test(block.get("EventList") ?? "")) {
        pending.list.response = block;
        clearTimeout(pending.timer);
        pending.timer = this.timeout(actionId, pending.name, this.actionTimeoutMs);
        return;
      }
      // A plain reply (Success, Goodbye, Follows), or a list reply that announces no list.
      this.settle(actionId, { response: block, events: pending.list?.events ?? [], complete: undefined });
      return;
    }
    const event = block.get("Event");
    if (event !== undefined) {
      const pending = actionId === undefined ? undefined : this.pending.get(actionId);
      if (pending?.list && actionId !== undefined) {
        const complete = /Complete$/i.test(event) || /^complete$/i.test(block.get("EventList") ?? "");
        if (complete) {
          this.settle(actionId, {
            response: pending.list.response ?? block,
            events: pending.list.events,
            complete: block,
          });
        } else {
          pending.list.events.push(block);
          clearTimeout(pending.timer);
          pending.timer = this.timeout(actionId, pending.name, this.actionTimeoutMs);
        }
        return;
      }
      if (this._state !== "online") {
        this.log.debug({ event }, "AMI event before login ignored");
        return;
      }
      this.safeEmit("event", block);
      return;
    }
    this.log.warn({ keys: block.keys().slice(0, 5) }, "AMI block with neither Response nor Event ignored");
  }

  private startKeepalive(socket: Socket): void {
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = setInterval(() => {
      if (this.socket !== socket || this._state !== "online" || this.pinging) return;
      this.pinging = true;
      this.request("Ping", {}, false)
        .then(
          () => undefined,
          (err: unknown) => {
            if (this.socket !== socket || this._state !== "online") return;
            // Any answer, even an error, proves the connection alive; silence does not.
            if (err instanceof SwitchboardError && err.condition === "remote-server-timeout") {
              this.log.warn(
                { timeoutMs: this.actionTimeoutMs },
                "AMI keepalive Ping unanswered; reconnecting",
              );
              this.drop(socket, "keepalive Ping unanswered");
            } else {
              this.log.warn({ err }, "AMI keepalive Ping refused");
            }
          },
        )
        .finally(() => {
          this.pinging = false;
        });
    }, this.keepaliveMs);
  }

  private clearTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.attemptTimer);
    clearInterval(this.keepaliveTimer);
    this.pinging = false;
  }

  private onClose(socket: Socket): void {
    if (this.socket !== socket) return;
    const reason = this.dropReason ?? "connection closed by Asterisk";
    const wasOnline = this._state === "online";
    this.clearTimers();
    this.socket = undefined;
    this.rejectAll(`AMI connection lost: ${reason}`);
    if (this._state === "stopped") return;
    const delay = this.loginRefused
      ? this.maxMs
      : backoffDelay(this.attempt++, { baseMs: this.minMs, capMs: this.maxMs });
    this._state = "waiting";
    this.log.warn({ reason, retryMs: delay, wasOnline }, "AMI connection lost; reconnecting");
    this.retryTimer = setTimeout(() => {
      if (this._state === "waiting") this.connect();
    }, delay);
    if (wasOnline) this.safeEmit("disconnected", reason);
  }

  /** Emits; a listener that throws is logged, and costs neither the connection nor the process. */
  private safeEmit<K extends keyof AmiClientEvents>(name: K, ...args: AmiClientEvents[K]): void {
    try {
      (this.emit as (name: K, ...args: AmiClientEvents[K]) => boolean)(name, ...args);
    } catch (err) {
      this.log.error({ err, emitted: name }, "AMI listener threw");
    }
  }
}

/** Fields for a log line, the login secret masked. */
function masked(fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, /^secret$/i.test(k) ? "***" : v]));
}
