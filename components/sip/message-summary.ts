// RFC 3842 `application/simple-message-summary`: the body of a `message-summary` NOTIFY (voicemail
// counts), as Asterisk sends it for a mailbox (see ../shared/fixtures/asterisk-22.10.1/sip-mwi.log):
//
//   Messages-Waiting: yes
//   Message-Account: sip:vm@127.0.0.1:5062
//   Voice-Message: 3/0 (0/0)
//
// and the chat text the gateway sends the mailbox owner when it changes (DESIGN.md "Messages").
// Pure: the SIP edge subscribes and decides when a change is worth a message.

export const MESSAGE_SUMMARY_CONTENT_TYPE = "application/simple-message-summary";

/** Message counts of one class: `new/old (urgentNew/urgentOld)` (RFC 3842 §5.2). */
export interface MessageCounts {
  new: number;
  old: number;
  urgentNew?: number;
  urgentOld?: number;
}

/** RFC 3458 message-context classes, keyed without the `-message` suffix. */
export type MessageClass = "voice" | "fax" | "pager" | "multimedia" | "text" | "none";

export interface MessageSummary {
  /** The msg-status-line: `Messages-Waiting: yes`. */
  waiting: boolean;
  /** `Message-Account`, the mailbox URI, when given. */
  account?: string;
  /** Shortcut for `classes.voice`. */
  voice?: MessageCounts;
  classes: Partial<Record<MessageClass, MessageCounts>>;
}

const MAX_BYTES = 64 * 1024;

// message-context-class (RFC 3842 §5.2 after RFC 3458 §6.2): `none` has no `-message` suffix.
const CLASS_HEADERS: ReadonlyMap<string, MessageClass> = new Map([
  ["voice-message", "voice"],
  ["fax-message", "fax"],
  ["pager-message", "pager"],
  ["multimedia-message", "multimedia"],
  ["text-message", "text"],
  ["none", "none"],
]);

// msg-summary-line value: newmsgs SLASH oldmsgs [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ],
// SLASH and LPAREN allowing white space around them. Counts of up to nine digits stay exact numbers.
const COUNTS = /^(\d{1,9})\s*\/\s*(\d{1,9})(?:\s*\(\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*\))?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:(.*)$/;

/**
 * Reads a message-summary body. Header names are case-insensitive (HCOLON is SIP's, RFC 3261 §25.1)
 * and lines end in CRLF or LF. Null (never a throw) when there is no `Messages-Waiting: yes|no`
 * line: that is the one line a summary must have, and garbage has none. Everything else is lenient,
 * so the boolean indication survives a sender's mistakes: unknown headers and lines that are not
 * headers are ignored, and so is a count line whose counts are malformed (so `Voice-Message: lots`
 * leaves `voice` absent rather than refusing the body); the first line of a class wins. Reading stops
 * at the first blank line, after which RFC 3842 §5.2 allows RFC 2822 headers of single messages.
 */
export function parseMessageSummary(body: string): MessageSummary | null {
  if (Buffer.byteLength(body) > MAX_BYTES) return null;
  let waiting: boolean | undefined;
  let account: string | undefined;
  const classes: Partial<Record<MessageClass, MessageCounts>> = {};
  const lines = body.replace(/^(?:[ \t]*\r?\n)+/, "").split(/\r?\n/);
  for (const line of lines) {
    if (line.trim() === "") break; // opt-msg-headers follow
    const match = HEADER_LINE.exec(line);
    if (!match) continue;
    const name = (match[1] ?? "").toLowerCase();
    const value = (match[2] ?? "").trim();
    if (name === "messages-waiting") {
      const status = value.toLowerCase();
      if (waiting === undefined && (status === "yes" || status === "no")) waiting = status === "yes";
    } else if (name === "message-account") {
      if (account === undefined && value !== "") account = value;
    } else {
      const cls = CLASS_HEADERS.get(name);
      const counts = cls === undefined ? null : COUNTS.exec(value);
      if (cls === undefined || !counts || classes[cls]) continue;
      const entry: MessageCounts = { new: Number(counts[1]), old: Number(counts[2]) };
      if (counts[3] !== undefined && counts[4] !== undefined) {
        entry.urgentNew = Number(counts[3]);
        entry.urgentOld = Number(counts[4]);
      }
      classes[cls] = entry;
    }
  }
  if (waiting === undefined) return null;
  const summary: MessageSummary = { waiting, classes };
  if (account !== undefined) summary.account = account;
  if (classes.voice) summary.voice = classes.voice;
  return summary;
}
