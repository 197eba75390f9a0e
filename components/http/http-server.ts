// The bridge's HTTP endpoint (DESIGN.md "External interface", `http.listen`): liveness, readiness,
// Prometheus metrics, the read-only JSON API that `switchboard presence` asks, and a small status
// page. node:http only; every request is bounded (headers, whole request, handler), every answer to
// bad input is a 4xx, and nothing a client sends can take the process down.
//
//   GET /healthz                  200 "ok" while the process runs
//   GET /readyz                   200 / 503 {ready, reasons}
//   GET /metrics                  Prometheus text exposition format 0.0.4
//   GET /api/presence/<address>   200 PresenceView, 400 {error} for a bad address
//   GET /                         HTML status page: everyone's presence, the last messages relayed
//                                 (?address=... shows one person's presence)
//   GET /events                   the status page's live feed (Server-Sent Events)
//   GET /status.js                the status page's script
// With http.auth, everything but /healthz, /readyz and /metrics asks for HTTP basic auth.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseAddress } from "../../src/domain/address.js";
import { AddressError, quote, SwitchboardError } from "../../src/domain/errors.js";
import {
  homeIdentity,
  isNumber,
  sipToGatewayJid,
  type GatewayDomains,
} from "../../src/domain/gateway-mapping.js";
import { bareJid, formatJid } from "../../src/domain/jid.js";
import type { AggregatePresence, PresenceRecord, PresenceSource } from "../../src/domain/presence.js";
import type { Logger } from "../../src/ports/logger.js";
import type { PresenceSnapshot } from "../../src/ports/presence-store.js";
import { personForContact, personForHomeJid } from "../../src/presence/person.js";
import {
  escapeHtml,
  EventHub,
  MAX_EVENT_CLIENTS,
  MAX_PEOPLE,
  messagesSection,
  peopleSection,
  STATUS_SCRIPT,
  type StatusSource,
} from "./status-page.js";

// ---------------------------------------------------------------------------------------------
// Person keys and the presence view (pure)

/**
 * The person key (src/presence/person.ts) an address given by an operator names, so that every
 * spelling of one person finds the same records: `alice@example.org`, `xmpp:alice@example.org/x`,
 * `sip:Alice@example.org` and the gateway contact `alice@sip.example.org` all give
 * `alice@example.org`; `+442071234567`, `tel:+442071234567`, `sip:+442071234567@example.org` and
 * `+442071234567@sip.example.org` give `+442071234567`; `sip:carol@example.com` (and its gateway JID
 * `carol\40example.com@sip.example.org`) gives `sip:carol@example.com`. A JID of another XMPP domain
 * is its own key (its bare JID). Throws AddressError for what names nobody.
 */
export function personForAddress(input: string, domains: GatewayDomains): string {
  // A bare number is a line (E.164 or an extension); the keys of numbers are the numbers themselves.
  if (isNumber(input)) return input;
  const address = parseAddress(input);
  const home = domains.homeDomain.toLowerCase();
  const gateway = domains.gatewayDomain.toLowerCase();
  switch (address.kind) {
    case "tel":
      return personForContact(sipToGatewayJid(address.uri, domains), domains);
    case "sip": {
      const name = homeIdentity(address, home);
      if (name !== null) return `${name}@${home}`;
      // The key names the party, not the transport: sips:carol@example.com is sip:carol@example.com.
      const uri = address.uri.scheme === "sips" ? { ...address.uri, scheme: "sip" as const } : address.uri;
      return personForContact(sipToGatewayJid(uri, domains), domains);
    }
    case "jid":
    case "xmpp": {
      const jid = bareJid(address.kind === "jid" ? address.jid : address.uri.jid);
      if (jid.local === null) {
        throw new AddressError(input, `${quote(input)} names a server, not a person`);
      }
      if (jid.domain === gateway) return personForContact(jid, domains);
      if (jid.domain === home) {
        const person = personForHomeJid(jid, domains);
        if (person !== null) return person;
        if (isNumber(jid.local)) return jid.local;
        throw new AddressError(input, `${quote(input)} names no user of ${home}`);
      }
      return formatJid(jid);
    }
  }
}

