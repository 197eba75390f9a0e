// RFC 3994 isComposing (`application/im-iscomposing+xml`): the "is typing" indication SIP clients
// send as a MESSAGE of its own, and its mapping to XEP-0085 chat states. Parsed like PIDF (see
// pidf.ts): a strict, namespace-aware XML parser (saxes) that expands no entities, so a DOCTYPE, an
// external entity or an undefined reference makes the document refused, never a billion laughs.
// Pure: the SIP edge decides when to send and whether the peer accepts this content type at all.
import { SaxesParser } from "saxes";
import type { ChatState } from "../../src/ports/message-port.js";

export const NS_IS_COMPOSING = "urn:ietf:params:xml:ns:im-iscomposing";
export const IS_COMPOSING_CONTENT_TYPE = "application/im-iscomposing+xml";

/**
 * The refresh interval (seconds) the bridge asks for when it says `active`. XEP-0085 has no
 * refresh: a chat client sends `<composing/>` once and SHOULD later send `<paused/>`, but may never
 * do so (or the stanza may be lost). A SIP receiver drops `active` when the refresh runs out (RFC
 * 3994 §3.3; 120 s when no refresh is given), so a short refresh bounds how long a stale "typing…"
 * stays on a phone. 60 s keeps that bound at one minute while costing the bridge at most one
 * re-sent indication a minute for a user who really keeps typing; shorter would add MESSAGE
 * traffic to phones for little gain.
 */
export const COMPOSING_REFRESH_SECONDS = 60;

const LIMITS = { maxBytes: 16 * 1024, maxDepth: 8, maxElements: 256 };

export type IsComposingState = "active" | "idle";

export interface IsComposing {
  state: IsComposingState;
  /** Seconds until the sender refreshes `active` (positive integer); only read for `active`. */
  refresh?: number;
  /** What is being composed, e.g. `text/plain` or `audio`. */
  contentType?: string;
  /** When the composer was last active (an xs:dateTime string, as sent). */
  lastActive?: string;
}

type Field = "state" | "lastactive" | "contenttype" | "refresh";
const FIELDS: ReadonlySet<string> = new Set<Field>(["state", "lastactive", "contenttype", "refresh"]);

/**
 * Reads an isComposing document; null for anything that is not a well-formed one in the RFC 3994
 * namespace: a DOCTYPE or entity reference, another root, no `<state>` or two of them, a state
 * other than `active`/`idle`. Optional elements with a bad value (a refresh that is not a positive
 * integer, an empty contenttype) are dropped rather than refusing the indication; elements of
 * other namespaces (the schema's extension point) are ignored. Never throws.
 */
export function parseIsComposing(xml: string): IsComposing | null {
  // A leading BOM or blank line (trimStart removes both) is not well-formed XML before the
  // declaration, but harmless.
  const doc = xml.trimStart();
  if (Buffer.byteLength(doc) > LIMITS.maxBytes) return null;
  if (/<!DOCTYPE/i.test(doc)) return null;

  const parser = new SaxesParser({ xmlns: true, position: false });
  const values = new Map<Field, string>();
  let failed = false;
  let depth = 0;
  let elements = 0;
  let field: Field | null = null; // the RFC 3994 child of the root being read, if any
  let fieldHasChildren = false;
  let text = "";

  parser.on("error", () => {
    failed = true;
  });
  parser.on("opentag", (tag) => {
    if (++elements > LIMITS.maxElements || depth >= LIMITS.maxDepth) failed = true;
    if (depth === 0 && (tag.uri !== NS_IS_COMPOSING || tag.local !== "isComposing")) failed = true;
    if (depth === 1 && tag.uri === NS_IS_COMPOSING && FIELDS.has(tag.local)) {
      field = tag.local as Field;
      fieldHasChildren = false;
      text = "";
    } else if (depth >= 2 && field !== null) {
      fieldHasChildren = true;
    }
    depth++;
  });
  const onText = (t: string): void => {
    if (field !== null) text += t;
  };
  parser.on("text", onText);
  parser.on("cdata", onText);
  parser.on("closetag", () => {
    depth--;
    if (depth !== 1 || field === null) return;
    if (field === "state" && values.has("state")) failed = true; // exactly one <state>
    if (!values.has(field)) values.set(field, fieldHasChildren ? "" : text.trim());
    field = null;
  });
  try {
    parser.write(doc).close();
  } catch {
    failed = true;
  }
  if (failed) return null;

  const state = values.get("state");
  if (state !== "active" && state !== "idle") return null;
  const result: IsComposing = { state };
  const refresh = values.get("refresh");
  // xs:positiveInteger; refresh concerns the active state only (RFC 3994 §3.2).
  if (state === "active" && refresh !== undefined && /^\+?0*[1-9][0-9]{0,8}$/.test(refresh))
    result.refresh = Number(refresh);
  const contentType = values.get("contenttype");
  if (contentType) result.contentType = contentType;
  const lastActive = values.get("lastactive");
  if (lastActive) result.lastActive = lastActive;
  return result;
}

