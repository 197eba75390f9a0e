// The presence use case: every source's report goes through here to the store, and every aggregate
// change the store reports — written here or by another bridge instance on the same store — is
// announced once to whoever fans it out (XMPP subscribers, SIP watchers, the PBX).
import { EventEmitter } from "node:events";
import { SwitchboardError } from "../domain/errors.js";
import type { AggregatePresence, PresenceRecord, PresenceSource } from "../domain/presence.js";
import type { PresenceSnapshot, PresenceStore, PresenceUpdate } from "../ports/presence-store.js";
import { KeyedQueue } from "../util/keyed-queue.js";

/**
 * `retain`: when the store is away (service-unavailable), keep the report and write it when the
 * store is back (retryHeld), instead of only failing. For sources that push a state once and never
 * again (XMPP presence, the PBX's device states); not for SIP PUBLISH, whose sender is answered 503
 * and publishes again itself.
 */
export interface ReportOptions {
  retain?: boolean;
}

/** Most reports held while the store is away; past it the oldest are dropped (and logged by the caller). */
const HELD_LIMIT = 100_000;

interface Held {
  person: string;
  source: PresenceSource;
  /** The record to write, or null for a withdrawal. */
  record: PresenceRecord | null;
}

function heldKey(person: string, source: PresenceSource): string {
  const detail = source.kind === "xmpp" ? source.resource : source.kind === "sip-publish" ? source.etag : "";
  return `${person}\n${source.kind}\n${detail}`;
}

export interface PresenceServiceEvents {
  change: [person: string, aggregate: AggregatePresence];
  /** A source reported a state (before it is stored); for metrics. */
  report: [person: string, record: PresenceRecord];
}

export class PresenceService extends EventEmitter<PresenceServiceEvents> {
  private readonly queues = new KeyedQueue();

  private readonly unwatch: () => void;
  /** Reports kept while the store was away, the latest per person and source, oldest first. */
  private readonly held = new Map<string, Held>();

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
  private inTurn<T>(person: string, update: () => Promise<T>): Promise<T> {
    return this.queues.run(person, update);
  }

  report(person: string, record: PresenceRecord, options: ReportOptions = {}): Promise<PresenceUpdate> {
    this.emit("report", person, record);
    return this.write({ person, source: record.source, record }, options);
  }

  withdraw(person: string, source: PresenceSource, options: ReportOptions = {}): Promise<PresenceUpdate> {
    return this.write({ person, source, record: null }, options);
  }

  private async write(change: Held, options: ReportOptions): Promise<PresenceUpdate> {
    const update = await this.writeInTurn(change, options, false);
    if (update === null) throw new Error("unreachable: an unconditional write was skipped");
    return update;
  }

  /**
   * The write, in the person's turn. `onlyIfHeld` (a retry of a held report): skipped (null) when,
   * by the time its turn comes, the report is no longer the one held for its source — a newer
   * report queued before it has replaced it, and writing the old one after would undo the newer.
   */
  private writeInTurn(
    change: Held,
    options: ReportOptions,
    onlyIfHeld: boolean,
  ): Promise<PresenceUpdate | null> {
    const key = heldKey(change.person, change.source);
    return this.inTurn(change.person, async () => {
      if (onlyIfHeld && this.held.get(key) !== change) return null;
      // A newer report for the same source replaces one held from before (written or not).
      this.held.delete(key);
      try {
        return change.record === null
          ? await this.store.removeRecord(change.person, change.source, this.clock())
          : await this.store.putRecord(change.person, change.record, this.clock());
      } catch (err) {
        if (options.retain && err instanceof SwitchboardError && err.condition === "service-unavailable") {
          this.held.set(key, change);
          if (this.held.size > HELD_LIMIT) {
            const oldest = this.held.keys().next();
            if (oldest.done !== true) this.held.delete(oldest.value);
          }
        }
        throw err;
      }
    });
  }

  /** How many reports are held for the store's return. */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Writes the reports held while the store was away (the store is back), oldest first; those that
   * fail again stay held. Resolves with how many were written.
   */
  async retryHeld(): Promise<number> {
    let written = 0;
    for (const change of [...this.held.values()]) {
      try {
        if ((await this.writeInTurn(change, { retain: true }, true)) !== null) written += 1;
      } catch {
        // Held again (still away) or refused for good (not held): the next retry, or nothing.
      }
    }
    return written;
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
