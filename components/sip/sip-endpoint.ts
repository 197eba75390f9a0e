// The SIP endpoint: transports, server transactions and the requests the bridge serves — MESSAGE
// in (RFC 3428, to the chat user on the XMPP side), PUBLISH and SUBSCRIBE (presence) and OPTIONS
// (proxies' keepalive) — and the bridge's own MESSAGEs out. INVITE and every other method get a
// final answer with Allow (405), never silence. Who may send is the Authenticator's call: trusted
// peers (proxy, PBX) by address, everyone else with digest.
import type { Metrics } from "../../src/ports/metrics.js";
import { createHash, randomBytes } from "node:crypto";
import { Resolver } from "node:dns/promises";
import { SwitchboardError } from "../../src/domain/errors.js";
import { homeIdentity, isNumber, type GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { escapeLocal } from "../../src/domain/jid-escape.js";
import { formatJid, makeJid } from "../../src/domain/jid.js";
import { formatSipUri, makeSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Directory } from "../../src/ports/directory.js";
import type { Logger } from "../../src/ports/logger.js";
import type { ChatMessage, DeliveryOutcome, MessageSink } from "../../src/ports/message-port.js";
import type { VoicemailSink } from "../../src/ports/voicemail-port.js";
import type { Condition } from "../../src/domain/errors.js";
import { e164Fallback } from "../../src/domain/gateway-mapping.js";
import { parseJid } from "../../src/domain/jid.js";
import { unescapeLocal } from "../../src/domain/jid-escape.js";
import {
  Authenticator,
  type Authentication,
  type SecurityEvent,
  type SipUserCredentials,
} from "./authenticator.js";
import { TokenBuckets } from "../../src/util/token-buckets.js";
import { ClientTransactions } from "./client-transactions.js";
import { buildIsComposing, isComposingFromChatState } from "./is-composing.js";
import { locateSipServer } from "./locate.js";
import { MwiSubscriber, type MailboxConfig } from "./mwi-subscriber.js";
import { DEFAULT_PUBLISH_LIMITS, PublishHandler } from "./publish-handler.js";
import { RegWatcher } from "./reg-watcher.js";
import { PresenceNotifier } from "./notifier.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { DEFAULT_LIMITS } from "./framing.js";
import { RequestSender, type DigestCredentials } from "./request-sender.js";
import {
  buildResponse,
  isRequest,
  missingHeaders,
  parseSip,
  type SipRequest,
  type SipResponse,
} from "./sip-message.js";
import { sipStatusFor } from "./sip-status.js";
import { ACCEPTED_TYPES, readMessageContent } from "./sip-to-xmpp-message.js";
import { DEFAULT_TIMERS, ServerTransactions, type TimerSettings } from "./server-transactions.js";
import { FlowClosedError, SipTransports, type Flow, type TlsFiles } from "./transports.js";
import { randomToken } from "../../src/util/random-token.js";

export const ALLOW = "MESSAGE, OPTIONS";
export const ALLOW_WITH_PRESENCE = "MESSAGE, OPTIONS, PUBLISH, SUBSCRIBE";
const SCANNERS = /friendly-scanner|sipvicious|sipcli|sip-scan|sundayddr|iWar|VaxSIPUserAgent/i;

export interface SipEndpointOptions {
  listen: readonly string[];
  domains: GatewayDomains;
  /** Numbers and extensions → people (the config-file directory, later LDAP). */
  directory: Directory;
  /** Where messages for chat users go (the XMPP side). */
  toXmpp: MessageSink;
  /** CIDRs of peers whose requests are accepted without digest (proxy, PBX). */
  trustedPeers: readonly string[];
  /** Users who may authenticate with digest (UAS); none: untrusted peers get 403. */
  users?: readonly SipUserCredentials[];
  /** Digest realm (default: the home domain). */
  realm?: string;
  /** Digest challenges offered, most preferred first (default SHA-256, MD5). */
  digestAlgorithms?: readonly ("SHA-256" | "MD5")[];
  maxMessageBytes: number;
  /** The presence model: with it, PUBLISH (RFC 3903) and presence SUBSCRIBE (RFC 3856) are served. */
  presence?: PresenceService;
  /** Domains besides the home domain whose users may watch presence. */
  allowedDomains?: readonly string[];
  /** `sip.outboundProxy`: where the bridge's own requests go (loose routing, RFC 3261 §16.12). */
  outboundProxy?: string;
  /** `sip.auth`: what the bridge answers a 401/407 with. */
  credentials?: DigestCredentials;
  /** DNS servers (`host:port`) for locating SIP servers (RFC 3263); absent: the system's. */
  dnsServers?: readonly string[];
  tls?: TlsFiles;
  /** An E.164 number's SIP URI from ENUM (E2U+sip), or null; absent: no ENUM. */
  enumSip?: (e164: string) => Promise<string | null>;
  /** `sip.advertisedHost`: the bridge's address in Via and Contact. */
  advertisedHost?: string;
  /**
   * Several instances share the store (docs/scaling.md): subscription dialogs are read from it, and
   * `dialogContact` (`sip.dialogContact`), when set, is the Contact of the dialogs this endpoint
   * answers, so in-dialog requests reach whichever instance the proxy picks.
   */
  sharedStore?: { dialogContact?: string };
  /** Requests sent and answered are counted here (by method and final status). */
  metrics?: Metrics;
  /** log.wire.sip: every message sent and received is logged here in full (credentials masked). */
  wireLog?: Logger;
  /** Shortest Expires accepted for PUBLISH and SUBSCRIBE (default 60 s; 423 below it). */
  minExpires?: number;
  /** MWI (RFC 3842): the mailboxes to subscribe to at the PBX, and where their changes go. */
  mwi?: { mailboxes: readonly MailboxConfig[]; expires?: number; sink: VoicemailSink; retryMs?: number };
  /**
   * RFC 3680 `reg` subscriptions at the registrar, so the bridge hears when a watched desk phone
   * registers again (`endpoint.reg.watch(person, aor)`); `onOnline` gets the person.
   */
  regEvents?: {
    registrar: string;
    expires?: number;
    onOnline: (person: string) => void | Promise<void>;
    retryMs?: number;
    /** At most this many AORs watched at once (default 1000). */
    maxWatched?: number;
  };
  timers?: TimerSettings;
  /**
   * `sip.rateLimit`: requests per second (and burst) allowed from one source address; beyond it,
   * 503 with Retry-After. `trustedPeers`: whether trusted peers (the proxy) are limited too.
   */
  rateLimit?: { perSecond: number; burst: number; trustedPeers: boolean };
  /**
   * The home and gateway domains of the other tenants of this process (docs/tenants.md): a
   * request whose sender is on one of them is refused (403), and the bridge sends nothing to them.
   */
  otherTenants?: readonly string[];
  log: Logger;
}

/**
 * What the endpoints of several tenants on one listener share (sip-tenant-router.ts): the branch
 * prefix, so a request any of them sent is seen as a loop by all, and the per-source rate limit,
 * so a source gets one allowance whichever tenant it writes to.
 */
export interface SharedSipState {
  branchPrefix: string;
  limiter: TokenBuckets | undefined;
}

/** The state a single endpoint (or the first tenant's) creates for itself. */
export function newSharedSipState(rateLimit: SipEndpointOptions["rateLimit"]): SharedSipState {
  return {
    branchPrefix: `z9hG4bK-sb${randomBytes(4).toString("hex")}-`,
    limiter: rateLimit
      ? new TokenBuckets({ perSecond: rateLimit.perSecond, burst: rateLimit.burst })
      : undefined,
  };
}

/** The outcome of our MESSAGE as a delivery result or a condition (DESIGN.md "Messages"). */
export function outcomeFor(status: number): "delivered" | "accepted" | Condition {
  if (status === 200) return "delivered";
  if (status >= 200 && status < 300) return "accepted";
  if (status === 404 || status === 604 || status === 410) return "item-not-found";
  if (status === 408) return "remote-server-timeout";
  if (status === 480 || status === 486 || status === 600 || status === 603) return "recipient-unavailable";
  if (status === 401 || status === 407 || status === 403) return "forbidden";
  if (status === 413 || status === 513) return "policy-violation";
  if (status === 415 || status === 488 || status === 606) return "not-acceptable";
  if (status === 482 || status === 483) return "loop-detected";
  if (status === 501) return "feature-not-implemented";
  // Not reachable now, perhaps later (the queue retries these): 503, a proxy's 502/504.
  if (status === 502 || status === 503 || status === 504) return "service-unavailable";
  if (status >= 500) return "internal-server-error";
  return "bad-request"; // another 4xx: the request itself was wrong, retrying will not help
}

/** A SIP party as a person key (see src/presence/person.ts): name@home, the number, or its SIP URI. */
export function personForSipUri(uri: SipUri, domains: GatewayDomains): string {
  const name = homeIdentity({ kind: "sip", uri }, domains.homeDomain);
  if (name !== null) return `${name}@${domains.homeDomain}`;
  if (uri.user !== null && isNumber(uri.user)) return uri.user;
  return formatSipUri(makeSipUri({ user: uri.user, host: uri.host, port: uri.port }));
}

/** The rate-limit bucket of a source address: itself for IPv4, its /64 for IPv6. */
export function rateLimitKey(address: string): string {
  if (!address.includes(":")) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  const [head = "", tail = ""] = address.toLowerCase().split("::");
  const front = head === "" ? [] : head.split(":");
  const back = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::")
    ? [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill("0"), ...back]
    : front;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

export class SipEndpoint {
  private readonly tag = randomBytes(6).toString("hex");
  /** Every branch we generate starts with this: seeing it in a request's Via means a loop. */
  private readonly branchPrefix: string;
  readonly clients: ClientTransactions;
  readonly sender: RequestSender;
  private readonly authenticator: Authenticator;
  private readonly publish: PublishHandler | undefined;
  readonly notifier: PresenceNotifier | undefined;
  readonly mwi: MwiSubscriber | undefined;
  readonly reg: RegWatcher | undefined;
  private readonly allow: string;
  /** Sender→recipient pairs with an `active` isComposing outstanding (only those get an `idle`). */
  private readonly composing = new Set<string>();
  /** Set by drain(): new requests are answered 503. */
  private _draining = false;
  /** Requests being handled now (between their transaction opening and their final answer). */
  private active = 0;
  private readonly limiter: TokenBuckets | undefined;
  /** When each (event, source) last made a security log line, to keep a flood from flooding the log. */
  private readonly securityLogged = new Map<string, { at: number; suppressed: number }>();
  /** The other tenants' domains (options.otherTenants). */
  private readonly otherTenants: ReadonlySet<string>;
  /** A router owns the transports (and closes them). */
  private readonly routed: boolean;

  private constructor(
    readonly transports: SipTransports,
    readonly transactions: ServerTransactions,
    private readonly options: SipEndpointOptions,
    /** Given when a router owns the transports and hands this endpoint its tenant's requests. */
    routed?: SharedSipState,
  ) {
    const shared = routed ?? newSharedSipState(options.rateLimit);
    this.branchPrefix = shared.branchPrefix;
    this.limiter = shared.limiter;
    this.authenticator = new Authenticator({
      onSecurityEvent: (event) => this.securityEvent(event),
      trustedPeers: options.trustedPeers,
      homeDomain: options.domains.homeDomain,
      ...(options.realm ? { realm: options.realm } : {}),
      ...(options.users ? { users: options.users } : {}),
      ...(options.digestAlgorithms ? { algorithms: options.digestAlgorithms } : {}),
    });
    this.clients = new ClientTransactions(options.timers ?? DEFAULT_TIMERS, options.metrics);
    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    if (options.dnsServers?.length) resolver.setServers([...options.dnsServers]);
    this.sender = new RequestSender({
      transports,
      clients: this.clients,
      branchPrefix: this.branchPrefix,
      ...(options.outboundProxy ? { outboundProxy: parseSipUri(options.outboundProxy) } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      locate: (uri, { preferReliable }) =>
        locateSipServer(uri, { resolver, supported: transports.sendable(), preferReliable }),
      log: options.log,
    });
    this.publish = options.presence
      ? new PublishHandler(
          options.presence,
          options.domains,
          options.log.child({ event: "presence" }),
          options.minExpires ? { ...DEFAULT_PUBLISH_LIMITS, minExpires: options.minExpires } : undefined,
        )
      : undefined;
    this.notifier = options.presence
      ? new PresenceNotifier({
          domains: options.domains,
          allowedDomains: options.allowedDomains ?? [],
          presence: options.presence,
          sender: this.sender,
          log: options.log.child({ event: "presence" }),
          ...(options.minExpires ? { minExpires: options.minExpires } : {}),
          ...(options.sharedStore ? { shared: true } : {}),
        })
      : undefined;
    this.mwi = options.mwi?.mailboxes.length
      ? new MwiSubscriber({
          mailboxes: options.mwi.mailboxes,
          sender: this.sender,
          from: `sip:switchboard@${options.domains.gatewayDomain}`,
          sink: options.mwi.sink,
          log: options.log.child({ event: "message-summary" }),
          ...(options.mwi.expires ? { expires: options.mwi.expires } : {}),
          ...(options.mwi.retryMs ? { retryMs: options.mwi.retryMs } : {}),
        })
      : undefined;
    this.reg = options.regEvents
      ? new RegWatcher({
          // Straight to the registrar the operator named: it is the one that knows registrations,
          // and the outbound proxy may be anything (in tests, the phone itself).
          registrar: options.regEvents.registrar,
          sender: this.sender,
          from: `sip:switchboard@${options.domains.gatewayDomain}`,
          onOnline: options.regEvents.onOnline,
          log: options.log.child({ event: "reg" }),
          ...(options.regEvents.expires ? { expires: options.regEvents.expires } : {}),
          ...(options.regEvents.retryMs ? { retryMs: options.regEvents.retryMs } : {}),
          ...(options.regEvents.maxWatched ? { maxWatched: options.regEvents.maxWatched } : {}),
        })
      : undefined;
    this.allow = [
      this.publish ? ALLOW_WITH_PRESENCE : ALLOW,
      ...(this.mwi || this.reg ? ["NOTIFY"] : []),
    ].join(", ");
    this.otherTenants = new Set(options.otherTenants ?? []);
    this.routed = routed !== undefined;
    if (!routed) serveSip(transports, options.log, this); // else the router serves the transports
  }

  static async start(options: SipEndpointOptions): Promise<SipEndpoint> {
    const transports = await SipEndpoint.listen(options);
    const endpoint = new SipEndpoint(
      transports,
      new ServerTransactions(options.timers ?? DEFAULT_TIMERS, options.metrics),
      options,
    );
    // Several instances on one store: the one holding the XMPP component subscribes (its owner
    // starts it).
    if (!options.sharedStore) endpoint.mwi?.start();
    return endpoint;
  }

  /**
   * An endpoint for one tenant on transports a router owns (sip-tenant-router.ts): it serves the
   * requests the router hands it (`receive`) and sends its own requests over the shared transports.
   */
  static attach(transports: SipTransports, options: SipEndpointOptions, shared: SharedSipState): SipEndpoint {
    const endpoint = new SipEndpoint(
      transports,
      new ServerTransactions(options.timers ?? DEFAULT_TIMERS, options.metrics),
      options,
      shared,
    );
    if (!options.sharedStore) endpoint.mwi?.start();
    return endpoint;
  }

  /** The listeners of `options.listen`, with the wire trace when asked (log.wire.sip). */
  static async listen(
    options: Pick<SipEndpointOptions, "listen" | "maxMessageBytes" | "tls" | "advertisedHost" | "wireLog">,
  ): Promise<SipTransports> {
    const limits = {
      ...DEFAULT_LIMITS,
      maxBodyBytes: Math.max(DEFAULT_LIMITS.maxBodyBytes, options.maxMessageBytes * 2),
    };
    const transports = await SipTransports.listen(options.listen, {
      limits,
      ...(options.tls ? { tls: options.tls } : {}),
      ...(options.advertisedHost ? { advertisedHost: options.advertisedHost } : {}),
    });
    const wire = options.wireLog;
    if (wire) {
      const trace = (dir: "in" | "out", text: string, flow: Flow): void =>
        wire.info(
          {
            dir,
            transport: flow.transport,
            remote: `${flow.remote.address}:${flow.remote.port}`,
            text: maskCredentials(text),
          },
          "sip wire",
        );
      transports.on("message", (text, flow) => trace("in", text, flow));
      transports.on("sent", (text, flow) => trace("out", text, flow));
    }
    return transports;
  }

  /** A response to one of this endpoint's client transactions; false when it is none of ours. */
  onResponse(message: SipResponse, text: string): boolean {
    return this.clients.onResponse(
      message.viaBranch ?? "",
      message.method,
      message.statusCode ?? 0,
      message.reasonPhrase ?? "",
      text,
    );
  }

  /** A request for this endpoint (its tenant's, when a router chose it): answered, always. */
  async receive(request: SipRequest, flow: Flow, raw: Buffer): Promise<void> {
    if (SCANNERS.test(request.getHeader("User-Agent") ?? "")) {
      // Dropped without an answer: a scanner learns nothing, not even that something listens.
      this.securityEvent({
        event: "ScannerDropped",
        remote: flow.remote,
        transport: flow.transport,
        reason: `User-Agent ${JSON.stringify((request.getHeader("User-Agent") ?? "").slice(0, 80))}`,
      });
      return;
    }
    const missing = missingHeaders(request);
    if (missing.length > 0) {
      // Stateless 400 (RFC 3261 §8.2.6) where a response can be built at all, within the source's
      // rate (a spoofed UDP source must not get an answer for every datagram).
      if (request.getHeader("Via") && this.overLimit(flow) === null) {
        await flow.send(this.response(request, flow, 400, { reason: `Missing ${missing.join(", ")}` }));
      }
      return;
    }
    if (this.transactions.receive(request, flow) === "absorbed") return;
    // Our own branch in a Via: the request went round and came back (RFC 3261 §16.3 item 4).
    if (request.getHeaders("via").some((via) => via.includes(this.branchPrefix))) {
      await this.transactions.respond(request, 482, this.response(request, flow, 482));
      return;
    }
    const answer = (status: number, extra: Parameters<SipEndpoint["response"]>[3] = {}): Promise<void> =>
      this.transactions.respond(request, status, this.response(request, flow, status, extra));
    if (this._draining) {
      // Shutting down: the proxy tries another instance, or this one once it is back (RFC 3261 §21.5.4).
      await answer(503, { reason: "Shutting down", headers: [["Retry-After", "5"]] });
      return;
    }
    // Counted per new transaction (retransmissions were absorbed above, and answered the same).
    const retryAfter = this.overLimit(flow);
    if (retryAfter !== null) {
      await answer(503, { reason: "Too many requests", headers: [["Retry-After", String(retryAfter)]] });
      return;
    }
    this.active += 1;
    try {
      await this.dispatch(request, flow, raw, answer);
    } finally {
      this.active -= 1;
    }
  }

  private async dispatch(
    request: SipRequest,
    flow: Flow,
    raw: Buffer,
    answer: (status: number, extra?: Parameters<SipEndpoint["response"]>[3]) => Promise<void>,
  ): Promise<void> {
    switch (request.method) {
      case "OPTIONS":
        // Answered to anyone: proxies use it as a keepalive, and it reveals nothing but Allow.
        await answer(200, { headers: [["Accept", ACCEPTED_TYPES]] });
        return;
      case "CANCEL":
        await answer(481); // nothing here is ever pending long enough to cancel
        return;
      case "NOTIFY":
        if (!this.mwi && !this.reg) break;
        await this.authenticated(request, flow, raw, answer);
        return;
      case "MESSAGE":
      case "PUBLISH":
      case "SUBSCRIBE":
        if (request.method !== "MESSAGE" && !this.publish) break;
        await this.authenticated(request, flow, raw, answer);
        return;
    }
    await answer(405);
  }

  /** MESSAGE, PUBLISH and SUBSCRIBE: once the sender is known (trusted peer or digest). */
  private async authenticated(
    request: SipRequest,
    flow: Flow,
    raw: Buffer,
    answer: (status: number, extra?: { reason?: string; headers?: [string, string][] }) => Promise<void>,
  ): Promise<void> {
    let auth;
    try {
      auth = await this.authenticator.authenticate(request, flow);
    } catch {
      await answer(400, { reason: "Bad From address" });
      return;
    }
    if (!auth.ok) {
      await answer(auth.status, { reason: auth.reason, headers: auth.headers });
      return;
    }
    // Tenants are isolated (docs/tenants.md): nobody of another tenant of this process gets in here,
    // whatever the request names.
    if (this.otherTenants.has(auth.sender.host.replace(/\.$/, "").toLowerCase())) {
      this.securityEvent({
        event: "RequestNotAllowed",
        remote: flow.remote,
        transport: flow.transport,
        account: formatSipUri(auth.sender),
        reason: `${request.method} across tenants`,
      });
      await answer(403, { reason: "Sender belongs to another tenant" });
      return;
    }
    try {
      await this.serve(request, flow, raw, auth, answer);
    } catch (err) {
      // The store or a sink failed (e.g. Redis is away): the peer still gets a final answer, so it
      // stops retransmitting and may retry later (503), and the transaction completes.
      const condition = err instanceof SwitchboardError ? err.condition : "internal-server-error";
      this.options.log.warn({ err: String(err), method: request.method }, "sip request not served");
      await answer(sipStatusFor(condition), {
        reason: err instanceof SwitchboardError ? err.message.slice(0, 100) : undefined,
      });
    }
  }

  private async serve(
    request: SipRequest,
    flow: Flow,
    raw: Buffer,
    auth: Extract<Authentication, { ok: true }>,
    answer: (status: number, extra?: { reason?: string; headers?: [string, string][] }) => Promise<void>,
  ): Promise<void> {
    const sender = auth.sender;
    switch (request.method) {
      case "MESSAGE":
        await this.onMessage(request, raw, sender, answer);
        return;
      case "NOTIFY": {
        // Voicemail counts (from the PBX) and registration state (from the registrar) are believed
        // from trusted peers only, never from a user.
        const event = (request.getHeader("Event") ?? "").split(";")[0]?.trim().toLowerCase();
        if (auth.via === "digest") {
          this.securityEvent({
            event: "RequestNotAllowed",
            remote: flow.remote,
            transport: flow.transport,
            account: formatSipUri(sender),
            reason: `${event ?? "NOTIFY"} from a user`,
          });
          await answer(403, {
            reason:
              event === "reg"
                ? "reg is accepted from the registrar only"
                : "message-summary is accepted from the PBX only",
          });
          return;
        }
        const handler = event === "message-summary" ? this.mwi : event === "reg" ? this.reg : undefined;
        if (!handler) {
          const events = [...(this.mwi ? ["message-summary"] : []), ...(this.reg ? ["reg"] : [])];
          await answer(489, { headers: [["Allow-Events", events.join(", ")]] });
          return;
        }
        const result = await handler.handleNotify(request);
        await answer(result.status, { reason: result.reason });
        return;
      }
      case "PUBLISH": {
        const result = await this.publish!.handle(request, auth.via === "digest" ? sender : undefined);
        if (result.status === 403)
          this.securityEvent({
            event: "RequestNotAllowed",
            remote: flow.remote,
            transport: flow.transport,
            account: formatSipUri(sender),
            reason: result.reason ?? "PUBLISH refused",
          });
        await answer(result.status, { reason: result.reason, headers: result.headers });
        return;
      }
      default: {
        const result = await this.notifier!.handle(request, this.tag, sender, flow);
        await answer(result.status, {
          reason: result.reason,
          headers: [...(result.headers ?? []), ["Contact", this.dialogContact(flow)]],
        });
        // The first NOTIFY follows the 200 (RFC 6665 §4.2.1.2).
        result
          .after?.()
          .catch((err: unknown) => this.options.log.warn({ err: String(err) }, "first NOTIFY failed"));
      }
    }
  }

  /**
   * Takes one of the source's tokens (sip.rateLimit); null when within its rate (or not limited),
   * else the seconds to wait, after logging it as a RateLimited security event. Trusted peers are
   * exempt unless configured otherwise; the same trust decision as authentication (a trusted
   * address over TLS without its client certificate is not trusted here either). IPv6 sources are
   * limited per /64, since one host may use any address of its /64.
   */
  private overLimit(flow: Flow): number | null {
    if (!this.limiter) return null;
    if (!this.options.rateLimit?.trustedPeers && this.authenticator.trusts(flow)) return null;
    const taken = this.limiter.take(rateLimitKey(flow.remote.address), Date.now());
    if (taken.ok) return null;
    this.securityEvent({
      event: "RateLimited",
      remote: flow.remote,
      transport: flow.transport,
      reason: `more than ${this.options.rateLimit?.perSecond} requests/s`,
    });
    return taken.retryAfterSeconds;
  }

  /**
   * A request over UDP whose body did not match its Content-Length: 400, statelessly, when the head
   * makes a request with a Via to answer (RFC 3261 §18.3); anything else stays dropped.
   */
  async answerUnframed(head: string, flow: Flow): Promise<void> {
    const message = parseSip(`${head}\r\nContent-Length: 0\r\n\r\n`);
    if (!message || !isRequest(message) || message.method === "ACK" || !message.getHeader("Via")) return;
    if (missingHeaders(message).length > 0) return;
    if (SCANNERS.test(message.getHeader("User-Agent") ?? "")) return; // no answer to a scanner, ever
    if (this.overLimit(flow) !== null) return;
    await flow.send(this.response(message, flow, 400, { reason: "Bad Content-Length" }));
  }

  /** The Contact of a subscription dialog answered over `flow`. */
  private dialogContact(flow: Flow): string {
    const configured = this.options.sharedStore?.dialogContact;
    if (configured) return `<${configured}>`;
    const params = flow.transport === "udp" ? "" : `;transport=${flow.transport}`;
    return `<sip:${this.transports.sentBy(flow.transport)}${params}>`;
  }

  /**
   * Logs a security event (warn, `security` naming it) and counts it. The same event from the
   * same address is logged at most once in 10 s, the next line saying how many were left out;
   * every one is counted.
   */
  private securityEvent(event: SecurityEvent): void {
    this.options.metrics?.securityEvent(event.event);
    const key = `${event.event}|${event.remote.address}`;
    const now = Date.now();
    const last = this.securityLogged.get(key);
    if (last && now - last.at < 10_000) {
      last.suppressed += 1;
      return;
    }
    if (this.securityLogged.size >= 10_000) this.securityLogged.clear();
    this.securityLogged.set(key, { at: now, suppressed: 0 });
    this.options.log.warn(
      {
        security: event.event,
        remote: `${event.remote.address}:${event.remote.port}`,
        transport: event.transport,
        ...(event.account === undefined ? {} : { account: event.account }),
        reason: event.reason,
        ...(last?.suppressed ? { suppressed: last.suppressed } : {}),
      },
      `security: ${event.event}`,
    );
  }

  private response(
    request: SipRequest,
    flow: Flow,
    status: number,
    extra: { reason?: string; headers?: [string, string][] } = {},
  ): string {
    const headers: [string, string][] = [...(extra.headers ?? [])];
    if (status === 405 || request.method === "OPTIONS") headers.push(["Allow", this.allow]);
    return buildResponse(request, status, {
      toTag: this.tag,
      source: flow.transport === "udp" ? flow.remote : undefined,
      headers,
      reason: extra.reason,
    });
  }

  /** The home user a MESSAGE's Request-URI names: by name, or a number the directory knows. */
  private async chatUserFor(target: SipUri): Promise<string | null> {
    const { domains, directory } = this.options;
    const name = homeIdentity({ kind: "sip", uri: target }, domains.homeDomain);
    if (name !== null) return name;
    if (
      target.user !== null &&
      isNumber(target.user) &&
      target.host.replace(/\.$/, "") === domains.homeDomain
    ) {
      return (await directory.findPerson(target.user))?.uid ?? null;
    }
    return null;
  }

  /** RFC 3428: a page-mode message (or composing indication) for a chat user on the home domain. */
  private async onMessage(
    request: SipRequest,
    raw: Buffer,
    sender: SipUri,
    answer: (status: number, extra?: { reason?: string; headers?: [string, string][] }) => Promise<void>,
  ): Promise<void> {
    const { domains, log, toXmpp, maxMessageBytes } = this.options;
    const bytes = bodyBytes(raw, request.getHeader("Content-Length"));
    if (bytes.length > maxMessageBytes) {
      await answer(413, { reason: `Message larger than ${maxMessageBytes} bytes` });
      return;
    }
    const content = readMessageContent(request.getHeader("Content-Type"), bytes);
    if (content.kind === "refused") {
      await answer(content.status, {
        reason: content.reason,
        headers: content.status === 415 ? [["Accept", ACCEPTED_TYPES]] : [],
      });
      return;
    }
    let target: SipUri;
    try {
      target = parseSipUri(request.ruri?.toString() ?? "");
    } catch (err) {
      await answer(sipStatusFor(err instanceof SwitchboardError ? err.condition : "bad-request"), {
        reason: "Bad address",
      });
      return;
    }
    const name = await this.chatUserFor(target);
    if (name === null) {
      await answer(404, { reason: "No such user here" });
      return;
    }
    let to: string;
    try {
      to = formatJid(makeJid({ local: escapeLocal(name), domain: domains.homeDomain }));
    } catch {
      // E.g. a control character in the user part: no JID can carry it.
      await answer(400, { reason: "Bad address: not a possible chat address" });
      return;
    }
    const from = personForSipUri(sender, domains);
    const flow = log.child({ sip: formatSipUri(sender), jid: to, id: request.callId });
    const message: ChatMessage =
      content.kind === "text"
        ? { id: request.callId, from, to, body: content.body }
        : { id: request.callId, from, to, chatState: content.chatState };
    try {
      await toXmpp.deliver(message);
      flow.info({ kind: content.kind }, "message from SIP accepted");
      // Accepted by the bridge (DESIGN.md "Messages"): 200.
      await answer(200);
    } catch (err) {
      const condition = err instanceof SwitchboardError ? err.condition : "internal-server-error";
      flow.warn({ err: String(err) }, "message from SIP refused");
      await answer(sipStatusFor(condition), {
        reason: err instanceof SwitchboardError ? err.message.slice(0, 100) : undefined,
        // Not now, maybe soon (the XMPP server is away, or the store): when to try again.
        headers: condition === "service-unavailable" ? [["Retry-After", "10"]] : [],
      });
    }
  }

  /** The SIP address of the party a person key stands for (numbers through the directory). */
  /**
   * Follows the registration of the phone a person key stands for (RFC 3680 reg event at
   * `sip.regEvents.registrar`), while messages wait for it; false without a registrar.
   */
  async watchRegistration(person: string): Promise<boolean> {
    if (!this.reg) return false;
    return this.reg.watch(person, formatSipUri(await this.targetFor(person)));
  }

  private async targetFor(person: string): Promise<SipUri> {
    const { domains, directory } = this.options;
    if (person.startsWith("sip:")) return parseSipUri(person);
    if (isNumber(person)) {
      const entry = await directory.findPerson(person);
      if (entry)
        return entry.sipUri
          ? parseSipUri(entry.sipUri)
          : makeSipUri({ user: entry.uid, host: domains.homeDomain });
      if (person.startsWith("+")) {
        // ENUM (E2U+sip) before the outbound-proxy fallback (DESIGN.md "Addressing").
        const located = await this.options.enumSip?.(person).catch(() => null);
        if (located) return parseSipUri(located);
        return e164Fallback(person, domains.homeDomain);
      }
      throw new SwitchboardError("item-not-found", `no one has the number ${person}`);
    }
    return makeSipUri({ user: person.slice(0, person.lastIndexOf("@")), host: domains.homeDomain });
  }

  /**
   * A chat user's message (or chat state, as RFC 3994 isComposing) to a SIP party (`message.to`
   * is a person key): a MESSAGE through the outbound proxy, or to the target's server located by
   * DNS. Resolves with how far it got; rejects with a SwitchboardError the XMPP side turns into a
   * stanza error.
   */
  async sendMessage(message: ChatMessage): Promise<DeliveryOutcome> {
    let body: { type: string; text: string };
    const pair = `${message.from}\n${message.to}`;
    if (message.body !== undefined) {
      // The message itself ends any composing indication (RFC 3994 §3.3).
      this.composing.delete(pair);
      body = { type: "text/plain;charset=UTF-8", text: message.body };
    } else {
      const indication = message.chatState ? isComposingFromChatState(message.chatState) : null;
      // An idle is news only to a peer that was told `active`; anything else sends nothing.
      if (!indication || (indication.state === "idle" && !this.composing.delete(pair))) return "accepted";
      if (indication.state === "active") {
        this.composing.delete(pair);
        this.composing.add(pair);
        // Bounded: the oldest pair is forgotten (its idle is then not sent; the refresh expires it).
        if (this.composing.size > 10_000) this.composing.delete(this.composing.values().next().value ?? "");
      }
      body = {
        type: "application/im-iscomposing+xml",
        text: buildIsComposing(
          indication.state,
          indication.state === "active" ? indication.refresh : undefined,
        ),
      };
    }
    const target = await this.targetFor(message.to);
    if (this.otherTenants.has(target.host.replace(/\.$/, "").toLowerCase()))
      throw new SwitchboardError("forbidden", `${formatSipUri(target)} belongs to another tenant`);
    const fromJid = parseJid(message.from);
    const from = makeSipUri({ user: unescapeLocal(fromJid.local ?? ""), host: fromJid.domain });
    const result = await this.sender.send({
      method: "MESSAGE",
      ruri: target,
      from: `<${formatSipUri(from)}>;tag=${randomToken(6)}`,
      to: `<${formatSipUri(target)}>`,
      // The same message (a retry from the queue, a repeat after a crash) keeps its Call-ID, so the
      // far end can tell a repeat (RFC 3261 §8.2.2.2 compares Call-ID and CSeq).
      callId: `${
        message.id && message.body !== undefined
          ? createHash("sha256").update(`${message.from}\n${message.id}`).digest("hex").slice(0, 24)
          : randomToken(10)
      }@${this.options.domains.gatewayDomain}`,
      cseq: 1,
      body,
    });
    // A condition of our own (e.g. the next hop is not in DNS) says more than the 503 it came as.
    const outcome = result.condition ?? outcomeFor(result.status);
    this.options.log.info(
      {
        sip: formatSipUri(target),
        jid: message.from,
        status: result.status,
        transport: result.flow?.transport,
      },
      "message to SIP",
    );
    if (outcome === "delivered" || outcome === "accepted") return outcome;
    throw new SwitchboardError(outcome, `SIP ${result.status} ${result.reason}`);
  }

  /** xmpp.allowedDomains read again (SIGHUP): whose watchers may subscribe from now on. */
  setAllowedDomains(domains: readonly string[]): void {
    this.notifier?.setAllowedDomains(domains);
  }

  /**
   * The first step of a graceful shutdown: new requests get 503 with Retry-After from now on, and
   * this waits (at most `timeoutMs`) for the requests being handled and the requests sent to get
   * their answers. Resolves with what was still open when it stopped waiting.
   */
  /** Whether drain() has begun (the bridge is stopping). */
  get draining(): boolean {
    return this._draining;
  }

  async drain(timeoutMs: number): Promise<{ handling: number; sending: number }> {
    this._draining = true;
    const deadline = Date.now() + timeoutMs;
    while ((this.active > 0 || this.clients.size > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { handling: this.active, sending: this.clients.size };
  }

  async stop(): Promise<void> {
    // Unsubscribe from the PBX and the registrar, but do not let a silent one hold the shutdown up.
    if (this.mwi || this.reg) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([this.mwi?.stop(), this.reg?.stop()]),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000))),
      ]);
      clearTimeout(timer);
    }
    this.notifier?.close();
    this.publish?.close();
    this.clients.close();
    this.transactions.close();
    if (!this.routed) await this.transports.close();
  }
}

