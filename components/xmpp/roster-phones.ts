// Colleagues' phones in chat users' rosters (off unless `xmpp.rosterPhones.enabled`): when a
// home user comes online for the first time since the bridge started, the directory's other people
// are offered to them as gateway contacts. With the XEP-0356 roster permission `set`/`both` the
// items are written into the roster directly (§4.1.2), with a subscription so presence flows at
// once; otherwise they are offered with XEP-0144 roster item exchange and the user's client asks.
import { xml, type Element } from "@xmpp/component";
import type { GatewayDomains } from "../../src/domain/gateway-mapping.js";
import type { Directory } from "../../src/ports/directory.js";
import type { Logger } from "../../src/ports/logger.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { contactForPerson } from "../../src/presence/person.js";
import { NS } from "./namespaces.js";
import { presenceStanza } from "./presence-handler.js";

export interface RosterPhonesOptions {
  domains: GatewayDomains;
  directory: Directory;
  presence: PresenceService;
  group: string;
  send: (stanza: Element) => Promise<void>;
  request: (iq: Element) => Promise<Element>;
  log: Logger;
}

/** Whether the server's XEP-0356 advertisement lets the component write rosters. */
export function canWriteRosters(privilege: Element | undefined): boolean {
  const roster = privilege
    ?.getChild("privilege", NS.privilege)
    ?.getChildren("perm")
    .find((p) => p.attrs.access === "roster");
  return roster?.attrs.type === "set" || roster?.attrs.type === "both";
}

export class RosterPhones {
  private readonly done = new Set<string>();
  private readonly inFlight = new Set<string>();
  /** Set from the server's privilege advertisement. */
  writeRosters = false;

  constructor(private readonly options: RosterPhonesOptions) {}

  /** A home user (bare JID, their person key) was seen online. */
  async userOnline(user: string): Promise<void> {
    // Once per user and bridge run; several resources coming online at once share one attempt.
    if (this.done.has(user) || this.inFlight.has(user)) return;
    this.inFlight.add(user);
    try {
      const { directory, domains } = this.options;
      const colleagues = (await directory.entries())
        .map((e) => ({ person: `${e.uid}@${domains.homeDomain}`, name: e.displayName }))
        .filter((c) => c.person !== user);
      const items = colleagues.map((c) => ({ ...c, jid: contactForPerson(c.person, domains) }));
      if (items.length > 0) {
        if (this.writeRosters) await this.push(user, items);
        else await this.offer(user, items);
      }
      this.done.add(user); // only after success: a failed push is tried again next time
    } finally {
      this.inFlight.delete(user);
    }
  }

  private async push(user: string, items: { jid: string; person: string; name: string }[]): Promise<void> {
    const { group, presence, request, send, log } = this.options;
    // subscription 'to': the user sees the phone's presence; the bridge records the subscriber.
    await request(
      xml(
        "iq",
        { type: "set", to: user, from: this.options.domains.gatewayDomain },
        xml(
          "query",
          { xmlns: NS.roster },
          ...items.map((i) =>
            xml("item", { jid: i.jid, name: i.name, subscription: "to" }, xml("group", {}, group)),
          ),
        ),
      ),
    );
    for (const item of items) {
      await presence.store.addXmppSubscriber(item.jid, user);
      await send(presenceStanza(item.jid, user, await presence.current(item.person)));
    }
    log.info({ jid: user, items: items.length }, "colleagues' phones written into the roster (XEP-0356)");
  }

  private async offer(user: string, items: { jid: string; name: string }[]): Promise<void> {
    const { group, send, log } = this.options;
    await send(
      xml(
        "message",
        { to: user, from: this.options.domains.gatewayDomain },
        xml(
          "x",
          { xmlns: NS.rosterx },
          ...items.map((i) =>
            xml("item", { action: "add", jid: i.jid, name: i.name }, xml("group", {}, group)),
          ),
        ),
      ),
    );
    log.info({ jid: user, items: items.length }, "colleagues' phones offered (XEP-0144)");
  }
}
