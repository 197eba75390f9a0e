// The presence notifier (RFC 6665, RFC 3856): a phone SUBSCRIBEs to `sip:alice@example.org` with
// `Event: presence`; the subscription is a dialog, answered 200 and followed at once by a NOTIFY with
// the current PIDF, then one on every change, on refresh, and a final one (`Subscription-State:
// terminated`) on unsubscribe or expiry. Watchers from other domains are refused unless allowed
// (DESIGN.md "Presence privacy"). Subscriptions live in this process for now.
import { randomBytes } from "node:crypto";
import type { AggregatePresence, PresenceState } from "../../src/domain/presence.js";
import { homeIdentity, type GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { formatSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import { mayWatch } from "../../src/presence/policy.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import type { ClientTransactions } from "./client-transactions.js";
import { buildPidf, escapeXml } from "./pidf.js";
import type { SipRequest } from "./sip-message.js";

/**
 * RFC 4235 dialog-info for a BLF key: busy (on the phone, do not disturb) lights it as a confirmed
 * dialog; anything else is no call (terminated). Full state each time, versions counting up.
 */
export function buildDialogInfo(entity: string, state: PresenceState, version: number): string {
  const dialog = state === "on-the-phone" || state === "dnd" ? "confirmed" : "terminated";
  const escaped = escapeXml(entity);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${version}" state="full" entity="${escaped}">`,
    `<dialog id="switchboard" direction="recipient"><state>${dialog}</state></dialog>`,
    `</dialog-info>`,
  ].join("");
}

export interface NotifierOptions {
  domains: GatewayDomains;
  allowedDomains: readonly string[];
  presence: PresenceService;
  clients: ClientTransactions;
  /** Sends from our UDP socket; null when there is none. */
  sender: () => { sentBy: string; send(host: string, port: number, text: string): Promise<void> } | null;
  branchPrefix: string;
  log: Logger;
  minExpires?: number;
  maxExpires?: number;
}

interface Subscription {
  /** `presence` (PIDF) or `dialog` (RFC 4235, what desk phones' BLF keys subscribe to). */
  event: "presence" | "dialog";
  person: string;
  presentity: string;
  callId: string;
  localTag: string;
  /** The watcher's From, with its tag: our NOTIFY's To. */
  remote: string;
  /** The SUBSCRIBE's To without tag: our NOTIFY's From (we add localTag). */
  local: string;
  target: SipUri;
  routes: string[];
  cseq: number;
  expiresAt: number;
  timer?: NodeJS.Timeout;
}

export interface SubscribeAnswer {
  status: number;
  reason?: string;
  headers?: [string, string][];
  /** Set when the 200 must be followed by a NOTIFY (sent after the response). */
  after?: () => Promise<void>;
}

export class PresenceNotifier {
  private readonly subscriptions = new Map<string, Subscription>();

  constructor(private readonly options: NotifierOptions) {
    options.presence.on("change", this.onChange);
  }

  get size(): number {
    return this.subscriptions.size;
  }

  private readonly onChange = (person: string, aggregate: AggregatePresence): void => {
    for (const subscription of this.subscriptions.values()) {
      if (subscription.person === person) this.notifyLater(subscription, aggregate);
    }
  };

  private notifyLater(subscription: Subscription, aggregate: AggregatePresence, terminated?: string): void {
    this.notify(subscription, aggregate, terminated).catch((err: unknown) =>
      this.options.log.warn({ err: String(err), presentity: subscription.presentity }, "NOTIFY failed"),
    );
  }

  handle(request: SipRequest, localTag: string): SubscribeAnswer {
    const { domains, log } = this.options;
    const event = (request.getHeader("Event") ?? "").split(";")[0]?.trim().toLowerCase();
    if (event !== "presence" && event !== "dialog")
      return { status: 489, headers: [["Allow-Events", "presence, dialog"]] };
    const expiresHeader = request.getHeader("Expires");
    const max = this.options.maxExpires ?? 3600;
    const min = this.options.minExpires ?? 60;
    const requested = expiresHeader === undefined ? max : Number(expiresHeader.trim());
    if (!Number.isInteger(requested) || requested < 0) return { status: 400, reason: "Bad Expires" };
    if (requested > 0 && requested < min) return { status: 423, headers: [["Min-Expires", String(min)]] };
    const expires = Math.min(requested, max);

    const key = `${request.callId}|${request.fromTag}`;
    const existing = request.toTag ? this.subscriptions.get(key) : undefined;
    if (request.toTag && (!existing || existing.localTag !== request.toTag)) return { status: 481 };

    let subscription = existing;
    if (!subscription) {
      let presentity: SipUri;
      let watcher: SipUri;
      try {
        presentity = parseSipUri(request.ruri?.toString() ?? "");
        watcher = parseSipUri(request.from.uri.toString());
      } catch {
        return { status: 400, reason: "Bad address" };
      }
      const name = homeIdentity({ kind: "sip", uri: presentity }, domains.homeDomain);
      if (name === null) return { status: 404, reason: "Not a user of this domain" };
      if (
        !mayWatch(watcher.host, {
          homeDomain: domains.homeDomain,
          allowedDomains: this.options.allowedDomains,
        })
      ) {
        log.info({ watcher: formatSipUri(watcher) }, "presence subscription refused: domain not allowed");
        return { status: 403, reason: "Watchers from your domain are not allowed" };
      }
      const contact = request.parseHeader("contact") as { uri?: { toString(): string } } | undefined;
      let target: SipUri;
      try {
        target = parseSipUri(contact?.uri?.toString() ?? "");
      } catch {
        return { status: 400, reason: "Missing or bad Contact" };
      }
      subscription = {
        event,
        person: `${name}@${domains.homeDomain}`,
        presentity: `sip:${name}@${domains.homeDomain}`,
        callId: request.callId,
        localTag,
        remote: request.getHeader("From") ?? "",
        local: request.getHeader("To") ?? "",
        target,
        // As UAS, the route set is the Record-Route list in order (RFC 3261 §12.1.1).
        routes: request.getHeaders("record-route").flatMap((h) => h.split(/,(?=\s*<)/).map((r) => r.trim())),
        cseq: 0,
        expiresAt: 0,
      };
    }
    const current = subscription;
    clearTimeout(current.timer);
    if (expires === 0) {
      this.subscriptions.delete(key);
      return {
        status: 200,
        headers: [["Expires", "0"]],
        after: async () =>
          this.notify(current, await this.options.presence.current(current.person), "timeout"),
      };
    }
    current.expiresAt = Date.now() + expires * 1000;
    current.timer = setTimeout(() => {
      this.subscriptions.delete(key);
      void this.options.presence.current(current.person).then((a) => this.notifyLater(current, a, "timeout"));
    }, expires * 1000);
    current.timer.unref();
    this.subscriptions.set(key, current);
    return {
      status: 200,
      headers: [["Expires", String(expires)]],
      after: async () => this.notify(current, await this.options.presence.current(current.person)),
    };
  }

  /** One in-dialog NOTIFY with the current PIDF (RFC 3856 §6.7, RFC 6665 §4.2.2). */
  private async notify(
    subscription: Subscription,
    aggregate: AggregatePresence,
    terminated?: string,
  ): Promise<void> {
    const sender = this.options.sender();
    if (!sender) return;
    const body =
      subscription.event === "dialog"
        ? buildDialogInfo(subscription.presentity, aggregate.state, subscription.cseq + 1)
        : buildPidf(subscription.presentity, aggregate.state, aggregate.note);
    const branch = `${this.options.branchPrefix}${randomBytes(8).toString("hex")}`;
    const remaining = Math.max(0, Math.round((subscription.expiresAt - Date.now()) / 1000));
    const state = terminated ? `terminated;reason=${terminated}` : `active;expires=${remaining}`;
    const firstRoute = subscription.routes[0];
    const hop = firstRoute ? parseSipUri(firstRoute.replace(/^<|>.*$/g, "")) : subscription.target;
    const lines = [
      `NOTIFY ${formatSipUri(subscription.target)} SIP/2.0`,
      `Via: SIP/2.0/UDP ${sender.sentBy};branch=${branch};rport`,
      "Max-Forwards: 70",
      `From: ${subscription.local};tag=${subscription.localTag}`,
      `To: ${subscription.remote}`,
      `Call-ID: ${subscription.callId}`,
      `CSeq: ${++subscription.cseq} NOTIFY`,
      ...subscription.routes.map((route) => `Route: ${route}`),
      `Contact: <sip:${sender.sentBy}>`,
      `Event: ${subscription.event}`,
      `Subscription-State: ${state}`,
      `Content-Type: ${subscription.event === "dialog" ? "application/dialog-info+xml" : "application/pidf+xml"}`,
      `Content-Length: ${Buffer.byteLength(body)}`,
      "",
      body,
    ];
    const text = lines.join("\r\n");
    const host = hop.host.replace(/^\[|\]$/g, "");
    const result = await this.options.clients.start(
      branch,
      "NOTIFY",
      text,
      () => sender.send(host, hop.port ?? 5060, text),
      false,
    );
    if (result.status === 481 || result.status >= 400) {
      // The watcher no longer has the subscription (RFC 6665 §4.1.3): drop it.
      for (const [key, s] of this.subscriptions) if (s === subscription) this.subscriptions.delete(key);
    }
  }

  close(): void {
    this.options.presence.off("change", this.onChange);
    for (const subscription of this.subscriptions.values()) clearTimeout(subscription.timer);
    this.subscriptions.clear();
  }
}
