// The XMPP side of the bridge as one object: the component connection plus the handlers for what
// arrives on it (IQs, presence, the XEP-0356 advertisement), and the fan-out of presence changes to
// chat users. Messages, vCards and rosters come with the next steps.
import { noMetrics, type Metrics } from "../../src/ports/metrics.js";
import { randomUUID } from "node:crypto";
import { xmlSafeText } from "../../src/util/xml-text.js";
import { xml, type Element } from "@xmpp/component";
import { formatJid, makeJid } from "../../src/domain/jid.js";
import type { GatewayDomains } from "../../src/domain/gateway-mapping.js";
import type { AggregatePresence } from "../../src/domain/presence.js";
import type { Logger } from "../../src/ports/logger.js";
import { silentLogger } from "../../src/ports/logger.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { ComponentConnection, type ComponentConnectionOptions } from "./component-connection.js";
import { answerIq, type GatewayIdentity, type IqAnswer } from "./iq-handler.js";
import { XmppMessageHandler } from "./message-handler.js";
import { XmppPresenceHandler } from "./presence-handler.js";
import { canWriteRosters, RosterPhones } from "./roster-phones.js";
import type { ChatMessage, DeliveryReports, MessageSink } from "../../src/ports/message-port.js";
import type { Directory } from "../../src/ports/directory.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { answerVcard, isVcardGet } from "./vcard.js";
import { errorElement, errorReply } from "./stanza-error.js";

/** The text of the refusal of another tenant's stanza. */
const OTHER_TENANT = "the sender belongs to another tenant of this gateway";

export interface XmppGatewayOptions {
  connection: ComponentConnectionOptions;
  homeDomain: string;
  version: string;
  /** Region for reading national numbers at the XEP-0100 prompt (enum.defaultRegion). */
  defaultRegion?: string;
  presence: PresenceService;
  /** Domains other than the home domain whose users may subscribe (xmpp.allowedDomains). */
  allowedDomains?: readonly string[];
  /** Names and numbers of gateway contacts, for vCards. */
  directory?: Directory;
  /** Offer colleagues' phones (from `directory`) to home users (xmpp.rosterPhones). */
  rosterPhones?: { enabled: boolean; group: string };
  /** Where chat users' messages to gateway contacts go (the SIP side). */
  messages?: MessageSink;
  /** Largest message body relayed either way, in bytes (xmpp.maxMessageBytes). */
  maxMessageBytes?: number;
  log?: Logger;
  /** How long to wait for the XEP-0356 advertisement after connecting before assuming none. */
  privilegeWaitMs?: number;
  /** Stanzas sent and received are counted here. */
  metrics?: Metrics;
  /** log.wire.xmpp: every stanza sent and received is logged here in full. */
  wireLog?: Logger;
  /**
   * The home and gateway domains of the other tenants of this process (docs/tenants.md): their
   * stanzas are refused (forbidden) or dropped, whatever they are addressed to.
   */
  otherTenants?: readonly string[];
}

export class XmppGateway {
  readonly connection: ComponentConnection;
  readonly presence: XmppPresenceHandler;
  readonly messages: XmppMessageHandler;
  private readonly rosterPhones: RosterPhones | undefined;
  private readonly domains: GatewayDomains;
  private readonly identity: GatewayIdentity;
  private readonly log: Logger;
  private readonly directory: Directory | undefined;
  private privilegeTimer: NodeJS.Timeout | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  /** When the component last lost (or had not yet) its connection: presence since then is fresh. */
  private disconnectedAt = 0;
  /** The current connection's XEP-0356 advertisement has arrived. */
  private advertised = false;
  private readonly presenceService: PresenceService;
  private readonly otherTenants: ReadonlySet<string>;

