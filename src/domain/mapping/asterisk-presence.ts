// Aggregate presence ↔ Asterisk presence state (CustomPresence hints; func_presencestate), and the
// `PRESENCE_STATE()` value string `state,subtype,message[,options]`.
import { SwitchboardError } from "../errors.js";
import type { PresenceState } from "../presence.js";

export const ASTERISK_PRESENCES = [
  "not_set",
  "unavailable",
  "available",
  "away",
  "xa",
  "chat",
  "dnd",
] as const;
export type AsteriskPresence = (typeof ASTERISK_PRESENCES)[number];

/**
 * Aggregate → Asterisk presence. on-the-phone returns null: Asterisk already knows about the call
 * through the device state (INUSE) and its hints combine the two, so the bridge must not overwrite
 * the CustomPresence with a state that would outlive the call.
 */
export function presenceToAsterisk(state: PresenceState): AsteriskPresence | null {
  return state === "on-the-phone" ? null : state;
}

/**
 * Asterisk presence → aggregate state. `not_set` returns null: it contributes nothing (DESIGN.md).
 * Asterisk reads these names case-insensitively; an unknown name is an error.
 */
export function asteriskToPresence(value: string): PresenceState | null {
  const key = parseAsteriskPresence(value);
  return key === "not_set" ? null : key;
}

function parseAsteriskPresence(value: string): AsteriskPresence {
  const key = value.toLowerCase();
  if (!(ASTERISK_PRESENCES as readonly string[]).includes(key)) {
    throw new SwitchboardError("bad-request", `unknown Asterisk presence state '${value}'`);
  }
  return key as AsteriskPresence;
}

export interface AsteriskPresenceState {
  readonly value: AsteriskPresence;
  readonly subtype: string;
  readonly message: string;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses `state[,subtype[,message[,options]]]`, e.g. `away,,Lunch`. With the option `e` (a fourth
 * field exactly "e") subtype and message are base64 (UTF-8), as func_presencestate writes them.
 * Otherwise everything after the second comma is the message, commas included: Asterisk itself
 * refuses a raw comma in the message on write, but AMI shows decoded messages that contain commas
 * ("Lunch, back at 2"), and those must not be cut.
 */
export function parsePresenceState(text: string): AsteriskPresenceState {
  const fields = text.split(",");
  const [valueText = "", subtype = "", ...rest] = fields;
  if (valueText === "") throw new SwitchboardError("bad-request", `missing presence state in '${text}'`);
  const value = parseAsteriskPresence(valueText);
  if (rest.length === 2 && rest[1] === "e") {
    return { value, subtype: decode(subtype, text), message: decode(rest[0] ?? "", text) };
  }
  return { value, subtype, message: rest.join(",") };
}

/**
 * Formats the value for `Set(PRESENCE_STATE(CustomPresence:alice)=...)` or ARI's
 * `/asterisk/variable`. When subtype or message holds a comma or a control character (which a raw
 * value cannot carry) both are base64-encoded and the `e` option added.
 */
export function formatPresenceState(state: AsteriskPresenceState): string {
  const unsafe = /[,\p{Cc}]/u;
  if (unsafe.test(state.subtype) || unsafe.test(state.message)) {
    const enc = (s: string): string => Buffer.from(s, "utf8").toString("base64");
    return `${state.value},${enc(state.subtype)},${enc(state.message)},e`;
  }
  return `${state.value},${state.subtype},${state.message}`;
}

function decode(field: string, text: string): string {
  if (!BASE64.test(field)) {
    throw new SwitchboardError("bad-request", `invalid base64 '${field}' in presence state '${text}'`);
  }
  try {
    return utf8.decode(Buffer.from(field, "base64"));
  } catch {
    throw new SwitchboardError(
      "bad-request",
      `base64 '${field}' is not UTF-8 text in presence state '${text}'`,
    );
  }
}
