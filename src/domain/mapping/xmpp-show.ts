// Aggregate presence ↔ XMPP availability presence (RFC 6121 §4.7): `type='unavailable'`, `<show/>`
// (§4.7.2.1) and `<status/>` (§4.7.2.2). Values only; stanzas are built at the XMPP edge.
import { SwitchboardError } from "../errors.js";
import { ON_THE_PHONE_NOTE, type PresenceState } from "../presence.js";

export const XMPP_SHOWS = ["chat", "away", "xa", "dnd"] as const;
export type XmppShow = (typeof XMPP_SHOWS)[number];

/** The availability part of a presence stanza; absent keys are absent elements/attributes. */
export interface XmppPresence {
  readonly type?: "unavailable";
  readonly show?: XmppShow;
  readonly status?: string;
}

/** The presence value and note as read from a stanza. */
export interface PresenceWithNote {
  readonly state: PresenceState;
  readonly note: string | null;
}

/**
 * Aggregate → stanza. `available` has no `<show/>` (§4.7.2.1: absence means available). XMPP has no
 * "on the phone", so it is shown as `dnd` with the status "On the phone" unless a note says more.
 */
export function presenceToXmpp(state: PresenceState, note: string | null): XmppPresence {
  const status = note === null || note === "" ? undefined : note;
  const withStatus = (p: XmppPresence): XmppPresence => (status === undefined ? p : { ...p, status });
  switch (state) {
    case "available":
      return withStatus({});
    case "chat":
    case "away":
    case "xa":
    case "dnd":
      return withStatus({ show: state });
    case "on-the-phone":
      return { show: "dnd", status: status ?? ON_THE_PHONE_NOTE };
    case "unavailable":
      return withStatus({ type: "unavailable" });
  }
}

/**
 * Stanza → presence state. Only availability presence is accepted: a `type` other than
 * 'unavailable' (subscribe, probe, error...) is not a state and is refused, as is an unknown `<show/>`.
 * `dnd` stays `dnd` even with the status "On the phone": only the PBX says a call is in progress.
 */
export function xmppToPresence(presence: {
  readonly type?: string | null;
  readonly show?: string | null;
  readonly status?: string | null;
}): PresenceWithNote {
  const note =
    presence.status === undefined || presence.status === null || presence.status === ""
      ? null
      : presence.status;
  if (presence.type !== undefined && presence.type !== null) {
    if (presence.type !== "unavailable") {
      throw new SwitchboardError(
        "bad-request",
        `presence type '${presence.type}' is not an availability state`,
      );
    }
    return { state: "unavailable", note };
  }
  if (presence.show === undefined || presence.show === null) return { state: "available", note };
  const show = presence.show;
  if (!(XMPP_SHOWS as readonly string[]).includes(show)) {
    throw new SwitchboardError("bad-request", `unknown XMPP <show/> value '${show}' (RFC 6121 §4.7.2.1)`);
  }
  return { state: show as XmppShow, note };
}
