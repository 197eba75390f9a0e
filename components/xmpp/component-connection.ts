// The XEP-0114 component connection: @xmpp/component underneath, with what the library lacks for
// a bridge — reconnect with exponential backoff, jitter and a cap (the library retries every second
// forever); a time limit on each attempt (a handshake that never completes must not leave it
// "connecting" forever); a keepalive ping that notices a dead TCP connection; a bounded buffer for
// stanzas sent while offline, flushed in order; messages written but not yet known to be processed
// by the server, sent again after a reconnect (see `unacked`); and error listeners, so a socket error
// (EPIPE, ECONNRESET) is reported, never thrown at the process.
import { EventEmitter } from "node:events";
import { xml, type Component, type Element } from "@xmpp/component";
import { SwitchboardError } from "../../src/domain/errors.js";
import { backoffDelay, type BackoffOptions } from "../../src/util/backoff.js";
import { createComponent, type ComponentEndpoint } from "./create-component.js";

export interface ComponentConnectionOptions extends ComponentEndpoint {
  /** Stanzas kept while offline; one more is refused with `resource-constraint`. */
  bufferLimit?: number;
  backoff?: BackoffOptions;
  /** Longest time one connection attempt (TCP, stream, handshake) may take. */
  attemptTimeoutMs?: number;
  /** Ping `keepalive.to` (the XMPP server's domain) this often while online (XEP-0199 §4.2). */
  keepalive?: { to: string; intervalMs?: number; timeoutMs?: number };
  /**
   * How long after writing a message the server is asked (a ping to `keepalive.to`) to confirm it
   * has processed everything before it (default 100 ms). Needs `keepalive`.
   */
  ackDelayMs?: number;
}

const STANZAS = new Set(["message", "presence", "iq"]);

export type ConnectionState = "stopped" | "connecting" | "online" | "waiting";

export interface ComponentConnectionEvents {
  online: [];
  offline: [reason: string];
  stanza: [stanza: Element];
  /** A stanza (message, presence, iq) written to the socket; for metrics and wire tracing. */
  sent: [stanza: Element];
  /** A failure that was handled (logged by the listener), e.g. a refused connection. */
  problem: [error: Error];
  /**
   * The server closed this working connection for another one of the same component (stream error
   * `conflict` while online: Prosody's `component_conflict_resolve = "kick_old"`). The connection
   * goes on reconnecting unless stopped: whoever owns it decides.
   */
  replaced: [text: string];
}

export class ComponentConnection extends EventEmitter<ComponentConnectionEvents> {
  private readonly entity: Component;
  private readonly buffer: Element[] = [];
  private readonly bufferLimit: number;
  private readonly backoff: BackoffOptions;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private attemptTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private flushing = false;
  private _state: ConnectionState = "stopped";
  /**
   * Messages written on this connection that the server has not yet been seen to process. XEP-0114
   * has no acknowledgements, and a write succeeds as soon as the kernel has the bytes, so a server
   * killed a moment later loses them silently. A server processes a stream in order, so its answer
   * to a ping proves every stanza written before the ping was handled; messages not yet proven are
   * sent again on the next connection (a duplicate, same id, when the server had handled them).
   */
  private unacked: { seq: number; stanza: Element }[] = [];
  /** The sequence number of the last message written (pings confirm up to the one before them). */
  private seq = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  /**
   * Bumped when a connection comes up and when it is lost: a ping answered on an old connection
   * proves nothing about this one, and a write that completes after its connection was given up
   * is not known to have arrived.
   */
  private generation = 0;

