import assert from "node:assert/strict";

import {
  aggregate,
  nextExpiry,
  type DeviceRecord,
  type DeviceState,
  type ExplicitRecord,
  type PresenceRecord,
  type PresenceState,
} from "../../src/domain/presence.js";

const NOW = 1_000_000;

const xmpp = (
  resource: string,
  state: PresenceState,
  updatedAt: number,
  more: Partial<ExplicitRecord> = {},
): ExplicitRecord => ({
  source: { kind: "xmpp", resource },
  state,
  updatedAt,
  expiresAt: null,
  ...more,
});
const publish = (
  etag: string,
  state: PresenceState,
  updatedAt: number,
  more: Partial<ExplicitRecord> = {},
): ExplicitRecord => ({
  source: { kind: "sip-publish", etag },
  state,
  updatedAt,
  expiresAt: updatedAt + 3_600_000,
  ...more,
});
const custom = (
  state: PresenceState | null,
  updatedAt: number,
  more: Partial<ExplicitRecord> = {},
): ExplicitRecord => ({
  source: { kind: "pbx-custom" },
  state,
  updatedAt,
  expiresAt: null,
  ...more,
});
const device = (state: DeviceState, updatedAt: number, expiresAt: number | null = null): DeviceRecord => ({
  source: { kind: "pbx-device" },
  device: state,
  updatedAt,
  expiresAt,
});

