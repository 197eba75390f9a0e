import assert from "node:assert/strict";
import { sameCounts, voicemailText, type VoicemailCounts } from "../../src/ports/voicemail-port.js";

const counts = (
  waiting: boolean,
  newMessages: number,
  oldMessages: number,
  urgentNew = 0,
): VoicemailCounts => ({
  waiting,
  newMessages,
  oldMessages,
  urgentNew,
  urgentOld: 0,
});

describe("voicemail text", function () {
  const table: [VoicemailCounts, string][] = [
    [counts(true, 2, 5), "New voicemail: 2 new, 5 old"],
    [counts(true, 2, 5, 1), "New voicemail: 2 new (1 urgent), 5 old"],
    [counts(false, 0, 5), "Voicemail: 0 new, 5 old"],
    [counts(false, 0, 0), "Voicemail: 0 new, 0 old"],
    [counts(true, 0, 0), "New voicemail waiting"],
  ];
  for (const [input, text] of table) {
    it(`says "${text}"`, function () {
      assert.equal(voicemailText(input), text);
    });
  }

  it("compares counts field by field", function () {
    assert.ok(sameCounts(counts(true, 1, 2), counts(true, 1, 2)));
    assert.ok(!sameCounts(counts(true, 1, 2), counts(true, 1, 3)));
    assert.ok(!sameCounts(counts(true, 1, 2), counts(false, 1, 2)));
    assert.ok(!sameCounts(counts(true, 1, 2), counts(true, 1, 2, 1)));
  });
});