/** The tenant whose home or gateway domain an address names (see HttpServerOptions.tenants). */
function tenantFor<T extends { domains: GatewayDomains }>(
  address: string,
  tenants: readonly T[] | undefined,
): T | undefined {
  if (!tenants || !address.includes("@")) return undefined;
  const host = (address.slice(address.lastIndexOf("@") + 1).split(/[/;:?>]/)[0] ?? "")
    .replace(/\.$/, "")
    .toLowerCase();
  return tenants.find((t) => host === t.domains.homeDomain || host === t.domains.gatewayDomain);
}

/** A source as the API shows it: its kind and its identity within the kind (resource, ETag). */
export interface SourceRef {
  kind: PresenceSource["kind"];
  /** The XMPP resource or the PUBLISH entity tag; null for the PBX sources (one per person). */
  id: string | null;
}

export interface SourceView extends SourceRef {
  /** The chosen state; for pbx-device the device state (idle, inuse, ringing, unavailable); null: no opinion. */
  state: string | null;
  note: string | null;
  /** ISO 8601 (UTC). */
  updatedAt: string;
  /** ISO 8601 (UTC), or null when the record does not expire. */
  expiresAt: string | null;
  /** Seconds since the source last reported. */
  ageSeconds: number;
  /** Seconds until the record stops counting (negative: expired that long ago), or null when it never expires. */
  expiresInSeconds: number | null;
  /** Whether the record counts now (not expired). */
  live: boolean;
}

export interface AggregateView {
  state: AggregatePresence["state"];
  note: string | null;
  /** ISO 8601 (UTC), or null. */
  since: string | null;
  winner: SourceRef | null;
}

/** The body of `GET /api/presence/<address>`. */
export interface PresenceView {
  /** The address as asked. */
  address: string;
  /** The person key the address names. */
  person: string;
  /** The bridge's clock when the view was taken, ISO 8601 (UTC); ages and expiries count from it. */
  now: string;
  aggregate: AggregateView;
  /** Most recently updated first. */
  sources: SourceView[];
}

/** The body of every 4xx/5xx JSON answer. */
export interface ErrorBody {
  error: string;
}

export interface Readiness {
  ready: boolean;
  /** Why not, one short phrase each ("xmpp component offline", "redis unreachable"). */
  reasons: string[];
}