  constructor(options: XmppGatewayOptions) {
    this.otherTenants = new Set(options.otherTenants ?? []);
    this.log = (options.log ?? silentLogger).child({ component: "xmpp" });
    this.identity = {
      gatewayDomain: options.connection.jid,
      homeDomain: options.homeDomain,
      name: "Switchboard",
      version: options.version,
      ...(options.defaultRegion ? { defaultRegion: options.defaultRegion } : {}),
    };
    this.directory = options.directory;
    // Keepalive: ping the home server; an unanswered ping means a dead connection (XEP-0199 §4.2).
    this.connection = new ComponentConnection({
      keepalive: { to: options.homeDomain },
      ...options.connection,
    });
    const domains = { homeDomain: options.homeDomain, gatewayDomain: options.connection.jid };
    this.domains = domains;
    const rosterPhones =
      options.rosterPhones?.enabled && options.directory
        ? new RosterPhones({
            domains,
            directory: options.directory,
            presence: options.presence,
            group: options.rosterPhones.group,
            send: (stanza) => this.connection.send(stanza),
            request: (iq) => this.connection.request(iq),
            log: this.log,
          })
        : undefined;
    this.rosterPhones = rosterPhones;
    this.presence = new XmppPresenceHandler({
      domains,
      allowedDomains: options.allowedDomains ?? [],
      presence: options.presence,
      send: (stanza) => this.connection.send(stanza),
      log: this.log,
      userOnline: rosterPhones ? (user) => rosterPhones.userOnline(user) : undefined,
    });
    this.messages = new XmppMessageHandler({
      domains,
      sink: options.messages,
      send: (stanza) => this.connection.send(stanza),
      log: this.log,
      maxBodyBytes: options.maxMessageBytes,
    });
    this.connection.on("problem", (err) => this.log.warn({ err: err.message }, "xmpp component problem"));
    this.connection.on("offline", (reason) => {
      this.advertised = false;
      this.disconnectedAt = options.presence.now();
      this.log.warn({ reason }, "xmpp component offline");
    });
    const metrics = options.metrics ?? noMetrics;
    const wire = options.wireLog;
    if (wire) {
      this.connection.on("sent", (stanza) => wire.info({ dir: "out", xml: stanza.toString() }, "xmpp wire"));
      this.connection.on("stanza", (stanza) => wire.info({ dir: "in", xml: stanza.toString() }, "xmpp wire"));
    }
    this.connection.on("sent", (stanza) => metrics.xmppStanzaSent(stanza.name));
    this.connection.on("stanza", (stanza) => {
      metrics.xmppStanzaReceived(stanza.name);
      this.onStanza(stanza);
    });
    this.connection.answerIqs((iq, payload) => this.answer(iq, payload));
    this.connection.on("online", () => {
      this.log.info({ jid: options.connection.jid }, "xmpp component online");
      // The server sends the XEP-0356 advertisement right after the handshake, often in the same
      // read as the handshake answer, so it may already be here; if not, wait for it a little.
      // Then: sources held from before that nobody re-confirmed are stale (see dropUnconfirmed).
      // Re-sent presence may arrive before this event, so "fresh" means reported since we lost
      // the previous connection (or started), not since now.
      const since = this.disconnectedAt;
      const wait = options.privilegeWaitMs ?? 3_000;
      clearTimeout(this.privilegeTimer);
      this.privilegeTimer = setTimeout(() => {
        if (!this.advertised) this.presence.noPrivilege();
        this.guard(this.presence.probeHeld(), "probing users");
        this.staleTimer = setTimeout(
          () => this.guard(this.presence.dropUnconfirmed(since), "dropping stale presence"),
          wait,
        );
      }, wait);
      // Subscribers may have missed changes while the component was away: tell them again.
      this.guard(this.presence.reannounce(), "re-announcing presence");
    });
    this.presenceService = options.presence;
  }

  /**
   * Fans a change out to XMPP subscribers. While offline nothing is queued: presence goes stale,
   * and every subscriber gets the current state again on reconnect, so the send buffer stays free
   * for messages.
   */
  private readonly onPresenceChange = (person: string, aggregate: AggregatePresence): void => {
    if (this.connection.state !== "online") return;
    this.guard(this.presence.announce(person, aggregate), "announcing presence");
  };

  /** Outcomes of queued messages, reported to their senders (DeliveryReports). */
  readonly reports: DeliveryReports = {
    delivered: (message, outcome) => this.messages.reportDelivered(message, outcome),
    failed: (message, condition, text) => this.messages.reportFailed(message, condition, text),
  };

  /**
   * A notice from the gateway itself (its domain JID) to a home user, e.g. "New voicemail: 2 new,
   * 0 old". Sent like any stanza: held while the component reconnects.
   */
  notify(person: string, body: string): Promise<void> {
    const at = person.lastIndexOf("@");
    const to = formatJid(makeJid({ local: person.slice(0, at), domain: person.slice(at + 1) }));
    return this.connection.send(
      xml(
        "message",
        { type: "chat", from: this.domains.gatewayDomain, to, id: `notice-${randomUUID()}` },
        xml("body", {}, xmlSafeText(body)),
      ),
    );
  }

