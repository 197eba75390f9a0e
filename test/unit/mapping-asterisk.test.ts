import assert from "node:assert/strict";

import {
  ASTERISK_DEVICE_STATES,
  asteriskDeviceToDevice,
  deviceToAsteriskDevice,
  type AsteriskDeviceState,
} from "../../src/domain/mapping/asterisk-device.js";
import {
  asteriskToPresence,
  formatPresenceState,
  parsePresenceState,
  presenceToAsterisk,
  type AsteriskPresence,
  type AsteriskPresenceState,
} from "../../src/domain/mapping/asterisk-presence.js";
import { DEVICE_STATES, type DeviceState, type PresenceState } from "../../src/domain/presence.js";
import { assertSwitchboardError } from "./assert-error.js";

describe("Asterisk presence mapping", () => {
  const table: ReadonlyArray<[PresenceState, AsteriskPresence | null]> = [
    ["available", "available"],
    ["chat", "chat"],
    ["away", "away"],
    ["xa", "xa"],
    ["dnd", "dnd"],
    ["on-the-phone", null],
    ["unavailable", "unavailable"],
  ];
  for (const [state, value] of table) {
    it(`presenceToAsterisk(${state}) is ${String(value)}`, () => {
      assert.equal(presenceToAsterisk(state), value);
      if (value !== null) assert.equal(asteriskToPresence(value), state);
    });
  }

  it("not_set contributes nothing", () => {
    assert.equal(asteriskToPresence("not_set"), null);
  });

  it("reads names case-insensitively, as Asterisk does", () => {
    assert.equal(asteriskToPresence("DND"), "dnd");
    assert.equal(asteriskToPresence("Not_Set"), null);
  });

  it("refuses unknown values", () => {
    assertSwitchboardError(
      () => asteriskToPresence("busy"),
      "bad-request",
      "unknown Asterisk presence state 'busy'",
    );
    assertSwitchboardError(() => asteriskToPresence(""), "bad-request", "unknown Asterisk presence state ''");
  });
});

describe("PRESENCE_STATE value string", () => {
  const parsed: ReadonlyArray<[string, AsteriskPresenceState]> = [
    ["away,,Lunch", { value: "away", subtype: "", message: "Lunch" }],
    ["dnd,,On the phone", { value: "dnd", subtype: "", message: "On the phone" }],
    ["available,,", { value: "available", subtype: "", message: "" }],
    ["available", { value: "available", subtype: "", message: "" }],
    ["xa,vacation", { value: "xa", subtype: "vacation", message: "" }],
    ["AWAY,,Lunch", { value: "away", subtype: "", message: "Lunch" }],
    ["away,,Lunch, back at 2", { value: "away", subtype: "", message: "Lunch, back at 2" }],
    ["away,,a,b,c", { value: "away", subtype: "", message: "a,b,c" }],
    // Recorded from Asterisk 22.10.1 (../shared/fixtures/asterisk-22.10.1/ari-rest.txt): base64 with the e option.
    ["away,,THVuY2gsIGJhY2sgYXQgMg==,e", { value: "away", subtype: "", message: "Lunch, back at 2" }],
    ["dnd,bWVldGluZw==,SW4gYSBtZWV0aW5n,e", { value: "dnd", subtype: "meeting", message: "In a meeting" }],
  ];
  for (const [text, state] of parsed) {
    it(`parses ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parsePresenceState(text), state);
    });
  }

  const formatted: ReadonlyArray<[AsteriskPresenceState, string]> = [
    [{ value: "away", subtype: "", message: "Lunch" }, "away,,Lunch"],
    [{ value: "available", subtype: "", message: "" }, "available,,"],
    [{ value: "not_set", subtype: "", message: "" }, "not_set,,"],
    [{ value: "away", subtype: "", message: "Lunch, back at 2" }, "away,,THVuY2gsIGJhY2sgYXQgMg==,e"],
    [{ value: "dnd", subtype: "", message: "line1\nline2" }, "dnd,,bGluZTEKbGluZTI=,e"],
  ];
  for (const [state, text] of formatted) {
    it(`formats ${JSON.stringify(state.message)} as ${text}`, () => {
      assert.equal(formatPresenceState(state), text);
      assert.deepEqual(parsePresenceState(text), state);
    });
  }

  it("round-trips UTF-8 and commas in both subtype and message", () => {
    const state: AsteriskPresenceState = { value: "xa", subtype: "a,b", message: "Déjà vu, encore" };
    assert.deepEqual(parsePresenceState(formatPresenceState(state)), state);
  });

  it("refuses a missing or unknown state and bad base64", () => {
    assertSwitchboardError(() => parsePresenceState(""), "bad-request", "missing presence state");
    assertSwitchboardError(() => parsePresenceState(",,Lunch"), "bad-request", "missing presence state");
    assertSwitchboardError(
      () => parsePresenceState("lunch,,x"),
      "bad-request",
      "unknown Asterisk presence state 'lunch'",
    );
    assertSwitchboardError(
      () => parsePresenceState("away,,Lunch!,e"),
      "bad-request",
      "invalid base64 'Lunch!'",
    );
    assertSwitchboardError(() => parsePresenceState("away,,/w==,e"), "bad-request", "is not UTF-8 text");
  });
});

describe("Asterisk device state mapping", () => {
  const table: ReadonlyArray<[AsteriskDeviceState, DeviceState]> = [
    ["NOT_INUSE", "idle"],
    ["INUSE", "inuse"],
    ["BUSY", "inuse"],
    ["ONHOLD", "onhold"],
    ["RINGINUSE", "inuse"],
    ["RINGING", "ringing"],
    ["UNAVAILABLE", "unavailable"],
    ["INVALID", "unavailable"],
    ["UNKNOWN", "unavailable"],
  ];
  for (const [asterisk, device] of table) {
    it(`${asterisk} -> ${device}`, () => {
      assert.equal(asteriskDeviceToDevice(asterisk), device);
    });
  }

  it("the table covers every Asterisk device state", () => {
    assert.deepEqual(table.map(([a]) => a).sort(), [...ASTERISK_DEVICE_STATES].sort());
  });

  const back: ReadonlyArray<[DeviceState, AsteriskDeviceState]> = [
    ["idle", "NOT_INUSE"],
    ["inuse", "INUSE"],
    ["onhold", "ONHOLD"],
    ["ringing", "RINGING"],
    ["unavailable", "UNAVAILABLE"],
  ];
  for (const [device, asterisk] of back) {
    it(`${device} -> ${asterisk} and back`, () => {
      assert.equal(deviceToAsteriskDevice(device), asterisk);
      assert.equal(asteriskDeviceToDevice(deviceToAsteriskDevice(device)), device);
    });
  }

  it("every device state has an Asterisk name", () => {
    assert.deepEqual(back.map(([d]) => d).sort(), [...DEVICE_STATES].sort());
  });

  it("reads names case-insensitively and refuses unknown ones", () => {
    assert.equal(asteriskDeviceToDevice("not_inuse"), "idle");
    assertSwitchboardError(
      () => asteriskDeviceToDevice("IN_USE"),
      "bad-request",
      "unknown Asterisk device state 'IN_USE'",
    );
    assertSwitchboardError(
      () => asteriskDeviceToDevice(""),
      "bad-request",
      "unknown Asterisk device state ''",
    );
  });
});
