// The durable queue of chat messages for SIP parties that could not take them yet (a desk phone
// offline: 408, 480, 503, no registered contact). With the Redis store it survives a restart of the
// bridge (append-only persistence); the in-memory queue is for trying it out. Entries are keyed by
// sender and message id, so a message is queued once however often it is offered.
import type { ChatMessage } from "./message-port.js";

export interface QueuedMessage {
  /** `${sender}\n${id}` (queueKey): the sender's id for the message, unique per sender. */
  key: string;
  message: ChatMessage;
  queuedAt: number;
  /** When the sender gets an error instead (epoch ms). */
  expiresAt: number;
  attempts: number;
  nextAttemptAt: number;
}

export interface MessageQueue {
  /** Adds the entry; false when one with its key is queued already (nothing changes then). */
  enqueue(entry: QueuedMessage): Promise<boolean>;
  /** Entries whose next attempt is due at `now`, soonest first, at most `limit`. */
  due(now: number, limit: number): Promise<QueuedMessage[]>;
  /** The entry under `key` as it is now, or undefined when it has left the queue. */
  get(key: string): Promise<QueuedMessage | undefined>;
  /** Entries for one recipient (person key), e.g. when their phone comes back. */
  forRecipient(person: string): Promise<QueuedMessage[]>;
  reschedule(key: string, nextAttemptAt: number, attempts: number): Promise<void>;
  /** Takes the entry out (delivered, failed for good, or expired); false when it was not there. */
  remove(key: string): Promise<boolean>;
  size(): Promise<number>;
  /** When the oldest waiting entry was queued (epoch ms); undefined when none waits. */
  oldestQueuedAt(): Promise<number | undefined>;
}

/** Sender (the full JID where known: resources may reuse ids) and message id. */
export function queueKey(message: ChatMessage): string {
  return `${message.replyTo ?? message.from}\n${message.id}`;
}
