// Non-INVITE client transactions (RFC 3261 §17.1.2): the request is retransmitted over UDP at
// T1, 2·T1, 4·T1 … capped at T2 (Timer E) until a response; without a final response within 64·T1
// (Timer F) the outcome is a timeout (408). Over a reliable transport nothing is retransmitted.
// Responses are matched by branch and method (§17.1.3).
import { noMetrics, type Metrics } from "../../src/ports/metrics.js";
import type { TimerSettings } from "./server-transactions.js";

export interface ClientTransactionResult {
  status: number;
  reason: string;
  /** The raw response text (for headers such as WWW-Authenticate), absent on a timeout. */
  response?: string;
}

interface Pending {
  method: string;
  resolve: (result: ClientTransactionResult) => void;
  timers: NodeJS.Timeout[];
  interval: number;
}

export class ClientTransactions {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly timers: TimerSettings,
    private readonly metrics: Metrics = noMetrics,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Sends `text` (whose top Via carries `branch`) and resolves with its final outcome. */
  start(
    branch: string,
    method: string,
    text: string,
    send: () => Promise<void>,
    reliable: boolean,
  ): Promise<ClientTransactionResult> {
    return new Promise((resolve) => {
      const entry: Pending = { method, resolve, timers: [], interval: this.timers.t1 };
      this.pending.set(branch, entry);
      const finish = (result: ClientTransactionResult): void => {
        for (const timer of entry.timers) clearTimeout(timer);
        this.pending.delete(branch);
        // No response and no Timer F: the request could not be sent, or the bridge stopped first.
        const local = result.response === undefined && result.status !== 408;
        this.metrics.sipRequestSent(method, local ? 0 : result.status);
        resolve(result);
      };
      entry.resolve = finish;
      const retransmit = (): void => {
        const timer = setTimeout(() => {
          void send().catch(() => undefined);
          entry.interval = Math.min(entry.interval * 2, this.timers.t2);
          retransmit();
        }, entry.interval);
        entry.timers.push(timer);
      };
      // Timer F: 64·T1 without a final response is a timeout.
      entry.timers.push(
        setTimeout(() => finish({ status: 408, reason: "Request Timeout (Timer F)" }), 64 * this.timers.t1),
      );
      send().then(
        () => {
          if (!reliable) retransmit(); // Timer E
        },
        (err: unknown) => finish({ status: 503, reason: `send failed: ${String(err)}` }),
      );
    });
  }

  /** A response arrived: returns true when it belonged to a transaction here. */
  onResponse(branch: string, method: string, status: number, reason: string, text: string): boolean {
    const entry = this.pending.get(branch);
    if (!entry || entry.method !== method) return false;
    if (status < 200) {
      // Proceeding: keep retransmitting at T2 until the final response (§17.1.2.2).
      entry.interval = this.timers.t2;
      return true;
    }
    entry.resolve({ status, reason, response: text });
    return true;
  }

  close(): void {
    for (const entry of this.pending.values()) entry.resolve({ status: 503, reason: "shutting down" });
  }
}