function sourceRef(source: PresenceSource): SourceRef {
  switch (source.kind) {
    case "xmpp":
      return { kind: source.kind, id: source.resource };
    case "sip-publish":
      return { kind: source.kind, id: source.etag };
    default:
      return { kind: source.kind, id: null };
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

function sourceView(record: PresenceRecord, now: number): SourceView {
  const state = "device" in record ? record.device : record.state;
  const note = "device" in record || record.note === undefined || record.note === "" ? null : record.note;
  return {
    ...sourceRef(record.source),
    state,
    note,
    updatedAt: iso(record.updatedAt),
    expiresAt: record.expiresAt === null ? null : iso(record.expiresAt),
    ageSeconds: Math.max(0, Math.floor((now - record.updatedAt) / 1000)),
    expiresInSeconds: record.expiresAt === null ? null : Math.floor((record.expiresAt - now) / 1000),
    live: record.expiresAt === null || record.expiresAt > now,
  };
}

/** The API's view of one person's snapshot at `now` (ms). */
export function presenceView(
  address: string,
  person: string,
  snapshot: PresenceSnapshot,
  now: number,
): PresenceView {
  const { aggregate } = snapshot;
  const sources = snapshot.records
    .map((record) => ({ record, view: sourceView(record, now) }))
    .sort((a, b) => {
      if (a.record.updatedAt !== b.record.updatedAt) return b.record.updatedAt - a.record.updatedAt;
      const ka = `${a.view.kind}\u0000${a.view.id ?? ""}`;
      const kb = `${b.view.kind}\u0000${b.view.id ?? ""}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    })
    .map(({ view }) => view);
  return {
    address,
    person,
    now: iso(now),
    aggregate: {
      state: aggregate.state,
      note: aggregate.note,
      since: aggregate.since === null ? null : iso(aggregate.since),
      winner: aggregate.winner === null ? null : sourceRef(aggregate.winner),
    },
    sources,
  };
}

/** The API path for an address (URL-encoded, so `/`, `?`, `#` and `%` in it survive). */
export function presencePath(address: string): string {
  return `/api/presence/${encodeURIComponent(address)}`;
}

// ---------------------------------------------------------------------------------------------
// The server

/** Presence as the server needs it (PresenceService satisfies it). */
export interface PresenceReader {
  snapshot(person: string): Promise<PresenceSnapshot>;
  now(): number;
}

export interface HttpServerOptions {
  /** `host:port` (http.listen); IPv6 hosts in brackets. Port 0 picks a free port (tests). */
  listen: string;
  presence: PresenceReader;
  domains: GatewayDomains;
  /**
   * Every tenant's presence and domains (docs/tenants.md), the default first: an address is read
   * from the tenant whose home or gateway domain it names, anything else (a bare number, tel:, a
   * foreign domain) from the first. Absent: `presence` and `domains` alone.
   */
  tenants?: readonly { presence: PresenceReader; domains: GatewayDomains }[];
  /** Readiness now; called on every /readyz, /metrics and status page request. */
  ready: () => Readiness;
  /**
   * The bridge's metrics as Prometheus text (each with its # HELP and # TYPE lines; the process and
   * Node.js ones among them), appended to the few the server keeps itself.
   */
  metrics?: () => string | Promise<string>;
  version: string;
  log: Logger;
  /** Longest a handler may wait for the store or the metrics callback (ms); default 5000. */
  handlerTimeoutMs?: number;
  /** What the status page lists and streams; absent: the page shows the bridge and the address form only. */
  status?: StatusSource;
  /** http.auth: basic auth for the status page, its feed and the presence API. */
  auth?: { username: string; password: string };
}

export interface HttpServer {
  /** The bound port (the real one when listen asked for port 0). */
  readonly port: number;
  /** Base URL, e.g. http://127.0.0.1:8480. */
  readonly url: string;
  /** Stops listening and closes every connection, idle or not. Safe to call twice. */
  close(): Promise<void>;
}

/** Splits `host:port` / `[v6]:port`; the host comes back without brackets. */
export function splitListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new SwitchboardError(
      "bad-request",
      `http.listen: expected host:port, got ${JSON.stringify(listen)}`,
    );
  }
  return { host, port };
}

/**
 * The base URL a client on this host uses to reach a server listening on `listen`: a wildcard
 * address (0.0.0.0, ::) is reached on loopback.
 */
export function bridgeUrl(listen: string): string {
  const { host, port } = splitListen(listen);
  const reach = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${reach.includes(":") ? `[${reach}]` : reach}:${port}`;
}

const ALLOW = "GET, HEAD";
const MAX_ADDRESS_LENGTH = 2048;
// Bounds on what a client may take (RFC 9110 leaves them to the server): a slow or stuck client
// holds a socket for at most these.
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const SOCKET_IDLE_TIMEOUT_MS = 30_000;
const MAX_HEADER_BYTES = 16 * 1024;

type Route = "/" | "/healthz" | "/readyz" | "/metrics" | "/api/presence" | "/events" | "/status.js" | "other";

/** Routes anyone may ask even with http.auth: probes and scrapers, which reveal no one's presence. */
const OPEN_ROUTES = new Set<Route>(["/healthz", "/readyz", "/metrics", "other"]);

interface Reply {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

function json(status: number, value: unknown): Reply {
  return { status, type: "application/json; charset=utf-8", body: `${JSON.stringify(value, null, 2)}\n` };
}

const errorReply = (status: number, error: string): Reply => json(status, { error } satisfies ErrorBody);

class TimeoutError extends Error {
  override name = "TimeoutError";
}

function withTimeout<T>(work: Promise<T> | T, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(work), timeout]).finally(() => clearTimeout(timer));
}

/** Prometheus label value escaping (exposition format 0.0.4: backslash, double quote, newline). */
function labelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function gauge(name: string, help: string, samples: [labels: string, value: number][]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`];
  for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  return lines.join("\n");
}

/**
 * Whether the request carries http.auth's credentials. Digests of both are compared in constant
 * time, so neither the content nor the length of the expected value shows in the timing.
 */
function authorized(req: IncomingMessage, auth: { username: string; password: string }): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? "");
  if (!match?.[1]) return false;
  const digest = (bytes: Buffer): Buffer => createHash("sha256").update(bytes).digest();
  const given = digest(Buffer.from(match[1], "base64"));
  const expected = digest(Buffer.from(`${auth.username}:${auth.password}`, "utf8"));
  return timingSafeEqual(given, expected);
}

