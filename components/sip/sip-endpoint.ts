// The SIP endpoint: transports, server transactions and the requests the bridge serves today —
// MESSAGE in (RFC 3428, to the chat user on the XMPP side) and OPTIONS (proxies' keepalive).
// INVITE and every other method get a final answer with Allow (405), never silence.
// Who may send: peers in `sip.trustedPeers` (the proxy, the PBX); digest authentication for
// everyone else is not built yet, so they get 403.
import { BlockList, isIPv6 } from "node:net";
import { randomBytes } from "node:crypto";
import { SwitchboardError } from "../../src/domain/errors.js";
import { homeIdentity, isNumber, type GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { escapeLocal } from "../../src/domain/jid-escape.js";
import { formatJid, makeJid } from "../../src/domain/jid.js";
import { formatSipUri, makeSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Directory } from "../../src/ports/directory.js";
import type { Logger } from "../../src/ports/logger.js";
import type { ChatMessage, DeliveryOutcome, MessageSink } from "../../src/ports/message-port.js";
import type { Condition } from "../../src/domain/errors.js";
import { e164Fallback } from "../../src/domain/gateway-mapping.js";
import { parseJid } from "../../src/domain/jid.js";
import { unescapeLocal } from "../../src/domain/jid-escape.js";
import { ClientTransactions } from "./client-transactions.js";
import { PublishHandler } from "./publish-handler.js";
import { PresenceNotifier } from "./notifier.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { DEFAULT_LIMITS } from "./framing.js";
import { buildResponse, isRequest, missingHeaders, parseSip, type SipRequest } from "./sip-message.js";
import { sipStatusFor } from "./sip-status.js";
import { DEFAULT_TIMERS, ServerTransactions, type TimerSettings } from "./server-transactions.js";
import { SipTransports, type Flow } from "./transports.js";

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
  maxMessageBytes: number;
  /** The presence model: with it, PUBLISH (RFC 3903) and presence SUBSCRIBE (RFC 3856) are served. */
  presence?: PresenceService;
  /** Domains besides the home domain whose users may watch presence. */
  allowedDomains?: readonly string[];
  /** `sip.outboundProxy`: where the bridge's own requests go (loose routing, RFC 3261 §16.12). */
  outboundProxy?: string;
  timers?: TimerSettings;
  log: Logger;
}

/** RFC 3261 §18.1.1: a request over ~1300 bytes should not go over UDP. */
export const UDP_MESSAGE_LIMIT = 1300;

/** The outcome of our MESSAGE as a delivery result or a condition (DESIGN.md "Messages"). */
export function outcomeFor(status: number): DeliveryOutcome | Condition {
  if (status === 200) return "delivered";
  if (status >= 200 && status < 300) return "accepted";
  if (status === 404 || status === 604 || status === 410) return "item-not-found";
  if (status === 408) return "remote-server-timeout";
  if (status === 480 || status === 486 || status === 600 || status === 603) return "recipient-unavailable";
  if (status === 401 || status === 407 || status === 403) return "forbidden";
  if (status === 413 || status === 513) return "policy-violation";
  if (status === 415 || status === 488 || status === 606) return "not-acceptable";
  if (status === 482 || status === 483) return "loop-detected";
  return "service-unavailable";
}

function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = "", prefix] = cidr.split("/");
    const family = isIPv6(address) ? "ipv6" : "ipv4";
    list.addSubnet(address, Number(prefix ?? (family === "ipv6" ? 128 : 32)), family);
  }
  return list;
}

/** A SIP party as a person key (see src/presence/person.ts): name@home, the number, or its SIP URI. */
export function personForSipUri(uri: SipUri, domains: GatewayDomains): string {
  const name = homeIdentity({ kind: "sip", uri }, domains.homeDomain);
  if (name !== null) return `${name}@${domains.homeDomain}`;
  if (uri.user !== null && isNumber(uri.user)) return uri.user;
  return formatSipUri(makeSipUri({ user: uri.user, host: uri.host, port: uri.port }));
}

export class SipEndpoint {
  private readonly trusted: BlockList;
  private readonly tag = randomBytes(6).toString("hex");
  /** Every branch we generate starts with this: seeing it in a request's Via means a loop. */
  private readonly branchPrefix = `z9hG4bK-sb${randomBytes(4).toString("hex")}-`;
  readonly clients: ClientTransactions;
  private readonly publish: PublishHandler | undefined;
  readonly notifier: PresenceNotifier | undefined;
  private readonly allow: string;

  private constructor(
    readonly transports: SipTransports,
    readonly transactions: ServerTransactions,
    private readonly options: SipEndpointOptions,
  ) {
    this.trusted = blockList(options.trustedPeers);
    this.clients = new ClientTransactions(options.timers ?? DEFAULT_TIMERS);
    this.publish = options.presence
      ? new PublishHandler(options.presence, options.domains, options.log.child({ event: "presence" }))
      : undefined;
    this.notifier = options.presence
      ? new PresenceNotifier({
          domains: options.domains,
          allowedDomains: options.allowedDomains ?? [],
          presence: options.presence,
          clients: this.clients,
          sender: () => this.transports.udpSender(),
          branchPrefix: this.branchPrefix,
          log: options.log.child({ event: "presence" }),
        })
      : undefined;
    this.allow = this.publish ? ALLOW_WITH_PRESENCE : ALLOW;
    transports.on("message", (text, flow) => {
      this.onText(text, flow).catch((err: unknown) =>
        options.log.error({ err: String(err), remote: flow.remote }, "sip request failed"),
      );
    });
    transports.on("problem", (reason, remote) => options.log.warn({ remote }, `sip: ${reason}`));
  }

