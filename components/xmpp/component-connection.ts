// The XEP-0114 component connection: @xmpp/component underneath, with what the library lacks for
// a bridge — reconnect with exponential backoff and jitter and a cap (the library retries every
// second forever), a bounded buffer for stanzas sent while offline, and error listeners on every
// emitter so a socket error (EPIPE, ECONNRESET) is logged, never thrown at the process.
import { EventEmitter } from "node:events";
import type { Component, Element } from "@xmpp/component";
import { SwitchboardError } from "../../src/domain/errors.js";
import { backoffDelay, type BackoffOptions } from "../../src/util/backoff.js";
import { createComponent, type ComponentEndpoint } from "./create-component.js";

export interface ComponentConnectionOptions extends ComponentEndpoint {
  /** Stanzas kept while offline; one more is refused with `resource-constraint`. */
  bufferLimit?: number;
  backoff?: BackoffOptions;
}

export type ConnectionState = "stopped" | "connecting" | "online" | "waiting";

export interface ComponentConnectionEvents {
  online: [];
  offline: [reason: string];
  stanza: [stanza: Element];
  /** A failure that was handled (logged by the listener), e.g. a refused connection. */
  problem: [error: Error];
}

export class ComponentConnection extends EventEmitter<ComponentConnectionEvents> {
  private readonly entity: Component;
  private readonly buffer: Element[] = [];
  private readonly bufferLimit: number;
  private readonly backoff: BackoffOptions;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private _state: ConnectionState = "stopped";

  constructor(readonly options: ComponentConnectionOptions) {
    super();
    this.bufferLimit = options.bufferLimit ?? 1000;
    this.backoff = options.backoff ?? { baseMs: 500, capMs: 30_000 };
    this.entity = createComponent(options); // reconnects are ours, with backoff
    this.entity.on("error", (err) => this.emit("problem", err));
    this.entity.on("stanza", (stanza) => this.emit("stanza", stanza));
    this.entity.on("online", () => {
      this.attempt = 0;
      this._state = "online";
      this.flush();
      this.emit("online");
    });
    this.entity.on("disconnect", ({ reason }) => {
      // While waiting, a retry is already scheduled (a failed attempt may both reject and disconnect).
      if (this._state === "stopped" || this._state === "waiting") return;
      const text = reason instanceof Error ? reason.message : "connection closed";
      const wasOnline = this._state === "online";
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
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this._state = "waiting";
    const delay = backoffDelay(this.attempt++, this.backoff);
    this.timer = setTimeout(() => {
      if (this._state === "waiting") this.connect();
    }, delay);
  }

  /**
   * Sends now when online; otherwise keeps the stanza for the next connection. Rejects with
   * `resource-constraint` when the buffer is full, so the caller can answer its sender.
   */
  async send(stanza: Element): Promise<void> {
    if (this._state === "online") {
      try {
        await this.entity.send(stanza);
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
  }

  private flush(): void {
    const pending = this.buffer.splice(0);
    for (const stanza of pending) {
      this.entity.send(stanza).catch(() => this.buffer.push(stanza));
    }
  }

  async stop(): Promise<void> {
    this._state = "stopped";
    clearTimeout(this.timer);
    await this.entity.stop().catch(() => undefined);
  }
}
