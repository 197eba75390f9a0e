// A fake of Asterisk's ARI — REST and the events WebSocket — that only replays what a real Asterisk
// 22.10.1 did, as recorded in ../shared/fixtures/asterisk-22.10.1/ (see its README). Asterisk is not
// packaged here; this is the one accepted kind of fake of it, so it must not invent behaviour:
//
// - REST, from ari-rest.txt #1–#23: a request is answered only when the same method, path and query
//   (byte for byte, as sent on the request line), credentials (the Authorization header) and body
//   were recorded, with the recorded status, reason phrase, headers and body (Date is today's,
//   Content-Length and Connection Node's). Anything else gets 501 and is listed in `unrecorded`.
//   `answer()` may make a recorded 2xx reply say something else in values only (device states
//   change); the shape stays the recorded one.
// - The events WebSocket upgrade, from ari-rest.txt #24–#27: 101 with the recorded headers for
//   `/ari/events?app=<name>&subscribeAll=true` with the recorded Basic credentials in the
//   Authorization header (#24), or `...&api_key=bridge:secret` with subprotocol `ari` (#25); the
//   recorded 400 bytes for no query with credentials (#26); the recorded 401 for an `app` without
//   any credentials (#27). Any other upgrade gets 501 and is listed. The app name is free: the
//   recordings used bridge, rec and rec-ep, and each stream's events echo it in `application`,
//   which `emit()` therefore sets to the connection's app.
// - Events, from ari-events.jsonl, ari-events-phone.jsonl, ari-events-mwi-external.jsonl (all with
//   subscribeAll=true) and ari-events-phone-endpoint-sub.jsonl (without it, after an endpoint
//   subscription): `emit()` sends only events picked with `recordedEvent()` and changed with
//   `like()` (values of recorded paths only), and refuses a type that no subscribeAll stream carried
//   (EndpointStateChange), since every connection here is a subscribeAll one. Timestamps stay as
//   recorded unless a test changes them.
// - Not recorded but protocol: a WebSocket ping gets a pong (RFC 6455 §5.5.2; the `ws` library here,
//   and res_http_websocket.c's ast_websocket_read in Asterisk). `dropEvents()` and `stop()` cut
//   connections without a close frame, as a lost network or a crashed Asterisk would.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";
import type { AriEvent } from "../../components/asterisk/ari-client.js";
import { LOOPBACK } from "../harness/net.js";

export const ASTERISK_FIXTURES = fileURLToPath(
  new URL("../../../shared/fixtures/asterisk-22.10.1/", import.meta.url),
);
export const ARI_REST_FIXTURE = `${ASTERISK_FIXTURES}ari-rest.txt`;

/** The credentials of every recorded request (ari.conf: user bridge, password secret). */
export const ARI_USERNAME = "bridge";
export const ARI_PASSWORD = "secret";
const RECORDED_AUTHORIZATION = `Basic ${Buffer.from(`${ARI_USERNAME}:${ARI_PASSWORD}`).toString("base64")}`;

// --- the recordings -------------------------------------------------------------------------------

export interface RecordedResponse {
  status: number;
  reason: string;
  headers: [string, string][];
  body: string;
}

export interface RecordedExchange {
  /** The recording's title, e.g. "9. write presence away,,Lunch". */
  title: string;
  method: string;
  /** Path and query exactly as on the recorded request line. */
  url: string;
  /** Request headers, names in lower case. */
  headers: Map<string, string>;
  body: string;
  /** Usually one; #26 recorded two responses written back to back. */
  responses: RecordedResponse[];
}

interface HttpMessage {
  start: string;
  headers: [string, string][];
  body: string;
  /** Characters the message took in the text. */
  length: number;
}

function parseHttpMessage(text: string, where: string): HttpMessage {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) throw new Error(`ari-rest.txt ${where}: no end of header`);
  const [start = "", ...lines] = text.slice(0, end).split("\r\n");
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  const length = Number(headers.find(([name]) => name.toLowerCase() === "content-length")?.[1] ?? 0);
  const body = text.slice(end + 4, end + 4 + length);
  if (Buffer.byteLength(body) !== length)
    throw new Error(`ari-rest.txt ${where}: body is not Content-Length long`);
  return { start, headers, body, length: end + 4 + length };
}

