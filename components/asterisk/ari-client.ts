// A small client of the Asterisk REST Interface (ARI): REST requests over fetch, the events
// WebSocket over `ws`. Requests and query strings have exactly the form that a real Asterisk
// 22.10.1 answered in ../shared/fixtures/asterisk-22.10.1/ari-rest.txt (the tests replay those
// recordings), and every deviation that the recordings show to fail is avoided here:
// - a device name's slash goes as %2F (`/deviceStates/PJSIP/alice` is "Resource not found", #5/#6);
// - query values keep `,():/@` raw, as sent in the recordings, and percent-encode the rest, `+`
//   included (Asterisk's http_decode reads `+` as a space);
// - a raw comma in a PRESENCE_STATE message is answered 204 yet ignored by Asterisk (#10), so it is
//   refused here; the base64 `e` option carries commas (#11).
// Nothing is retried here except the events WebSocket; the adapter resynchronises on `connected`.
import { EventEmitter } from "node:events";
import WebSocket from "ws";
import { SwitchboardError, type Condition } from "../../src/domain/errors.js";
import type { Logger } from "../../src/ports/logger.js";
import { backoffDelay } from "../../src/util/backoff.js";

export interface AriClientOptions {
  /** ARI base URL (http.conf), e.g. http://127.0.0.1:8088; `/ari/...` is appended. */
  url: string;
  /** ARI user and password (ari.conf), sent as HTTP Basic credentials. */
  username: string;
  password: string;
  /** Stasis application name of the events WebSocket. */
  app: string;
  log: Logger;
  /** Bound of every REST request and of the WebSocket handshake (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Delays between reconnection attempts of the events WebSocket (default 500 ms … 30 s). */
  reconnect?: { minMs?: number; maxMs?: number };
  /**
   * A WebSocket ping this often (default 30 s; 0 disables); a connection without a pong by the next
   * ping is dropped and reopened, so a peer that vanished without a TCP close is noticed.
   */
  pingIntervalMs?: number;
}

/** One message of the events WebSocket: a JSON object with a `type` (ARI `Message` model). */
export interface AriEvent {
  type: string;
  timestamp?: string;
  application?: string;
  asterisk_id?: string;
  [key: string]: unknown;
}

/** ARI `DeviceState`. `state` is e.g. NOT_INUSE, INUSE, RINGING, UNAVAILABLE, UNKNOWN. */
export interface AriDeviceState {
  name: string;
  state: string;
}

/** ARI `Endpoint`. `state` is online, offline or unknown. */
export interface AriEndpoint {
  technology: string;
  resource: string;
  state?: string;
  channel_ids: string[];
}

/** `DeviceStateChanged`, e.g. PJSIP/alice INUSE, Custom:foo, MWI:alice@default (ari-events*.jsonl). */
export interface DeviceStateChanged extends AriEvent {
  type: "DeviceStateChanged";
  device_state: AriDeviceState;
}

/** `TextMessageReceived`: a SIP MESSAGE that reached Asterisk (README fact 6). */
export interface TextMessageReceived extends AriEvent {
  type: "TextMessageReceived";
  message: { from: string; to: string; body: string; variables?: Record<string, string> };
  endpoint?: AriEndpoint;
}

