// Aggregate presence ↔ PIDF `<basic>` (RFC 3863 §4.1.4), RPID `<activities>` (RFC 4480 §3.2) and
// `<dm:note>` / `<note>` (RFC 3863 §4.1.6). Values only; PIDF XML is built and parsed at the SIP edge.
import { SwitchboardError } from "../errors.js";
import type { PresenceState } from "../presence.js";
import type { PresenceWithNote } from "./xmpp-show.js";

export type PidfBasic = "open" | "closed";

/** The presence-relevant values of a PIDF document; activities are RPID element local names. */
export interface PidfPresence {
  readonly basic: PidfBasic;
  readonly activities: readonly string[];
  readonly note?: string;
}

export const EXTENDED_AWAY_NOTE = "Extended away";

/**
 * RFC 4480 §3.2 activities and the state each one means. `lunch` and `none` are not in RFC 4480 but
 * come from the RPID drafts and are still sent by some clients. `unknown` and `other` say nothing
 * about availability, so they mean available (the tuple is open).
 */
export const RPID_ACTIVITY_STATES: Readonly<Record<string, PresenceState>> = {
  "on-the-phone": "on-the-phone",
  busy: "dnd",
  meeting: "dnd",
  appointment: "dnd",
  performance: "dnd",
  presentation: "dnd",
  steering: "dnd",
  worship: "dnd",
  away: "away",
  breakfast: "away",
  lunch: "away",
  dinner: "away",
  meal: "away",
  "in-transit": "away",
  travel: "away",
  shopping: "away",
  holiday: "away",
  vacation: "away",
  playing: "away",
  spectator: "away",
  tv: "away",
  sleeping: "xa",
  "permanent-absence": "xa",
  working: "available",
  "looking-for-work": "available",
  unknown: "available",
  other: "available",
  none: "available",
};

// When a person publishes several activities, the one that most limits reachability decides.
const RESTRICTION: Readonly<Record<PresenceState, number>> = {
  "on-the-phone": 5,
  dnd: 4,
  xa: 3,
  away: 2,
  chat: 1,
  available: 0,
  unavailable: -1,
};

/** Aggregate → PIDF values, per the DESIGN.md table (chat and available share `open`; xa is RPID away). */
export function presenceToPidf(state: PresenceState, note: string | null): PidfPresence {
  const withNote = (p: PidfPresence, fallback?: string): PidfPresence => {
    const n = note === null || note === "" ? fallback : note;
    return n === undefined ? p : { ...p, note: n };
  };
  switch (state) {
    case "available":
    case "chat":
      return withNote({ basic: "open", activities: [] });
    case "away":
      return withNote({ basic: "open", activities: ["away"] });
    case "xa":
      return withNote({ basic: "open", activities: ["away"] }, EXTENDED_AWAY_NOTE);
    case "dnd":
      return withNote({ basic: "open", activities: ["busy"] });
    case "on-the-phone":
      return withNote({ basic: "open", activities: ["on-the-phone"] });
    case "unavailable":
      return withNote({ basic: "closed", activities: [] });
  }
}

/**
 * PIDF values → presence state. `closed` is unavailable whatever the activities. A missing basic
 * (optional in RFC 3863 §4.1.4) is read as open. Activities not in RPID_ACTIVITY_STATES are ignored:
 * RFC 4480 §3.2 lets publishers add their own, and they say nothing we can map. Neither the
 * "Extended away" note nor anything else turns `away` back into `xa`: that is the documented projection.
 */
export function pidfToPresence(pidf: {
  readonly basic: string | null;
  readonly activities: readonly string[];
  readonly note?: string | null;
}): PresenceWithNote {
  const note = pidf.note === undefined || pidf.note === null || pidf.note === "" ? null : pidf.note;
  if (pidf.basic !== null && pidf.basic !== "open" && pidf.basic !== "closed") {
    throw new SwitchboardError("bad-request", `unknown PIDF basic status '${pidf.basic}' (RFC 3863 §4.1.4)`);
  }
  if (pidf.basic === "closed") return { state: "unavailable", note };
  let state: PresenceState = "available";
  for (const activity of pidf.activities) {
    const mapped = RPID_ACTIVITY_STATES[activity];
    if (mapped !== undefined && RESTRICTION[mapped] > RESTRICTION[state]) state = mapped;
  }
  return { state, note };
}