/** The exchanges of ari-rest.txt: raw bytes between the recorder's `>>>`/`<<<`/`-----` marks. */
export function parseAriRecording(text: string): RecordedExchange[] {
  const exchanges: RecordedExchange[] = [];
  for (const block of text.split(/^##### /m).slice(1)) {
    const title = block.slice(0, block.indexOf("\n")).trim();
    const requestMark = /^>>> request.*\n/m.exec(block);
    const responseMark = /^<<< response\n/m.exec(block);
    if (!requestMark || !responseMark) continue; // the appendix (SIP traffic)
    const request = parseHttpMessage(
      block.slice(requestMark.index + requestMark[0].length, responseMark.index),
      title,
    );
    let rest = block.slice(responseMark.index + responseMark[0].length);
    const annotation = /^-----/m.exec(rest);
    if (annotation) rest = rest.slice(0, annotation.index);
    const responses: RecordedResponse[] = [];
    while (rest.startsWith("HTTP/")) {
      const response = parseHttpMessage(rest, title);
      const [, status = "", ...reason] = response.start.split(" ");
      responses.push({
        status: Number(status),
        reason: reason.join(" "),
        headers: response.headers,
        body: response.body,
      });
      rest = rest.slice(response.length);
    }
    const [method = "", url = ""] = request.start.split(" ");
    if (responses.length === 0) throw new Error(`ari-rest.txt ${title}: no response`);
    exchanges.push({
      title,
      method,
      url,
      headers: new Map(request.headers.map(([name, value]) => [name.toLowerCase(), value])),
      body: request.body,
      responses,
    });
  }
  return exchanges;
}

/** A recorded response as bytes on the wire, with today's Date as Asterisk would send it. */
function responseBytes(responses: readonly RecordedResponse[]): string {
  return responses
    .map((r) => {
      const headers = r.headers.map(([name, value]) =>
        name.toLowerCase() === "date" ? `${name}: ${new Date().toUTCString()}` : `${name}: ${value}`,
      );
      return `HTTP/1.1 ${r.status} ${r.reason}\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n${r.body}`;
    })
    .join("");
}

/** Where an event was recorded. */
export interface EventOrigin {
  file: string;
  /** 1-based line in the file. */
  line: number;
  /** The recording connection used subscribeAll=true. */
  subscribeAll: boolean;
  /** The event as recorded (frozen). */
  event: Readonly<AriEvent>;
}

const EVENT_STREAMS: readonly { file: string; subscribeAll: boolean }[] = [
  { file: "ari-events.jsonl", subscribeAll: true },
  { file: "ari-events-phone.jsonl", subscribeAll: true },
  { file: "ari-events-mwi-external.jsonl", subscribeAll: true },
  { file: "ari-events-phone-endpoint-sub.jsonl", subscribeAll: false },
];

let eventCache: EventOrigin[] | undefined;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Every recorded event, in file order (the `_local` annotation lines skipped). */
export function recordedEvents(): readonly EventOrigin[] {
  eventCache ??= EVENT_STREAMS.flatMap(({ file, subscribeAll }) =>
    readFileSync(`${ASTERISK_FIXTURES}${file}`, "utf8")
      .split("\n")
      .flatMap((text, index): EventOrigin[] => {
        if (text.trim() === "") return [];
        const parsed = JSON.parse(text) as Record<string, unknown>;
        if ("_local" in parsed || typeof parsed.type !== "string") return [];
        return [{ file, line: index + 1, subscribeAll, event: deepFreeze(parsed as AriEvent) }];
      }),
  );
  return eventCache;
}

/** Copies made by recordedEvent()/like(), each to the recorded event it came from. */
const origins = new WeakMap<object, EventOrigin>();

/** A copy of the first recorded event that `predicate` accepts (throws when none does). */
export function recordedEvent<T extends AriEvent>(predicate: (event: AriEvent) => event is T): T;
export function recordedEvent(predicate: (event: AriEvent) => boolean): AriEvent;
export function recordedEvent(predicate: (event: AriEvent) => boolean): AriEvent {
  const origin = recordedEvents().find((o) => predicate(o.event));
  if (!origin) throw new Error("recordedEvent(): no recorded event matches");
  const copy = structuredClone(origin.event) as AriEvent;
  origins.set(copy, origin);
  return copy;
}

// --- like(): recorded values with other values ----------------------------------------------------

/** What a test may change in a recorded value: values at recorded paths, nothing new. */
export type Overrides<T> = T extends readonly (infer E)[]
  ? readonly E[]
  : T extends object
    ? { [K in keyof T]?: Overrides<T[K]> }
    : T;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

/**
 * Why `value` does not have the recorded shape of `template` (undefined when it does): the same
 * keys, the same JSON types, array elements each shaped like some recorded element (`elements`
 * stands in for an empty recorded list).
 */
function misfit(
  value: unknown,
  template: unknown,
  path: string,
  elements: readonly unknown[] = [],
): string | undefined {
  if (Array.isArray(template)) {
    if (!Array.isArray(value)) return `${path} is an array in the recording, not ${describe(value)}`;
    const candidates = template.length > 0 ? template : elements;
    for (const [index, item] of value.entries()) {
      if (candidates.some((candidate) => misfit(item, candidate, path) === undefined)) continue;
      return candidates.length === 0
        ? `${path} is an empty array in the recording: nothing recorded may go in it`
        : `${path}[${index}] has the shape of no recorded element`;
    }
    return undefined;
  }
  if (isRecord(template)) {
    if (!isRecord(value)) return `${path} is an object in the recording, not ${describe(value)}`;
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(template, key)) {
        return `${path}.${key} is not in the recording (recorded keys: ${Object.keys(template).join(", ")})`;
      }
    }
    for (const key of Object.keys(template)) {
      if (!Object.hasOwn(value, key)) return `${path}.${key} is missing (the recording has it)`;
      const problem = misfit(value[key], template[key], `${path}.${key}`);
      if (problem) return problem;
    }
    return undefined;
  }
  const same = template === null ? value === null : value !== null && typeof value === typeof template;
  return same ? undefined : `${path} is ${describe(template)} in the recording, not ${describe(value)}`;
}

