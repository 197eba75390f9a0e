// Presence on the XMPP side (RFC 6121 §3, §4): subscriptions of chat users to gateway contacts,
// probes, and the presence of home-domain users as a source of the presence model — received through
// XEP-0356 (`presence = "managed_entity"`) where the server grants it, otherwise through a
// subscription from the gateway domain that each user approves once (XEP-0100 §5 style).
import { xml, type Element } from "@xmpp/component";
import type { AggregatePresence } from "../../src/domain/presence.js";
import { AddressError } from "../../src/domain/errors.js";
import type { GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { bareJid, formatJid, parseJid, type Jid } from "../../src/domain/jid.js";
import { presenceToXmpp, xmppToPresence } from "../../src/domain/mapping/xmpp-show.js";
import type { Logger } from "../../src/ports/logger.js";
import { contactForPerson, personForContact, personForHomeJid } from "../../src/presence/person.js";
import { mayWatch } from "../../src/presence/policy.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { NS } from "./namespaces.js";
import { stanzaAddresses } from "./stanza-addresses.js";
import { errorReply } from "./stanza-error.js";

/** How the bridge learns home users' presence (DESIGN.md "How the bridge learns..."). */
export type PresenceMode = "privileged" | "subscription";

export interface PresenceHandlerOptions {
  domains: GatewayDomains;
  /** Domains other than the home domain whose users may subscribe to gateway contacts. */
  allowedDomains: readonly string[];
  presence: PresenceService;
  send: (stanza: Element) => Promise<void>;
  log: Logger;
  /** Called with a home user's bare JID each time one of their resources reports presence. */
  userOnline?: (user: string) => Promise<void>;
}

/** A presence stanza carrying an aggregate, from a gateway contact to one subscriber. */
export function presenceStanza(from: string, to: string, aggregate: AggregatePresence): Element {
  const value = presenceToXmpp(aggregate.state, aggregate.note);
  return xml(
    "presence",
    { from, to, type: value.type },
    value.show ? xml("show", {}, value.show) : null,
    value.status ? xml("status", {}, value.status) : null,
  );
}

export class XmppPresenceHandler {
  private _mode: PresenceMode = "subscription";
  /** Home users the gateway domain has asked to subscribe to, in subscription mode (once each). */
  private readonly asked = new Set<string>();

  private allowedDomains: readonly string[];

  constructor(private readonly options: PresenceHandlerOptions) {
    this.allowedDomains = options.allowedDomains;
  }

  /** xmpp.allowedDomains read again (SIGHUP): applies to subscriptions asked from now on. */
  setAllowedDomains(domains: readonly string[]): void {
    this.allowedDomains = domains;
  }

  get mode(): PresenceMode {
    return this._mode;
  }

  /**
   * The server's XEP-0356 §5 advertisement, sent when the component connects. Presence
   * `managed_entity` (or `roster`) means users' presence reaches the component without asking them.
   * Returns true when `message` was an advertisement from the home server (XEP-0356 §5: the
   * server's own domain sends it); one from anywhere else is not trusted and changes nothing.
   */
  onPrivilege(message: Element): boolean {
    const privilege = message.getChild("privilege", NS.privilege);
    if (!privilege) return false;
    if (message.attrs.from !== this.options.domains.homeDomain) {
      this.options.log.warn(
        { from: message.attrs.from },
        "privilege advertisement not from the home server, ignored",
      );
      return false;
    }
    const presence = privilege.getChildren("perm").find((p) => p.attrs.access === "presence")?.attrs.type;
    this._mode = presence === "managed_entity" || presence === "roster" ? "privileged" : "subscription";
    this.options.log.info(
      { mode: this._mode, presencePermission: presence ?? "none" },
      this._mode === "privileged"
        ? `XEP-0356 presence permission '${presence}': users' presence arrives without subscriptions`
        : "no XEP-0356 presence permission: users approve a subscription from the gateway once",
    );
    return true;
  }

  /** No advertisement came after connecting: say which mode is active. */
  noPrivilege(): void {
    this._mode = "subscription";
    this.options.log.info(
      { mode: this._mode },
      "no XEP-0356 privilege advertised: users approve a subscription from the gateway once",
    );
  }

  async onPresence(stanza: Element): Promise<void> {
    const addresses = stanzaAddresses(stanza, this.options.log);
    if (!addresses) return;
    const { from, to } = addresses;
    if (to.domain !== this.options.domains.gatewayDomain) return;
    if (to.local === null) await this.fromUser(stanza, from);
    else await this.toContact(stanza, from, bareJid(to));
  }

  /** Presence addressed to the gateway domain: a home user's own presence, or a subscription to the gateway. */
  private async fromUser(stanza: Element, from: Jid): Promise<void> {
    const type = stanza.attrs.type;
    const person = personForHomeJid(bareJid(from), this.options.domains);
    const { log, presence } = this.options;
    if (type === undefined || type === "unavailable") {
      if (person === null || from.resource === null) return; // only home users' own resources count
      const source = { kind: "xmpp" as const, resource: from.resource };
      let value: ReturnType<typeof xmppToPresence>;
      try {
        value = xmppToPresence({
          type,
          show: stanza.getChildText("show"),
          status: stanza.getChildText("status"),
        });
      } catch (err) {
        log.warn({ jid: formatJid(from), err: String(err) }, "presence not understood, ignored");
        return;
      }
      // Held while the store is away (retain): the client will not say it again.
      if (value.state === "unavailable") await presence.withdraw(person, source, { retain: true });
      else {
        await presence.report(
          person,
          { source, state: value.state, note: value.note, updatedAt: presence.now(), expiresAt: null },
          { retain: true },
        );
      }
      log.debug({ jid: formatJid(from), state: value.state }, "xmpp presence source updated");
      if (value.state !== "unavailable") await this.homeUserSeen(from);
      return;
    }
    const gateway = this.options.domains.gatewayDomain;
    const user = formatJid(bareJid(from));
    const reply = (replyType?: string): Promise<void> =>
      this.options.send(xml("presence", { from: gateway, to: user, type: replyType }));
    if (type === "subscribe") {
      // Subscribing to the gateway itself (XEP-0100 §4.1.1): approved for those allowed to use it,
      // followed by the gateway's own presence and, in subscription mode, its request for theirs.
      if (!this.allowed(from)) {
        await reply("unsubscribed");
        return;
      }
      await reply("subscribed");
      await reply(); // the gateway is available
      await this.askForPresence(from);
      await this.homeUserSeen(from);
    } else if (type === "probe") {
      await reply(this.allowed(from) ? undefined : "unsubscribed");
    } else if (type === "unsubscribe") {
      await reply("unsubscribed");
    } else if (type === "unsubscribed" && person !== null) {
      // The user revoked the gateway's subscription (RFC 6121 §3.2): their presence stops coming,
      // so what we hold from their XMPP resources is stale — drop it rather than show it forever.
      const { records } = await presence.snapshot(person);
      for (const record of records) {
        if (record.source.kind === "xmpp") await presence.withdraw(person, record.source, { retain: true });
      }
      this.asked.delete(user);
      log.info({ jid: user }, "user revoked the gateway's presence subscription");
    }
  }

  /**
   * A home user showed up: their presence reached us, or (in subscription mode, where presence
   * comes only after they approve) they subscribed to the gateway or one of its contacts.
   */
  private async homeUserSeen(user: Jid): Promise<void> {
    if (personForHomeJid(bareJid(user), this.options.domains) === null) return;
    await this.options.userOnline?.(formatJid(bareJid(user)));
  }

  private allowed(jid: Jid): boolean {
    return mayWatch(jid.domain, {
      homeDomain: this.options.domains.homeDomain,
      allowedDomains: this.allowedDomains,
    });
  }

  private async toContact(stanza: Element, from: Jid, contact: Jid): Promise<void> {
    const type = stanza.attrs.type;
    const contactJid = formatJid(contact);
    const subscriber = formatJid(bareJid(from));
    const { domains, log, presence, send } = this.options;
    const reply = (replyType: string): Promise<void> =>
      send(xml("presence", { from: contactJid, to: subscriber, type: replyType }));

    if (type !== "subscribe" && type !== "unsubscribe" && type !== "probe") return;
    let person: string;
    try {
      person = personForContact(contact, domains);
    } catch (err) {
      if (!(err instanceof AddressError)) throw err;
      await send(errorReply(stanza, err.condition, err.message));
      return;
    }
    const flow = log.child({ jid: subscriber, contact: contactJid });
    switch (type) {
      case "subscribe": {
        if (!this.allowed(from)) {
          // RFC 6121 §3.1.4 (refusal) — DESIGN.md: other domains only when allowed in config.
          flow.info(
            { domain: from.domain },
            "subscription refused: domain not allowed (xmpp.allowedDomains)",
          );
          await reply("unsubscribed");
          return;
        }
        await presence.store.addXmppSubscriber(contactJid, subscriber);
        await reply("subscribed");
        await send(presenceStanza(contactJid, subscriber, await presence.current(person)));
        flow.info({}, "subscription approved");
        await this.homeUserSeen(from);
        await this.askForPresence(from);
        return;
      }
      case "unsubscribe":
        await presence.store.removeXmppSubscriber(contactJid, subscriber);
        await reply("unsubscribed");
        await reply("unavailable");
        flow.info({}, "subscription removed");
        return;
      case "probe": {
        // RFC 6121 §4.3.2: current presence to a subscriber; `unsubscribed` to anyone else.
        const subscribers = await presence.store.xmppSubscribers(contactJid, { fresh: true });
        if (!subscribers.includes(subscriber)) await reply("unsubscribed");
        else await send(presenceStanza(contactJid, subscriber, await presence.current(person)));
        return;
      }
    }
  }

  /** Subscription mode: the gateway domain asks a home user once to share their presence. */
  private async askForPresence(user: Jid): Promise<void> {
    const bare = formatJid(bareJid(user));
    if (
      this._mode !== "subscription" ||
      user.domain !== this.options.domains.homeDomain ||
      this.asked.has(bare)
    )
      return;
    this.asked.add(bare);
    await this.options.send(
      xml("presence", { from: this.options.domains.gatewayDomain, to: bare, type: "subscribe" }),
    );
  }

  /**
   * After (re)connecting: users may have gone offline while the component was away, and nobody
   * will tell. In privileged mode the server re-sends the presence of everyone online when the
   * component connects (mod_privilege); in subscription mode the gateway probes the users it holds
   * (RFC 6121 §4.3). Call `probeHeld()` on connect and `dropUnconfirmed(since)` once the answers
   * had time to arrive: XMPP sources not reported again since `since` are withdrawn.
   */
  async probeHeld(): Promise<void> {
    if (this._mode !== "subscription") return;
    const { presence, domains, send } = this.options;
    for (const person of await presence.store.personsWithSource("xmpp")) {
      await send(xml("presence", { type: "probe", from: domains.gatewayDomain, to: person }));
    }
  }

  async dropUnconfirmed(since: number): Promise<void> {
    const { presence, log } = this.options;
    for (const person of await presence.store.personsWithSource("xmpp")) {
      const { records } = await presence.snapshot(person);
      for (const record of records) {
        if (record.source.kind === "xmpp" && record.updatedAt < since) {
          await presence.withdraw(person, record.source);
          log.info(
            { person, resource: record.source.resource },
            "xmpp source not confirmed after reconnect, dropped",
          );
        }
      }
    }
  }

  /** Sends a person's aggregate to every XMPP subscriber of their gateway contact. */
  async announce(person: string, aggregate: AggregatePresence): Promise<void> {
    const contact = contactForPerson(person, this.options.domains);
    await this.announceContact(contact, aggregate);
  }

  private async announceContact(contact: string, aggregate: AggregatePresence): Promise<void> {
    const subscribers = await this.options.presence.store.xmppSubscribers(contact);
    await Promise.all(subscribers.map((to) => this.options.send(presenceStanza(contact, to, aggregate))));
  }

  /** After a (re)connect: every subscribed contact's current presence to its subscribers. */
  async reannounce(): Promise<void> {
    const { presence, domains } = this.options;
    for (const contact of await presence.store.xmppSubscribedContacts()) {
      try {
        const person = personForContact(parseJid(contact), domains);
        await this.announceContact(contact, await presence.current(person));
      } catch (err) {
        // One bad stored contact (e.g. from an older mapping) must not stop the others.
        this.options.log.warn({ contact, err: String(err) }, "could not re-announce a contact");
      }
    }
  }
}
