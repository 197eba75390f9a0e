// The registration watcher (RFC 3680 `reg` over RFC 6665): for each person whose desk phone is
// offline while messages wait for it, a `reg` subscription for the phone's address-of-record at the
// registrar, so the bridge hears the moment the phone registers again instead of at the queue's
// next retry. Each subscription is an EventSubscriber (refresh, new dialog, retry, unsubscribe);
// this class keeps the registration state the NOTIFYs build up (full documents replace it, partial
// ones change it, RFC 3680 §5.2) and calls `onOnline(person)` when the AOR goes from not reachable
// to an active registration with at least one active contact.
import { formatSipUri, makeSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import { EventSubscriber, type NotifyAnswer, type SubscriptionNotify } from "./event-subscriber.js";
import { parseReginfo, REGINFO_CONTENT_TYPE } from "./reginfo.js";
import type { RequestSender } from "./request-sender.js";
import type { SipRequest } from "./sip-message.js";

export interface RegWatcherOptions {
  /** The registrar (e.g. sip:registrar.example.org): every SUBSCRIBE goes there first (loose route). */
  registrar: string;
  /** `sip.outboundProxy`, when it has `;lr`: put before the registrar in the route set. */
  outboundProxy?: string;
  sender: RequestSender;
  /** Our address in From (e.g. sip:switchboard@sip.example.org). */
  from: string;
  /** Called when a watched AOR comes online; a rejection or throw is logged, never fatal. */
  onOnline: (person: string) => void | Promise<void>;
  log: Logger;
  /** Requested subscription duration in seconds (default 3600). */
  expires?: number;
  /** First retry delay after a failure, doubled up to 5 minutes (default 5 s). */
  retryMs?: number;
  /** At most this many AORs watched at once (default 1000); `watch` beyond it is logged and skipped. */
  maxWatched?: number;
}

/** An active registration (by its id) as the NOTIFYs so far built it; others are not kept. */
interface KnownRegistration {
  aor: string;
  /** The ids of its active contacts (terminated ones are dropped). */
  contacts: Set<string>;
}

interface Watch {
  person: string;
  aor: SipUri;
  log: Logger;
  subscription: EventSubscriber;
  /** The dialog whose documents `version` and `registrations` come from. */
  dialog?: string;
  version?: number;
  registrations: Map<string, KnownRegistration>;
  /** Unknown (undefined) until the first document of each dialog. */
  online?: boolean;
}

const DEFAULT_MAX_WATCHED = 1_000;
/** Bounds on the state kept per AOR, whatever partial documents add up to. */
const MAX_REGISTRATIONS = 64;
const MAX_CONTACTS = 256;
/** How long an ended subscription still answers its notifier's last NOTIFY (64·T1, Timer F). */
const CLOSING_MS = 32_000;

/** An AOR compared as user@host, case-insensitively (scheme, port and parameters aside). */
function addressKey(aor: string): string | null {
  try {
    const uri = parseSipUri(aor.trim());
    return `${uri.user ?? ""}@${uri.host}`.toLowerCase();
  } catch {
    return null;
  }
}

/** `uri` as a Route value with `;lr`, so the hop loose-routes (RFC 3261 §16.12) instead of strict. */
function looseRoute(uri: SipUri): string {
  const params = uri.params.has("lr") ? uri.params : new Map([...uri.params, ["lr", null]]);
  return `<${formatSipUri(makeSipUri({ ...uri, params }))}>`;
}

/**
 * The preloaded route set of a `reg` SUBSCRIBE (RFC 3261 §8.1.1.1): the registrar, after the
 * outbound proxy when one with `;lr` is configured and is not the registrar itself. RequestSender
 * sends an out-of-dialog request with a route set to its first Route and leaves the outbound proxy
 * out, so the proxy has to be in the set for the request to pass it. A proxy without `;lr` (a
 * next hop only, no Route header) is left out: the SUBSCRIBE goes to the registrar directly.
 */
export function registrarRoutes(registrar: string, outboundProxy?: string): string[] {
  const target = parseSipUri(registrar);
  const proxy = outboundProxy ? parseSipUri(outboundProxy) : undefined;
  const sameHop =
    proxy !== undefined &&
    proxy.host === target.host &&
    (proxy.port ?? 5060) === (target.port ?? 5060) &&
    proxy.scheme === target.scheme;
  return [...(proxy?.params.has("lr") && !sameHop ? [looseRoute(proxy)] : []), looseRoute(target)];
}

export class RegWatcher {
  private readonly watches = new Map<string, Watch>();
  /** Subscriptions ended by `unwatch`: their notifier's final NOTIFY still gets a 200. */
  private readonly closing = new Set<EventSubscriber>();
  private readonly routes: readonly string[];
  private stopped = false;

  constructor(private readonly options: RegWatcherOptions) {
    // A bad registrar URI is a configuration error: thrown here, at start-up.
    this.routes = registrarRoutes(options.registrar, options.outboundProxy);
  }

  /** How many AORs are watched now. */
  get size(): number {
    return this.watches.size;
  }

  isWatching(person: string): boolean {
    return this.watches.has(person);
  }

  /**
   * Starts watching `aor` (the person's desk phone, e.g. sip:bob@example.org) for `person` (the
   * key `onOnline` gets). Once per person: watching again is a no-op, a new AOR replaces the old
   * one. False when not watched: a bad AOR, the bound reached, or the watcher stopped.
   */
  watch(person: string, aor: string): boolean {
    const log = this.options.log.child({ person, aor });
    if (this.stopped) return false;
    let uri: SipUri;
    try {
      uri = parseSipUri(aor);
    } catch (err) {
      log.warn({ err: String(err) }, "reg: not a SIP address, not watched");
      return false;
    }
    const existing = this.watches.get(person);
    if (existing && addressKey(formatSipUri(existing.aor)) === addressKey(aor)) return true;
    if (existing) void this.unwatch(person); // never rejects
    if (this.watches.size >= (this.options.maxWatched ?? DEFAULT_MAX_WATCHED)) {
      log.warn({ watched: this.watches.size }, "reg: too many AORs watched, not watching this one");
      return false;
    }
    const watch: Watch = {
      person,
      aor: uri,
      log,
      registrations: new Map(),
      subscription: new EventSubscriber({
        event: "reg",
        accept: REGINFO_CONTENT_TYPE,
        resource: formatSipUri(uri),
        from: this.options.from,
        sender: this.options.sender,
        log,
        label: "reg",
        routes: this.routes,
        ...(this.options.expires !== undefined ? { expires: this.options.expires } : {}),
        ...(this.options.retryMs !== undefined ? { retryMs: this.options.retryMs } : {}),
        onNotify: (notify) => this.onNotify(watch, notify),
      }),
    };
    this.watches.set(person, watch);
    watch.subscription.start();
    return true;
  }

  /** Stops watching the person's AOR (SUBSCRIBE with Expires: 0). Never rejects. */
  async unwatch(person: string): Promise<void> {
    const watch = this.watches.get(person);
    if (!watch) return;
    this.watches.delete(person);
    const subscription = watch.subscription;
    this.closing.add(subscription);
    setTimeout(() => this.closing.delete(subscription), CLOSING_MS).unref();
    await subscription.stop();
  }

  /** A NOTIFY with `Event: reg` from a trusted peer; outside our dialogs: 481. */
  async handleNotify(request: SipRequest): Promise<NotifyAnswer> {
    for (const watch of this.watches.values()) {
      if (watch.subscription.matches(request)) return watch.subscription.handleNotify(request);
    }
    for (const subscription of this.closing) {
      if (!subscription.matches(request)) continue;
      // The notifier's last word on a subscription we ended (RFC 6665 §4.1.2.3): acknowledged only.
      if (/^\s*terminated/i.test(request.getHeader("Subscription-State") ?? ""))
        this.closing.delete(subscription);
      return { status: 200 };
    }
    return { status: 481, reason: "No such reg subscription" };
  }

  private onNotify(watch: Watch, notify: SubscriptionNotify): NotifyAnswer {
    const log = watch.log;
    if (notify.dialog !== watch.dialog) {
      // A new subscription: what was known may have changed while there was none.
      watch.dialog = notify.dialog;
      delete watch.version;
      delete watch.online;
      watch.registrations.clear();
    }
    if (notify.body.trim() === "") return { status: 200 }; // e.g. pending, or terminated without state
    const type = (notify.request.getHeader("Content-Type") ?? REGINFO_CONTENT_TYPE).split(";")[0];
    if (type?.trim().toLowerCase() !== REGINFO_CONTENT_TYPE)
      return { status: 415, reason: `Only ${REGINFO_CONTENT_TYPE}` };
    const doc = parseReginfo(notify.body);
    if (!doc) {
      log.warn({}, "reg: NOTIFY with a bad reginfo document refused");
      return { status: 400, reason: "Bad reginfo document" };
    }
    // RFC 3680 §5.2: an old or repeated version is discarded; a partial document that skips
    // versions (or comes first) still counts, but the full state is asked for again.
    if (watch.version !== undefined && doc.version <= watch.version) return { status: 200 };
    const gap = doc.state === "partial" && (watch.version === undefined || doc.version > watch.version + 1);
    watch.version = doc.version;
    if (doc.state === "full") watch.registrations.clear();
    for (const registration of doc.registrations) {
      if (registration.state !== "active") {
        watch.registrations.delete(registration.id);
        continue;
      }
      let known = watch.registrations.get(registration.id);
      if (!known) {
        if (watch.registrations.size >= MAX_REGISTRATIONS) continue;
        known = { aor: registration.aor, contacts: new Set() };
        watch.registrations.set(registration.id, known);
      }
      known.aor = registration.aor;
      for (const contact of registration.contacts) {
        if (contact.state === "terminated") known.contacts.delete(contact.id);
        else if (known.contacts.size < MAX_CONTACTS) known.contacts.add(contact.id);
      }
    }
    if (gap) watch.subscription.refresh();
    const online = this.isOnline(watch);
    const was = watch.online;
    watch.online = online;
    log.debug({ version: doc.version, state: doc.state, online, was }, "reg: registration state");
    if (online && was !== true) this.announce(watch.person, log);
    return { status: 200 };
  }

  /**
   * An active registration of the AOR with an active contact. The registrations named as the AOR
   * count; when none is (a registrar that writes the AOR its own way), all of the document's do,
   * as the subscription is for this one AOR (RFC 3680 §4.1).
   */
  private isOnline(watch: Watch): boolean {
    const key = addressKey(formatSipUri(watch.aor));
    const all = [...watch.registrations.values()];
    const named = all.filter((r) => addressKey(r.aor) === key);
    return (named.length > 0 ? named : all).some((r) => r.contacts.size > 0);
  }

  private announce(person: string, log: Logger): void {
    log.info({}, "reg: phone registered, back online");
    try {
      const result = this.options.onOnline(person);
      if (result instanceof Promise)
        result.catch((err: unknown) => log.error({ err: String(err) }, "reg: onOnline failed"));
    } catch (err) {
      log.error({ err: String(err) }, "reg: onOnline failed");
    }
  }

  /** Ends every subscription (Expires: 0), each bounded by its transaction's Timer F. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.unwatchAll();
  }

  /** Ends every subscription, and goes on taking new ones (another instance took the queue over). */
  async unwatchAll(): Promise<void> {
    await Promise.all([...this.watches.keys()].map((person) => this.unwatch(person)));
  }
}