/** Starts listening; rejects with a SwitchboardError naming http.listen when the address cannot be bound. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { host, port } = splitListen(options.listen);
  const log = options.log.child({ component: "http" });
  const handlerTimeoutMs = options.handlerTimeoutMs ?? 5_000;
  const startedAt = Date.now();
  const requests = new Map<string, number>();

  const readiness = (): Readiness => {
    try {
      const { ready, reasons } = options.ready();
      return { ready, reasons: [...reasons] };
    } catch (err) {
      log.error({ err: String(err) }, "readiness check failed");
      return { ready: false, reasons: [`readiness check failed: ${String(err)}`] };
    }
  };

  async function presenceFor(address: string): Promise<PresenceView> {
    const { presence, domains } = tenantFor(address, options.tenants) ?? options;
    const person = personForAddress(address, domains);
    const snapshot = await withTimeout(presence.snapshot(person), handlerTimeoutMs, "the presence store");
    return presenceView(address, person, snapshot, presence.now());
  }

  async function statusSections(): Promise<string[]> {
    const status = options.status;
    if (!status) return [];
    const people = (await withTimeout(status.people(), handlerTimeoutMs, "the directory")).sort();
    const shown = people.slice(0, MAX_PEOPLE);
    const views = await withTimeout(
      Promise.all(shown.map((person) => presenceFor(person))),
      handlerTimeoutMs,
      "the presence store",
    );
    return [peopleSection(views, people.length), messagesSection(status.messages())];
  }

  const hub = options.status
    ? new EventHub(options.status, presenceFor, (err) =>
        log.warn({ err: String(err) }, "status page: presence not read"),
      )
    : undefined;

  async function metricsText(): Promise<string> {
    const { ready } = readiness();
    const parts = [
      gauge("switchboard_up", "1 while the bridge process runs.", [["", 1]]),
      gauge("switchboard_info", "The bridge's version.", [[`{version="${labelValue(options.version)}"}`, 1]]),
      gauge("switchboard_ready", "1 when the bridge is ready (see /readyz), else 0.", [["", ready ? 1 : 0]]),
      [
        "# HELP switchboard_http_requests_total HTTP requests answered, by route and status code.",
        "# TYPE switchboard_http_requests_total counter",
        ...[...requests].map(([labels, count]) => `switchboard_http_requests_total${labels} ${count}`),
      ].join("\n"),
    ];
    let extraOk = 1;
    if (options.metrics) {
      try {
        const extra = (await withTimeout(options.metrics(), handlerTimeoutMs, "the metrics callback")).trim();
        if (extra !== "") parts.push(extra);
      } catch (err) {
        extraOk = 0;
        log.warn({ err: String(err) }, "bridge metrics not collected");
      }
    }
    parts.push(
      gauge(
        "switchboard_metrics_collected",
        "1 when the bridge's own metrics were collected for this scrape.",
        [["", extraOk]],
      ),
    );
    return `${parts.join("\n")}\n`;
  }

  function statusPage(
    query: URLSearchParams,
    view: PresenceView | null,
    problem: string | null,
    sections: string[] = [],
  ): string {
    const { ready, reasons } = readiness();
    const address = query.get("address") ?? "";
    const row = (name: string, value: string): string =>
      `<tr><th scope="row">${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`;
    const uptime = Math.floor((Date.now() - startedAt) / 1000);
    const lines = [
      "<!DOCTYPE html>",
      '<html lang="en"><head><meta charset="utf-8">',
      '<meta name="viewport" content="width=device-width, initial-scale=1">',
      "<title>Switchboard</title>",
      "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}" +
        "table{border-collapse:collapse}th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #ddd}" +
        ".bad{color:#a00}.ok{color:#070}td ul{margin:0;padding-left:1.2em}" +
        ".state{white-space:nowrap;font-weight:600}.state-available,.state-chat{color:#070}" +
        ".state-away,.state-xa{color:#a60}.state-dnd,.state-on-the-phone{color:#a00}" +
        ".state-unavailable{color:#777}</style>",
      "</head><body>",
      "<h1>Switchboard</h1>",
      "<table>",
      row("Version", options.version),
      `<tr><th scope="row">Ready</th><td class="${ready ? "ok" : "bad"}">${ready ? "yes" : "no"}</td></tr>`,
      ...(ready ? [] : [row("Why not", reasons.join("; ") || "(no reason given)")]),
      row("Home domain", options.domains.homeDomain),
      row("Gateway domain", options.domains.gatewayDomain),
      row("Started", iso(startedAt)),
      row("Up for", formatDuration(uptime)),
      "</table>",
      '<p><a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · <a href="/metrics">/metrics</a></p>',
      "<h2>Presence</h2>",
      '<form method="get" action="/"><label>Address <input name="address" size="40" value="' +
        `${escapeHtml(address)}" placeholder="alice@example.org"></label> <button>Show</button></form>`,
    ];
    if (problem !== null) lines.push(`<p class="bad">${escapeHtml(problem)}</p>`);
    if (view !== null) {
      const { aggregate } = view;
      lines.push(
        `<p><strong>${escapeHtml(view.person)}</strong>: ${escapeHtml(aggregate.state)}` +
          (aggregate.note === null ? "" : ` “${escapeHtml(aggregate.note)}”`) +
          (aggregate.since === null ? "" : ` since ${escapeHtml(aggregate.since)}`) +
          (aggregate.winner === null
            ? ""
            : ` (from ${escapeHtml(aggregate.winner.kind)}${aggregate.winner.id === null ? "" : ` ${escapeHtml(aggregate.winner.id)}`})`) +
          "</p>",
      );
      if (view.sources.length === 0) {
        lines.push("<p>No presence sources.</p>");
      } else {
        lines.push(
          "<table><tr><th>Source</th><th>Id</th><th>State</th><th>Note</th><th>Updated</th><th>Expires</th></tr>",
        );
        for (const source of view.sources) {
          const cells = [
            source.kind,
            source.id ?? "",
            source.state ?? "(not set)",
            source.note ?? "",
            `${formatDuration(source.ageSeconds)} ago`,
            source.expiresInSeconds === null
              ? "never"
              : source.live
                ? `in ${formatDuration(source.expiresInSeconds)}`
                : "expired",
          ];
          lines.push(`<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`);
        }
        lines.push("</table>");
      }
    }
    lines.push(...sections);
    if (hub) lines.push('<script src="/status.js"></script>');
    lines.push("</body></html>");
    return `${lines.join("\n")}\n`;
  }

  async function route(path: string, query: URLSearchParams): Promise<Reply> {
    switch (path) {
      case "/healthz":
        return { status: 200, type: "text/plain; charset=utf-8", body: "ok\n" };
      case "/readyz": {
        const state = readiness();
        return json(state.ready ? 200 : 503, state);
      }
      case "/metrics":
        return { status: 200, type: "text/plain; version=0.0.4; charset=utf-8", body: await metricsText() };
      case "/status.js":
        return { status: 200, type: "text/javascript; charset=utf-8", body: STATUS_SCRIPT };
      case "/": {
        const address = query.get("address");
        if (address === null || address === "") {
          try {
            const sections = await statusSections();
            return {
              status: 200,
              type: "text/html; charset=utf-8",
              body: statusPage(query, null, null, sections),
            };
          } catch (err) {
            if (!(err instanceof TimeoutError)) throw err;
            return {
              status: 503,
              type: "text/html; charset=utf-8",
              body: statusPage(query, null, err.message),
            };
          }
        }
        try {
          const view = await presenceFor(address);
          return { status: 200, type: "text/html; charset=utf-8", body: statusPage(query, view, null) };
        } catch (err) {
          if (!(err instanceof AddressError) && !(err instanceof TimeoutError)) throw err;
          const status = err instanceof AddressError ? 400 : 503;
          return { status, type: "text/html; charset=utf-8", body: statusPage(query, null, err.message) };
        }
      }
    }
    // /api/presence/<address>: the rest of the path, percent-decoded, is the address.
    const encoded = path.slice("/api/presence/".length);
    let address: string;
    try {
      address = decodeURIComponent(encoded);
    } catch {
      return errorReply(400, "the address is not correctly percent-encoded");
    }
    if (address.length > MAX_ADDRESS_LENGTH) return errorReply(400, "the address is too long");
    try {
      return json(200, await presenceFor(address));
    } catch (err) {
      if (err instanceof AddressError) return errorReply(400, err.message);
      if (err instanceof TimeoutError) return errorReply(503, err.message);
      throw err;
    }
  }

  function routeOf(path: string): Route {
    if (path === "/" || path === "/healthz" || path === "/readyz" || path === "/metrics") return path;
    if (path === "/events" || path === "/status.js") return hub ? path : "other";
    return path.startsWith("/api/presence/") ? "/api/presence" : "other";
  }

  function send(req: IncomingMessage, res: ServerResponse, which: Route, reply: Reply): void {
    const labels = `{route="${which}",code="${reply.status}"}`;
    requests.set(labels, (requests.get(labels) ?? 0) + 1);
    if (res.headersSent || res.destroyed) return;
    const body = Buffer.from(reply.body, "utf8");
    res.writeHead(reply.status, {
      "Content-Type": reply.type,
      "Content-Length": String(body.length),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      // The status page needs its own script and event feed, no frame or outside resource.
      "Content-Security-Policy":
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'",
      "Referrer-Policy": "no-referrer",
      ...reply.headers,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Not `new URL(req.url, base)`: a request target such as `//host/x` would be read as a host.
    const target = req.url ?? "/";
    const question = target.indexOf("?");
    const path = question >= 0 ? target.slice(0, question) : target;
    const query = new URLSearchParams(question >= 0 ? target.slice(question + 1) : "");
    const which = routeOf(path);
    if (which === "other") {
      send(req, res, which, errorReply(404, `no such resource: ${path.slice(0, 200)}`));
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      // The request body, if any, is not read: close the connection rather than parse it as the next request.
      send(req, res, which, {
        ...errorReply(405, `${req.method ?? "?"} is not allowed here; use GET or HEAD`),
        headers: { Allow: ALLOW, Connection: "close" },
      });
      return;
    }
    req.resume();
    if (options.auth && !OPEN_ROUTES.has(which) && !authorized(req, options.auth)) {
      send(req, res, which, {
        ...errorReply(401, "this needs the user name and password of http.auth"),
        headers: { "WWW-Authenticate": 'Basic realm="Switchboard", charset="UTF-8"' },
      });
      return;
    }
    if (which === "/events" && hub) {
      const labels = `{route="/events",code="200"}`;
      if (req.method === "HEAD") {
        send(req, res, which, { status: 200, type: "text/event-stream; charset=utf-8", body: "" });
        return;
      }
      if (!hub.add(res)) {
        send(req, res, which, errorReply(503, `too many event streams open (${MAX_EVENT_CLIENTS})`));
        return;
      }
      requests.set(labels, (requests.get(labels) ?? 0) + 1);
      return;
    }
    let reply: Reply;
    try {
      reply = await route(path, query);
    } catch (err) {
      log.error({ err: String(err), path: path.slice(0, 200) }, "request failed");
      reply = errorReply(500, "internal error (see the bridge's log)");
    }
    send(req, res, which, reply);
  }

  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
      // How often Node checks the two timeouts above (default 30 s would let them overrun).
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error({ err: String(err) }, "request handling failed");
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    },
  );
  server.setTimeout(SOCKET_IDLE_TIMEOUT_MS);
  server.maxRequestsPerSocket = 1000;
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    // Malformed HTTP, oversized headers, a timed-out request: answer if the socket still can, then close.
    log.debug({ err: err.code ?? err.message }, "bad HTTP request");
    if (!socket.writable || err.code === "ECONNRESET") {
      socket.destroy();
      return;
    }
    const status =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? "408 Request Timeout"
        : err.code === "HPE_HEADER_OVERFLOW"
          ? "431 Request Header Fields Too Large"
          : "400 Bad Request";
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      hub?.close(); // its listeners on the presence service and the message list go with it
      reject(
        new SwitchboardError(
          "service-unavailable",
          `http.listen: cannot listen on ${options.listen}: ${err.code ?? err.message}`,
          { cause: err },
        ),
      );
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err: String(err) }, "HTTP server error"));

  const bound = (server.address() as AddressInfo).port;
  const url = bridgeUrl(`${host.includes(":") ? `[${host}]` : host}:${bound}`);
  log.info({ listen: options.listen, url }, "HTTP endpoint listening");

  let closing: Promise<void> | undefined;
  return {
    port: bound,
    url,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        hub?.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** 45 → "45s", 200 → "3m 20s", 7300 → "2h 01m", 200000 → "2d 7h". */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

