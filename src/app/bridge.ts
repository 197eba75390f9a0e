// The composition root of `switchboard start`: builds the parts the configuration asks for and
// runs them until told to stop. What is not built yet is refused here with the key path, rather
// than started half-way.
import { readFileSync } from "node:fs";
import { pino } from "pino";
import { startHttpServer } from "../../components/http/http-server.js";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
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
import { ComponentLease } from "../../components/redis/component-lease.js";
import { RedisMessageQueue } from "../../components/redis/redis-message-queue.js";
import { redisTargetOf } from "../../components/redis/redis-connection.js";
import { RedisPresenceStore } from "../../components/redis/redis-presence-store.js";
import { XmppRelay, type RelayJob } from "../../components/redis/xmpp-relay.js";
import { MemoryMessageQueue } from "../messages/memory-queue.js";
import { OutboundRelay } from "../messages/outbound-relay.js";
import type { MessageQueue } from "../ports/message-queue.js";
import type { DeliveryOutcome } from "../ports/message-port.js";
import { isNewVoicemail, voicemailText, type VoicemailSink } from "../ports/voicemail-port.js";
import { PromMetrics, type MetricLevels } from "../../components/http/prom-metrics.js";
import { keepPaths, reloadPlan, type ReloadPlan } from "../config/reload.js";
import { RecentMessages } from "../messages/recent-messages.js";
import type { ChatMessage } from "../ports/message-port.js";
import { secondsSince, type MessageDirection } from "../ports/metrics.js";
import { otherTenantDomains, tenantsOf } from "../config/tenants.js";
import { SipTenantRouter } from "../../components/sip/sip-tenant-router.js";
import { sumOfGauges } from "./tenant-gauges.js";

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** Parts of the configuration that the bridge cannot run yet, with the reason (key path first). */
export function notYetSupported(_config: Config): string[] {
  return [];
}

/** One tenant's parts (docs/tenants.md); a config without `tenants` has one, the default. */
export interface TenantParts {
  name: string;
  xmpp: XmppGateway;
  sip: SipEndpoint;
  relay: OutboundRelay;
}

export interface Bridge {
  /** The default (top-level) tenant's parts; every tenant's are in `tenants`. */
  xmpp: XmppGateway;
  sip: SipEndpoint;
  relay: OutboundRelay;
  tenants: TenantParts[];
  metrics: PromMetrics;
  recent: RecentMessages;
  /**
   * Applies what a new config may change while running (directory entries, allowed domains; the
   * log level is the logger owner's) and returns the plan: what was applied, what needs a restart.
   * Throws a SwitchboardError, changing nothing, when the new config asks for what is not built.
   */
  reload(next: Config): ReloadPlan;
  stop(): Promise<void>;
}

/** Field names whose values are secrets wherever they appear (config keys, headers). */
const SECRET_KEYS = ["password", "secret", "ha1", "authorization", "proxyAuthorization", "credentials"];

/** The process's logger: the Logger port, and a level that a reload may change. */
export type BridgeLogger = Logger & { level: string };

export function createLogger(config: Config): BridgeLogger {
  return pino({
    level: config.log.level,
    base: { service: "switchboard" },
    // Defence in depth: no part logs these, and should one ever pass a config object or a header
    // set, the values still stay out of the log.
    redact: {
      paths: [...SECRET_KEYS, ...SECRET_KEYS.map((key) => `*.${key}`)],
      censor: "[redacted]",
    },
  });
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
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        try {
          await drain(bridge, log);
        } finally {
          await stopAll();
        }
      })());
    return { ...bridge, stop };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

type Started = (what: string, stop: () => Promise<void> | void) => void;

/**
 * Every tenant composed alike (src/config/tenants.ts gives each its single-company config) on one
 * SIP listener, one HTTP server and one set of metrics; nothing else is shared between tenants.
 */