/**
 * A SIP message as it may be logged: the digest `response` (proof of the password, open to an
 * offline guess) in Authorization and Proxy-Authorization headers is masked.
 */
export function maskCredentials(text: string): string {
  // The header with its continuation lines (RFC 3261 §7.3.1 folding), CRLF or bare LF.
  return text.replace(/^(?:Proxy-)?Authorization[ \t]*:.*(?:\r?\n[ \t].*)*/gim, (header) =>
    header.replace(/(\bresponse\s*=\s*)("[^"]*"|[^,\s]*)/gi, '$1"[masked]"'),
  );
}

/** Who serves what the transports read: an endpoint alone, or the router of several tenants. */
export interface SipServer {
  /** A response to a client transaction; false when it is none of ours. */
  onResponse(message: SipResponse, text: string): boolean;
  receive(request: SipRequest, flow: Flow, raw: Buffer): Promise<void>;
  /** A datagram whose Content-Length is wrong (answered 400 when possible, RFC 3261 §18.3). */
  answerUnframed(head: string, flow: Flow): Promise<void>;
}

/**
 * Reads the transports for `server`: each message parsed (dropped and logged when it does not
 * parse), responses to its client transactions, requests to `receive`; failures logged, never
 * thrown at the transports.
 */
export function serveSip(transports: SipTransports, log: Logger, server: SipServer): void {
  transports.on("message", (text, flow, raw) => {
    const message = parseSip(text);
    const remote = `${flow.remote.address}:${flow.remote.port}`;
    if (!message) {
      log.warn({ remote }, "sip: unparsable message dropped");
      return;
    }
    if (!isRequest(message)) {
      if (!server.onResponse(message, text))
        log.debug(
          { remote, status: message.statusCode },
          "sip: response without a client transaction dropped",
        );
      return;
    }
    server.receive(message, flow, raw).catch((err: unknown) => {
      // A peer that went away before its answer is ordinary; anything else is a bug here.
      if (peerGone(err, flow)) log.info({ err: String(err), remote: flow.remote }, "sip: peer gone");
      else log.error({ err: String(err), remote: flow.remote }, "sip request failed");
    });
  });
  transports.on("problem", (reason, remote) => log.warn({ remote }, `sip: ${reason}`));
  transports.on("unframed", (head, flow) => {
    server
      .answerUnframed(head, flow)
      .catch((err: unknown) =>
        log.info({ err: String(err), remote: flow.remote }, "sip: could not answer a bad datagram"),
      );
  });
}

/** A send that failed because the peer's connection is gone (reset, closed) rather than a fault here. */
export function peerGone(err: unknown, flow: Flow): boolean {
  if (!flow.reliable) return false;
  const code = (err as NodeJS.ErrnoException).code ?? "";
  return (
    ["EPIPE", "ECONNRESET", "ERR_STREAM_DESTROYED", "ERR_STREAM_WRITE_AFTER_END"].includes(code) ||
    err instanceof FlowClosedError
  );
}

/** The body bytes of a framed message: after the blank line, as many as Content-Length says. */
function bodyBytes(raw: Buffer, contentLength: string | undefined): Buffer {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return Buffer.alloc(0);
  const length = Number(contentLength?.trim());
  return raw.subarray(end + 4, Number.isInteger(length) ? end + 4 + length : undefined);
}
