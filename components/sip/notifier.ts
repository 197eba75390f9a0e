// The presence notifier (RFC 6665, RFC 3856): a phone SUBSCRIBEs to `sip:alice@example.org` with
// `Event: presence`; the subscription is a dialog, answered 200 and followed at once by a NOTIFY with
// the current PIDF, then one on every change, on refresh, and a final one (`Subscription-State:
// terminated`) on unsubscribe or expiry. Watchers from other domains are refused unless allowed
// (DESIGN.md "Presence privacy"). Subscriptions are kept in the store, so that a restarted
// bridge goes on notifying (restore()).
//
// Several instances on one store (`shared`): any instance takes a SUBSCRIBE, new or in-dialog (it
// reads the dialog from the store), answers it and sends the NOTIFY that follows; the NOTIFYs on
// presence changes and at expiry are sent by one instance, the leader (the one holding the XMPP
// component: lead()/follow()), which keeps every subscription in memory, kept current by the
// store's announcements. Every NOTIFY takes its CSeq from the store, so CSeqs go up whoever sends.
import { RINGING_NOTE, type AggregatePresence, type PresenceState } from "../../src/domain/presence.js";
import { homeIdentity, type GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { formatSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import { mayWatch } from "../../src/presence/policy.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import type { WatcherSubscription } from "../../src/ports/presence-store.js";
import type { RequestSender } from "./request-sender.js";
import type { Flow } from "./transports.js";
import { buildPidf, escapeXml } from "./pidf.js";
import type { SipRequest } from "./sip-message.js";

/**
 * RFC 4235 dialog-info for a BLF key: a phone ringing is an `early` dialog (BLF keys blink), busy
 * (on the phone, do not disturb) a `confirmed` one; anything else is no call (terminated). Full
 * state each time, versions counting up.
 */
export function buildDialogInfo(
  entity: string,
  state: PresenceState,
  version: number,
  note: string | null = null,
): string {
  const ringing = state === "on-the-phone" && note === RINGING_NOTE;
  const dialog = ringing ? "early" : state === "on-the-phone" || state === "dnd" ? "confirmed" : "terminated";
  const escaped = escapeXml(entity);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${version}" state="full" entity="${escaped}">`,
    `<dialog id="switchboard" direction="recipient"><state>${dialog}</state></dialog>`,
    `</dialog-info>`,
  ].join("");
}

/** Persons whose presence restore() reads at once. */
const RESTORE_BATCH = 500;

export interface NotifierOptions {
  domains: GatewayDomains;
  allowedDomains: readonly string[];
  presence: PresenceService;
  sender: RequestSender;
  log: Logger;
  minExpires?: number;
  maxExpires?: number;
  /** Several instances share the store: notify on changes only while leading (see the top). */
  shared?: boolean;
}

interface Subscription extends WatcherSubscription {
  /** The connection the SUBSCRIBE came over, for NOTIFYs while it is open (RFC 5626 §4.5, RFC 7118). */
  flow?: Flow;
  timer?: NodeJS.Timeout;
}

export interface SubscribeAnswer {
  status: number;
  reason?: string;
  headers?: [string, string][];
  /** Set when the 200 must be followed by a NOTIFY (sent after the response). */
  after?: () => Promise<void>;
}

function record(subscription: Subscription): WatcherSubscription {
  const { flow: _flow, timer: _timer, ...rest } = subscription;
  return rest;
}

export class PresenceNotifier {
  private readonly subscriptions = new Map<string, Subscription>();

  private allowedDomains: readonly string[];
  /** Whether this instance notifies on changes and expiries (always, unless shared). */
  private leading: boolean;
  private readonly unwatch: () => void;
  private closed = false;

  constructor(private readonly options: NotifierOptions) {
    this.allowedDomains = options.allowedDomains;
    this.leading = !options.shared;
    options.presence.on("change", this.onChange);
    this.unwatch = options.shared ? options.presence.store.watchWatchers(this.onStored) : () => undefined;
  }

  /** Shared: this instance notifies from now on; takes up every stored subscription (restore()). */
  lead(): Promise<number> {
    this.leading = true;
    return this.restore();
  }

  /** Shared: another instance notifies from now on; the subscriptions stay in the store. */
  follow(): void {
    this.leading = false;
    for (const subscription of this.subscriptions.values()) clearTimeout(subscription.timer);
    this.subscriptions.clear();
  }

  /** A subscription stored or removed by any instance (this one too): the leader's copy follows. */
  private readonly onStored = (id: string, stored: WatcherSubscription | null): void => {
    if (!this.leading) return;
    const known = this.subscriptions.get(id);
    if (stored === null) {
      if (known) {
        clearTimeout(known.timer);
        this.subscriptions.delete(id);
      }
      return;
    }
    const subscription: Subscription = known
      ? Object.assign(known, stored, { cseq: known.cseq })
      : { ...stored };
    this.subscriptions.set(id, subscription);
    this.arm(subscription);
  };

  /** xmpp.allowedDomains read again (SIGHUP): applies to subscriptions asked from now on. */
  setAllowedDomains(domains: readonly string[]): void {
    this.allowedDomains = domains;
  }

  get size(): number {
    return this.subscriptions.size;
  }

  /**
   * Takes up the subscriptions kept in the store (after a restart): each one still in force gets
   * its expiry timer and a NOTIFY with the current state, so a watcher sees any change it missed.
   */
  async restore(): Promise<number> {
    const { store } = this.options.presence;
    const now = Date.now();
    const live: Subscription[] = [];
    const stored = await store.watcherSubscriptions();
    // Kept here but gone from the store (an announcement missed while the channel was down).
    const ids = new Set(stored.map((s) => s.id));
    for (const [id, known] of this.subscriptions)
      if (!ids.has(id)) {
        clearTimeout(known.timer);
        this.subscriptions.delete(id);
      }
    for (const found of stored) {
      if (found.expiresAt <= now) {
        await store
          .removeWatcherSubscription(found.id)
          .catch((err: unknown) => this.options.log.warn({ err: String(err) }, "subscription not removed"));
        continue;
      }
      const known = this.subscriptions.get(found.id);
      const subscription: Subscription = known
        ? Object.assign(known, found, { cseq: known.cseq })
        : { ...found };
      this.subscriptions.set(subscription.id, subscription);
      this.arm(subscription);
      live.push(subscription);
    }
    // The state now, read once per person, a bounded number at a time.
    const byPerson = new Map<string, Subscription[]>();
    for (const subscription of live) {
      const list = byPerson.get(subscription.person);
      if (list) list.push(subscription);
      else byPerson.set(subscription.person, [subscription]);
    }
    const persons = [...byPerson.keys()];
    for (let i = 0; i < persons.length; i += RESTORE_BATCH)
      await Promise.all(
        persons.slice(i, i + RESTORE_BATCH).map(async (person) => {
          try {
            const aggregate = await this.options.presence.current(person);
            for (const subscription of byPerson.get(person) ?? []) this.notifyLater(subscription, aggregate);
          } catch (err) {
            this.options.log.warn({ err: String(err), person }, "presence not read for the watchers' NOTIFY");
          }
        }),
      );
    return live.length;
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

  private save(subscription: Subscription): void {
    this.options.presence.store
      .putWatcherSubscription(record(subscription))
      .catch((err: unknown) =>
        this.options.log.warn(
          { err: String(err), presentity: subscription.presentity },
          "subscription not stored",
        ),
      );
  }

  /**
   * Ends a subscription here and in the store. `final`: a terminated NOTIFY follows, which takes
   * the last CSeq (so the store keeps the counter for it).
   */
  private forget(subscription: Subscription, final = false): void {
    clearTimeout(subscription.timer);
    // Stopping: what fails now (NOTIFYs cut short) does not end subscriptions another run takes up.
    if (this.closed) return;
    const known = this.subscriptions.get(subscription.id);
    if (known && known !== subscription) return; // replaced by a new one meanwhile
    this.subscriptions.delete(subscription.id);
    this.options.presence.store
      .removeWatcherSubscription(subscription.id, { keepCseq: final })
      .catch((err: unknown) => this.options.log.warn({ err: String(err) }, "subscription not removed"));
  }

  /** The expiry timer: at expiresAt the subscription ends with a final NOTIFY (RFC 6665 §4.2.2). */
  private arm(subscription: Subscription): void {
    clearTimeout(subscription.timer);
    subscription.timer = setTimeout(
      () => {
        // A copy replaced or dropped meanwhile (refreshed through another instance) has no say.
        if (this.subscriptions.get(subscription.id) !== subscription) return;
        this.forget(subscription, true);
        void this.options.presence
          .current(subscription.person)
          .then((a) => this.notifyLater(subscription, a, "timeout"));
      },
      Math.max(0, subscription.expiresAt - Date.now()),
    );
    subscription.timer.unref();
  }

  /**
   * A SUBSCRIBE from `watcher` (the authenticated sender) that arrived over `flow`. The answer's
   * `after` sends the NOTIFY that must follow a 200.
   */
  async handle(
    request: SipRequest,
    localTag: string,
    watcher: SipUri,
    flow?: Flow,
  ): Promise<SubscribeAnswer> {
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
    // In a shared store the dialog may have been made through another instance.
    const existing: Subscription | undefined = request.toTag
      ? (this.subscriptions.get(key) ??
        (this.options.shared
          ? ((await this.options.presence.store.watcherSubscription(key)) ?? undefined)
          : undefined))
      : undefined;
    if (request.toTag && (!existing || existing.localTag !== request.toTag)) return { status: 481 };

    let subscription = existing;
    if (!subscription) {
      let presentity: SipUri;
      try {
        presentity = parseSipUri(request.ruri?.toString() ?? "");
      } catch {
        return { status: 400, reason: "Bad address" };
      }
      const name = homeIdentity({ kind: "sip", uri: presentity }, domains.homeDomain);
      if (name === null) return { status: 404, reason: "Not a user of this domain" };
      if (
        !mayWatch(watcher.host, {
          homeDomain: domains.homeDomain,
          allowedDomains: this.allowedDomains,
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
        id: key,
        event,
        person: `${name}@${domains.homeDomain}`,
        presentity: `sip:${name}@${domains.homeDomain}`,
        callId: request.callId,
        localTag,
        remote: request.getHeader("From") ?? "",
        local: request.getHeader("To") ?? "",
        target: formatSipUri(target),
        // As UAS, the route set is the Record-Route list in order (RFC 3261 §12.1.1).
        // (The parser has split and checked the list already.)
        routes: request.getHeaders("record-route"),
        cseq: 0,
        expiresAt: 0,
      };
    }
    const current = subscription;
    if (flow?.reliable) current.flow = flow;
    if (expires === 0) {
      this.forget(current, true);
      return {
        status: 200,
        headers: [["Expires", "0"]],
        after: async () =>
          this.notify(current, await this.options.presence.current(current.person), "timeout"),
      };
    }
    current.expiresAt = Date.now() + expires * 1000;
    if (this.leading) {
      this.subscriptions.set(key, current);
      this.arm(current);
    }
    this.save(current);
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
    const { store } = this.options.presence;
    if (this.options.shared)
      subscription.cseq = await store.nextWatcherCseq(subscription.id, { last: terminated !== undefined });
    else {
      subscription.cseq += 1;
      if (!terminated) this.save(subscription);
    }
    const body =
      subscription.event === "dialog"
        ? buildDialogInfo(subscription.presentity, aggregate.state, subscription.cseq, aggregate.note)
        : buildPidf(subscription.presentity, aggregate.state, aggregate.note);
    const remaining = Math.max(0, Math.round((subscription.expiresAt - Date.now()) / 1000));
    const state = terminated ? `terminated;reason=${terminated}` : `active;expires=${remaining}`;
    const result = await this.options.sender.send({
      method: "NOTIFY",
      ruri: parseSipUri(subscription.target),
      from: `${subscription.local};tag=${subscription.localTag}`,
      to: subscription.remote,
      callId: subscription.callId,
      cseq: subscription.cseq,
      routes: subscription.routes,
      inDialog: true,
      headers: [
        ["Event", subscription.event],
        ["Subscription-State", state],
      ],
      body: {
        type: subscription.event === "dialog" ? "application/dialog-info+xml" : "application/pidf+xml",
        text: body,
      },
      ...(subscription.flow ? { flow: subscription.flow } : {}),
    });
    if (result.cseq > subscription.cseq) {
      // A challenge was answered with the next CSeq (never backwards: NOTIFYs may overlap).
      subscription.cseq = result.cseq;
      if (this.options.shared) await store.nextWatcherCseq(subscription.id);
      else if (!terminated) this.save(subscription);
    }
    if (result.status >= 300) {
      // The watcher no longer has the subscription (RFC 6665 §4.1.3), or cannot be reached: drop it.
      this.options.log.info(
        { presentity: subscription.presentity, status: result.status, reason: result.reason },
        "subscription ended by a failed NOTIFY",
      );
      this.forget(subscription);
    }
  }

  close(): void {
    this.closed = true;
    this.options.presence.off("change", this.onChange);
    this.unwatch();
    for (const subscription of this.subscriptions.values()) clearTimeout(subscription.timer);
    this.subscriptions.clear();
  }
}