async function compose(config: Config, log: Logger, started: Started): Promise<Omit<Bridge, "stop">> {
  const tenants = tenantsOf(config);
  const several = tenants.length > 1;
  const gauges: TenantGauges[] = [];
  const metrics = new PromMetrics(sumOfGauges(gauges));
  const recent = new RecentMessages();
  // One listener, one endpoint per tenant; requests wait (503) until every tenant is composed.
  const router = await SipTenantRouter.listen(
    {
      listen: config.sip.listen,
      maxMessageBytes: config.xmpp.maxMessageBytes,
      ...(config.sip.tls ? { tls: config.sip.tls } : {}),
      ...(config.sip.advertisedHost ? { advertisedHost: config.sip.advertisedHost } : {}),
      ...(config.log.wire.sip ? { wireLog: log.child({ component: "sip", wire: "sip" }) } : {}),
    },
    log.child({ component: "sip" }),
  );
  started("sip listener", () => router.stop());
  const parts: ComposedTenant[] = [];
  for (const tenant of tenants) {
    const part = await composeTenant(
      tenant.config,
      several ? log.child({ tenant: tenant.name }) : log,
      started,
      { metrics, recent, router, otherTenants: otherTenantDomains(tenants, tenant) },
    );
    gauges.push(part.gauges);
    parts.push(part);
  }
  router.open();
  // Read-only HTTP: health, readiness, metrics, and the presence API `switchboard presence` asks.
  const first = parts[0];
  if (!first) throw new Error("no tenant");
  const http = await startHttpServer({
    listen: config.http.listen,
    presence: first.presence,
    domains: first.domains,
    ...(several ? { tenants: parts.map((p) => ({ presence: p.presence, domains: p.domains })) } : {}),
    ready: () => {
      const reasons = parts.flatMap((part, i) =>
        part.reasons().map((reason) => (several ? `${tenants[i]?.name ?? ""}: ${reason}` : reason)),
      );
      return { ready: reasons.length === 0, reasons };
    },
    metrics: () => metrics.text(),
    status: {
      people: async () => [...new Set((await Promise.all(parts.map((p) => p.people()))).flat())],
      onPresence: (listener) => {
        const offs = parts.map((p) => p.onPresence(listener));
        return () => offs.forEach((off) => off());
      },
      messages: () => recent.list(),
      onMessage: (listener) => {
        recent.on("message", listener);
        return () => recent.off("message", listener);
      },
    },
    ...(config.http.auth ? { auth: config.http.auth } : {}),
    version: version(),
    log,
  });
  started("http", () => http.close());
  log.info(
    {
      domain: config.domain,
      gateway: config.xmpp.component.jid,
      ...(several ? { tenants: tenants.slice(1).map((t) => t.name) } : {}),
      store: storeKind(config),
      sip: config.sip.listen,
    },
    "switchboard started",
  );
  let current = config;
  const reload = (next: Config): ReloadPlan => {
    const problems = notYetSupported(next);
    if (problems.length > 0) throw new SwitchboardError("feature-not-implemented", problems.join("\n"));
    const plan = reloadPlan(current, next);
    // What needs a restart keeps running as before, so the next reload compares against that.
    current = keepPaths(next, current, plan.restart);
    // A change under `tenants` needs a restart (kept above): each tenant gets its own part again.
    tenantsOf(current).forEach((tenant, i) => parts[i]?.reload(tenant.config));
    return plan;
  };
  return {
    xmpp: first.xmpp,
    sip: first.sip,
    relay: first.relay,
    tenants: parts.map((p, i) => ({
      name: tenants[i]?.name ?? "",
      xmpp: p.xmpp,
      sip: p.sip,
      relay: p.relay,
    })),
    metrics,
    recent,
    reload,
  };
}

/** What a tenant's parts tell the process-wide metrics (summed over tenants in sumOfGauges). */
type TenantGauges = MetricLevels;

/** A tenant as composeTenant leaves it: its parts, and what the shared HTTP server asks of it. */
interface ComposedTenant {
  xmpp: XmppGateway;
  sip: SipEndpoint;
  relay: OutboundRelay;
  presence: PresenceService;
  domains: { homeDomain: string; gatewayDomain: string };
  gauges: TenantGauges;
  /** Why the tenant is not ready; empty when it is. */
  reasons: () => string[];
  people: () => Promise<string[]>;
  onPresence: (listener: (person: string) => void) => () => void;
  /** Applies what a reload may change while running (directory entries, allowed domains). */
  reload: (next: Config) => void;
}

