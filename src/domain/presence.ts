// The presence model (DESIGN.md "Presence model"): per-source records and the one pure function
// that computes a user's aggregate presence from them. Stores keep the records; use cases call
// aggregate() after every change and schedule the next call at nextExpiry().

export const PRESENCE_STATES = [
  "available",
  "chat",
  "away",
  "xa",
  "dnd",
  "on-the-phone",
  "unavailable",
] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];

/** The PBX device state, reduced to what presence needs (see mapping/asterisk-device.ts). */
export const DEVICE_STATES = ["idle", "inuse", "onhold", "ringing", "unavailable"] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

/** Where a record came from; each source holds at most one record per user. */
export type PresenceSource =
  | { readonly kind: "xmpp"; readonly resource: string }
  | { readonly kind: "sip-publish"; readonly etag: string }
  | { readonly kind: "pbx-device" }
  | { readonly kind: "pbx-custom" };

export type ExplicitSource = Exclude<PresenceSource, { kind: "pbx-device" }>;

interface RecordTimes {
  /** When the source last reported (ms since the epoch). */
  readonly updatedAt: number;
  /** When the record stops counting (ms), or null when it never expires. Expired when expiresAt <= now. */
  readonly expiresAt: number | null;
}

/** A state someone chose: an XMPP client, a SIP PUBLISH, or the PBX CustomPresence. */
export interface ExplicitRecord extends RecordTimes {
  readonly source: ExplicitSource;
  /** null: the source has no opinion (Asterisk `not_set`); it contributes nothing, like `unavailable`. */
  readonly state: PresenceState | null;
  readonly note?: string | null;
}

/** The phone's device state as the PBX reports it. */
export interface DeviceRecord extends RecordTimes {
  readonly source: { readonly kind: "pbx-device" };
  readonly device: DeviceState;
}

export type PresenceRecord = ExplicitRecord | DeviceRecord;

export interface AggregatePresence {
  readonly state: PresenceState;
  readonly note: string | null;
  /**
   * Since when this state holds (ms): the winner's updatedAt; when unavailable, the latest moment a
   * source went away (an offline report's updatedAt or an expiry), or null when there never was one.
   */
  readonly since: number | null;
  /** The source that decided the state, or null when the user is unavailable. */
  readonly winner: PresenceSource | null;
}

export const ON_THE_PHONE_NOTE = "On the phone";

export const RINGING_NOTE = "Ringing";

/** A busy phone's note, by what it is doing; the first one present wins (a call beats a hold). */
const BUSY_NOTES: readonly [DeviceState, string][] = [
  ["inuse", ON_THE_PHONE_NOTE],
  ["onhold", "On hold"],
  ["ringing", RINGING_NOTE],
];

// Tie-break order for explicit records reported in the same millisecond: the PBX CustomPresence is
// set deliberately by dialplan or by the user at the phone, a SIP PUBLISH comes from a SIP client,
// an XMPP resource last. Within a kind, the smaller resource/ETag (UTF-16 code unit order) wins,
// so the result never depends on the order in which the store returns records.
const SOURCE_RANK: Readonly<Record<ExplicitSource["kind"], number>> = {
  "pbx-custom": 0,
  "sip-publish": 1,
  xmpp: 2,
};

function isLive(record: PresenceRecord, now: number): boolean {
  return record.expiresAt === null || record.expiresAt > now;
}

function sourceKey(source: PresenceSource): string {
  switch (source.kind) {
    case "xmpp":
      return source.resource;
    case "sip-publish":
      return source.etag;
    default:
      return "";
  }
}

/** Orders explicit records: the most recent first, then by SOURCE_RANK, then by source key. */
function compareExplicit(a: ExplicitRecord, b: ExplicitRecord): number {
  if (a.updatedAt !== b.updatedAt) return b.updatedAt - a.updatedAt;
  const rank = SOURCE_RANK[a.source.kind] - SOURCE_RANK[b.source.kind];
  if (rank !== 0) return rank;
  const ka = sourceKey(a.source);
  const kb = sourceKey(b.source);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * The aggregate presence at `now`, by DESIGN.md's rules, in this order:
 * 1. Expired records (expiresAt <= now) drop out.
 * 2. A busy phone (a live device record `inuse`, `onhold` or `ringing`) shows on-the-phone with the
 *    note "On the phone", "On hold" or "Ringing" (in that order of precedence), over any chat
 *    state and over nothing at all: whoever is being called is about to be on the phone.
 * 3. Otherwise the most recent explicit record wins, with its note. Records whose state is
 *    `unavailable` (an XMPP resource gone offline, a closed PIDF) or null (Asterisk `not_set`)
 *    contribute nothing: one source going away reveals the others rather than hiding them.
 * 4. Otherwise a registered phone (device `idle`) gives `available` with no note, so a desk-phone
 *    user with no chat client shows available.
 *    Device `unavailable` (phone unregistered) contributes nothing: a phone off is not a person off.
 * 5. Otherwise the user is unavailable.
 */
export function aggregate(records: readonly PresenceRecord[], now: number): AggregatePresence {
  const live = records.filter((r) => isLive(r, now));
  const devices = live.filter((r): r is DeviceRecord => r.source.kind === "pbx-device");

  // If several device records are busy (several phones), the busiest kind wins, and of those the one
  // that started last decides `since`.
  for (const [busy, note] of BUSY_NOTES) {
    const call = devices.filter((d) => d.device === busy).sort((a, b) => b.updatedAt - a.updatedAt)[0];
    if (call !== undefined)
      return { state: "on-the-phone", note, since: call.updatedAt, winner: call.source };
  }

  const explicit = live
    .filter((r): r is ExplicitRecord => r.source.kind !== "pbx-device")
    .filter((r) => r.state !== null && r.state !== "unavailable")
    .sort(compareExplicit);
  const chosen = explicit[0];
  if (chosen !== undefined && chosen.state !== null) {
    const note = chosen.note === undefined || chosen.note === "" ? null : chosen.note;
    return { state: chosen.state, note, since: chosen.updatedAt, winner: chosen.source };
  }

  const registered = devices.filter((d) => d.device === "idle").sort((a, b) => b.updatedAt - a.updatedAt);
  const phone = registered[0];
  if (phone !== undefined) {
    return { state: "available", note: null, since: phone.updatedAt, winner: phone.source };
  }

  // Unavailable: since the last source went away, whether by reporting so or by expiring.
  let since: number | null = null;
  for (const r of records) {
    const gone = isLive(r, now) ? r.updatedAt : (r.expiresAt ?? r.updatedAt);
    if (gone <= now && (since === null || gone > since)) since = gone;
  }
  return { state: "unavailable", note: null, since, winner: null };
}

/** The earliest expiry after `now` (ms), when the aggregate must be computed again; null if none. */
export function nextExpiry(records: readonly PresenceRecord[], now: number): number | null {
  let next: number | null = null;
  for (const r of records) {
    if (r.expiresAt !== null && r.expiresAt > now && (next === null || r.expiresAt < next))
      next = r.expiresAt;
  }
  return next;
}