function merge(target: unknown, override: unknown, path: string): unknown {
  if (!isRecord(target) || !isRecord(override)) return structuredClone(override);
  for (const [key, value] of Object.entries(override)) {
    if (!Object.hasOwn(target, key)) {
      throw new Error(
        `like(): ${path}.${key} is not in the recorded value; only recorded paths may change (there: ${Object.keys(target).join(", ")})`,
      );
    }
    if (value !== undefined) target[key] = merge(target[key], value, `${path}.${key}`);
  }
  return target;
}

/**
 * A deep copy of a recorded value (event or REST reply) in which only paths present in it changed,
 * to values of the same JSON type; a new key, a changed type or an array element of no recorded
 * shape throws. E.g. `like(dsc, { device_state: { name: "PJSIP/bob", state: "INUSE" } })`.
 */
export function like<T>(recorded: T, overrides: Overrides<T>): T {
  const result = merge(structuredClone(recorded), overrides, "$") as T;
  const problem = misfit(result, recorded, "$");
  if (problem) throw new Error(`like(): ${problem}`);
  const origin = typeof recorded === "object" && recorded !== null ? origins.get(recorded) : undefined;
  if (origin && typeof result === "object" && result !== null) origins.set(result, origin);
  return result;
}

// --- the fake -------------------------------------------------------------------------------------

export interface AriFakeRequest {
  method: string;
  /** Path and query as on the request line. */
  url: string;
  path: string;
  /** Raw query string, without `?`. */
  query: string;
  body: string;
  authorization?: string;
  /** What the fake answered (501: unrecorded). */
  status: number;
}

export interface AriFakeUpgrade {
  url: string;
  authorization?: string;
  protocol?: string;
  /** 101, the recorded 400/401, or 501 (unrecorded). */
  status: number;
}