/** One tenant's parts, as a whole bridge for one company on the shared SIP listener and metrics. */
async function composeTenant(
  config: Config,
  log: Logger,
  started: Started,
  shared: { metrics: PromMetrics; recent: RecentMessages; router: SipTenantRouter; otherTenants: string[] },
): Promise<ComposedTenant> {
  const { metrics, recent } = shared;
  let xmppSubscriptionCount: { at: number; value: Promise<number> } | undefined;
  const gauges: TenantGauges = {
    sipSubscriptions: () => sip.notifier?.size ?? 0,
    // Counting reads every contact's subscribers: done at most every 30 s, not at every scrape.
    xmppSubscriptions: () => {
      if (xmppSubscriptionCount && Date.now() - xmppSubscriptionCount.at < 30_000)
        return xmppSubscriptionCount.value;
      const value = (async () => {
        const contacts = await store.xmppSubscribedContacts();
        const counts = await Promise.all(contacts.map(async (c) => (await store.xmppSubscribers(c)).length));
        return counts.reduce((a, b) => a + b, 0);
      })();
      xmppSubscriptionCount = { at: Date.now(), value };
      value.catch(() => (xmppSubscriptionCount = undefined));
      return value;
    },
    queue: async () => {
      const [depth, oldestQueuedAt] = await Promise.all([queue.size(), queue.oldestQueuedAt()]);
      return { depth, oldestQueuedAt };
    },
    connections: (): Record<string, boolean> => ({
      xmpp: xmpp.connection.state === "online",
      ...(store instanceof RedisPresenceStore ? { redis: store.ready() } : {}),
      ...(pbx ? { ari: pbx.ari.connected } : {}),
      ...(pbx?.ami ? { ami: pbx.ami.connected } : {}),
      ...(addressing.ldap ? { ldap: addressing.ldap.reachable } : {}),
    }),
  };
  /** A message's way through the bridge, counted and listed (chat states alone are not messages). */
  const observed =
    <T extends string>(direction: MessageDirection, deliver: (message: ChatMessage) => Promise<T>) =>
    async (message: ChatMessage): Promise<T> => {
      if (message.body === undefined) return deliver(message);
      const at = Date.now();
      const start = performance.now();
      const note = (outcome: string): void => {
        const seconds = secondsSince(start);
        metrics.message(direction, outcome, seconds);
        recent.add({ at, direction, from: message.from, to: message.to, outcome, ms: seconds * 1000 });
      };
      try {
        const outcome = await deliver(message);
        note(outcome);
        return outcome;
      } catch (err) {
        note(err instanceof SwitchboardError ? err.condition : "internal-server-error");
        throw err;
      }
    };
  // A single Redis, a Sentinel set or a Cluster (store.url, store.sentinel, store.cluster); none: memory.
  const redis = redisTargetOf(config.store);
  const store = redis
    ? await RedisPresenceStore.connect({
        target: redis,
        prefix: config.store.prefix,
        log: log.child({ component: "redis" }),
      })
    : new MemoryPresenceStore();
  if (store instanceof RedisPresenceStore) started("presence store", () => store.close());
  const presence = new PresenceService(store);
  presence.on("report", (_person, record) => metrics.presenceUpdate(record.source.kind));
  if (store instanceof RedisPresenceStore) {
    // Back after an outage: what other instances wrote meanwhile was never announced here.
    let lost = false;
    store.on("readiness", (ready) => {
      if (!ready) lost = true;
      else if (lost) {
        lost = false;
        // First what sources reported while it was away (held), then everything announced again.
        presence
          .retryHeld()
          .then((written) => {
            if (written > 0) log.info({ written }, "presence held during the store's outage written");
            return presence.resync();
          })
          .then((count) => log.info({ count }, "presence announced again after the store came back"))
          .catch((err: unknown) => log.warn({ err: String(err) }, "presence resync failed"));
      }
    });
  }
  // Reports held while the store could not take them are written when it is back (above); a
  // command that merely timed out changes no readiness, so they are also tried every 5 s.
  const heldRetry = setInterval(() => {
    if (presence.heldCount > 0 && (!(store instanceof RedisPresenceStore) || store.ready()))
      void presence.retryHeld();
  }, 5_000).unref();
  started("presence service", () => {
    clearInterval(heldRetry);
    presence.close();
  });
  const queue: MessageQueue & { close?: () => Promise<void>; ready?: () => boolean } = redis
    ? await RedisMessageQueue.connect({
        target: redis,
        prefix: config.store.prefix,
        waitReplicas: config.store.queue.waitReplicas,
        waitTimeoutMs: config.store.queue.waitTimeoutMs,
        log: log.child({ component: "redis" }),
      })
    : new MemoryMessageQueue();
  started("message queue", () => queue.close?.());
  // LDAP first, then the config file's people; ENUM for numbers nobody in them has.
  const addressing = addressingFor(config, log, metrics);
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
        ? toXmpp({ kind: "notice", person: change.person, body: voicemailText(change.counts) })
        : Promise.resolve();
    },
  };
  // XMPP → SIP: a chat user's message to a gateway contact goes through the relay (below); the
  // gateway connects only at xmpp.start(), once everything it hands messages to exists.
  const xmpp: XmppGateway = new XmppGateway({
    connection: config.xmpp.component,
    homeDomain: config.domain,
    version: version(),
    defaultRegion: config.enum?.defaultRegion ?? "GB",
    presence,
    allowedDomains: config.xmpp.allowedDomains,
    directory,
    rosterPhones: config.xmpp.rosterPhones,
    maxMessageBytes: config.xmpp.maxMessageBytes,
    messages: {
      deliver: observed("xmpp-to-sip", (message): Promise<DeliveryOutcome> => relay.deliver(message)),
    },
    log,
    metrics,
    ...(config.log.wire.xmpp ? { wireLog: log.child({ component: "xmpp", wire: "xmpp" }) } : {}),
    otherTenants: shared.otherTenants,
  });
  // SIP → XMPP: a MESSAGE is accepted once the XMPP side has it (sent, or held while the
  // component reconnects).
  const sip = shared.router.add({
    listen: config.sip.listen,
    domains: { homeDomain: config.domain, gatewayDomain: config.xmpp.component.jid },
    directory,
    toXmpp: {
      deliver: observed("sip-to-xmpp", (message) =>
        toXmpp({ kind: "message", message }).then(() => "accepted" as const),
      ),
    },
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
    // With Redis, instances may share the store: subscription dialogs are read from it.
    ...(redis
      ? { sharedStore: config.sip.dialogContact ? { dialogContact: config.sip.dialogContact } : {} }
      : {}),
    ...(config.sip.regEvents
      ? {
          regEvents: {
            registrar: config.sip.regEvents.registrar,
            expires: config.sip.regEvents.expires,
            // The phone registered again: its waiting messages go at once (by the queue's owner).
            onOnline: (person: string) => (relay.active ? relay.recipientOnline(person) : Promise.resolve()),
          },
        }
      : {}),
    minExpires: config.sip.minExpires,
    ...(config.sip.rateLimit.requestsPerSecond > 0
      ? {
          rateLimit: {
            perSecond: config.sip.rateLimit.requestsPerSecond,
            burst: config.sip.rateLimit.burst,
            trustedPeers: config.sip.rateLimit.trustedPeers,
          },
        }
      : {}),
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
    metrics,
    ...(config.log.wire.sip ? { wireLog: log.child({ component: "sip", wire: "sip" }) } : {}),
    otherTenants: shared.otherTenants,
  });
  started("sip endpoint", () => sip.stop());
  // XMPP → SIP through the relay: a phone that is offline gets the message queued and retried.
  const relay: OutboundRelay = new OutboundRelay({
    // A phone on Asterisk gets it through ARI when asterisk.messages says so; others by SIP.
    send: (message) =>
      pbx?.adapter.handles(message.to) ? pbx.adapter.sendMessage(message) : sip.sendMessage(message),
    queue,
    // Counted as the queue's outcomes, then told to the sender as before.
    reports: {
      delivered: (message, outcome) => {
        metrics.queueOutcome(outcome);
        return xmpp.reports.delivered(message, outcome);
      },
      failed: (message, condition, text) => {
        metrics.queueOutcome(condition);
        return xmpp.reports.failed(message, condition, text);
      },
    },
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
  // Stopped after the lease and the relay below (the list stops in reverse): the lease goes back at
  // once, so another instance takes over while this one still sends what it holds.
  started("xmpp gateway", () => xmpp.stop());
  // With Redis, several instances may share the store and the gateway domain, and Prosody takes one
  // component connection per domain: the instance holding the lease connects it (docs/scaling.md).
  const lease = redis
    ? new ComponentLease({
        target: redis,
        prefix: config.store.prefix,
        gateway: config.xmpp.component.jid,
        log: log.child({ component: "lease" }),
      })
    : undefined;
  if (lease) started("xmpp component lease", () => lease.stop());
  // XMPP-bound work that reaches an instance without the component goes to the holder through Redis.
  const xmppRelay =
    lease && redis
      ? new XmppRelay({
          target: redis,
          prefix: config.store.prefix,
          gateway: config.xmpp.component.jid,
          instance: lease.instance,
          log: log.child({ component: "relay" }),
        })
      : undefined;
  if (xmppRelay) {
    started("xmpp relay", () => xmppRelay.close());
    await xmppRelay.start();
  }
  /** Does one piece of XMPP-bound work here, or hands it to the instance holding the component. */
  function toXmpp(job: RelayJob): Promise<void> {
    if (xmppRelay && lease?.heldElsewhere) return xmppRelay.send(job);
    return doXmppJob(job);
  }
  function doXmppJob(job: RelayJob): Promise<void> {
    return job.kind === "message" ? xmpp.deliverToXmpp(job.message) : xmpp.notify(job.person, job.body);
  }
  // Not awaited: the drain gave a retry round its bounded wait already, and a transaction it still
  // waits for ends when the SIP endpoint stops, later in this list.
  started("outbound relay", () => void relay.stop());
  const pbx = config.asterisk
    ? asteriskFor(
        config.asterisk,
        config.domain,
        presence,
        voicemail,
        relay,
        observed("pbx-to-xmpp", (message) =>
          toXmpp({ kind: "message", message }).then(() => "accepted" as const),
        ),
        log,
      )
    : undefined;
  if (pbx) started("asterisk", () => pbx.adapter.stop());
  if (lease) {
    // The holder connects the component, does the relayed work while it is online, and owns the
    // message queue's retries (one sender per queued message; their outcomes go out over XMPP).
    // Taking and giving up happen one after the other: a lease lost and taken again at once must
    // not start the component while its previous stop is still under way.
    let turns = Promise.resolve();
    const inTurn = (what: string, step: () => Promise<unknown>): void => {
      turns = turns.then(step).then(
        () => undefined,
        (err: unknown) => log.warn({ err: String(err) }, `${what} failed`),
      );
    };
    lease.on("acquired", () =>
      inTurn("taking up the component's work", async () => {
        xmpp.start();
        relay.start();
        // …subscribes to the voicemail boxes (one instance, so one notice per new voicemail), talks
        // to Asterisk (one ARI connection for the application, one CustomPresence writer)…
        sip.mwi?.start();
        pbx?.adapter.start();
        // …and sends the watchers' NOTIFYs on changes and at expiry, each with the state now.
        await sip.notifier?.lead();
      }),
    );
    lease.on("lost", () =>
      inTurn("giving up the component's work", async () => {
        sip.notifier?.follow();
        // The queue round and the unsubscriptions end by themselves (bounded by Timer F); the
        // registrations followed for the queue are the next holder's to follow.
        void sip.mwi?.stop();
        void sip.reg?.unwatchAll();
        void relay.stop();
        await xmppRelay?.pause();
        await Promise.all([xmpp.stop(), pbx?.adapter.stop()]);
      }),
    );
    // Another instance's connection replaced this one's at the XMPP server (Prosody with
    // component_conflict_resolve = "kick_old"): that instance holds the lease now.
    xmpp.connection.on("replaced", () =>
      lease.relinquish("the XMPP server took the component connection for another instance"),
    );
    // The store back after an outage: subscriptions stored or removed meanwhile were never
    // announced here, so the holder reads them all again.
    if (store instanceof RedisPresenceStore)
      store.on("readiness", (ready) => {
        if (ready && lease.held)
          inTurn("reading the stored subscriptions again", async () => {
            if (lease.held) await sip.notifier?.lead();
          });
      });
    if (xmppRelay) {
      xmpp.connection.on("online", () => {
        if (lease.held) xmppRelay.serve(doXmppJob);
      });
      xmpp.connection.on("offline", () => void xmppRelay.pause());
    }
    await lease.start();
  } else {
    xmpp.start();
    relay.start();
    pbx?.adapter.start();
  }
  // Watchers' subscriptions kept in the store: they go on, each with a NOTIFY of the state now
  // (with a lease, by the holder: above).
  if (!lease) await sip.notifier?.restore();
  const domains = { homeDomain: config.domain, gatewayDomain: config.xmpp.component.jid };
  return {
    xmpp,
    sip,
    relay,
    presence,
    domains,
    gauges,
    reasons: () => {
      const reasons: string[] = [];
      // Stopping: the SIP side answers 503 now; a load balancer should look elsewhere.
      if (sip.draining) reasons.push("shutting down");
      // A standby instance is ready when another live instance holds the component.
      if (xmpp.connection.state !== "online" && !lease?.heldElsewhere) reasons.push("xmpp component offline");
      if (store instanceof RedisPresenceStore && !store.ready())
        reasons.push("redis unreachable (presence store)");
      // Asterisk is the holder's to talk to (with a lease); a standby does not connect.
      const talksToPbx = !lease || lease.held;
      if (pbx && talksToPbx && !pbx.ari.connected) reasons.push("asterisk ARI unreachable");
      if (pbx?.ami && talksToPbx && !pbx.ami.connected) reasons.push("asterisk AMI unreachable");
      if (queue.ready && !queue.ready()) reasons.push("redis unreachable (message queue)");
      return reasons;
    },
    people: async () => {
      const kinds = ["xmpp", "sip-publish", "pbx-device", "pbx-custom"] as const;
      const [withPresence, entries] = await Promise.all([
        Promise.all(kinds.map((kind) => store.personsWithSource(kind))),
        directory.entries().catch((err: unknown) => {
          log.warn({ err: String(err) }, "status page: directory not listed");
          return [];
        }),
      ]);
      return [
        ...new Set([
          ...withPresence.flat(),
          ...entries.map((entry) => `${entry.uid.toLowerCase()}@${config.domain}`),
          ...(config.asterisk?.users ?? []).map((u) => `${u.user.toLowerCase()}@${config.domain}`),
        ]),
      ];
    },
    onPresence: (listener) => {
      const onChange = (person: string): void => listener(person);
      presence.on("change", onChange);
      return () => presence.off("change", onChange);
    },
    reload: (next) => {
      addressing.configDirectory.replace(next.directory?.users ?? []);
      xmpp.setAllowedDomains(next.xmpp.allowedDomains);
      sip.setAllowedDomains(next.xmpp.allowedDomains);
    },
  };
}

/** What the store is, for the start-up line: redis (one server), sentinel, cluster, or memory. */
function storeKind(config: Config): string {
  const redis = redisTargetOf(config.store);
  return redis ? ("url" in redis ? "redis" : (Object.keys(redis)[0] ?? "redis")) : "memory";
}

/** How long a graceful stop waits for work in flight, per step. */
const DRAIN_MS = 5_000;

/**
 * The graceful part of a stop: SIP stops taking new requests (503 + Retry-After) and the requests
 * being handled or sent finish; the relay finishes its round; the XMPP side sends what it holds.
 * Each step is bounded; what is left is logged.
 */
async function drain(bridge: Omit<Bridge, "stop">, log: Logger): Promise<void> {
  // Every tenant at once: the bound is per step, not per tenant.
  const each = <T>(step: (tenant: TenantParts) => Promise<T>): Promise<T[]> =>
    Promise.all(bridge.tenants.map(step));
  const sip = (await each((tenant) => tenant.sip.drain(DRAIN_MS))).reduce((a, b) => ({
    handling: a.handling + b.handling,
    sending: a.sending + b.sending,
  }));
  // A retry round already under way may wait for Timer F (32 s): give it the same bound.
  let timer: NodeJS.Timeout | undefined;
  const relayDone = await Promise.race([
    each((tenant) => tenant.relay.stop()).then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), DRAIN_MS))),
  ]);
  clearTimeout(timer);
  if (!relayDone) log.warn({}, "stopping with a queue retry still waiting for its answer");
  const held = (await each((tenant) => tenant.xmpp.connection.drain(DRAIN_MS))).reduce((a, b) => a + b, 0);
  if (sip.handling + sip.sending + held > 0)
    log.warn(
      { sipHandling: sip.handling, sipSending: sip.sending, xmppHeld: held },
      "stopping with work still in flight",
    );
}

/** The Asterisk side from `asterisk`: ARI and AMI clients and the adapter between them and presence. */
function asteriskFor(
  config: NonNullable<Config["asterisk"]>,
  domain: string,
  presence: PresenceService,
  voicemail: VoicemailSink,
  relay: OutboundRelay,
  toXmpp: (message: ChatMessage) => Promise<"accepted">,
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
    toXmpp: { deliver: toXmpp },
    presence,
    direction: config.presenceDirection,
    voicemail,
    // The phone registered with Asterisk again: its waiting messages go at once.
    onPhoneOnline: (person) => {
      if (!relay.active) return; // another instance owns the queue
      relay
        .recipientOnline(person)
        .catch((err: unknown) => pbxLog.warn({ err: String(err) }, "queue retry failed"));
    },
    log: pbxLog,
  });
  return { adapter, ari, ami };
}
