// The message port between the two sides: a chat message (or a bare chat-state notification)
// from one party to another, in protocol-neutral terms. The SIP side implements `MessageSink` for
// messages chat users send to gateway contacts; the XMPP side implements it for messages SIP
// parties send to chat users.
import type { Condition } from "../domain/errors.js";

/** XEP-0085 chat states; RFC 3994 isComposing carries `active` and `idle`, mapped at the SIP edge. */
export const CHAT_STATES = ["active", "composing", "paused", "inactive", "gone"] as const;
export type ChatState = (typeof CHAT_STATES)[number];

export interface ChatMessage {
  /** The sender's id for the message (XMPP stanza id / a SIP Call-ID), for receipts and logs. */
  id: string;
  /** Sender: a bare JID (XMPP user) or a person key (SIP party). */
  from: string;
  /** Recipient: a person key (SIP party) or a bare/full JID (XMPP user). */
  to: string;
  /** Absent for a chat-state-only notification. */
  body?: string;
  thread?: string;
  /** Language of the body (xml:lang, Content-Language), when known. */
  lang?: string;
  chatState?: ChatState;
  /** The sender asked for a delivery receipt (XEP-0184), for a receipt sent later from the queue. */
  receipt?: boolean;
  /** Where late outcomes go: the sender's full JID (its resource may be gone by then; the server then delivers as to the bare JID). */
  replyTo?: string;
}

/**
 * How far a message got. `delivered`: the far end itself confirmed it (SIP 200 from the phone) — a
 * XEP-0184 receipt may be sent. `accepted`: an intermediary took it (SIP 202, Asterisk) — no receipt.
 * `queued`: the recipient is offline and the message waits in the queue — no receipt and no error
 * now; the outcome is reported later through `DeliveryReports`.
 * Failures are SwitchboardErrors whose condition the edge translates.
 */
export type DeliveryOutcome = "delivered" | "accepted" | "queued";

export interface MessageSink {
  deliver(message: ChatMessage): Promise<DeliveryOutcome>;
}

/** Outcomes that come after `deliver` returned `queued`: reported to the sender when known. */
export interface DeliveryReports {
  /** Delivered from the queue with this outcome (a receipt only for `delivered`, when asked). */
  delivered(message: ChatMessage, outcome: Exclude<DeliveryOutcome, "queued">): Promise<void>;
  /** Given up: the sender gets an error with this condition and text. */
  failed(message: ChatMessage, condition: Condition, text: string): Promise<void>;
}