// ---------------------------------------------------------------------------------------------
// The client side, for the CLI: one GET to the running bridge.

export interface BridgeAnswer {
  status: number;
  /** The parsed JSON body. */
  body: unknown;
}

/** The bridge could not be asked: not running, wrong address, or no answer in time. */
export class BridgeUnreachableError extends Error {
  override name = "BridgeUnreachableError";
}

/** The server at http.listen answered, but not as a Switchboard bridge would (not JSON). */
export class NotABridgeError extends Error {
  override name = "NotABridgeError";
}

const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** GETs `path` from the bridge at `baseUrl` (see bridgeUrl), bounded by `timeoutMs`, and parses the JSON. */
export function getBridgeJson(
  baseUrl: string,
  path: string,
  timeoutMs: number,
  auth?: { username: string; password: string },
): Promise<BridgeAnswer> {
  const base = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy(new BridgeUnreachableError(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    const req = httpRequest(
      {
        host: base.hostname.replace(/^\[|\]$/g, ""),
        port: base.port,
        path,
        method: "GET",
        headers: {
          Accept: "application/json",
          ...(auth
            ? {
                Authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`,
              }
            : {}),
        },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new NotABridgeError("the answer is too large"));
          else chunks.push(chunk);
        });
        res.on("error", fail);
        res.on("end", () => {
          clearTimeout(timer);
          const type = res.headers["content-type"] ?? "";
          const text = Buffer.concat(chunks).toString("utf8");
          if (!/^application\/json\b/i.test(type)) {
            reject(
              new NotABridgeError(
                `HTTP ${res.statusCode ?? "?"} with ${type || "no content type"}, not JSON`,
              ),
            );
            return;
          }
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch {
            reject(new NotABridgeError(`HTTP ${res.statusCode ?? "?"} with a body that is not JSON`));
          }
        });
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err instanceof BridgeUnreachableError || err instanceof NotABridgeError) fail(err);
      // "connect ECONNREFUSED", "getaddrinfo ENOTFOUND": the system call and the code, without the address again.
      else
        fail(
          new BridgeUnreachableError(err.syscall && err.code ? `${err.syscall} ${err.code}` : err.message),
        );
    });
    req.end();
  });
}