  constructor(readonly options: ComponentConnectionOptions) {
    super();
    this.bufferLimit = options.bufferLimit ?? 1000;
    this.backoff = options.backoff ?? { baseMs: 500, capMs: 30_000 };
    this.entity = createComponent(options); // reconnects are ours, with backoff
    this.entity.on("error", (err) => {
      this.emit("problem", err);
      const { condition, text } = err as { condition?: unknown; text?: unknown };
      if (condition === "conflict" && this._state === "online")
        this.emit("replaced", typeof text === "string" ? text : "");
    });
    this.entity.on("stanza", (stanza) => {
      // A listener's fault is ours, not the server's: reported, and the stream goes on (thrown
      // from here it would reach the parser and end the connection as bad XML).
      try {
        this.emit("stanza", stanza);
      } catch (err) {
        this.emit("problem", err instanceof Error ? err : new Error(String(err)));
      }
    });
    this.entity.on("send", (element) => {
      if (STANZAS.has(element.name)) this.emit("sent", element);
    });
    this.entity.on("online", () => {
      clearTimeout(this.attemptTimer);
      if (this._state === "stopped") return; // a handshake that completed after stop()
      this.attempt = 0;
      this._state = "online";
      this.generation += 1;
      this.startKeepalive();
      this.emit("online");
      void this.flush();
    });
    this.entity.on("disconnect", ({ reason }) => {
      // While waiting, a retry is already scheduled (a failed attempt may both reject and disconnect).
      if (this._state === "stopped" || this._state === "waiting") return;
      const text = reason instanceof Error ? reason.message : "connection closed";
      const wasOnline = this._state === "online";
      this.requeueUnacked();
      this.schedule();
      if (wasOnline) this.emit("offline", text);
    });
  }

