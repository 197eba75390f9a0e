// XMPP-bound work between bridge instances. Only the instance holding the component lease has a
// connection to the XMPP server (component-lease.ts); a SIP MESSAGE for a chat user, or a voicemail
// notice, that reaches another instance is handed to the holder through a Redis stream and answered
// once the holder has it on the XMPP server (or refused it), so "200 OK" means the same on every
// instance.
//
// Keys, under the store prefix P:
//   P xmpp-relay:{<gateway>}        stream of work: fields `job` (the JSON below); consumer group
//                                   "holder", read only by the instance holding the component.
//   P xmpp-relay-reply:<instance>   pub/sub channel of one instance's answers: {id, error?, text?}.
//
// Delivery is at least once and bounded in time: every job carries the moment its sender stops
// waiting (it answers 503 then, and the SIP phone sends again); the holder starts no job with less
// than START_MARGIN_MS of that wait left, so a message refused for lateness was, but for a
// delivery slower than the margin, never delivered. The moment is the sender's clock read on the
// holder's: keep the instances' clocks in step (NTP). A holder that dies with jobs read but not
// acknowledged leaves them pending: the next holder claims them (XAUTOCLAIM) and does those still
// in time. An answer that never arrives (the holder died after delivering, or the answer was lost
// while a connection moved) makes the sender answer 503 although the message went through; the
// phone's retry then delivers it twice, with the same id.
import { randomUUID } from "node:crypto";
import {
  createRedisClient,
  type RedisConnection,
  type RedisSubscriber,
  type RedisTarget,
} from "./redis-connection.js";
import { CONDITIONS, SwitchboardError, type Condition } from "../../src/domain/errors.js";
import type { Logger } from "../../src/ports/logger.js";
import type { ChatMessage } from "../../src/ports/message-port.js";

/** What the holder is asked to do: send a message, or a notice from the gateway to a person. */
export type RelayJob =
  { kind: "message"; message: ChatMessage } | { kind: "notice"; person: string; body: string };

interface Envelope {
  id: string;
  /** The instance waiting for the answer. */
  from: string;
  /** Epoch ms after which the sender no longer waits (and has answered 503). */
  deadline: number;
  job: RelayJob;
}

interface Reply {
  id: string;
  error?: Condition;
  text?: string;
}

export interface XmppRelayOptions {
  /** The store's Redis (store.url, store.sentinel or store.cluster). */
  target: RedisTarget;
  prefix: string;
  /** The gateway domain (component JID): one stream per component. */
  gateway: string;
  /** This instance's id (the lease's). */
  instance: string;
  log: Logger;
  /** How long a sender waits for the holder's answer (default 5 s). */
  waitMs?: number;
}

const GROUP = "holder";
/** Jobs kept in the stream at most (approximately); older ones are past every deadline long since. */
const MAX_LENGTH = 100_000;
/** Jobs under way at once on the holder. */
const MAX_IN_FLIGHT = 1_000;
/** A job is started only while at least this much of its sender's wait is left. */
const START_MARGIN_MS = 1_000;
/** How long start() waits for Redis. */
const START_TIMEOUT_MS = 10_000;
/** How long one read blocks; also how quickly a pause takes effect. */
const BLOCK_MS = 1_000;

function isCondition(value: unknown): value is Condition {
  return typeof value === "string" && (CONDITIONS as readonly string[]).includes(value);
}