interface EventClient {
  socket: WebSocket;
  app: string;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

const UNRECORDED_BODY = "unrecorded request\n";

export class AriFake {
  /** Every REST request seen, in order. */
  readonly requests: AriFakeRequest[] = [];
  /** Every events WebSocket upgrade seen, in order. */
  readonly upgrades: AriFakeUpgrade[] = [];
  /** `METHOD url` of each request (REST or upgrade) that had no recording: a test should see none. */
  readonly unrecorded: string[] = [];
  private readonly answers = new Map<RecordedExchange, string>();
  private readonly clients = new Set<EventClient>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has("ari") ? "ari" : false),
  });

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly rest: readonly RecordedExchange[],
    private readonly upgradeReplies: { badRequest: RecordedExchange; unauthorized: RecordedExchange },
  ) {
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
      readBody(request).then(
        (body) => this.onRequest(request, response, body),
        () => response.destroy(),
      );
    });
    server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(request, socket, head),
    );
  }

  /** Base URL for the client (`http://127.0.0.1:<port>`). */
  get url(): string {
    return `http://${LOOPBACK}:${this.port}`;
  }

  /** Starts on a free loopback port, or on `port` (to come back where a stopped fake was). */
  static async start(options: { port?: number; fixture?: string } = {}): Promise<AriFake> {
    const exchanges = parseAriRecording(readFileSync(options.fixture ?? ARI_REST_FIXTURE, "utf8"));
    const isUpgrade = (e: RecordedExchange): boolean =>
      e.headers.get("upgrade")?.toLowerCase() === "websocket";
    const upgradeWith = (status: number): RecordedExchange => {
      const exchange = exchanges.find((e) => isUpgrade(e) && e.responses[0]?.status === status);
      if (!exchange) throw new Error(`ari-rest.txt: no recorded upgrade answered ${status}`);
      return exchange;
    };
    const upgradeReplies = { badRequest: upgradeWith(400), unauthorized: upgradeWith(401) };
    const server = createServer();
    server.on("clientError", (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, LOOPBACK, () => resolve());
    });
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return new AriFake(
      server,
      port,
      exchanges.filter((e) => !isUpgrade(e)),
      upgradeReplies,
    );
  }

  /** The recorded exchanges, for tests that list what an adapter can rely on. */
  get recorded(): readonly RecordedExchange[] {
    return this.rest;
  }

  // --- REST -------------------------------------------------------------------------------------

  private onRequest(request: IncomingMessage, response: ServerResponse, body: string): void {
    const method = request.method ?? "";
    const url = request.url ?? "";
    const authorization = request.headers.authorization;
    const match = this.rest.find(
      (e) =>
        e.method === method &&
        e.url === url &&
        e.headers.get("authorization") === authorization &&
        e.body === body,
    );
    const reply = match?.responses[0];
    const question = url.indexOf("?");
    this.requests.push({
      method,
      url,
      path: question < 0 ? url : url.slice(0, question),
      query: question < 0 ? "" : url.slice(question + 1),
      body,
      ...(authorization === undefined ? {} : { authorization }),
      status: reply?.status ?? 501,
    });
    if (!match || !reply) {
      this.unrecorded.push(`${method} ${url}`);
      response
        .writeHead(501, {
          "Content-Type": "text/plain",
          "Content-Length": Buffer.byteLength(UNRECORDED_BODY),
        })
        .end(UNRECORDED_BODY);
      return;
    }
    const out = this.answers.get(match) ?? reply.body;
    const headers = Object.fromEntries(
      reply.headers.filter(([name]) => !/^(date|connection|content-length|transfer-encoding)$/i.test(name)),
    );
    response.writeHead(reply.status, reply.reason, { ...headers, "Content-Length": Buffer.byteLength(out) });
    response.end(out);
  }

  /** The recorded successful (2xx, JSON) reply to `method url` with the recorded credentials. */
  private successful(method: string, url: string): RecordedExchange {
    const exchange = this.rest.find(
      (e) =>
        e.method === method &&
        e.url === url &&
        e.headers.get("authorization") === RECORDED_AUTHORIZATION &&
        (e.responses[0]?.status ?? 0) >= 200 &&
        (e.responses[0]?.status ?? 0) < 300 &&
        (e.responses[0]?.body ?? "") !== "",
    );
    if (!exchange) throw new Error(`no recorded 2xx JSON reply to ${method} ${url}`);
    return exchange;
  }

  /** A copy of the recorded JSON reply to `method url`, e.g. to pass through `like()`. */
  recordedReply<T = unknown>(method: string, url: string): T {
    return JSON.parse(this.successful(method, url).responses[0]?.body ?? "") as T;
  }

  /**
   * From now on, `method url` (a recorded 2xx reply) answers `body` instead, serialised as Asterisk
   * does with `pretty = yes` (ari.conf). `body` must have the recorded shape (values changed only);
   * for a list recorded empty (GET /ari/deviceStates), elements must have the shape of a recorded
   * reply for one item of it (GET /ari/deviceStates/PJSIP%2Falice).
   */
  answer(method: string, url: string, body: unknown): void {
    const exchange = this.successful(method, url);
    const recorded = JSON.parse(exchange.responses[0]?.body ?? "") as unknown;
    const path = url.split("?")[0] ?? url;
    const items = this.rest
      .filter(
        (e) =>
          e !== exchange &&
          e.method === method &&
          e.url.startsWith(`${path}/`) &&
          !e.url.slice(path.length + 1).includes("/") &&
          !e.url.includes("?") &&
          (e.responses[0]?.status ?? 0) === 200,
      )
      .map((e) => JSON.parse(e.responses[0]?.body ?? "") as unknown);
    const problem = misfit(body, recorded, "$", items);
    if (problem) throw new Error(`answer(${method} ${url}): ${problem}`);
    this.answers.set(exchange, JSON.stringify(body, null, 2));
  }

  // --- events WebSocket -------------------------------------------------------------------------

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => undefined);
    const url = request.url ?? "";
    const authorization = request.headers.authorization;
    const protocols = (request.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "");
    const record = (status: number): void => {
      this.upgrades.push({
        url,
        ...(authorization === undefined ? {} : { authorization }),
        ...(protocols.length > 0 ? { protocol: protocols.join(", ") } : {}),
        status,
      });
    };
    const question = url.indexOf("?");
    const path = question < 0 ? url : url.slice(0, question);
    const params = new Map<string, string>();
    let malformed = false;
    for (const pair of question < 0 ? [] : url.slice(question + 1).split("&")) {
      const equals = pair.indexOf("=");
      const key = equals < 0 ? pair : pair.slice(0, equals);
      try {
        params.set(key, decodeURIComponent(equals < 0 ? "" : pair.slice(equals + 1)));
      } catch {
        malformed = true;
      }
    }
    const apiKey = params.get("api_key");
    const withHeader = authorization === RECORDED_AUTHORIZATION && apiKey === undefined;
    const withApiKey = authorization === undefined && apiKey === `${ARI_USERNAME}:${ARI_PASSWORD}`;
    const app = params.get("app");
    const keys = [...params.keys()].join("&");

    if (path === "/ari/events" && !malformed && protocols.length === 0) {
      if (app === undefined && params.size === 0 && withHeader) {
        // #26: Asterisk wrote two 400 responses back to back, the second from res_http_websocket.
        record(400);
        socket.end(responseBytes(this.upgradeReplies.badRequest.responses));
        return;
      }
      if (app !== undefined && app !== "" && authorization === undefined && apiKey === undefined) {
        record(401); // #27
        socket.end(responseBytes(this.upgradeReplies.unauthorized.responses));
        return;
      }
    }
    const recordedForm =
      path === "/ari/events" &&
      !malformed &&
      app !== undefined &&
      app !== "" &&
      params.get("subscribeAll") === "true" &&
      // #24: Authorization header, no subprotocol; #25: api_key last, subprotocol ari.
      ((withHeader && keys === "app&subscribeAll" && protocols.length === 0) ||
        (withApiKey && keys === "app&subscribeAll&api_key" && protocols.join() === "ari"));
    if (!recordedForm) {
      record(501);
      this.unrecorded.push(`${request.method ?? ""} ${url} (WebSocket upgrade)`);
      socket.end(
        `HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(UNRECORDED_BODY)}\r\nConnection: close\r\n\r\n${UNRECORDED_BODY}`,
      );
      return;
    }
    record(101);
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const client: EventClient = { socket: ws, app };
      this.clients.add(client);
      ws.on("close", () => this.clients.delete(client));
      ws.on("error", () => ws.terminate());
    });
  }

  /** The Stasis application of each open event connection, sorted. */
  get apps(): string[] {
    return [...this.clients]
      .filter((c) => c.socket.readyState === c.socket.OPEN)
      .map((c) => c.app)
      .sort();
  }

  /** Open event connections. */
  get connections(): number {
    return [...this.clients].filter((c) => c.socket.readyState === c.socket.OPEN).length;
  }

  /** Resolves when at least `count` event connections are open; rejects after `timeoutMs`. */
  async waitForConnections(count = 1, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.connections < count) {
      if (Date.now() > deadline)
        throw new Error(`no ${count} ARI event connection(s) within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Sends a recorded event (from `recordedEvent()`/`like()`) to every open event connection, its
   * `application` set to that connection's app; returns how many got it.
   */
  emit(event: AriEvent): number {
    const origin = origins.get(event);
    if (!origin) throw new Error("emit(): only events taken from the recordings (recordedEvent(), like())");
    const problem = misfit(event, origin.event, "$");
    if (problem) throw new Error(`emit(): ${problem}`);
    if (
      !origin.subscribeAll &&
      !recordedEvents().some((o) => o.subscribeAll && o.event.type === event.type)
    ) {
      throw new Error(
        `emit(): ${event.type} (${origin.file}:${origin.line}) was recorded only without subscribeAll; connections here use subscribeAll=true, which never carried it`,
      );
    }
    let sent = 0;
    for (const client of this.clients) {
      if (client.socket.readyState !== client.socket.OPEN) continue;
      const out = "application" in event ? { ...event, application: client.app } : event;
      client.socket.send(JSON.stringify(out));
      sent += 1;
    }
    return sent;
  }

  /** Drops every event connection without a close frame (a lost connection); returns how many. */
  dropEvents(): number {
    const count = this.clients.size;
    for (const client of this.clients) client.socket.terminate();
    this.clients.clear();
    return count;
  }

  /** Forgets answers, requests, upgrades and unrecorded requests. */
  reset(): void {
    this.answers.clear();
    this.requests.length = 0;
    this.upgrades.length = 0;
    this.unrecorded.length = 0;
  }

  async stop(): Promise<void> {
    this.dropEvents();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
