// The metrics port (src/ports/metrics.ts) in Prometheus form, with prom-client: counters and
// histograms moved by the parts as they work, gauges read at scrape time from `levels`, and the
// process and Node.js defaults (CPU, memory, open file descriptors, event loop lag). Label values
// that come from the network (a SIP method, a stanza name) are folded into a fixed set, so a peer
// cannot grow the number of series.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { LookupOutcome, LookupStep, Metrics, MessageDirection } from "../../src/ports/metrics.js";

/** Levels read when /metrics is scraped; each is optional (a part that is not configured). */
export interface MetricLevels {
  /** Active SIP subscriptions watchers hold here (presence and dialog). */
  sipSubscriptions?: () => number;
  /** XMPP subscriptions to gateway contacts (subscriber–contact pairs). */
  xmppSubscriptions?: () => Promise<number>;
  /** Messages waiting for an offline phone, and when the oldest was queued (epoch ms). */
  queue?: () => Promise<{ depth: number; oldestQueuedAt: number | undefined }>;
  /** Connection state of each outside system the bridge holds a connection to (true: up). */
  connections?: () => Record<string, boolean>;
  now?: () => number;
}

const SIP_METHODS = new Set([
  "INVITE",
  "ACK",
  "BYE",
  "CANCEL",
  "OPTIONS",
  "REGISTER",
  "MESSAGE",
  "PUBLISH",
  "SUBSCRIBE",
  "NOTIFY",
  "INFO",
  "UPDATE",
  "REFER",
  "PRACK",
]);
const STANZAS = new Set(["message", "presence", "iq"]);

function method(name: string): string {
  return SIP_METHODS.has(name) ? name : "other";
}

function stanza(name: string): string {
  return STANZAS.has(name) ? name : "other";
}

// Codes SIP peers commonly answer; any other is folded into its class (4xx...), so a peer cannot
// spread one method over hundreds of series.
const CODES = new Set([
  100, 180, 183, 200, 202, 401, 403, 404, 405, 407, 408, 410, 413, 415, 420, 423, 480, 481, 482, 483, 486,
  487, 488, 489, 500, 501, 502, 503, 504, 513, 600, 603, 604, 606,
]);

/** A status as a label: a common code itself, another its class; 0 (no response at all) "none". */
function code(status: number): string {
  if (status === 0) return "none";
  if (CODES.has(status)) return String(status);
  return Number.isInteger(status) && status >= 100 && status <= 699
    ? `${Math.floor(status / 100)}xx`
    : "other";
}

// Relay latency: a message handed to a connected peer takes well under a millisecond here; a
// located, challenged or retried one takes seconds (Timer F is 32 s).
const RELAY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 32];
const LOOKUP_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** One scrape's reading of the levels; undefined where not configured or not readable. */
interface Reading {
  sip: number | undefined;
  xmpp: number | undefined;
  queue: { depth: number; oldestQueuedAt: number | undefined } | undefined;
  failed: string[];
}

/** The security events a label may name; anything else is counted as "other". */
const SECURITY_EVENTS = new Set([
  "FailedACL",
  "InvalidAccountID",
  "ChallengeResponseFailed",
  "RequestBadFormat",
  "RequestNotAllowed",
  "NonceReplayed",
  "RateLimited",
  "ScannerDropped",
]);