  /** xmpp.allowedDomains read again (SIGHUP): who may subscribe from now on. */
  setAllowedDomains(domains: readonly string[]): void {
    this.presence.setAllowedDomains(domains);
  }

  /**
   * A message from a SIP party to a chat user; rejects with a SwitchboardError the SIP side answers.
   * While the component is offline it is refused (service-unavailable:
   * the SIP sender gets 503 with Retry-After and sends it again later) rather than held in memory,
   * where a restart of the bridge would lose it. A message written just before the connection died
   * is sent again after the reconnect (ComponentConnection `unacked`).
   */
  deliverToXmpp(message: ChatMessage): Promise<void> {
    if (this.connection.state !== "online") {
      return Promise.reject(
        new SwitchboardError(
          "service-unavailable",
          "the XMPP server is unreachable (component offline); try again later",
        ),
      );
    }
    return this.messages.deliver(message);
  }

  start(): void {
    this.presenceService.off("change", this.onPresenceChange); // once, however often started
    this.presenceService.on("change", this.onPresenceChange);
    this.advertised = false;
    this.disconnectedAt = this.presenceService.now();
    this.connection.start();
  }

  async stop(): Promise<void> {
    clearTimeout(this.privilegeTimer);
    clearTimeout(this.staleTimer);
    this.presenceService.off("change", this.onPresenceChange);
    await this.connection.stop();
  }

  /** Runs a flow without letting its failure escape: logged with context, other flows go on. */
  private guard(flow: Promise<unknown>, what: string): void {
    flow.catch((err: unknown) => {
      // A part that is away (the store during an outage) is expected and reported where it is
      // watched (readiness, the store's own log); anything else is a fault here.
      if (err instanceof SwitchboardError && err.condition === "service-unavailable")
        this.log.warn({ err: String(err) }, `could not finish ${what}`);
      else this.log.error({ err: String(err) }, `failed ${what}`);
    });
  }

  private async answer(iq: Element, payload: Element): Promise<IqAnswer> {
    if (this.fromOtherTenant(iq)) return errorElement("forbidden", OTHER_TENANT);
    try {
      if (isVcardGet(iq, payload)) {
        return await answerVcard(iq, this.domains, this.directory);
      }
      return answerIq(iq, payload, this.identity);
    } catch (err) {
      if (!(err instanceof SwitchboardError)) throw err; // the callee answers internal-server-error
      return errorElement(err.condition, err.message);
    }
  }

  /** Whether a stanza comes from another tenant's domain (options.otherTenants). */
  private fromOtherTenant(stanza: Element): boolean {
    if (this.otherTenants.size === 0) return false;
    const from = String(stanza.attrs.from ?? "");
    const bare = from.split("/")[0] ?? "";
    return this.otherTenants.has(bare.slice(bare.indexOf("@") + 1).toLowerCase());
  }

  /**
   * Another tenant's stanza: a subscription, probe or message gets a forbidden error (RFC 6120
   * §8.3.3.4) so its sender learns why; anything else (presence broadcasts, errors, the server's
   * own stanzas) is dropped. Nothing of it reaches this tenant's people or presence.
   */
  private refuseOtherTenant(stanza: Element): void {
    const type = String(stanza.attrs.type ?? "");
    const from = String(stanza.attrs.from ?? "");
    this.log.warn(
      { from, to: String(stanza.attrs.to ?? ""), stanza: stanza.name, type },
      "stanza across tenants refused",
    );
    const answered = stanza.is("message") ? type !== "error" : type === "subscribe" || type === "probe";
    if (answered && from.includes("@"))
      this.guard(this.connection.send(errorReply(stanza, "forbidden", OTHER_TENANT)), "refusing a stanza");
  }

  private onStanza(stanza: Element): void {
    if (!stanza.is("iq") && this.fromOtherTenant(stanza)) {
      this.refuseOtherTenant(stanza);
    } else if (stanza.is("presence")) {
      this.guard(this.presence.onPresence(stanza), "handling presence");
    } else if (stanza.is("message")) {
      if (this.presence.onPrivilege(stanza)) {
        this.advertised = true;
        clearTimeout(this.privilegeTimer);
        if (this.rosterPhones) this.rosterPhones.writeRosters = canWriteRosters(stanza);
      } else this.guard(this.messages.onMessage(stanza), "handling a message");
    }
  }
}
