// The embedded message queue used when `store.url` is absent: lost on restart, one instance only.
import type { MessageQueue, QueuedMessage } from "../ports/message-queue.js";

export class MemoryMessageQueue implements MessageQueue {
  private readonly entries = new Map<string, QueuedMessage>();

  enqueue(entry: QueuedMessage): Promise<boolean> {
    if (this.entries.has(entry.key)) return Promise.resolve(false);
    this.entries.set(entry.key, structuredClone(entry));
    return Promise.resolve(true);
  }

  due(now: number, limit: number): Promise<QueuedMessage[]> {
    const due = [...this.entries.values()]
      .filter((e) => e.nextAttemptAt <= now)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt)
      .slice(0, limit);
    return Promise.resolve(due.map((e) => structuredClone(e)));
  }

  get(key: string): Promise<QueuedMessage | undefined> {
    const entry = this.entries.get(key);
    return Promise.resolve(entry ? structuredClone(entry) : undefined);
  }

  forRecipient(person: string): Promise<QueuedMessage[]> {
    const entries = [...this.entries.values()].filter((e) => e.message.to === person);
    return Promise.resolve(entries.sort((a, b) => a.queuedAt - b.queuedAt).map((e) => structuredClone(e)));
  }

  reschedule(key: string, nextAttemptAt: number, attempts: number): Promise<void> {
    const entry = this.entries.get(key);
    if (entry) this.entries.set(key, { ...entry, nextAttemptAt, attempts });
    return Promise.resolve();
  }

  remove(key: string): Promise<boolean> {
    return Promise.resolve(this.entries.delete(key));
  }

  size(): Promise<number> {
    return Promise.resolve(this.entries.size);
  }

  oldestQueuedAt(): Promise<number | undefined> {
    let oldest: number | undefined;
    for (const entry of this.entries.values())
      if (oldest === undefined || entry.queuedAt < oldest) oldest = entry.queuedAt;
    return Promise.resolve(oldest);
  }
}
