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
import type { MessageSink } from "../../src/ports/message-port.js";
import { DEFAULT_LIMITS } from "./framing.js";
import { buildResponse, isRequest, missingHeaders, parseSip, type SipRequest } from "./sip-message.js";
import { sipStatusFor } from "./sip-status.js";
import { DEFAULT_TIMERS, ServerTransactions, type TimerSettings } from "./server-transactions.js";
import { SipTransports, type Flow } from "./transports.js";

export const ALLOW = "MESSAGE, OPTIONS";
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
  timers?: TimerSettings;
  log: Logger;
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

  private constructor(
    readonly transports: SipTransports,
    readonly transactions: ServerTransactions,
    private readonly options: SipEndpointOptions,
  ) {
    this.trusted = blockList(options.trustedPeers);
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
      log.debug({ remote, status: message.statusCode }, "sip: response without a client transaction dropped");
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
      case "CANCEL":
        await answer(481); // nothing here is ever pending long enough to cancel
        return;
      default:
        await answer(405);
    }
  }

  private response(
    request: SipRequest,
    flow: Flow,
    status: number,
    extra: { reason?: string; headers?: [string, string][] } = {},
  ): string {
    const headers: [string, string][] = [...(extra.headers ?? [])];
    if (status === 405 || request.method === "OPTIONS") headers.push(["Allow", ALLOW]);
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

  async stop(): Promise<void> {
    this.transactions.close();
    await this.transports.close();
  }
}
