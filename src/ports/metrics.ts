// The metrics port: what the bridge counts as it works. Parts report events here (a message
// relayed, a presence update, a request or stanza sent, a lookup); the Prometheus adapter
// (components/http/prom-metrics.ts) turns them into /metrics. Levels that are read rather than
// counted (queue depth, subscriptions, connection state) are collected at scrape time instead.

/** Which way a chat message crossed the bridge. */
export type MessageDirection = "sip-to-xmpp" | "xmpp-to-sip" | "pbx-to-xmpp";

/** One step of turning an address into another: a directory, ENUM. */
export type LookupStep = "config" | "ldap" | "enum";

/** found: an answer; not-found: none (a definite no); error: the step could not answer. */
export type LookupOutcome = "found" | "not-found" | "error";

export interface Metrics {
  /**
   * A message the bridge took in and relayed or refused. `outcome` is "delivered", "accepted",
   * "queued" or the error condition; `seconds` from taking it in to the outcome.
   */
  message(direction: MessageDirection, outcome: string, seconds: number): void;
  /** A presence source reported a state (xmpp, sip-publish, pbx-device, pbx-custom). */
  presenceUpdate(source: string): void;
  /**
   * A SIP transaction this bridge started, by method, with its final status: 408 for no answer
   * (Timer F), 0 when it could not be sent (or the bridge stopped first). A request retried with
   * credentials after a 401/407 is a second transaction.
   */
  sipRequestSent(method: string, status: number): void;
  /** A SIP request this bridge answered, by method, with the final status it sent. */
  sipRequestAnswered(method: string, status: number): void;
  /** A stanza written to the component connection (message, presence, iq). */
  xmppStanzaSent(name: string): void;
  /** A stanza read from the component connection. */
  xmppStanzaReceived(name: string): void;
  /** One lookup step's answer and how long it took. */
  lookup(step: LookupStep, outcome: LookupOutcome, seconds: number): void;
  /** A message that had been queued for an offline phone left the queue: delivered, or failed (condition). */
  queueOutcome(outcome: string): void;
  /** A cache asked: answered from the cache (hit) or not. */
  cacheLookup(cache: "ldap" | "enum", hit: boolean): void;
  /** A refusal logged as a security event (FailedACL, RateLimited, ...; see docs/security.md). */
  securityEvent(event: string): void;
}

/** Counts nothing: for parts built without metrics (tests, the CLI's lookups). */
export const noMetrics: Metrics = {
  message: () => undefined,
  presenceUpdate: () => undefined,
  sipRequestSent: () => undefined,
  sipRequestAnswered: () => undefined,
  xmppStanzaSent: () => undefined,
  xmppStanzaReceived: () => undefined,
  lookup: () => undefined,
  queueOutcome: () => undefined,
  cacheLookup: () => undefined,
  securityEvent: () => undefined,
};

/** Seconds since `start` (a performance.now() reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}