/** `ChannelUserevent`: dialplan `UserEvent(Name,Key: value)` (README fact 5). */
export interface ChannelUserevent extends AriEvent {
  type: "ChannelUserevent";
  eventname: string;
  userevent: Record<string, unknown>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isDeviceState(value: unknown): value is AriDeviceState {
  return isRecord(value) && typeof value.name === "string" && typeof value.state === "string";
}

function isEndpoint(value: unknown): value is AriEndpoint {
  return (
    isRecord(value) &&
    typeof value.technology === "string" &&
    typeof value.resource === "string" &&
    (value.state === undefined || typeof value.state === "string") &&
    Array.isArray(value.channel_ids)
  );
}

export function isDeviceStateChanged(event: AriEvent): event is DeviceStateChanged {
  return event.type === "DeviceStateChanged" && isDeviceState(event.device_state);
}

export function isTextMessageReceived(event: AriEvent): event is TextMessageReceived {
  const message = event.message;
  return (
    event.type === "TextMessageReceived" &&
    isRecord(message) &&
    typeof message.from === "string" &&
    typeof message.to === "string" &&
    typeof message.body === "string"
  );
}

export function isChannelUserevent(event: AriEvent): event is ChannelUserevent {
  return (
    event.type === "ChannelUserevent" && typeof event.eventname === "string" && isRecord(event.userevent)
  );
}

/** A query value as the recordings send it: `,():/@` raw, the rest of the reserved set escaped. */
export function ariQueryValue(value: string): string {
  return encodeURIComponent(value).replace(/%(2C|3A|2F|40)/g, (escape) => decodeURIComponent(escape));
}

/** A path segment (a device or resource name): `/` as %2F (recording #5/#6), `:` and `@` raw (#20). */
export function ariPathSegment(value: string): string {
  return encodeURIComponent(value).replace(/%(3A|40)/g, (escape) => decodeURIComponent(escape));
}

/**
 * The condition of an ARI error status. 401/403 are `forbidden`, not `not-authorized`: it is the
 * bridge's own ARI account that was refused, not whoever the bridge was acting for.
 */
export function ariStatusCondition(status: number): Condition {
  if (status === 401 || status === 403) return "forbidden";
  if (status === 404) return "item-not-found";
  if (status === 409 || status === 412) return "conflict";
  if (status >= 500) return "service-unavailable";
  return "bad-request";
}

type Method = "GET" | "POST" | "PUT" | "DELETE";

interface Reply {
  status: number;
  text: string;
}

export interface AriClientEvents {
  event: [AriEvent];
  connected: [];
  disconnected: [reason: string];
}

export class AriClient extends EventEmitter<AriClientEvents> {
  private readonly base: string;
  private readonly authorization: string;
  private readonly timeoutMs: number;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly pingIntervalMs: number;
  private readonly log: Logger;
  private running = false;
  private socket: WebSocket | undefined;
  private open = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AriClientOptions) {
    super();
    this.base = `${options.url.replace(/\/+$/, "")}/ari`;
    this.authorization = `Basic ${Buffer.from(`${options.username}:${options.password}`, "utf8").toString("base64")}`;
    this.timeoutMs = options.requestTimeoutMs ?? 5_000;
    this.minMs = options.reconnect?.minMs ?? 500;
    this.maxMs = Math.max(this.minMs, options.reconnect?.maxMs ?? 30_000);
    this.pingIntervalMs = options.pingIntervalMs ?? 30_000;
    this.log = options.log.child({ component: "ari", app: options.app });
  }

  /** True while the events WebSocket is open. */
  get connected(): boolean {
    return this.open;
  }

  // --- events WebSocket -------------------------------------------------------------------------

