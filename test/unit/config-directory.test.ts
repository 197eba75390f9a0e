import assert from "node:assert/strict";
import { ConfigDirectory } from "../../src/directory/config-directory.js";

describe("config-file directory", function () {
  const directory = new ConfigDirectory(
    [
      { uid: "alice", displayName: "Alice Archer", extension: "8001", numbers: ["+44 20 7123-4567"] },
      { uid: "bob", displayName: "Bob Baker", numbers: [] },
    ],
    "example.org",
  );

  const rows: [person: string, uid: string | null][] = [
    ["alice@example.org", "alice"],
    ["bob@example.org", "bob"],
    ["+442071234567", "alice"],
    ["8001", "alice"],
    ["carol@example.org", null],
    ["alice@example.com", null],
    ["+15550000000", null],
  ];
  for (const [person, uid] of rows) {
    it(`finds ${person} → ${uid ?? "nobody"}`, async function () {
      assert.equal((await directory.findPerson(person))?.uid ?? null, uid);
    });
  }

  it("lists every entry", async function () {
    assert.deepEqual(
      (await directory.entries()).map((e) => e.uid),
      ["alice", "bob"],
    );
  });
});
