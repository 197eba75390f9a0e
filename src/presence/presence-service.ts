// The presence use case: every source's report goes through here to the store, and an aggregate
// that changed is announced once to whoever fans it out (XMPP subscribers today; SIP watchers and
// the PBX with the later issues).
import { EventEmitter } from "node:events";
import type { AggregatePresence, PresenceRecord, PresenceSource } from "../domain/presence.js";
import type { PresenceSnapshot, PresenceStore, PresenceUpdate } from "../ports/presence-store.js";

export interface PresenceServiceEvents {
  change: [person: string, aggregate: AggregatePresence];
}

export class PresenceService extends EventEmitter<PresenceServiceEvents> {
  constructor(
    readonly store: PresenceStore,
    private readonly clock: () => number = Date.now,
  ) {
    super();
  }

  now(): number {
    return this.clock();
  }

  private announce(person: string, update: PresenceUpdate): PresenceUpdate {
    if (update.changed) this.emit("change", person, update.aggregate);
    return update;
  }

  async report(person: string, record: PresenceRecord): Promise<PresenceUpdate> {
    return this.announce(person, await this.store.putRecord(person, record, this.clock()));
  }

  async withdraw(person: string, source: PresenceSource): Promise<PresenceUpdate> {
    return this.announce(person, await this.store.removeRecord(person, source, this.clock()));
  }

  snapshot(person: string): Promise<PresenceSnapshot> {
    return this.store.presence(person, this.clock());
  }

  async current(person: string): Promise<AggregatePresence> {
    return (await this.snapshot(person)).aggregate;
  }
}