  get state(): ConnectionState {
    return this._state;
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /**
   * Answers IQ get/set through the library's IQ callee: it frames exactly one reply per query
   * (RFC 6120 §8.2.3) from what `answer` returns (see IqAnswer), `bad-request` for a query without
   * exactly one payload, and `service-unavailable` when `answer` returns undefined.
   */
  answerIqs(answer: (iq: Element, payload: Element) => Promise<Element | true | undefined>): void {
    this.entity.middleware.use((ctx, next) => {
      if (!ctx.stanza.is("iq") || ctx.element === undefined) return next();
      return answer(ctx.stanza, ctx.element);
    });
  }

  /**
   * Sends an IQ and resolves with the result (the library matches the response and bounds the
   * wait); an error answer rejects with the library's StanzaError. Only while online.
   */
  async request(iq: Element, timeoutMs = 10_000): Promise<Element> {
    if (this._state !== "online") {
      throw new SwitchboardError("service-unavailable", "XMPP component offline");
    }
    return this.entity.iqCaller.request(iq, timeoutMs);
  }

  /** Starts connecting; resolves at once. `online` is emitted when the handshake succeeds. */
  start(): void {
    if (this._state !== "stopped") return;
    this.connect();
  }

  private connect(): void {
    this._state = "connecting";
    const attempt =
      this.entity.status === "offline" ? this.entity.start() : this.entity.reconnect.reconnect();
    attempt.catch((err: unknown) => {
      // Refused, timed out or not authorized: the error was emitted on the entity; try again later.
      if (this._state === "connecting") this.schedule();
      if (!(err instanceof Error)) this.emit("problem", new Error(String(err)));
    });
    const limit = this.options.attemptTimeoutMs ?? 10_000;
    clearTimeout(this.attemptTimer);
    this.attemptTimer = setTimeout(() => {
      if (this._state !== "connecting") return;
      this.emit("problem", new Error(`no handshake within ${limit} ms`));
      this.entity.disconnect().catch(() => undefined);
      this.schedule();
    }, limit);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    clearTimeout(this.attemptTimer);
    clearInterval(this.keepaliveTimer);
    this._state = "waiting";
    const delay = backoffDelay(this.attempt++, this.backoff);
    this.timer = setTimeout(() => {
      if (this._state === "waiting") this.connect();
    }, delay);
  }

  private startKeepalive(): void {
    const keepalive = this.options.keepalive;
    if (!keepalive) return;
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = setInterval(() => {
      const ping = xml("iq", { type: "get", to: keepalive.to }, xml("ping", { xmlns: "urn:xmpp:ping" }));
      this.entity.iqCaller.request(ping, keepalive.timeoutMs ?? 10_000).catch((err: unknown) => {
        // An error answer proves the connection is alive; silence does not.
        if (err instanceof Error && err.name === "StanzaError") return;
        if (this._state !== "online") return;
        this.emit("problem", new Error(`keepalive ping unanswered: ${String(err)}`));
        this.entity.disconnect().catch(() => undefined);
        this.requeueUnacked();
        this.schedule();
        this.emit("offline", "keepalive ping unanswered");
      });
    }, keepalive.intervalMs ?? 60_000);
  }

  /**
   * Sends now when online and nothing is waiting; otherwise keeps the stanza (in order) for the
   * next connection. Rejects with `resource-constraint` when the buffer is full, so the caller can
   * answer its sender.
   */
  async send(stanza: Element): Promise<void> {
    if (this._state === "online" && this.buffer.length === 0) {
      const generation = this.generation;
      try {
        await this.entity.send(stanza);
        if (generation === this.generation) {
          this.written(stanza);
          return;
        }
        // The connection was given up while this was being written: whether it arrived is not
        // known, so it goes again (first) on the next one.
        this.buffer.unshift(stanza);
        return;
      } catch {
        // The socket went away under us: keep the stanza for the reconnect.
      }
    }
    if (this.buffer.length >= this.bufferLimit) {
      throw new SwitchboardError(
        "resource-constraint",
        `XMPP component offline and its send buffer is full (${this.bufferLimit} stanzas)`,
      );
    }
    this.buffer.push(stanza);
    if (this._state === "online") void this.flush();
  }

  /** Sends the buffer in order; stops at the first failure, leaving the rest for the next connection. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this._state === "online" && this.buffer.length > 0) {
        const next = this.buffer[0];
        if (next === undefined) break;
        const generation = this.generation;
        try {
          await this.entity.send(next);
        } catch {
          return;
        }
        // Given up meanwhile: it stays in the buffer (after the requeued ones) for the next one.
        if (generation !== this.generation) return;
        const at = this.buffer.indexOf(next);
        if (at >= 0) this.buffer.splice(at, 1);
        this.written(next);
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Notes a message as written, and asks the server to confirm it soon (see `unacked`). */
  private written(stanza: Element): void {
    const to = this.options.keepalive?.to;
    if (stanza.name !== "message" || to === undefined) return;
    this.unacked.push({ seq: ++this.seq, stanza });
    if (this.ackTimer !== undefined) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      if (this._state !== "online" || this.unacked.length === 0) return;
      const generation = this.generation;
      // Everything written before the ping; several pings may be out at once.
      const upTo = this.seq;
      const ping = xml("iq", { type: "get", to }, xml("ping", { xmlns: "urn:xmpp:ping" }));
      const confirmed = (): void => {
        if (generation !== this.generation) return;
        let confirmedCount = 0;
        while (
          confirmedCount < this.unacked.length &&
          (this.unacked[confirmedCount]?.seq ?? Infinity) <= upTo
        )
          confirmedCount++;
        this.unacked.splice(0, confirmedCount);
      };
      this.entity.iqCaller
        .request(ping, this.options.keepalive?.timeoutMs ?? 10_000)
        .then(confirmed, (err) => {
          // An error answer is processed in order all the same; silence leaves them unconfirmed.
          if (err instanceof Error && err.name === "StanzaError") confirmed();
        });
    }, this.options.ackDelayMs ?? 100);
  }

  /** The connection is gone: messages it may have lost go first in line for the next one. */
  private requeueUnacked(): void {
    this.generation += 1;
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.unacked.length === 0) return;
    this.buffer.unshift(...this.unacked.map((entry) => entry.stanza));
    this.unacked = [];
  }

  /**
   * Before stop(): waits (at most `timeoutMs`) while online for the stanzas held for sending to go
   * out. Resolves with how many are still held (they are lost when the process exits).
   */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length > 0 && this._state === "online" && Date.now() < deadline) {
      if (!this.flushing) void this.flush();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.buffer.length;
  }

  async stop(): Promise<void> {
    this._state = "stopped";
    clearTimeout(this.ackTimer);
    clearTimeout(this.timer);
    clearTimeout(this.attemptTimer);
    clearInterval(this.keepaliveTimer);
    await this.entity.stop().catch(() => undefined);
  }
}