  static async start(options: SipEndpointOptions): Promise<SipEndpoint> {
    const limits = {
      ...DEFAULT_LIMITS,
      maxBodyBytes: Math.max(DEFAULT_LIMITS.maxBodyBytes, options.maxMessageBytes * 2),
    };
    const transports = await SipTransports.listen(options.listen, limits);
    return new SipEndpoint(transports, new ServerTransactions(options.timers ?? DEFAULT_TIMERS), options);
  }

  private async onText(text: string, flow: Flow): Promise<void> {
    const { log } = this.options;
    const message = parseSip(text);
    const remote = `${flow.remote.address}:${flow.remote.port}`;
    if (!message) {
      log.warn({ remote }, "sip: unparsable message dropped");
      return;
    }
    if (!isRequest(message)) {
      const known = this.clients.onResponse(
        message.viaBranch,
        message.method,
        message.statusCode ?? 0,
        message.reasonPhrase ?? "",
        text,
      );
      if (!known)
        log.debug(
          { remote, status: message.statusCode },
          "sip: response without a client transaction dropped",
        );
      return;
    }
    const request = message;
    if (SCANNERS.test(request.getHeader("User-Agent") ?? "")) {
      log.info({ remote, userAgent: request.getHeader("User-Agent") }, "sip: scanner dropped");
      return;
    }
    const missing = missingHeaders(request);
    if (missing.length > 0) {
      // Stateless 400 (RFC 3261 §8.2.6) where a response can be built at all.
      if (request.getHeader("Via")) {
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

    const family = isIPv6(flow.remote.address) ? "ipv6" : "ipv4";
    if (!this.trusted.check(flow.remote.address, family)) {
      await answer(403, { reason: "Not a trusted peer (digest authentication is not built yet)" });
      return;
    }
    switch (request.method) {
      case "OPTIONS":
        await answer(200, { headers: [["Accept", "text/plain"]] });
        return;
      case "MESSAGE":
        await this.onMessage(request, answer);
        return;
      case "PUBLISH": {
        if (!this.publish) break;
        const result = await this.publish.handle(request);
        await answer(result.status, { reason: result.reason, headers: result.headers });
        return;
      }
      case "SUBSCRIBE": {
        if (!this.notifier) break;
        const result = this.notifier.handle(request, this.tag);
        const contact = this.transports.udpSender()?.sentBy;
        const headers: [string, string][] = [
          ...(result.headers ?? []),
          ...(contact ? [["Contact", `<sip:${contact}>`] as [string, string]] : []),
        ];
        await answer(result.status, { reason: result.reason, headers });
        // The first NOTIFY follows the 200 (RFC 6665 §4.2.1.2).
        result
          .after?.()
          .catch((err: unknown) => this.options.log.warn({ err: String(err) }, "first NOTIFY failed"));
        return;
      }
      case "CANCEL":
        await answer(481); // nothing here is ever pending long enough to cancel
        return;
    }
    await answer(405);
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

  /** RFC 3428: a page-mode message for a chat user on the home domain. */
  private async onMessage(
    request: SipRequest,
    answer: (status: number, extra?: { reason?: string; headers?: [string, string][] }) => Promise<void>,
  ): Promise<void> {
    const { domains, directory, log, toXmpp, maxMessageBytes } = this.options;
    const contentType = (request.getHeader("Content-Type") ?? "text/plain").toLowerCase();
    const [mediaType = "", ...params] = contentType.split(";").map((p) => p.trim());
    const charset = params
      .find((p) => p.startsWith("charset="))
      ?.slice(8)
      .replace(/"/g, "");
    if (mediaType !== "text/plain" || (charset && !/^(utf-8|us-ascii)$/.test(charset))) {
      await answer(415, { headers: [["Accept", "text/plain;charset=UTF-8"]] });
      return;
    }
    const body = request.body ?? "";
    if (Buffer.byteLength(body) > maxMessageBytes) {
      await answer(413, { reason: `Message larger than ${maxMessageBytes} bytes` });
      return;
    }
    let target: SipUri;
    let sender: SipUri;
    try {
      target = parseSipUri(request.ruri?.toString() ?? "");
      sender = parseSipUri(request.from.uri.toString());
    } catch (err) {
      await answer(sipStatusFor(err instanceof SwitchboardError ? err.condition : "bad-request"), {
        reason: "Bad address",
      });
      return;
    }
    // The chat account the request is for: a home user by name, or a number the directory knows.
    let name = homeIdentity({ kind: "sip", uri: target }, domains.homeDomain);
    if (
      name === null &&
      target.user !== null &&
      isNumber(target.user) &&
      target.host.replace(/\.$/, "") === domains.homeDomain
    ) {
      name = (await directory.findPerson(target.user))?.uid ?? null;
    }
    if (name === null) {
      await answer(404, { reason: "No such user here" });
      return;
    }
    const to = formatJid(makeJid({ local: escapeLocal(name), domain: domains.homeDomain }));
    const from = personForSipUri(sender, domains);
    const flow = log.child({ sip: formatSipUri(sender), jid: to, id: request.callId });
    try {
      await toXmpp.deliver({ id: request.callId, from, to, body });
      flow.info({}, "message from SIP accepted");
      // Accepted by the bridge (DESIGN.md "Messages"): 200.
      await answer(200);
    } catch (err) {
      const condition = err instanceof SwitchboardError ? err.condition : "internal-server-error";
      flow.warn({ err: String(err) }, "message from SIP refused");
      await answer(sipStatusFor(condition), {
        reason: err instanceof SwitchboardError ? err.message.slice(0, 100) : undefined,
      });
    }
  }

  /** The SIP address of the party a person key stands for (numbers through the directory). */
  private async targetFor(person: string): Promise<SipUri> {
    const { domains, directory } = this.options;
    if (person.startsWith("sip:")) return parseSipUri(person);
    if (isNumber(person)) {
      const entry = await directory.findPerson(person);
      if (entry) return makeSipUri({ user: entry.uid, host: domains.homeDomain });
      if (person.startsWith("+")) return e164Fallback(person, domains.homeDomain);
      throw new SwitchboardError("item-not-found", `no one has the number ${person}`);
    }
    return makeSipUri({ user: person.slice(0, person.lastIndexOf("@")), host: domains.homeDomain });
  }

  /**
   * A chat user's message to a SIP party (`message.to` is a person key): a MESSAGE through the
   * outbound proxy, or straight to the target when its host is an address. Resolves with how far
   * it got; rejects with a SwitchboardError the XMPP side turns into a stanza error.
   */
  async sendMessage(message: ChatMessage): Promise<DeliveryOutcome> {
    // A chat state alone has no SIP form yet (RFC 3994 isComposing is not built): nothing to send.
    if (message.body === undefined) return "accepted";
    const sender = this.transports.udpSender();
    if (!sender)
      throw new SwitchboardError("service-unavailable", "no UDP listener in sip.listen to send from");
    const target = await this.targetFor(message.to);
    const proxy = this.options.outboundProxy ? parseSipUri(this.options.outboundProxy) : undefined;
    const hop = proxy ?? target;
    if (!/^[0-9.]+$|^\[/.test(hop.host)) {
      throw new SwitchboardError(
        "service-unavailable",
        `no sip.outboundProxy, and locating ${hop.host} by DNS (RFC 3263) is not built yet`,
      );
    }
    if ((hop.params.get("transport") ?? "udp").toLowerCase() !== "udp") {
      throw new SwitchboardError("feature-not-implemented", "sending over TCP is not built yet");
    }
    const fromJid = parseJid(message.from);
    const from = makeSipUri({ user: unescapeLocal(fromJid.local ?? ""), host: fromJid.domain });
    const branch = `${this.branchPrefix}${randomBytes(8).toString("hex")}`;
    const callId = `${randomBytes(10).toString("hex")}@${this.options.domains.gatewayDomain}`;
    const body = message.body;
    const lines = [
      `MESSAGE ${formatSipUri(target)} SIP/2.0`,
      `Via: SIP/2.0/UDP ${sender.sentBy};branch=${branch};rport`,
      "Max-Forwards: 70",
      `From: <${formatSipUri(from)}>;tag=${randomBytes(6).toString("hex")}`,
      `To: <${formatSipUri(target)}>`,
      `Call-ID: ${callId}`,
      "CSeq: 1 MESSAGE",
      ...(proxy && proxy.params.has("lr") ? [`Route: <${formatSipUri(proxy)}>`] : []),
      "Content-Type: text/plain;charset=UTF-8",
      `Content-Length: ${Buffer.byteLength(body)}`,
      "",
      body,
    ];
    const text = lines.join("\r\n");
    if (Buffer.byteLength(text) > UDP_MESSAGE_LIMIT) {
      throw new SwitchboardError(
        "policy-violation",
        `message of ${Buffer.byteLength(text)} bytes is too large for UDP (TCP is not built yet)`,
      );
    }
    const port = hop.port ?? 5060;
    const host = hop.host.replace(/^\[|\]$/g, "");
    const result = await this.clients.start(
      branch,
      "MESSAGE",
      text,
      () => sender.send(host, port, text),
      false,
    );
    const outcome = outcomeFor(result.status);
    this.options.log.info(
      { sip: formatSipUri(target), jid: message.from, status: result.status },
      "message to SIP",
    );
    if (outcome === "delivered" || outcome === "accepted") return outcome;
    throw new SwitchboardError(outcome, `SIP ${result.status} ${result.reason}`);
  }

  async stop(): Promise<void> {
    this.notifier?.close();
    this.publish?.close();
    this.clients.close();
    this.transactions.close();
    await this.transports.close();
  }
}