export class XmppRelay {
  private readonly connection: RedisConnection;
  private readonly client: RedisConnection["commands"];
  /** Made once the command connection is up (with Sentinel, it goes where that one found the primary). */
  private subscriber: RedisSubscriber | undefined;
  /** Blocking reads get their own connection, so they never hold up the sender's commands. */
  private readonly readerConnection: RedisConnection;
  private readonly reader: RedisConnection["commands"];
  private readonly stream: string;
  private readonly replies: string;
  private readonly waitMs: number;
  private readonly waiting = new Map<
    string,
    { resolve: () => void; reject: (err: SwitchboardError) => void; timer: NodeJS.Timeout }
  >();
  private serving: { stop: boolean; done: Promise<void> } | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: XmppRelayOptions) {
    this.waitMs = options.waitMs ?? 5_000;
    this.stream = `${options.prefix}xmpp-relay:{${options.gateway}}`;
    this.replies = `${options.prefix}xmpp-relay-reply:${options.instance}`;
    const make = () => {
      // No per-command limit: a send is bounded by waitMs, a blocking read by BLOCK_MS.
      const connection = createRedisClient(options.target, {
        connectTimeoutMs: 3_000,
        commandTimeoutMs: 0,
        maxReconnectDelayMs: 2_000,
      });
      connection.on("error", (err: unknown) =>
        options.log.debug({ err: err instanceof Error ? err.message : String(err) }, "relay: Redis problem"),
      );
      return connection;
    };
    this.connection = make();
    this.client = this.connection.commands;
    this.readerConnection = make();
    this.reader = this.readerConnection.commands;
  }

  /** Connects and joins the stream's group; fails (and closes) when Redis does not answer in time. */
  async start(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.connect(),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(
              () => reject(new Error(`Redis did not answer within ${START_TIMEOUT_MS} ms`)),
              START_TIMEOUT_MS,
            )),
        ),
      ]);
    } catch (err) {
      await this.close();
      throw new SwitchboardError("service-unavailable", `relay to the component holder: ${String(err)}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private async connect(): Promise<void> {
    await Promise.all([this.connection.connect(), this.readerConnection.connect()]);
    const subscriber = this.connection.subscriber();
    this.subscriber = subscriber;
    subscriber.on("error", () => undefined); // reported by the command connection
    await subscriber.connect();
    await subscriber.subscribe(this.replies, (raw) => this.onReply(raw));
    try {
      await this.client.xGroupCreate(this.stream, GROUP, "0", { MKSTREAM: true });
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith("BUSYGROUP"))) throw err;
    }
  }

  /**
   * Hands a job to the holder and waits for its answer: resolves when done, rejects with the
   * holder's SwitchboardError, or with service-unavailable when no answer comes in time.
   */
  async send(job: RelayJob): Promise<void> {
    const id = randomUUID();
    const envelope: Envelope = {
      id,
      from: this.options.instance,
      deadline: Date.now() + this.waitMs,
      job,
    };
    const answered = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(
          new SwitchboardError(
            "service-unavailable",
            "the instance holding the XMPP component did not answer in time; try again later",
          ),
        );
      }, this.waitMs);
      this.waiting.set(id, { resolve, reject, timer });
    });
    try {
      await this.client.xAdd(
        this.stream,
        "*",
        { job: JSON.stringify(envelope) },
        { TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: MAX_LENGTH } },
      );
    } catch (err) {
      const waiting = this.waiting.get(id);
      clearTimeout(waiting?.timer);
      this.waiting.delete(id);
      throw new SwitchboardError(
        "service-unavailable",
        `cannot hand the message to the instance holding the XMPP component (Redis): ${String(err)}`,
        { cause: err },
      );
    }
    return answered;
  }

  private onReply(raw: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(raw) as Reply;
    } catch {
      return;
    }
    const waiting = this.waiting.get(reply.id);
    if (!waiting) return; // answered after its sender stopped waiting
    this.waiting.delete(reply.id);
    clearTimeout(waiting.timer);
    if (reply.error === undefined) waiting.resolve();
    else
      waiting.reject(
        new SwitchboardError(
          isCondition(reply.error) ? reply.error : "internal-server-error",
          reply.text ?? "",
        ),
      );
  }

  /**
   * As the holder with an online component: takes jobs (first those another holder left pending),
   * does each with `handle`, answers its sender, until pause(). At most one reader at a time.
   */
  serve(handle: (job: RelayJob) => Promise<void>): void {
    if (this.serving || this.closed) return;
    const state = { stop: false, done: Promise.resolve() };
    state.done = this.loop(state, handle).catch((err: unknown) =>
      this.options.log.error({ err: String(err) }, "relay: reading jobs stopped"),
    );
    this.serving = state;
  }

  /** Stops taking jobs (the component went offline, or the lease was lost); jobs wait in Redis. */
  async pause(): Promise<void> {
    const state = this.serving;
    if (!state) return;
    state.stop = true;
    this.serving = undefined;
    await state.done;
    // Jobs under way finish (their answers go out), within the senders' wait; any left then stay
    // pending in the group for the next holder.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.inFlight),
      new Promise((resolve) => (timer = setTimeout(resolve, this.waitMs))),
    ]);
    clearTimeout(timer);
  }

  private async loop(state: { stop: boolean }, handle: (job: RelayJob) => Promise<void>): Promise<void> {
    const consumer = this.options.instance;
    let claimFrom = "0-0";
    while (!state.stop) {
      try {
        // Jobs a previous holder read and never acknowledged, then new ones.
        if (claimFrom !== "done") {
          const claimed = await this.reader.xAutoClaim(this.stream, GROUP, consumer, 0, claimFrom, {
            COUNT: 100,
          });
          await this.doAll(claimed.messages, handle);
          claimFrom = claimed.nextId === "0-0" ? "done" : claimed.nextId;
          continue;
        }
        const read = await this.reader.xReadGroup(
          GROUP,
          consumer,
          { key: this.stream, id: ">" },
          {
            COUNT: 100,
            BLOCK: BLOCK_MS,
          },
        );
        for (const stream of (read ?? []) as {
          messages: { id: string; message: Record<string, string> }[];
        }[])
          await this.doAll(stream.messages, handle);
      } catch (err) {
        if (state.stop || this.closed) return;
        this.options.log.debug({ err: String(err) }, "relay: Redis unreachable; reading again shortly");
        if (err instanceof Error && err.message.startsWith("NOGROUP")) await this.recreateGroup();
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private async recreateGroup(): Promise<void> {
    try {
      await this.client.xGroupCreate(this.stream, GROUP, "0", { MKSTREAM: true });
    } catch {
      // exists again, or Redis still away: the next read says
    }
  }

  /**
   * Starts each job in stream order without waiting for the one before (the XMPP side confirms
   * writes in batches); waits only while MAX_IN_FLIGHT are under way.
   */
  private async doAll(
    entries: readonly ({ id: string; message: Record<string, string> } | null)[],
    handle: (job: RelayJob) => Promise<void>,
  ): Promise<void> {
    for (const entry of entries) {
      if (!entry) continue;
      while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
      const done: Promise<void> = this.doOne(entry.id, entry.message.job, handle)
        .catch((err: unknown) => this.options.log.debug({ err: String(err) }, "relay: job not acknowledged"))
        .finally(() => this.inFlight.delete(done));
      this.inFlight.add(done);
    }
  }

  private async doOne(
    entryId: string,
    raw: string | undefined,
    handle: (job: RelayJob) => Promise<void>,
  ): Promise<void> {
    let envelope: Envelope | undefined;
    try {
      envelope = JSON.parse(raw ?? "") as Envelope;
    } catch {
      this.options.log.warn({ entry: entryId }, "relay: unreadable job dropped");
    }
    if (envelope && envelope.deadline - START_MARGIN_MS > Date.now()) {
      let reply: Reply = { id: envelope.id };
      try {
        await handle(envelope.job);
      } catch (err) {
        reply = {
          id: envelope.id,
          error: err instanceof SwitchboardError ? err.condition : "internal-server-error",
          text: err instanceof Error ? err.message : String(err),
        };
      }
      await this.client
        .publish(`${this.options.prefix}xmpp-relay-reply:${envelope.from}`, JSON.stringify(reply))
        .catch((err: unknown) =>
          this.options.log.debug({ err: String(err) }, "relay: answer not sent; the sender answers 503"),
        );
    } else if (envelope) {
      this.options.log.debug({ id: envelope.id }, "relay: job past its sender's wait dropped");
    }
    // Both in one write (node-redis pipelines what is sent in the same tick): one round trip per job.
    await Promise.all([
      this.client.xAck(this.stream, GROUP, entryId),
      this.client.xDel(this.stream, entryId),
    ]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pause().catch(() => undefined);
    this.destroy();
  }

  /** Drops everything at once, as a process that dies would: jobs read stay pending in the group. */
  destroy(): void {
    this.closed = true;
    if (this.serving) this.serving.stop = true;
    this.serving = undefined;
    for (const [id, waiting] of this.waiting) {
      clearTimeout(waiting.timer);
      waiting.reject(new SwitchboardError("service-unavailable", "stopping"));
      this.waiting.delete(id);
    }
    for (const client of [this.connection, this.subscriber, this.readerConnection]) {
      if (!client) continue;
      try {
        client.destroy();
      } catch {
        // already closed
      }
    }
  }
}