  /**
   * Opens `/ari/events?app=<app>&subscribeAll=true` (recording #24: Basic credentials in the
   * Authorization header, which keeps them out of URLs and logs; `api_key=` works too, #25) and keeps
   * it open: after a close, the next attempt follows an exponential backoff with jitter.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** Closes the WebSocket and stops reconnecting; bounded by requestTimeoutMs. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.terminate();
        resolve();
      }, this.timeoutMs);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      if (socket.readyState === WebSocket.OPEN) socket.close(1000, "stopping");
      else if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
    });
  }

  private eventsUrl(): string {
    const url = new URL(`${this.base}/events`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return `${url.origin}${url.pathname}?app=${ariQueryValue(this.options.app)}&subscribeAll=true`;
  }

  private connect(): void {
    const target = this.eventsUrl();
    const socket = new WebSocket(target, {
      headers: { Authorization: this.authorization },
      handshakeTimeout: this.timeoutMs,
      // Asterisk answers the upgrade without permessage-deflate (#24), so none is offered.
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.socket = socket;
    let opened = false;
    let heartbeat: NodeJS.Timeout | undefined;
    let awaitingPong = false;

    socket.on("open", () => {
      opened = true;
      this.open = true;
      this.attempt = 0;
      this.log.info({ url: target }, "ARI events WebSocket open");
      if (this.pingIntervalMs > 0) {
        heartbeat = setInterval(() => {
          if (awaitingPong) {
            this.log.warn(
              { intervalMs: this.pingIntervalMs },
              "ARI events: no pong, dropping the connection",
            );
            socket.terminate();
            return;
          }
          awaitingPong = true;
          socket.ping();
        }, this.pingIntervalMs);
      }
      this.safeEmit("connected");
    });
    socket.on("pong", () => {
      awaitingPong = false;
    });
    socket.on("message", (data, isBinary) => {
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : Buffer.from(data as ArrayBuffer).toString("utf8");
      this.onMessage(text, isBinary);
    });
    socket.on("error", (err) => {
      this.log.warn({ err: err.message, url: target }, "ARI events WebSocket error");
    });
    socket.on("close", (code, reason) => {
      clearInterval(heartbeat);
      // A socket that stop() left behind (start() called again before it closed) changes nothing.
      const current = this.socket === socket;
      if (!current) return;
      this.socket = undefined;
      if (opened) {
        this.open = false;
        const why = `closed (${code}${reason.length > 0 ? ` ${reason.toString("utf8")}` : ""})`;
        this.log.info({ code }, `ARI events WebSocket ${why}`);
        this.safeEmit("disconnected", why);
      }
      if (this.running) this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt++, { baseMs: this.minMs, capMs: this.maxMs });
    this.log.info({ delayMs: delay, attempt: this.attempt }, "ARI events: reconnecting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.running) this.connect();
    }, delay);
  }

  private onMessage(text: string, isBinary: boolean): void {
    let event: unknown;
    try {
      event = isBinary ? undefined : JSON.parse(text);
    } catch {
      event = undefined;
    }
    if (!isRecord(event) || typeof event.type !== "string") {
      this.log.warn({ message: text.slice(0, 200) }, "ARI events: not an ARI event, ignored");
      return;
    }
    this.safeEmit("event", event as AriEvent);
  }

  /** A listener's exception must not break the WebSocket's own handlers. */
  private safeEmit<K extends keyof AriClientEvents>(name: K, ...args: AriClientEvents[K]): void {
    try {
      (this.emit as (name: K, ...args: AriClientEvents[K]) => boolean)(name, ...args);
    } catch (err) {
      this.log.error({ err: String(err), listener: name }, "ARI client: a listener failed");
    }
  }

  // --- REST ------------------------------------------------------------------------------------

  /** GET /ari/asterisk/info: Asterisk's version (`system.version`) and entity id. */
  async info(): Promise<{ version?: string; entityId?: string }> {
    const info = this.json(await this.request("GET", "/asterisk/info"), "GET /ari/asterisk/info");
    const system = isRecord(info) && isRecord(info.system) ? info.system : {};
    return {
      ...(typeof system.version === "string" ? { version: system.version } : {}),
      ...(typeof system.entity_id === "string" ? { entityId: system.entity_id } : {}),
    };
  }

  /** GET /ari/deviceStates: the device states ARI controls (Stasis: devices; recorded empty). */
  async deviceStates(): Promise<AriDeviceState[]> {
    const where = "GET /ari/deviceStates";
    const list = this.json(await this.request("GET", "/deviceStates"), where);
    if (!Array.isArray(list) || !list.every(isDeviceState)) throw this.unexpected(where);
    return list.map(({ name, state }) => ({ name, state }));
  }

  /** GET /ari/deviceStates/<name>, e.g. PJSIP/alice → UNAVAILABLE while not registered. */
  async deviceState(name: string): Promise<AriDeviceState> {
    const where = "GET /ari/deviceStates/{deviceName}";
    const reply = this.json(await this.request("GET", `/deviceStates/${ariPathSegment(name)}`), where);
    if (!isDeviceState(reply)) throw this.unexpected(where);
    return { name: reply.name, state: reply.state };
  }

  /** GET /ari/endpoints. */
  async endpoints(): Promise<AriEndpoint[]> {
    const where = "GET /ari/endpoints";
    const list = this.json(await this.request("GET", "/endpoints"), where);
    if (!Array.isArray(list) || !list.every(isEndpoint)) throw this.unexpected(where);
    return list;
  }

  /** GET /ari/endpoints/<technology>/<resource>; an unknown one is item-not-found. */
  async endpoint(technology: string, resource: string): Promise<AriEndpoint> {
    const where = "GET /ari/endpoints/{tech}/{resource}";
    const path = `/endpoints/${ariPathSegment(technology)}/${ariPathSegment(resource)}`;
    const reply = this.json(await this.request("GET", path), where);
    if (!isEndpoint(reply)) throw this.unexpected(where);
    return reply;
  }

