// Chat users' messages to SIP parties, with nothing lost (DESIGN.md "Messages"): a message the
// phone cannot take now (offline: 408, 480, 503, no registered contact) waits in the durable queue
// and is retried with a growing delay, and at once when the phone is known to be back; the sender
// gets no receipt until delivery, and an error (recipient-unavailable) when the time runs out.
// Chat states are never queued: a stale "typing…" is worse than none.
import { DirectoryUnavailableError, SwitchboardError, type Condition } from "../domain/errors.js";
import type { Logger } from "../ports/logger.js";
import type { ChatMessage, DeliveryOutcome, DeliveryReports, MessageSink } from "../ports/message-port.js";
import { queueKey, type MessageQueue, type QueuedMessage } from "../ports/message-queue.js";

/** Conditions that mean "not reachable now, maybe later" (SIP 408, 480/486, 503). */
const OFFLINE: ReadonlySet<Condition> = new Set([
  "recipient-unavailable",
  "remote-server-timeout",
  "service-unavailable",
]);

export interface OutboundRelayOptions {
  /** The SIP side's send (one attempt). */
  send: MessageSink["deliver"];
  queue: MessageQueue;
  reports: DeliveryReports;
  log: Logger;
  /** How long a message may wait (default 24 h). */
  ttlMs?: number;
  /** First retry delay, doubled per attempt up to retryMaxMs (defaults 30 s and 15 min). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How often the queue is looked at (default 5 s). */
  tickMs?: number;
  /** Called when a recipient gets a queued message, and when their last one leaves the queue (to follow their registration). */
  recipients?: { waiting: (person: string) => void; done: (person: string) => void };
  clock?: () => number;
}

export class OutboundRelay implements MessageSink {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private started = false;
  /** Entries being sent now: a tick and a "phone is back" signal must not send one twice. */
  private readonly inFlight = new Set<string>();
  private readonly clock: () => number;

  constructor(private readonly options: OutboundRelayOptions) {
    this.clock = options.clock ?? Date.now;
  }

  private get ttl(): number {
    return this.options.ttlMs ?? 24 * 3600_000;
  }

  private delay(attempts: number): number {
    const min = this.options.retryMinMs ?? 30_000;
    return Math.min(this.options.retryMaxMs ?? 900_000, min * 2 ** Math.max(0, attempts - 1));
  }

  /** One attempt now; an offline recipient gets the message queued (`queued`). */
  async deliver(message: ChatMessage): Promise<DeliveryOutcome> {
    if (message.body === undefined) return this.options.send(message);
    try {
      return await this.options.send(message);
    } catch (err) {
      if (!(err instanceof SwitchboardError) || !OFFLINE.has(err.condition)) throw err;
      // Whom the address names is unknown while the directory is away: refused now, not queued.
      if (err instanceof DirectoryUnavailableError) throw err;
      const now = this.clock();
      const entry: QueuedMessage = {
        key: queueKey(message),
        message,
        queuedAt: now,
        expiresAt: now + this.ttl,
        attempts: 1,
        nextAttemptAt: now + this.delay(1),
      };
      const added = await this.options.queue.enqueue(entry);
      if (added) this.options.recipients?.waiting(message.to);
      this.options.log.info(
        { id: message.id, jid: message.from, to: message.to, reason: err.message, added },
        "message queued: recipient offline",
      );
      return "queued";
    }
  }

  /**
   * Looks at the queue every tickMs (and once at once) until stop(); first follows the recipients
   * already waiting (after a restart), so their "phone is back" signal comes again.
   */
  start(): void {
    if (this.started && !this.stopped) return; // running already
    this.stopped = false;
    this.started = true;
    const tick = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        void this.retryDue().finally(tick);
      }, this.options.tickMs ?? 5_000);
      this.timer.unref();
    };
    void this.followWaiting()
      .then(() => this.retryDue())
      .finally(tick);
  }

  private async followWaiting(): Promise<void> {
    if (!this.options.recipients) return;
    try {
      const waiting = await this.options.queue.due(Number.MAX_SAFE_INTEGER, 10_000);
      for (const person of new Set(waiting.map((e) => e.message.to))) this.options.recipients.waiting(person);
    } catch (err) {
      this.options.log.warn({ err: String(err) }, "message queue not readable at start");
    }
  }

  /** Between start() and stop(): this instance retries the queue. */
  get active(): boolean {
    return this.started && !this.stopped;
  }

  /** Stops looking at the queue; resolves when the round under way has ended (at its next entry). */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.running ?? Promise.resolve();
  }

  /** The recipient is back (registered again): try their messages now, oldest first. */
  async recipientOnline(person: string): Promise<void> {
    for (const entry of await this.options.queue.forRecipient(person)) {
      if (this.stopped) return;
      await this.attempt(entry);
    }
  }

  /** Every entry that is due or expired, one after another (bounded per round). */
  retryDue(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      try {
        for (const entry of await this.options.queue.due(this.clock(), 100)) {
          if (this.stopped) break;
          await this.attempt(entry);
        }
      } catch (err) {
        this.options.log.warn({ err: String(err) }, "message queue not readable; will try again");
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** After an entry left the queue: tell `recipients.done` when it was the recipient's last. */
  private async left(person: string): Promise<void> {
    if (!this.options.recipients) return;
    if ((await this.options.queue.forRecipient(person)).length === 0) this.options.recipients.done(person);
  }

  private async attempt(entry: QueuedMessage): Promise<void> {
    if (this.inFlight.has(entry.key)) return;
    this.inFlight.add(entry.key);
    try {
      await this.attemptOnce(entry);
    } finally {
      this.inFlight.delete(entry.key);
    }
  }

  private async attemptOnce(snapshot: QueuedMessage): Promise<void> {
    // As the queue has it now: another round may have delivered or rescheduled it meanwhile.
    const entry = await this.options.queue.get(snapshot.key);
    if (!entry) return;
    const { queue, reports, log } = this.options;
    const { message } = entry;
    const flow = log.child({ id: message.id, jid: message.from, to: message.to });
    if (entry.expiresAt <= this.clock()) {
      if (await queue.remove(entry.key)) {
        await this.left(message.to);
        flow.info({ attempts: entry.attempts }, "queued message expired");
        await reports.failed(
          message,
          "recipient-unavailable",
          `not delivered: the recipient stayed offline for ${Math.round(this.ttl / 60_000)} minutes`,
        );
      }
      return;
    }
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.options.send(message);
    } catch (err) {
      const condition = err instanceof SwitchboardError ? err.condition : "internal-server-error";
      if (OFFLINE.has(condition)) {
        const attempts = entry.attempts + 1;
        await queue.reschedule(entry.key, this.clock() + this.delay(attempts), attempts);
        flow.debug({ attempts, reason: String(err) }, "queued message: still offline");
        return;
      }
      if (await queue.remove(entry.key)) {
        await this.left(message.to);
        flow.warn({ err: String(err) }, "queued message refused");
        await reports.failed(message, condition, err instanceof Error ? err.message : "delivery failed");
      }
      return;
    }
    // Taken out after the send: a crash between the two repeats it once, with the same id (the one
    // repeat the design allows); taking it out first could lose it.
    if (await queue.remove(entry.key)) {
      await this.left(message.to);
      flow.info({ outcome, attempts: entry.attempts + 1 }, "queued message delivered");
      if (outcome !== "queued") await reports.delivered(message, outcome);
    }
  }
}
