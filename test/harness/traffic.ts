// Traffic both ways for the fault tests, and its accounting: a desk phone sends MESSAGEs to a chat
// user at a steady pace (each body `s-N`, its final status noted), and the chat user sends messages
// to a gateway contact (`x-N`); at the end, what arrived where, how often.
import { setTimeout as sleep } from "node:timers/promises";
import type { RawSipMessage, UdpSipSocket } from "./sip-socket.js";
import { sendSipMessage } from "./sip-socket.js";
import type { SlixmppClient } from "./xmpp-client.js";

export interface TrafficOptions {
  /** The desk phone's socket and the bridge's SIP port. */
  phone: UdpSipSocket;
  sipPort: number;
  /** The desk phone's and the chat user's SIP addresses. */
  from: string;
  to: string;
  /** The chat user's client of the moment (it may change, e.g. after the server restarts). */
  chatUser: () => SlixmppClient;
  /** The gateway contact the chat user writes to; absent: SIP → XMPP only. */
  toContact?: string;
  /** One message each way every `intervalMs` (default 40). */
  intervalMs?: number;
  /** How a MESSAGE is sent (default: once, waiting up to 5 s for its final answer). */
  send?: (body: string) => Promise<number | "none">;
}

export interface TrafficResult {
  /** SIP → XMPP: body → final status (or "none"). */
  sipOutcomes: Map<string, number | "none">;
  /** SIP → XMPP: body → when it was sent (ms since the epoch). */
  sentAt: Map<string, number>;
  /** XMPP → SIP: the bodies sent, in order. */
  toSip: string[];
}

/** Starts both loops; `stop()` ends them and waits for every MESSAGE's answer. */
export function startTraffic(options: TrafficOptions): { stop: () => Promise<TrafficResult> } {
  const interval = options.intervalMs ?? 40;
  const result: TrafficResult = { sipOutcomes: new Map(), sentAt: new Map(), toSip: [] };
  const send =
    options.send ??
    ((body: string) =>
      sendSipMessage(options.phone, options.sipPort, { from: options.from, to: options.to, body }).then(
        (answer) => answer.status ?? 0,
        () => "none" as const,
      ));
  let running = true;
  const sipLoop = (async () => {
    const pending: Promise<void>[] = [];
    for (let n = 1; running; n++) {
      const body = `s-${n}`;
      result.sentAt.set(body, Date.now());
      pending.push(send(body).then((status) => void result.sipOutcomes.set(body, status)));
      await sleep(interval);
    }
    await Promise.all(pending);
  })();
  const xmppLoop = (async () => {
    if (options.toContact === undefined) return;
    for (let n = 1; running; n++) {
      const body = `x-${n}`;
      result.toSip.push(body);
      options.chatUser().send({ op: "message", to: options.toContact, body, id: body });
      await sleep(interval);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await Promise.all([sipLoop, xmppLoop]);
      return result;
    },
  };
}

/** How often each `s-N` body reached the chat user's clients (from `from` when given). */
export function receivedByChatUser(clients: readonly SlixmppClient[], from?: string): Map<string, number> {
  const received = new Map<string, number>();
  for (const client of clients)
    for (const e of client.events)
      if (e.event === "message" && /^s-\d+$/.test(e.body ?? "") && (from === undefined || e.from === from))
        received.set(e.body ?? "", (received.get(e.body ?? "") ?? 0) + 1);
  return received;
}

/** The bodies of the MESSAGEs a SIP far end received. */
export function receivedAtSip(received: readonly RawSipMessage[]): string[] {
  return received.filter((m) => m.method === "MESSAGE").map((m) => m.body.trim());
}

export interface Accounting {
  /** SIP → XMPP MESSAGEs not answered 200 (body and status). */
  notOk: [string, number | "none"][];
  /** SIP → XMPP bodies answered 200 that never reached the chat user. */
  lost: string[];
  /** SIP → XMPP bodies that reached the chat user more than once. */
  twice: string[];
  /** XMPP → SIP bodies the far end never got. */
  missing: string[];
}

/** What became of every message of a traffic run where every MESSAGE should be accepted. */
export function account(
  result: TrafficResult,
  chatUser: readonly SlixmppClient[],
  farEnd: readonly RawSipMessage[],
  from?: string,
): Accounting {
  const received = receivedByChatUser(chatUser, from);
  const atSip = new Set(receivedAtSip(farEnd));
  return {
    notOk: [...result.sipOutcomes].filter(([, status]) => status !== 200),
    lost: [...result.sipOutcomes]
      .filter(([, status]) => status === 200)
      .map(([body]) => body)
      .filter((body) => !received.has(body)),
    twice: [...received].filter(([, count]) => count > 1).map(([body]) => body),
    missing: result.toSip.filter((body) => !atSip.has(body)),
  };
}