/**
 * An isComposing document saying `state` about a text message (RFC 3994): the XML declaration, the
 * namespace, `<state>`, `<contenttype>text/plain</contenttype>` and, for `active` only, `<refresh>`
 * — in the schema's element order. `refresh` given with `idle` is ignored; a refresh that is not a
 * positive integer is a programming error (RangeError).
 */
export function buildIsComposing(state: IsComposingState, refresh?: number): string {
  if (state !== "active" && state !== "idle") throw new RangeError(`isComposing state ${String(state)}`);
  if (refresh !== undefined && !(Number.isSafeInteger(refresh) && refresh > 0))
    throw new RangeError(`isComposing refresh must be a positive integer, not ${refresh}`);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<isComposing xmlns="${NS_IS_COMPOSING}">`,
    `<state>${state}</state>`,
    `<contenttype>text/plain</contenttype>`,
    state === "active" && refresh !== undefined ? `<refresh>${refresh}</refresh>` : "",
    `</isComposing>`,
  ].join("");
}

// The mapping between RFC 3994 and XEP-0085 (§2 defines the five chat states).
//
// SIP → XMPP (chatStateFromIsComposing):
//
// | isComposing | chat state | why                                                            |
// |-------------|------------|----------------------------------------------------------------|
// | active      | composing  | both mean "is composing a message now"                          |
// | idle        | paused     | an explicit idle says the user stopped composing without       |
// |             |            | sending: XEP-0085 "had been composing but now has stopped". A  |
// |             |            | sent message needs no idle (its arrival ends composing, RFC    |
// |             |            | 3994 §3.3), so idle is not XEP-0085 `active`.                  |
//
// The edge should also turn an `active` whose refresh ran out (RFC 3994 §3.3: the refresh given,
// else 120 s) into `paused`, as if idle had arrived.
//
// XMPP → SIP (isComposingFromChatState):
//
// | chat state           | isComposing          | why                                         |
// |----------------------|----------------------|---------------------------------------------|
// | composing            | active, refresh 60 s | see COMPOSING_REFRESH_SECONDS               |
// | paused               | idle                 | stopped composing                           |
// | active (alone)       | idle                 | back to the conversation without sending,   |
// | inactive, gone       | idle                 | or away from it: whatever was being typed   |
// |                      |                      | is not being typed now                      |
// | any, with a body     | nothing (null)       | XEP-0085 puts `<active/>` on every message; |
// |                      |                      | the SIP MESSAGE carrying the text itself    |
// |                      |                      | ends composing (RFC 3994 §3.3), so a second |
// |                      |                      | MESSAGE would be redundant traffic          |
//
// The mapping is stateless: an idle for a peer that was never told `active` is harmless but useless;
// the edge may drop it when the last indication it sent that peer was not `active`.

/** The XEP-0085 chat state for an RFC 3994 state (see the table above). */
export function chatStateFromIsComposing(state: IsComposingState): ChatState {
  return state === "active" ? "composing" : "paused";
}

export type IsComposingIndication = { state: "active"; refresh: number } | { state: "idle" };

/**
 * The isComposing indication to send for an XEP-0085 chat state, or null when none should be sent
 * (the chat state came with a message body). See the table above.
 */
export function isComposingFromChatState(
  chatState: ChatState,
  withBody = false,
): IsComposingIndication | null {
  if (withBody) return null;
  return chatState === "composing"
    ? { state: "active", refresh: COMPOSING_REFRESH_SECONDS }
    : { state: "idle" };
}
