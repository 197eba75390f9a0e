// The store port: per person, each presence source's latest record and the aggregate computed from
// them; and who subscribes to which gateway contact. The in-memory adapter (src/presence/
// memory-store.ts) is the embedded default; the Redis adapter comes with the end-to-end issue and
// must pass the same contract tests.
import type { AggregatePresence, PresenceRecord, PresenceSource } from "../domain/presence.js";

export interface PresenceSnapshot {
  records: PresenceRecord[];
  aggregate: AggregatePresence;
}

export interface PresenceUpdate {
  aggregate: AggregatePresence;
  /** The aggregate's state or note differs from before this write. */
  changed: boolean;
}

/**
 * A watcher's subscription to a person's presence, as the notifier needs it to send the next
 * NOTIFY after a restart (RFC 6665 dialog state: Call-ID, tags, route set, CSeq). Protocol text is
 * kept as strings; the store does not interpret it.
 */
export interface WatcherSubscription {
  /** Unique per subscription (the dialog's Call-ID and the watcher's tag). */
  id: string;
  event: "presence" | "dialog";
  person: string;
  presentity: string;
  callId: string;
  localTag: string;
  remote: string;
  local: string;
  /** The watcher's Contact (remote target). */
  target: string;
  routes: string[];
  cseq: number;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export type ChangeListener = (person: string, aggregate: AggregatePresence) => void;

/** A watcher subscription stored (created, refreshed) or removed (`null`) by any instance. */
export type WatcherListener = (id: string, subscription: WatcherSubscription | null) => void;

export interface PresenceStore {
  /**
   * Calls `listener` with every aggregate change written to this store — by this bridge instance or
   * by another one sharing it (Redis pub/sub) — in write order per person; returns the function that
   * stops it. Only a change of state or note is a change.
   */
  watchChanges(listener: ChangeListener): () => void;
  /** Writes one source's record (replacing that source's previous one) and recomputes the aggregate. */
  putRecord(person: string, record: PresenceRecord, now: number): Promise<PresenceUpdate>;
  /** Removes one source's record (an XMPP resource went offline, a PUBLISH was withdrawn). */
  removeRecord(person: string, source: PresenceSource, now: number): Promise<PresenceUpdate>;
  presence(person: string, now: number): Promise<PresenceSnapshot>;
  /** Every person holding at least one record of this source kind (to re-check them after an outage). */
  personsWithSource(kind: PresenceSource["kind"]): Promise<string[]>;

  /** An XMPP user (bare JID) subscribed to a gateway contact (bare JID). */
  addXmppSubscriber(contact: string, subscriber: string): Promise<void>;
  /** Returns whether there was such a subscription. */
  removeXmppSubscriber(contact: string, subscriber: string): Promise<boolean>;
  /**
   * `fresh`: from the store itself, never from a copy an instance keeps (a probe's answer decides
   * whether a subscription stands, so it must not miss one made a moment ago on another instance).
   */
  xmppSubscribers(contact: string, options?: { fresh?: boolean }): Promise<string[]>;
  /** Every gateway contact with at least one XMPP subscriber (for re-announcing after a reconnect). */
  xmppSubscribedContacts(): Promise<string[]>;

  /** Creates or replaces a watcher subscription (on subscribe, refresh and every NOTIFY's CSeq). */
  putWatcherSubscription(subscription: WatcherSubscription): Promise<void>;
  /**
   * `keepCseq`: a final NOTIFY follows (Subscription-State: terminated), which takes the last CSeq
   * (`nextWatcherCseq(id, { last: true })`) and with it removes the counter.
   */
  removeWatcherSubscription(id: string, options?: { keepCseq?: boolean }): Promise<void>;
  watcherSubscriptions(): Promise<WatcherSubscription[]>;
  /** One watcher subscription still in force, or null. */
  watcherSubscription(id: string): Promise<WatcherSubscription | null>;
  /**
   * The CSeq for the next NOTIFY of a subscription: one more than the last taken, by any instance
   * (in-dialog CSeqs only go up, RFC 3261 §12.2.1.1, whichever instance sends).
   */
  nextWatcherCseq(id: string, options?: { last?: boolean }): Promise<number>;
  /** Calls `listener` whenever any instance stores or removes a watcher subscription. */
  watchWatchers(listener: WatcherListener): () => void;
}
