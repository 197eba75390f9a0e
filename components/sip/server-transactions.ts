// Server transactions (RFC 3261 §17.2): requests are matched to a transaction by branch, sent-by
// and method (§17.2.3); a retransmitted request is absorbed — never handed to the application
// twice — and answered with the last response again. Timer names are the RFC's.
import { noMetrics, type Metrics } from "../../src/ports/metrics.js";
import type { Flow } from "./transports.js";
import type { SipRequest } from "./sip-message.js";

export interface TimerSettings {
  /** RTT estimate (default 500 ms). */
  t1: number;
  /** Longest retransmit interval (default 4 s). */
  t2: number;
  /** Longest time a message stays in the network (default 5 s). */
  t4: number;
}

export const DEFAULT_TIMERS: TimerSettings = { t1: 500, t2: 4_000, t4: 5_000 };

type State = "trying" | "proceeding" | "completed" | "confirmed";

interface Transaction {
  state: State;
  invite: boolean;
  flow: Flow;
  lastResponse?: string;
  timers: NodeJS.Timeout[];
}

/** RFC 3261 §17.2.3: branch + sent-by + method (ACK matches its INVITE); RFC 2543 peers by dialog. */
export function transactionKey(request: SipRequest): string {
  const method = request.method === "ACK" ? "INVITE" : request.method;
  const via = request.via;
  const branch = request.viaBranch ?? "";
  if (branch.startsWith("z9hG4bK")) return `${branch}|${via?.host ?? ""}:${via?.port ?? ""}|${method}`;
  return `${request.callId}|${request.cseq}|${request.fromTag ?? ""}|${method}`;
}

export class ServerTransactions {
  private readonly transactions = new Map<string, Transaction>();

  constructor(
    private readonly timers: TimerSettings = DEFAULT_TIMERS,
    private readonly metrics: Metrics = noMetrics,
  ) {}

  get size(): number {
    return this.transactions.size;
  }

  /**
   * Looks the request up. `new`: hand it to the application (a transaction is opened); `absorbed`:
   * a retransmission or an ACK for a non-2xx final response, already dealt with here.
   */
  receive(request: SipRequest, flow: Flow): "new" | "absorbed" {
    const key = transactionKey(request);
    const existing = this.transactions.get(key);
    if (request.method === "ACK") {
      // ACK for our non-2xx final answer to an INVITE (§17.2.1): stop retransmitting; Timer I.
      if (existing?.invite && existing.state === "completed") {
        this.clear(existing);
        existing.state = "confirmed";
        this.later(key, existing, existing.flow.reliable ? 0 : this.timers.t4);
      }
      return "absorbed"; // an ACK never gets a response
    }
    if (existing) {
      if (existing.lastResponse && existing.state !== "trying")
        void existing.flow.send(existing.lastResponse).catch(() => undefined);
      return "absorbed";
    }
    this.transactions.set(key, { state: "trying", invite: request.method === "INVITE", flow, timers: [] });
    return "new";
  }

  /** Sends a response within the request's transaction (provisional or final) and runs its timers. */
  async respond(request: SipRequest, status: number, text: string): Promise<void> {
    const key = transactionKey(request);
    const transaction = this.transactions.get(key);
    if (!transaction) return;
    transaction.lastResponse = text;
    if (status < 200) {
      transaction.state = "proceeding";
    } else {
      transaction.state = "completed";
      this.metrics.sipRequestAnswered(request.method, status);
      const { t1, t2 } = this.timers;
      if (transaction.invite) {
        // Timer G: retransmit the final answer until the ACK; Timer H: give up after 64·T1.
        if (!transaction.flow.reliable) this.retransmit(transaction, text, t1, t2);
        this.later(key, transaction, 64 * t1);
      } else {
        // Timer J: keep absorbing retransmissions for 64·T1 over UDP, none over TCP.
        this.later(key, transaction, transaction.flow.reliable ? 0 : 64 * t1);
      }
    }
    await transaction.flow.send(text);
  }

  private retransmit(transaction: Transaction, text: string, interval: number, cap: number): void {
    const timer = setTimeout(() => {
      if (transaction.state !== "completed") return;
      void transaction.flow.send(text).catch(() => undefined);
      this.retransmit(transaction, text, Math.min(interval * 2, cap), cap);
    }, interval);
    transaction.timers.push(timer);
  }

  private later(key: string, transaction: Transaction, ms: number): void {
    const timer = setTimeout(() => {
      this.clear(transaction);
      this.transactions.delete(key);
    }, ms);
    transaction.timers.push(timer);
  }

  private clear(transaction: Transaction): void {
    for (const timer of transaction.timers) clearTimeout(timer);
    transaction.timers = [];
  }

  close(): void {
    for (const transaction of this.transactions.values()) this.clear(transaction);
    this.transactions.clear();
  }
}
