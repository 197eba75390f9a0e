// What a harness peer has received, in order, with a bounded wait for the first entry matching a
// predicate (already received or still to come). Used by the SIP sockets, the slixmpp driver and
// the baresip control channel.
import { HarnessError } from "./process.js";

export class EventLog<T> {
  readonly entries: T[] = [];
  private readonly waiters = new Set<() => void>();
  private closedReason: string | null = null;

  constructor(
    private readonly name: string,
    private readonly describe: (entry: T) => string,
  ) {}

  push(entry: T): void {
    this.entries.push(entry);
    this.wakeAll();
  }

  /** No more entries will come (the peer exited): pending and later waits fail with `reason`. */
  close(reason: string): void {
    this.closedReason = reason;
    this.wakeAll();
  }

  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }

  waitFor(predicate: (entry: T) => boolean, timeoutMs = 5_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      const wake = (): void => {
        const found = this.entries.find(predicate);
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.closedReason !== null) {
          done();
          reject(new HarnessError(`${this.name}: ${this.closedReason}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.entries.map(this.describe).join(" | ") || "nothing";
        reject(new HarnessError(`${this.name}: nothing matching within ${timeoutMs} ms (seen: ${seen})`));
      }, timeoutMs);
      this.waiters.add(wake);
      wake();
    });
  }
}
