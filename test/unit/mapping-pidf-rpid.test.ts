import assert from "node:assert/strict";

import {
  pidfToPresence,
  presenceToPidf,
  RPID_ACTIVITY_STATES,
  type PidfPresence,
} from "../../src/domain/mapping/pidf-rpid.js";
import type { PresenceState } from "../../src/domain/presence.js";
import { assertSwitchboardError } from "./assert-error.js";

describe("PIDF basic + RPID mapping (RFC 3863, RFC 4480)", () => {
  // The DESIGN.md table, presence → PIDF.
  const table: ReadonlyArray<[PresenceState, PidfPresence]> = [
    ["available", { basic: "open", activities: [] }],
    ["chat", { basic: "open", activities: [] }],
    ["away", { basic: "open", activities: ["away"] }],
    ["xa", { basic: "open", activities: ["away"], note: "Extended away" }],
    ["dnd", { basic: "open", activities: ["busy"] }],
    ["on-the-phone", { basic: "open", activities: ["on-the-phone"] }],
    ["unavailable", { basic: "closed", activities: [] }],
  ];
  for (const [state, pidf] of table) {
    it(`presenceToPidf(${state})`, () => {
      assert.deepEqual(presenceToPidf(state, null), pidf);
    });
  }

  const lossless: readonly PresenceState[] = ["available", "away", "dnd", "on-the-phone", "unavailable"];
  for (const state of lossless) {
    it(`${state} round-trips, with its note`, () => {
      assert.deepEqual(pidfToPresence(presenceToPidf(state, null)), { state, note: null });
      assert.deepEqual(pidfToPresence(presenceToPidf(state, "Note")), { state, note: "Note" });
    });
  }

  it("the lossy rows project as documented: chat → available, xa → away", () => {
    assert.deepEqual(pidfToPresence(presenceToPidf("chat", null)), { state: "available", note: null });
    assert.deepEqual(pidfToPresence(presenceToPidf("xa", null)), { state: "away", note: "Extended away" });
    assert.deepEqual(pidfToPresence(presenceToPidf("xa", "Holiday")), { state: "away", note: "Holiday" });
  });

  it("a note on xa replaces the default 'Extended away'", () => {
    assert.deepEqual(presenceToPidf("xa", "Until Monday"), {
      basic: "open",
      activities: ["away"],
      note: "Until Monday",
    });
  });

  const activities: ReadonlyArray<[string, PresenceState]> = [
    ["on-the-phone", "on-the-phone"],
    ["busy", "dnd"],
    ["meeting", "dnd"],
    ["appointment", "dnd"],
    ["presentation", "dnd"],
    ["performance", "dnd"],
    ["steering", "dnd"],
    ["worship", "dnd"],
    ["away", "away"],
    ["lunch", "away"],
    ["meal", "away"],
    ["breakfast", "away"],
    ["dinner", "away"],
    ["vacation", "away"],
    ["holiday", "away"],
    ["travel", "away"],
    ["in-transit", "away"],
    ["shopping", "away"],
    ["playing", "away"],
    ["spectator", "away"],
    ["tv", "away"],
    ["sleeping", "xa"],
    ["permanent-absence", "xa"],
    ["working", "available"],
    ["looking-for-work", "available"],
    ["unknown", "available"],
    ["other", "available"],
    ["none", "available"],
  ];
  for (const [activity, state] of activities) {
    it(`open + <rpid:${activity}/> is ${state}`, () => {
      assert.deepEqual(pidfToPresence({ basic: "open", activities: [activity] }), { state, note: null });
      assert.equal(RPID_ACTIVITY_STATES[activity], state);
    });
  }

  it("the table above covers every activity the mapping knows", () => {
    assert.deepEqual(Object.keys(RPID_ACTIVITY_STATES).sort(), activities.map(([a]) => a).sort());
  });

  it("closed is unavailable whatever the activities say", () => {
    assert.deepEqual(pidfToPresence({ basic: "closed", activities: ["busy"], note: "Off" }), {
      state: "unavailable",
      note: "Off",
    });
  });

  it("the most restrictive of several activities wins", () => {
    const cases: ReadonlyArray<[string[], PresenceState]> = [
      [["away", "busy"], "dnd"],
      [["meeting", "on-the-phone"], "on-the-phone"],
      [["lunch", "sleeping"], "xa"],
      [["working", "away"], "away"],
    ];
    for (const [acts, state] of cases) {
      assert.equal(pidfToPresence({ basic: "open", activities: acts }).state, state);
      assert.equal(pidfToPresence({ basic: "open", activities: [...acts].reverse() }).state, state);
    }
  });

  it("ignores unknown extension activities; a missing basic is open", () => {
    assert.deepEqual(pidfToPresence({ basic: "open", activities: ["x-custom-thing"] }), {
      state: "available",
      note: null,
    });
    assert.deepEqual(pidfToPresence({ basic: null, activities: ["busy"] }), { state: "dnd", note: null });
    assert.deepEqual(pidfToPresence({ basic: null, activities: [] }), { state: "available", note: null });
  });

  it("refuses an unknown basic status", () => {
    assertSwitchboardError(
      () => pidfToPresence({ basic: "Open", activities: [] }),
      "bad-request",
      "unknown PIDF basic status 'Open'",
    );
    assertSwitchboardError(() => pidfToPresence({ basic: "busy", activities: [] }), "bad-request", "'busy'");
  });
});