export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly messages: Counter<"direction" | "outcome">;
  private readonly relaySeconds: Histogram<"direction">;
  private readonly presenceUpdates: Counter<"source">;
  private readonly sipSent: Counter<"method" | "code">;
  private readonly sipAnswered: Counter<"method" | "code">;
  private readonly stanzasSent: Counter<"name">;
  private readonly stanzasReceived: Counter<"name">;
  private readonly lookupSeconds: Histogram<"step" | "outcome">;
  private readonly cacheLookups: Counter<"cache" | "result">;
  private readonly queueOutcomes: Counter<"outcome">;
  private readonly securityEvents: Counter<"event">;

  constructor(levels: MetricLevels = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.messages = new Counter({
      name: "switchboard_messages_total",
      help: "Chat messages taken in, by direction and outcome (delivered, accepted, queued, or the error condition).",
      labelNames: ["direction", "outcome"],
      registers,
    });
    this.relaySeconds = new Histogram({
      name: "switchboard_message_relay_seconds",
      help: "Time from taking a message in to its outcome, in seconds.",
      labelNames: ["direction"],
      buckets: RELAY_BUCKETS,
      registers,
    });
    this.presenceUpdates = new Counter({
      name: "switchboard_presence_updates_total",
      help: "Presence states reported, by source (xmpp, sip-publish, pbx-device, pbx-custom).",
      labelNames: ["source"],
      registers,
    });
    this.sipSent = new Counter({
      name: "switchboard_sip_requests_sent_total",
      help: "SIP requests sent (NOTIFY, MESSAGE, SUBSCRIBE...), by method and the final status received.",
      labelNames: ["method", "code"],
      registers,
    });
    this.sipAnswered = new Counter({
      name: "switchboard_sip_requests_answered_total",
      help: "SIP requests received and answered, by method and the final status sent.",
      labelNames: ["method", "code"],
      registers,
    });
    this.stanzasSent = new Counter({
      name: "switchboard_xmpp_stanzas_sent_total",
      help: "Stanzas written to the XMPP component connection, by element (message, presence, iq).",
      labelNames: ["name"],
      registers,
    });
    this.stanzasReceived = new Counter({
      name: "switchboard_xmpp_stanzas_received_total",
      help: "Stanzas read from the XMPP component connection, by element.",
      labelNames: ["name"],
      registers,
    });
    this.lookupSeconds = new Histogram({
      name: "switchboard_lookup_seconds",
      help: "Address lookups, by step (config, ldap, enum) and outcome (found, not-found, error), in seconds.",
      labelNames: ["step", "outcome"],
      buckets: LOOKUP_BUCKETS,
      registers,
    });
    this.cacheLookups = new Counter({
      name: "switchboard_cache_lookups_total",
      help: "Lookups asked of a cache (ldap, enum), by result (hit, miss).",
      labelNames: ["cache", "result"],
      registers,
    });
    this.securityEvents = new Counter({
      name: "switchboard_security_events_total",
      help: "Requests refused and logged as security events, by event (FailedACL, InvalidAccountID, ChallengeResponseFailed, RequestBadFormat, RequestNotAllowed, NonceReplayed, RateLimited, ScannerDropped).",
      labelNames: ["event"],
      registers,
    });
    this.queueOutcomes = new Counter({
      name: "switchboard_queue_outcomes_total",
      help: "Messages that left the offline queue: delivered, accepted, or the condition they failed with (recipient-unavailable after the TTL...).",
      labelNames: ["outcome"],
      registers,
    });
    const cacheLookups = this.cacheLookups;
    new Gauge({
      name: "switchboard_cache_hit_ratio",
      help: "Share of a cache's lookups answered from the cache since start (0 to 1).",
      labelNames: ["cache"],
      registers,
      async collect() {
        this.reset();
        const values = (await cacheLookups.get()).values;
        for (const cache of new Set(values.map((v) => String(v.labels.cache)))) {
          const count = (result: string): number =>
            values.find((v) => v.labels.cache === cache && v.labels.result === result)?.value ?? 0;
          const total = count("hit") + count("miss");
          if (total > 0) this.set({ cache }, count("hit") / total);
        }
      },
    });
    const { sipSubscriptions, xmppSubscriptions, queue, connections } = levels;
    const now = levels.now ?? Date.now;
    // The levels are read once per scrape, all together. One that cannot be read (Redis down)
    // reads NaN for that scrape and is counted; it never fails the scrape (prom-client collects
    // every metric with Promise.all, so one rejection would drop them all).
    let reading: Promise<Reading> | undefined;
    const readLevels = (): Promise<Reading> => {
      reading ??= (async (): Promise<Reading> => {
        const failed: string[] = [];
        const attempt = async <T>(name: string, read?: () => T | Promise<T>): Promise<T | undefined> => {
          if (!read) return undefined;
          try {
            return await read();
          } catch {
            failed.push(name);
            return undefined;
          }
        };
        const [sip, xmpp, waiting] = await Promise.all([
          attempt("sip-subscriptions", sipSubscriptions),
          attempt("xmpp-subscriptions", xmppSubscriptions),
          attempt("queue", queue),
        ]);
        return { sip, xmpp, queue: waiting, failed };
      })().finally(() => setImmediate(() => (reading = undefined)));
      return reading;
    };
    const orNaN = (value: number | undefined): number => value ?? Number.NaN;
    new Counter({
      name: "switchboard_metric_collect_failures_total",
      help: "Levels that could not be read at a scrape (their gauges read NaN), by level (sip-subscriptions, xmpp-subscriptions, queue).",
      labelNames: ["level"],
      registers,
      async collect() {
        for (const level of (await readLevels()).failed) this.inc({ level });
      },
    });
    if (sipSubscriptions) {
      new Gauge({
        name: "switchboard_sip_subscriptions",
        help: "Active SIP subscriptions held by watchers (presence and dialog).",
        registers,
        async collect() {
          this.set(orNaN((await readLevels()).sip));
        },
      });
    }
    if (xmppSubscriptions) {
      new Gauge({
        name: "switchboard_xmpp_subscriptions",
        help: "XMPP subscriptions to gateway contacts (subscriber and contact pairs).",
        registers,
        async collect() {
          this.set(orNaN((await readLevels()).xmpp));
        },
      });
    }
    if (queue) {
      new Gauge({
        name: "switchboard_queue_depth",
        help: "Messages waiting for an offline phone.",
        registers,
        async collect() {
          this.set(orNaN((await readLevels()).queue?.depth));
        },
      });
      new Gauge({
        name: "switchboard_queue_oldest_age_seconds",
        help: "Age of the oldest waiting message, in seconds (0 when none waits).",
        registers,
        async collect() {
          const waiting = (await readLevels()).queue;
          if (waiting === undefined) this.set(Number.NaN);
          else if (waiting.oldestQueuedAt === undefined) this.set(0);
          else this.set(Math.max(0, (now() - waiting.oldestQueuedAt) / 1000));
        },
      });
    }
    if (connections) {
      new Gauge({
        name: "switchboard_connection_up",
        help: "1 while the connection to an outside system (xmpp, redis, ari, ami, ldap) is up, else 0.",
        labelNames: ["component"],
        registers,
        collect() {
          this.reset();
          for (const [component, up] of Object.entries(connections())) this.set({ component }, up ? 1 : 0);
        },
      });
    }
  }

  message(direction: MessageDirection, outcome: string, seconds: number): void {
    this.messages.inc({ direction, outcome });
    this.relaySeconds.observe({ direction }, seconds);
  }

  presenceUpdate(source: string): void {
    this.presenceUpdates.inc({ source });
  }

  sipRequestSent(name: string, status: number): void {
    this.sipSent.inc({ method: method(name), code: code(status) });
  }

  sipRequestAnswered(name: string, status: number): void {
    this.sipAnswered.inc({ method: method(name), code: code(status) });
  }

  xmppStanzaSent(name: string): void {
    this.stanzasSent.inc({ name: stanza(name) });
  }

  xmppStanzaReceived(name: string): void {
    this.stanzasReceived.inc({ name: stanza(name) });
  }

  lookup(step: LookupStep, outcome: LookupOutcome, seconds: number): void {
    this.lookupSeconds.observe({ step, outcome }, seconds);
  }

  queueOutcome(outcome: string): void {
    this.queueOutcomes.inc({ outcome });
  }

  cacheLookup(cache: "ldap" | "enum", hit: boolean): void {
    this.cacheLookups.inc({ cache, result: hit ? "hit" : "miss" });
  }

  securityEvent(event: string): void {
    this.securityEvents.inc({ event: SECURITY_EVENTS.has(event) ? event : "other" });
  }

  /** The exposition text for /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
