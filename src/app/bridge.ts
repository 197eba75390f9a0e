// The composition root of `switchboard start`: builds the parts the configuration asks for and
// runs them until told to stop. What is not built yet is refused here with the key path, rather
// than started half-way.
import { readFileSync } from "node:fs";
import { pino } from "pino";
import { startHttpServer } from "../../components/http/http-server.js";
import { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { XmppGateway } from "../../components/xmpp/xmpp-gateway.js";
import type { Config } from "../config/schema.js";
import { SwitchboardError } from "../domain/errors.js";
import type { Logger } from "../ports/logger.js";
import { MemoryPresenceStore } from "../presence/memory-store.js";
import { PresenceService } from "../presence/presence-service.js";
import { addressingFor } from "./addressing.js";
import { AmiClient } from "../../components/asterisk/ami-client.js";
import { AriClient } from "../../components/asterisk/ari-client.js";
import { AsteriskAdapter } from "../../components/asterisk/asterisk-adapter.js";
import { RedisMessageQueue } from "../../components/redis/redis-message-queue.js";
import { RedisPresenceStore } from "../../components/redis/redis-presence-store.js";
import { MemoryMessageQueue } from "../messages/memory-queue.js";
import { OutboundRelay } from "../messages/outbound-relay.js";
import type { MessageQueue } from "../ports/message-queue.js";
import type { DeliveryOutcome } from "../ports/message-port.js";
import { isNewVoicemail, voicemailText, type VoicemailSink } from "../ports/voicemail-port.js";

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** Parts of the configuration that the bridge cannot run yet, with the reason (key path first). */
export function notYetSupported(config: Config): string[] {
  const problems: string[] = [];
  if (config.tenants && config.tenants.length > 0)
    problems.push("tenants: several tenants in one process are not built yet");
  return problems;
}

export interface Bridge {
  xmpp: XmppGateway;
  sip: SipEndpoint;
  stop(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({ level: config.log.level, base: { service: "switchboard" } });
}

export async function startBridge(config: Config, log: Logger): Promise<Bridge> {
  const problems = notYetSupported(config);
  if (problems.length > 0) throw new SwitchboardError("feature-not-implemented", problems.join("\n"));
  // What has been started, to stop in reverse order — on stop(), or when a later part fails to start.
  const started: { what: string; stop: () => Promise<void> | void }[] = [];
  const stopAll = async (): Promise<void> => {
    for (const part of started.splice(0).reverse()) {
      try {
        await part.stop();
      } catch (err) {
        log.warn({ err: String(err), part: part.what }, "stopping failed");
      }
    }
  };
  try {
    const bridge = await compose(config, log, (what, stop) => started.push({ what, stop }));
    return { ...bridge, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function compose(
  config: Config,
  log: Logger,
  started: (what: string, stop: () => Promise<void> | void) => void,
): Promise<Omit<Bridge, "stop">> {
  const store = config.store.url
    ? await RedisPresenceStore.connect({
        url: config.store.url,
        prefix: config.store.prefix,
        log: log.child({ component: "redis" }),
      })
    : new MemoryPresenceStore();
  if (store instanceof RedisPresenceStore) started("presence store", () => store.close());
  const presence = new PresenceService(store);
  if (store instanceof RedisPresenceStore) {
    // Back after an outage: what other instances wrote meanwhile was never announced here.
    let lost = false;
    store.on("readiness", (ready) => {
      if (!ready) lost = true;
      else if (lost) {
        lost = false;
        presence
          .resync()
          .then((count) => log.info({ count }, "presence announced again after the store came back"))
          .catch((err: unknown) => log.warn({ err: String(err) }, "presence resync failed"));
      }
    });
  }
  started("presence service", () => presence.close());
  const queue: MessageQueue & { close?: () => Promise<void>; ready?: () => boolean } = config.store.url
    ? await RedisMessageQueue.connect({
        url: config.store.url,
        prefix: config.store.prefix,
        log: log.child({ component: "redis" }),
      })
    : new MemoryMessageQueue();
  started("message queue", () => queue.close?.());
  // LDAP first, then the config file's people; ENUM for numbers nobody in them has.
  const addressing = addressingFor(config, log);
  started("directory", () => addressing.close());
  const directory = addressing.directory;
  // A new voicemail (SIP message-summary or Asterisk AMI) becomes a chat notice from the gateway.
  const voicemail: VoicemailSink = {
    mailboxChanged: (change) => {
      log.info(
        { person: change.person, mailbox: change.mailbox, counts: change.counts },
        "voicemail changed",
      );
      return isNewVoicemail(change)
        ? xmpp.notify(change.person, voicemailText(change.counts))
        : Promise.resolve();
    },
  };
  // XMPP → SIP: a chat user's message to a gateway contact goes through the relay (below); the
  // gateway connects only at xmpp.start(), once everything it hands messages to exists.
  const xmpp = new XmppGateway({
    connection: config.xmpp.component,
    homeDomain: config.domain,
    version: version(),
    defaultRegion: config.enum?.defaultRegion ?? "GB",
    presence,
    allowedDomains: config.xmpp.allowedDomains,
    directory,
    rosterPhones: config.xmpp.rosterPhones,
    maxMessageBytes: config.xmpp.maxMessageBytes,
    messages: { deliver: (message): Promise<DeliveryOutcome> => relay.deliver(message) },
    log,
  });
  // SIP → XMPP: a MESSAGE is accepted once the XMPP side has it (sent, or held while the
  // component reconnects).
  const sip = await SipEndpoint.start({
    listen: config.sip.listen,
    domains: { homeDomain: config.domain, gatewayDomain: config.xmpp.component.jid },
    directory,
    toXmpp: { deliver: (message) => xmpp.deliverToXmpp(message).then(() => "accepted" as const) },
    trustedPeers: config.sip.trustedPeers,
    users: config.sip.users,
    digestAlgorithms: config.sip.digestAlgorithms,
    ...(config.sip.realm ? { realm: config.sip.realm } : {}),
    maxMessageBytes: config.xmpp.maxMessageBytes,
    outboundProxy: config.sip.outboundProxy,
    ...(config.sip.auth ? { credentials: config.sip.auth } : {}),
    ...(config.sip.dnsServers ? { dnsServers: config.sip.dnsServers } : {}),
    ...(config.sip.tls ? { tls: config.sip.tls } : {}),
    timers: config.sip.timers,
    ...(addressing.enumLookup
      ? {
          // The SIP side has asked the directory already: ENUM alone, not the whole chain again.
          enumSip: async (e164: string) =>
            (await addressing.enumLookup?.resolve(e164))?.targets.find((t) => t.service === "sip")?.uri ??
            null,
        }
      : {}),
    ...(config.sip.advertisedHost ? { advertisedHost: config.sip.advertisedHost } : {}),
    ...(config.sip.regEvents
      ? {
          regEvents: {
            registrar: config.sip.regEvents.registrar,
            expires: config.sip.regEvents.expires,
            // The phone registered again: its waiting messages go at once.
            onOnline: (person: string) => relay.recipientOnline(person),
          },
        }
      : {}),
    minExpires: config.sip.minExpires,
    ...(config.sip.mwi
      ? {
          mwi: {
            expires: config.sip.mwi.expires,
            mailboxes: config.sip.mwi.mailboxes.map((m) => ({
              person: `${m.user.toLowerCase()}@${config.domain}`,
              uri: m.uri,
              ...(m.account ? { account: m.account } : {}),
            })),
            sink: voicemail,
          },
        }
      : {}),
    presence,
    allowedDomains: config.xmpp.allowedDomains,
    log: log.child({ component: "sip" }),
  });
  started("sip endpoint", () => sip.stop());
  // XMPP → SIP through the relay: a phone that is offline gets the message queued and retried.
  const relay: OutboundRelay = new OutboundRelay({
    // A phone on Asterisk gets it through ARI when asterisk.messages says so; others by SIP.
    send: (message) =>
      pbx?.adapter.handles(message.to) ? pbx.adapter.sendMessage(message) : sip.sendMessage(message),
    queue,
    reports: xmpp.reports,
    log: log.child({ component: "queue" }),
    ttlMs: config.store.queue.ttlSeconds * 1000,
    retryMinMs: config.store.queue.retryMinSeconds * 1000,
    retryMaxMs: config.store.queue.retryMaxSeconds * 1000,
    recipients: {
      waiting: (person) => {
        sip
          .watchRegistration(person)
          .catch((err: unknown) =>
            log.warn({ err: String(err), person }, "cannot follow the phone's registration"),
          );
      },
      done: (person) => {
        void sip.reg?.unwatch(person);
      },
    },
  });
  started("xmpp gateway", () => xmpp.stop());
  started("outbound relay", () => relay.stop());
  const pbx = config.asterisk
    ? asteriskFor(config.asterisk, config.domain, presence, voicemail, relay, xmpp, log)
    : undefined;
  if (pbx) started("asterisk", () => pbx.adapter.stop());
  xmpp.start();
  relay.start();
  pbx?.adapter.start();
  // Watchers' subscriptions kept in the store: they go on, each with a NOTIFY of the state now.
  await sip.notifier?.restore();
  // Read-only HTTP: health, readiness, metrics, and the presence API `switchboard presence` asks.
  const http = await startHttpServer({
    listen: config.http.listen,
    presence,
    domains: { homeDomain: config.domain, gatewayDomain: config.xmpp.component.jid },
    ready: () => {
      const reasons: string[] = [];
      if (xmpp.connection.state !== "online") reasons.push("xmpp component offline");
      if (store instanceof RedisPresenceStore && !store.ready())
        reasons.push("redis unreachable (presence store)");
      if (pbx && !pbx.ari.connected) reasons.push("asterisk ARI unreachable");
      if (pbx?.ami && !pbx.ami.connected) reasons.push("asterisk AMI unreachable");
      if (queue.ready && !queue.ready()) reasons.push("redis unreachable (message queue)");
      return { ready: reasons.length === 0, reasons };
    },
    metrics: async () =>
      [
        "# HELP switchboard_queued_messages Messages waiting for an offline phone.",
        "# TYPE switchboard_queued_messages gauge",
        `switchboard_queued_messages ${await queue.size()}`,
        "",
      ].join("\n"),
    version: version(),
    log,
  });
  started("http", () => http.close());
  log.info(
    {
      domain: config.domain,
      gateway: config.xmpp.component.jid,
      store: config.store.url ? "redis" : "memory",
      sip: config.sip.listen,
    },
    "switchboard started",
  );
  return { xmpp, sip };
}

/** The Asterisk side from `asterisk`: ARI and AMI clients and the adapter between them and presence. */
function asteriskFor(
  config: NonNullable<Config["asterisk"]>,
  domain: string,
  presence: PresenceService,
  voicemail: VoicemailSink,
  relay: OutboundRelay,
  xmpp: XmppGateway,
  log: Logger,
): { adapter: AsteriskAdapter; ari: AriClient; ami: AmiClient | undefined } {
  const pbxLog = log.child({ component: "asterisk" });
  const ari = new AriClient({
    url: config.url,
    username: config.username,
    password: config.password,
    app: config.app,
    log: pbxLog,
  });
  const ami = config.ami ? new AmiClient({ ...config.ami, log: pbxLog }) : undefined;
  const adapter = new AsteriskAdapter({
    ari,
    ...(ami ? { ami } : {}),
    users: config.users.map((u) => ({
      person: `${u.user.toLowerCase()}@${domain}`,
      devices: u.devices ?? [`PJSIP/${u.user}`],
      presence: u.presence ?? u.user,
      mailbox: u.mailbox ?? `${u.user}@default`,
      ...(config.messages ? { endpoint: u.endpoint ?? `PJSIP/${u.user}` } : {}),
    })),
    homeDomain: domain,
    // A phone on Asterisk writes to a chat user (TextMessageReceived).
    toXmpp: { deliver: (message) => xmpp.deliverToXmpp(message).then(() => "accepted" as const) },
    presence,
    direction: config.presenceDirection,
    voicemail,
    // The phone registered with Asterisk again: its waiting messages go at once.
    onPhoneOnline: (person) => {
      relay
        .recipientOnline(person)
        .catch((err: unknown) => pbxLog.warn({ err: String(err) }, "queue retry failed"));
    },
    log: pbxLog,
  });
  return { adapter, ari, ami };
}
