// The embedded store used when `store.url` is absent: everything in this process's memory, lost on
// restart, one bridge instance only. For trying Switchboard out and for tests of the use cases.
import {
  aggregate,
  type AggregatePresence,
  type PresenceRecord,
  type PresenceSource,
} from "../domain/presence.js";
import type {
  ChangeListener,
  PresenceSnapshot,
  PresenceStore,
  PresenceUpdate,
  WatcherListener,
  WatcherSubscription,
} from "../ports/presence-store.js";
import { sameSource } from "./source.js";

export class MemoryPresenceStore implements PresenceStore {
  private readonly records = new Map<string, PresenceRecord[]>();
  private readonly subscribers = new Map<string, Set<string>>();
  private readonly watchers = new Map<string, WatcherSubscription>();
  private readonly cseqs = new Map<string, number>();
  private readonly watcherListeners = new Set<WatcherListener>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly aggregates = new Map<string, AggregatePresence>();

  watchChanges(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private write(person: string, records: PresenceRecord[], now: number): PresenceUpdate {
    // Compared with the aggregate of the last write, not one recomputed now: a record that has just
    // expired (its withdrawal) is already invisible to aggregate(records, now).
    const before = this.aggregates.get(person) ?? aggregate(this.records.get(person) ?? [], now);
    if (records.length === 0) this.records.delete(person);
    else this.records.set(person, records);
    const after = aggregate(records, now);
    if (records.length === 0) this.aggregates.delete(person);
    else this.aggregates.set(person, after);
    const changed = before.state !== after.state || before.note !== after.note;
    if (changed) for (const listener of this.listeners) listener(person, after);
    return { aggregate: after, changed };
  }

  putRecord(person: string, record: PresenceRecord, now: number): Promise<PresenceUpdate> {
    const others = (this.records.get(person) ?? []).filter((r) => !sameSource(r.source, record.source));
    return Promise.resolve(this.write(person, [...others, record], now));
  }

  removeRecord(person: string, source: PresenceSource, now: number): Promise<PresenceUpdate> {
    const others = (this.records.get(person) ?? []).filter((r) => !sameSource(r.source, source));
    return Promise.resolve(this.write(person, others, now));
  }

  presence(person: string, now: number): Promise<PresenceSnapshot> {
    const records = [...(this.records.get(person) ?? [])];
    return Promise.resolve({ records, aggregate: aggregate(records, now) });
  }

  personsWithSource(kind: PresenceSource["kind"]): Promise<string[]> {
    const persons = [...this.records].filter(([, records]) => records.some((r) => r.source.kind === kind));
    return Promise.resolve(persons.map(([person]) => person));
  }

  addXmppSubscriber(contact: string, subscriber: string): Promise<void> {
    const set = this.subscribers.get(contact) ?? new Set<string>();
    set.add(subscriber);
    this.subscribers.set(contact, set);
    return Promise.resolve();
  }

  removeXmppSubscriber(contact: string, subscriber: string): Promise<boolean> {
    const set = this.subscribers.get(contact);
    const had = set?.delete(subscriber) ?? false;
    if (set?.size === 0) this.subscribers.delete(contact);
    return Promise.resolve(had);
  }

  xmppSubscribers(contact: string): Promise<string[]> {
    return Promise.resolve([...(this.subscribers.get(contact) ?? [])]);
  }

  xmppSubscribedContacts(): Promise<string[]> {
    return Promise.resolve([...this.subscribers.keys()]);
  }

  putWatcherSubscription(subscription: WatcherSubscription): Promise<void> {
    this.watchers.set(subscription.id, structuredClone(subscription));
    for (const listener of [...this.watcherListeners])
      listener(subscription.id, structuredClone(subscription));
    return Promise.resolve();
  }

  removeWatcherSubscription(id: string, options: { keepCseq?: boolean } = {}): Promise<void> {
    this.watchers.delete(id);
    if (!options.keepCseq) this.cseqs.delete(id);
    for (const listener of [...this.watcherListeners]) listener(id, null);
    return Promise.resolve();
  }

  watcherSubscription(id: string): Promise<WatcherSubscription | null> {
    const found = this.watchers.get(id);
    return Promise.resolve(found && found.expiresAt > Date.now() ? structuredClone(found) : null);
  }

  nextWatcherCseq(id: string, options: { last?: boolean } = {}): Promise<number> {
    const next = (this.cseqs.get(id) ?? 0) + 1;
    if (options.last) this.cseqs.delete(id);
    else this.cseqs.set(id, next);
    return Promise.resolve(next);
  }

  watchWatchers(listener: WatcherListener): () => void {
    this.watcherListeners.add(listener);
    return () => this.watcherListeners.delete(listener);
  }

  watcherSubscriptions(): Promise<WatcherSubscription[]> {
    return Promise.resolve([...this.watchers.values()].map((s) => structuredClone(s)));
  }
}