  /**
   * Sets `PRESENCE_STATE(CustomPresence:<provider>)` to `value` (`state,subtype,message[,e]`, see
   * formatPresenceState): POST /ari/asterisk/variable → 204 (README fact 1). ARI answers 204 even
   * when func_presencestate rejects the value (recording #10), so what it would reject is refused
   * here: more than four fields, or a fourth that is not the `e` option.
   */
  async setCustomPresence(provider: string, value: string): Promise<void> {
    if (provider === "" || /[,()\p{Cc}]/u.test(provider)) {
      throw new SwitchboardError(
        "bad-request",
        `CustomPresence provider '${provider}' is not usable in PRESENCE_STATE()`,
      );
    }
    const fields = value.split(",");
    if (fields[0] === "" || fields.length > 4 || (fields.length === 4 && fields[3] !== "e")) {
      throw new SwitchboardError(
        "bad-request",
        `PRESENCE_STATE value '${value}' would be ignored by Asterisk (a raw comma in the message needs the base64 'e' option)`,
      );
    }
    await this.request("POST", "/asterisk/variable", [
      ["variable", `PRESENCE_STATE(CustomPresence:${provider})`],
      ["value", value],
    ]);
  }

  /**
   * PUT /ari/endpoints/sendMessage → 202 (README fact 6), e.g. to
   * `pjsip:bridge/sip:alice@127.0.0.1:5070`, from `sip:bob@127.0.0.1`. `variables` go in a JSON
   * body `{"variables": {...}}` as the ARI API documents; only the form without them is recorded.
   */
  async sendMessage(
    to: string,
    from: string,
    body: string,
    variables?: Record<string, string>,
  ): Promise<void> {
    await this.request(
      "PUT",
      "/endpoints/sendMessage",
      [
        ["to", to],
        ["from", from],
        ["body", body],
      ],
      variables && Object.keys(variables).length > 0 ? { variables } : undefined,
    );
  }

  private async request(
    method: Method,
    path: string,
    query: readonly [string, string][] = [],
    body?: unknown,
  ): Promise<Reply> {
    const search = query.map(([key, value]) => `${key}=${ariQueryValue(value)}`).join("&");
    const target = `${this.base}${path}${search === "" ? "" : `?${search}`}`;
    // Errors and logs name the path only: query values may carry message bodies.
    const where = `${method} /ari${path}`;
    const headers: Record<string, string> = { Authorization: this.authorization };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let reply: Reply;
    try {
      const response = await fetch(target, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      reply = { status: response.status, text: await response.text() };
    } catch (err) {
      throw this.unreachable(where, err);
    }
    this.log.debug({ request: where, status: reply.status }, "ARI request");
    if (reply.status >= 400) {
      const condition = ariStatusCondition(reply.status);
      throw new SwitchboardError(condition, `ARI ${where}: ${reply.status} ${ariMessage(reply.text)}`);
    }
    return reply;
  }

  private unreachable(where: string, err: unknown): SwitchboardError {
    const name = err instanceof Error ? err.name : "";
    if (name === "TimeoutError" || name === "AbortError") {
      return new SwitchboardError(
        "service-unavailable",
        `ARI ${where}: no answer within ${this.timeoutMs} ms`,
        {
          cause: err,
        },
      );
    }
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    return new SwitchboardError("service-unavailable", `ARI ${where}: unreachable (${cause})`, {
      cause: err,
    });
  }

  private json(reply: Reply, where: string): unknown {
    try {
      return JSON.parse(reply.text) as unknown;
    } catch {
      throw this.unexpected(where);
    }
  }

  private unexpected(where: string): SwitchboardError {
    return new SwitchboardError("service-unavailable", `ARI ${where}: a reply of unexpected form`);
  }
}

/** ARI's error text (`{"message": "Endpoint not found"}`), else the start of the body. */
function ariMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (isRecord(parsed) && typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON (e.g. an HTML error page)
  }
  return text.trim().slice(0, 200) || "(no body)";
}
