// RFC 4235 dialog-info for BLF keys: ringing → early, busy → confirmed, else terminated.
import assert from "node:assert/strict";
import { SaxesParser } from "saxes";
import { buildDialogInfo } from "../../components/sip/notifier.js";
import type { PresenceState } from "../../src/domain/presence.js";

/** The document's dialog states and its version, read with a real XML parser. */
function read(xml: string): { version: string; states: string[] } {
  const parser = new SaxesParser({ xmlns: true });
  let version = "";
  const states: string[] = [];
  let inState = false;
  parser.on("opentag", (tag) => {
    if (tag.local === "dialog-info") version = String(tag.attributes.version?.value ?? "");
    inState = tag.local === "state";
  });
  parser.on("text", (text) => {
    if (inState) states.push(text);
  });
  parser.on("closetag", () => (inState = false));
  parser.write(xml).close();
  return { version, states };
}

describe("dialog-info for BLF keys (RFC 4235)", function () {
  const table: [PresenceState, string | null, string][] = [
    ["on-the-phone", "Ringing", "early"],
    ["on-the-phone", "On the phone", "confirmed"],
    ["on-the-phone", "On hold", "confirmed"],
    ["dnd", "In a meeting", "confirmed"],
    ["available", null, "terminated"],
    ["away", "Lunch", "terminated"],
    ["unavailable", null, "terminated"],
  ];
  for (const [state, note, dialog] of table) {
    it(`${state} (${note ?? "no note"}) → ${dialog}`, function () {
      assert.deepEqual(read(buildDialogInfo("sip:bob@example.org", state, 7, note)), {
        version: "7",
        states: [dialog],
      });
    });
  }
});
