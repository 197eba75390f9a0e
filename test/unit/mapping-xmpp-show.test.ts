import assert from "node:assert/strict";

import { presenceToXmpp, xmppToPresence, type XmppPresence } from "../../src/domain/mapping/xmpp-show.js";
import type { PresenceState } from "../../src/domain/presence.js";
import { assertSwitchboardError } from "./assert-error.js";

describe("XMPP <show/> mapping (RFC 6121 §4.7)", () => {
  // The DESIGN.md table, presence → XMPP.
  const table: ReadonlyArray<[PresenceState, XmppPresence]> = [
    ["available", {}],
    ["chat", { show: "chat" }],
    ["away", { show: "away" }],
    ["xa", { show: "xa" }],
    ["dnd", { show: "dnd" }],
    ["on-the-phone", { show: "dnd", status: "On the phone" }],
    ["unavailable", { type: "unavailable" }],
  ];

  for (const [state, xmpp] of table) {
    it(`presenceToXmpp(${state})`, () => {
      assert.deepEqual(presenceToXmpp(state, null), xmpp);
    });
  }

  const lossless: readonly PresenceState[] = ["available", "chat", "away", "xa", "dnd", "unavailable"];
  for (const state of lossless) {
    it(`${state} round-trips with and without a note`, () => {
      assert.deepEqual(xmppToPresence(presenceToXmpp(state, null)), { state, note: null });
      assert.deepEqual(xmppToPresence(presenceToXmpp(state, "Back soon")), { state, note: "Back soon" });
    });
  }

  it("on-the-phone projects to dnd with the status 'On the phone'", () => {
    assert.deepEqual(xmppToPresence(presenceToXmpp("on-the-phone", null)), {
      state: "dnd",
      note: "On the phone",
    });
    assert.deepEqual(presenceToXmpp("on-the-phone", "Calling Bob"), { show: "dnd", status: "Calling Bob" });
  });

  it("carries the note as <status/>", () => {
    assert.deepEqual(presenceToXmpp("away", "Lunch"), { show: "away", status: "Lunch" });
    assert.deepEqual(presenceToXmpp("available", ""), {});
    assert.deepEqual(presenceToXmpp("unavailable", "Gone home"), {
      type: "unavailable",
      status: "Gone home",
    });
  });

  const incoming: ReadonlyArray<[Parameters<typeof xmppToPresence>[0], PresenceState, string | null]> = [
    [{}, "available", null],
    [{ type: null, show: null, status: null }, "available", null],
    [{ show: "chat" }, "chat", null],
    [{ show: "away", status: "Lunch" }, "away", "Lunch"],
    [{ show: "xa" }, "xa", null],
    [{ show: "dnd", status: "On the phone" }, "dnd", "On the phone"],
    [{ type: "unavailable", show: "away" }, "unavailable", null],
    [{ status: "" }, "available", null],
  ];
  for (const [stanza, state, note] of incoming) {
    it(`xmppToPresence(${JSON.stringify(stanza)}) is ${state}`, () => {
      assert.deepEqual(xmppToPresence(stanza), { state, note });
    });
  }

  it("refuses unknown show values and non-availability types", () => {
    assertSwitchboardError(
      () => xmppToPresence({ show: "busy" }),
      "bad-request",
      "unknown XMPP <show/> value 'busy'",
    );
    assertSwitchboardError(() => xmppToPresence({ show: "DND" }), "bad-request", "'DND'");
    assertSwitchboardError(
      () => xmppToPresence({ type: "subscribe" }),
      "bad-request",
      "presence type 'subscribe'",
    );
    assertSwitchboardError(() => xmppToPresence({ type: "error" }), "bad-request", "presence type 'error'");
  });
});