describe("aggregate()", () => {
  it("with no records the user is unavailable, since never", () => {
    assert.deepEqual(aggregate([], NOW), { state: "unavailable", note: null, since: null, winner: null });
  });

  describe("latest explicit state wins", () => {
    it("the most recent record wins whatever the source", () => {
      const records = [
        xmpp("laptop", "away", 100),
        publish("e1", "dnd", 300, { note: "In a meeting" }),
        custom("chat", 200),
      ];
      assert.deepEqual(aggregate(records, NOW), {
        state: "dnd",
        note: "In a meeting",
        since: 300,
        winner: { kind: "sip-publish", etag: "e1" },
      });
    });

    it("record order in the input does not matter", () => {
      const records = [xmpp("a", "away", 100), xmpp("b", "xa", 200), custom("dnd", 150)];
      const forward = aggregate(records, NOW);
      const backward = aggregate([...records].reverse(), NOW);
      assert.deepEqual(forward, backward);
      assert.equal(forward.state, "xa");
    });

    const ties: ReadonlyArray<[string, PresenceRecord[], PresenceState]> = [
      ["pbx-custom beats sip-publish", [publish("e", "away", 500), custom("dnd", 500)], "dnd"],
      ["pbx-custom beats xmpp", [xmpp("r", "chat", 500), custom("xa", 500)], "xa"],
      ["sip-publish beats xmpp", [xmpp("r", "chat", 500), publish("e", "away", 500)], "away"],
      [
        "the smaller resource wins between XMPP resources",
        [xmpp("phone", "away", 500), xmpp("laptop", "dnd", 500)],
        "dnd",
      ],
      [
        "the smaller ETag wins between publications",
        [publish("zz", "away", 500), publish("aa", "xa", 500)],
        "xa",
      ],
    ];
    for (const [name, records, expected] of ties) {
      it(`tie in the same millisecond: ${name}`, () => {
        assert.equal(aggregate(records, NOW).state, expected);
        assert.equal(aggregate([...records].reverse(), NOW).state, expected);
      });
    }

    it("an empty note is no note", () => {
      assert.equal(aggregate([xmpp("r", "away", 1, { note: "" })], NOW).note, null);
      assert.equal(aggregate([xmpp("r", "away", 1)], NOW).note, null);
    });
  });

  describe("expiry", () => {
    it("a record expiring exactly now has dropped out; one ms later it still counts", () => {
      const r = publish("e", "away", 100, { expiresAt: NOW });
      assert.deepEqual(aggregate([r], NOW), { state: "unavailable", note: null, since: NOW, winner: null });
      assert.equal(aggregate([r], NOW - 1).state, "away");
    });

    it("an expired newer record reveals the older live one", () => {
      const records = [xmpp("laptop", "chat", 100), publish("e", "dnd", 500, { expiresAt: 900 })];
      assert.equal(aggregate(records, 899).state, "dnd");
      assert.deepEqual(aggregate(records, 900), {
        state: "chat",
        note: null,
        since: 100,
        winner: { kind: "xmpp", resource: "laptop" },
      });
    });

    it("an expired call no longer shows on the phone", () => {
      assert.equal(aggregate([device("inuse", 100, 500)], 499).state, "on-the-phone");
      assert.equal(aggregate([device("inuse", 100, 500)], 500).state, "unavailable");
    });
  });

  describe("on the phone", () => {
    for (const state of ["dnd", "away", "chat", "available", "xa"] as const) {
      it(`a call in progress shows over ${state}, even a newer one`, () => {
        const result = aggregate([device("inuse", 100), xmpp("r", state, 900, { note: "Busy typing" })], NOW);
        assert.deepEqual(result, {
          state: "on-the-phone",
          note: "On the phone",
          since: 100,
          winner: { kind: "pbx-device" },
        });
      });
    }

    it("a call in progress shows over nothing at all", () => {
      assert.deepEqual(aggregate([device("inuse", 100)], NOW), {
        state: "on-the-phone",
        note: "On the phone",
        since: 100,
        winner: { kind: "pbx-device" },
      });
    });

    it("a call in progress shows over explicit unavailable", () => {
      assert.equal(
        aggregate([device("inuse", 100), xmpp("r", "unavailable", 900)], NOW).state,
        "on-the-phone",
      );
    });

    it("a ringing or held phone is on the phone too, with its own note; a call beats a hold, a hold ringing", () => {
      const ringing = aggregate([device("ringing", 900), xmpp("r", "away", 100)], NOW);
      assert.deepEqual([ringing.state, ringing.note], ["on-the-phone", "Ringing"]);
      const held = aggregate([device("onhold", 900), xmpp("r", "away", 100)], NOW);
      assert.deepEqual([held.state, held.note], ["on-the-phone", "On hold"]);
      assert.equal(aggregate([device("ringing", 900), device("onhold", 100)], NOW).note, "On hold");
      assert.equal(aggregate([device("onhold", 900), device("inuse", 100)], NOW).note, "On the phone");
    });

    it("a SIP client may publish on-the-phone explicitly", () => {
      const r = aggregate([publish("e", "on-the-phone", 100, { note: "Calling Bob" })], NOW);
      assert.equal(r.state, "on-the-phone");
      assert.equal(r.note, "Calling Bob");
    });
  });

  describe("sources that contribute nothing", () => {
    it("Asterisk not_set (null state) contributes nothing", () => {
      assert.equal(aggregate([xmpp("r", "away", 100), custom(null, 900)], NOW).state, "away");
      assert.equal(aggregate([custom(null, 900)], NOW).state, "unavailable");
    });

    it("an unavailable XMPP resource or closed publication reveals the other sources", () => {
      const records = [
        xmpp("laptop", "chat", 100),
        xmpp("phone", "unavailable", 900),
        publish("e", "unavailable", 800),
      ];
      assert.deepEqual(aggregate(records, NOW), {
        state: "chat",
        note: null,
        since: 100,
        winner: { kind: "xmpp", resource: "laptop" },
      });
    });

    it("device unavailable (phone unregistered) contributes nothing", () => {
      assert.equal(aggregate([device("unavailable", 900), xmpp("r", "dnd", 100)], NOW).state, "dnd");
      assert.equal(aggregate([device("unavailable", 900)], NOW).state, "unavailable");
    });
  });

  describe("registered phone fallback", () => {
    for (const d of ["idle"] as const) {
      it(`a ${d} phone with no explicit source shows available`, () => {
        assert.deepEqual(aggregate([device(d, 300)], NOW), {
          state: "available",
          note: null,
          since: 300,
          winner: { kind: "pbx-device" },
        });
      });
    }

    it("an idle phone never overrides an explicit state, even an older one", () => {
      assert.equal(aggregate([device("idle", 900), xmpp("r", "xa", 100)], NOW).state, "xa");
    });

    it("an idle phone shows available when every explicit source went offline", () => {
      assert.equal(aggregate([device("idle", 100), xmpp("r", "unavailable", 900)], NOW).state, "available");
    });
  });

  describe("all gone", () => {
    it("everything expired or offline: unavailable since the last departure", () => {
      const records = [
        xmpp("r", "unavailable", 700),
        publish("e", "away", 100, { expiresAt: 800 }),
        device("unavailable", 600),
        custom(null, 650),
      ];
      assert.deepEqual(aggregate(records, NOW), {
        state: "unavailable",
        note: null,
        since: 800,
        winner: null,
      });
    });
  });
});

describe("nextExpiry()", () => {
  it("is the earliest expiry strictly after now", () => {
    const records = [
      publish("a", "away", 0, { expiresAt: 5000 }),
      device("idle", 0, 3000),
      xmpp("r", "chat", 0),
    ];
    assert.equal(nextExpiry(records, 1000), 3000);
    assert.equal(nextExpiry(records, 3000), 5000);
    assert.equal(nextExpiry(records, 5000), null);
  });

  it("is null without expiring records", () => {
    assert.equal(nextExpiry([], NOW), null);
    assert.equal(nextExpiry([xmpp("r", "chat", 0), custom("dnd", 0)], NOW), null);
  });
});
