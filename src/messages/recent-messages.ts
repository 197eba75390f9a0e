// The last messages the bridge relayed, as metadata only (who, to whom, which way, the outcome, how
// long it took): what the status page lists. Bodies are never kept. Bounded; listeners hear each
// new entry (the status page's live feed).
import { EventEmitter } from "node:events";
import type { MessageDirection } from "../ports/metrics.js";

export interface RelayedMessage {
  /** When the bridge took the message in (epoch ms). */
  at: number;
  direction: MessageDirection;
  from: string;
  to: string;
  /** delivered, accepted, queued, or the error condition. */
  outcome: string;
  /** From taking it in to the outcome. */
  ms: number;
}

export class RecentMessages extends EventEmitter<{ message: [entry: RelayedMessage] }> {
  private readonly entries: RelayedMessage[] = [];

  constructor(private readonly limit = 50) {
    super();
  }

  add(entry: RelayedMessage): void {
    this.entries.push(entry);
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
    this.emit("message", entry);
  }

  /** Newest first. */
  list(): RelayedMessage[] {
    return [...this.entries].reverse();
  }
}
