// One RFC 6665 subscription kept up by the bridge as subscriber, for any event package (MWI's
// `message-summary`, RFC 3680 `reg`): SUBSCRIBE outside any dialog, the dialog taken from the 2xx
// (the notifier's tag, its Contact as remote target, the Record-Route set), refreshed ahead of
// expiry, matched NOTIFYs handed to the package's handler with their body, a new dialog when the
// notifier ends or loses the old one, a growing delay after failures, and Expires: 0 on stop.
import { formatSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import type { RequestSender } from "./request-sender.js";
import { parseSip, type SipRequest } from "./sip-message.js";
import { randomToken } from "../../src/util/random-token.js";

export type NotifyAnswer = { status: number; reason?: string };

/** A NOTIFY in the subscription's dialog, as the event package's handler sees it. */
export interface SubscriptionNotify {
  request: SipRequest;
  body: string;
  /** Subscription-State's value, lowercased: `active`, `pending` or `terminated` (RFC 6665 §8.2.3). */
  subscriptionState: string;
  /**
   * The dialog (its Call-ID) the NOTIFY belongs to. A new value means a new subscription, whose
   * state starts over (e.g. RFC 3680 versions count from 0 again): anything may have changed while
   * there was none.
   */
  dialog: string;
}

export interface EventSubscriberOptions {
  /** The event package (`Event` header), e.g. `message-summary` or `reg`. */
  event: string;
  /** The body type asked for (`Accept`). */
  accept: string;
  /** The resource subscribed to: the initial SUBSCRIBE's Request-URI and To. */
  resource: string;
  /** Our address in From (e.g. sip:switchboard@sip.example.org). */
  from: string;
  sender: RequestSender;
  log: Logger;
  /** How log lines name the subscription (`MWI`, `reg`). */
  label: string;
  /** Requested subscription duration in seconds (default 3600). */
  expires?: number;
  /** First retry delay after a failure, doubled up to 5 minutes (default 5 s). */
  retryMs?: number;
  /**
   * A preloaded route set for SUBSCRIBEs outside the dialog (RFC 3261 §8.1.1.1), Route header values
   * such as `<sip:registrar.example.org;lr>`; empty: the outbound proxy or the Request-URI.
   */
  routes?: readonly string[];
  /** What each Call-ID ends with after `@` (default the event package). */
  callIdHost?: string;
  onNotify: (notify: SubscriptionNotify) => NotifyAnswer | Promise<NotifyAnswer>;
}

const MAX_RETRY_MS = 300_000;

export class EventSubscriber {
  private callId = "";
  private localTag = "";
  private cseq = 0;
  /** Set once the notifier answered 2xx: its tag, the remote target and the route set. */
  private remoteTag: string | undefined;
  private target: SipUri | undefined;
  private routes: readonly string[] = [];
  /** Bumped with every new dialog: an answer for an older dialog is then ignored. */
  private generation = 0;
  private inFlight = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;

  constructor(private readonly options: EventSubscriberOptions) {
    this.resetDialog();
  }

  /** Subscribes (without waiting for the answer); after stop(), in a new dialog. */
  start(): void {
    if (this.stopped) {
      this.stopped = false;
      this.resetDialog();
    }
    this.subscribeLater(0);
  }

  /** Whether `request` (a NOTIFY) belongs to this subscription's dialog: our Call-ID and our tag. */
  matches(request: SipRequest): boolean {
    return request.callId === this.callId && request.toTag === this.localTag;
  }

  /**
   * A refresh at once, within the dialog: it makes the notifier send its full state again
   * (RFC 6665 §4.2.2; RFC 3680 §5.2 asks for it when versions skip). Does nothing before the
   * dialog exists or while a SUBSCRIBE is on its way.
   */
  refresh(): void {
    if (this.stopped || this.remoteTag === undefined || this.inFlight) return;
    this.subscribeLater(0);
  }

  private subscribeLater(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.subscribe().catch((err: unknown) =>
        this.options.log.warn({ err: String(err) }, `${this.options.label} SUBSCRIBE failed`),
      );
    }, delayMs);
    this.timer.unref();
  }

  /** A new dialog (Call-ID and tag) after the notifier ended or lost the old one. */
  private resetDialog(): void {
    this.generation += 1;
    this.callId = `${randomToken(10)}@${this.options.callIdHost ?? this.options.event}`;
    this.localTag = randomToken(6);
    this.cseq = 0;
    this.remoteTag = undefined;
    this.target = undefined;
    this.routes = [];
  }

  private async subscribe(expires = this.options.expires ?? 3600): Promise<void> {
    const { log, sender, label } = this.options;
    const resource = parseSipUri(this.options.resource);
    const inDialog = this.remoteTag !== undefined;
    const generation = this.generation;
    this.inFlight = true;
    let result;
    try {
      result = await sender.send({
        method: "SUBSCRIBE",
        ruri: this.target ?? resource,
        from: `<${this.options.from}>;tag=${this.localTag}`,
        to: `<${formatSipUri(resource)}>${inDialog ? `;tag=${this.remoteTag ?? ""}` : ""}`,
        callId: this.callId,
        cseq: ++this.cseq,
        routes: inDialog ? this.routes : (this.options.routes ?? []),
        inDialog,
        headers: [
          ["Event", this.options.event],
          ["Accept", this.options.accept],
          ["Expires", String(expires)],
        ],
      });
    } finally {
      this.inFlight = false;
    }
    // The dialog was ended meanwhile (a terminated NOTIFY overtook this answer): a new one is due.
    if (generation !== this.generation) return;
    this.cseq = Math.max(this.cseq, result.cseq);
    if (expires === 0) return;
    const ok = result.status >= 200 && result.status < 300 && result.response !== undefined;
    const response = ok ? parseSip(result.response ?? "") : undefined;
    if (ok && !inDialog && response) {
      this.remoteTag = response.toTag;
      const contact = (response.parseHeader("contact") as { uri?: { toString(): string } } | undefined)?.uri;
      try {
        if (contact) this.target = parseSipUri(contact.toString());
      } catch {
        log.warn({}, `${label}: the notifier's Contact is not a SIP URI; keeping the resource URI`);
      }
      // As UAC, the route set is the Record-Route list in reverse (RFC 3261 §12.1.2).
      this.routes = response.getHeaders("record-route").reverse();
    }
    if (this.stopped) {
      // Stopped while the first SUBSCRIBE was on its way: end what the notifier just set up.
      if (ok && !inDialog && this.remoteTag !== undefined) await this.subscribe(0);
      return;
    }
    if (ok) {
      const granted = Number(response?.getHeader("Expires")?.trim() ?? expires);
      const seconds = Number.isFinite(granted) && granted > 0 ? granted : expires;
      this.failures = 0;
      // Refresh ahead of expiry (RFC 6665 §4.1.2.1): at 80 %, at least 5 s before.
      this.subscribeLater(Math.max(1_000, Math.min(seconds * 800, (seconds - 5) * 1000)));
      log.info({ expires: seconds }, `${label} subscription active`);
      return;
    }
    if (inDialog && (result.status === 481 || result.status === 408)) {
      this.resetDialog(); // the notifier lost the dialog: start a new one at once
      this.subscribeLater(0);
      return;
    }
    this.failures += 1;
    const delay = Math.min(MAX_RETRY_MS, (this.options.retryMs ?? 5_000) * 2 ** (this.failures - 1));
    log.warn(
      { status: result.status, reason: result.reason, retryInMs: delay },
      `${label} subscription refused`,
    );
    this.resetDialog();
    this.subscribeLater(delay);
  }

  /**
   * A NOTIFY that `matches` this subscription: a terminated one is followed by a new subscription
   * (RFC 6665 §4.1.3; after its retry-after when longer than the usual delay), and the body goes to
   * the package's handler, whose answer is the NOTIFY's.
   */
  async handleNotify(request: SipRequest): Promise<NotifyAnswer> {
    const header = request.getHeader("Subscription-State") ?? "";
    const subscriptionState = (header.split(";")[0] ?? "").trim().toLowerCase();
    const dialog = this.callId;
    if (subscriptionState === "terminated" && !this.stopped) {
      const retryAfter = Number(/;\s*retry-after\s*=\s*(\d{1,9})/i.exec(header)?.[1] ?? 0);
      const retryMs = this.options.retryMs ?? 5_000;
      this.options.log.info({ state: header }, `${this.options.label} subscription ended by the notifier`);
      this.resetDialog();
      this.subscribeLater(Math.min(MAX_RETRY_MS, Math.max(retryMs, retryAfter * 1000)));
    }
    try {
      return await this.options.onNotify({ request, body: request.body ?? "", subscriptionState, dialog });
    } catch (err) {
      this.options.log.error({ err: String(err) }, `${this.options.label}: NOTIFY handling failed`);
      return { status: 500 };
    }
  }

  /** Ends the subscription (Expires: 0), bounded by the transaction's own Timer F. Never rejects. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.remoteTag === undefined) return;
    await this.subscribe(0).catch(() => undefined);
  }
}
