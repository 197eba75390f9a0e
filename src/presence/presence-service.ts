// The presence use case: every source's report goes through here to the store, and every aggregate
// change the store reports — written here or by another bridge instance on the same store — is
// announced once to whoever fans it out (XMPP subscribers, SIP watchers, the PBX).
import { EventEmitter } from "node:events";
import type { AggregatePresence, PresenceRecord, PresenceSource } from "../domain/presence.js";
import type { PresenceSnapshot, PresenceStore, PresenceUpdate } from "../ports/presence-store.js";
import { KeyedQueue } from "../util/keyed-queue.js";

export interface PresenceServiceEvents {
  change: [person: string, aggregate: AggregatePresence];
  /** A source reported a state (before it is stored); for metrics. */
  report: [person: string, record: PresenceRecord];
}

export class PresenceService extends EventEmitter<PresenceServiceEvents> {
  private readonly queues = new KeyedQueue();

  private readonly unwatch: () => void;

  constructor(
    readonly store: PresenceStore,
    private readonly clock: () => number = Date.now,
  ) {
    super();
    this.unwatch = store.watchChanges((person, aggregate) => this.emit("change", person, aggregate));
  }

  /** Stops announcing the store's changes. */
  close(): void {
    this.unwatch();
  }

  now(): number {
    return this.clock();
  }

  /**
   * Runs one person's updates one after another, so that the aggregate announced last is the one
   * the store holds last, whatever the store's latency (another person's updates are not held up).
   */
  private inTurn(person: string, update: () => Promise<PresenceUpdate>): Promise<PresenceUpdate> {
    return this.queues.run(person, update);
  }

  report(person: string, record: PresenceRecord): Promise<PresenceUpdate> {
    this.emit("report", person, record);
    return this.inTurn(person, () => this.store.putRecord(person, record, this.clock()));
  }

  withdraw(person: string, source: PresenceSource): Promise<PresenceUpdate> {
    return this.inTurn(person, () => this.store.removeRecord(person, source, this.clock()));
  }

  snapshot(person: string): Promise<PresenceSnapshot> {
    return this.store.presence(person, this.clock());
  }

  /**
   * Announces the current aggregate of everyone the store knows (persons with a source, persons
   * watched over SIP) again: after the store's change feed was cut (Redis reconnected), changes
   * written meanwhile by other instances were never heard here. Watchers get the state once more,
   * which is harmless. Returns how many were announced.
   */
  async resync(): Promise<number> {
    const kinds = ["xmpp", "sip-publish", "pbx-device", "pbx-custom"] as const;
    const persons = new Set<string>();
    for (const kind of kinds)
      for (const person of await this.store.personsWithSource(kind)) persons.add(person);
    for (const watcher of await this.store.watcherSubscriptions()) persons.add(watcher.person);
    for (const person of persons) this.emit("change", person, await this.current(person));
    return persons.size;
  }

  async current(person: string): Promise<AggregatePresence> {
    return (await this.snapshot(person)).aggregate;
  }
}
