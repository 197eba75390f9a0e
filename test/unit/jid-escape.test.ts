import assert from "node:assert/strict";

import { escapeLocal, tryUnescapeLocal, unescapeLocal } from "../../src/domain/jid-escape.js";
import { parseJid } from "../../src/domain/jid.js";
import { assertAddressError } from "./assert-error.js";

describe("XEP-0106 escapeLocal / unescapeLocal", () => {
  // The XEP's own examples (§5), localparts only.
  const examples: ReadonlyArray<[string, string]> = [
    ["space cadet", "space\\20cadet"],
    ['call me "ishmael"', "call\\20me\\20\\22ishmael\\22"],
    ["at&t guy", "at\\26t\\20guy"],
    ["d'artagnan", "d\\27artagnan"],
    ["/.fanboy", "\\2f.fanboy"],
    ["::foo::", "\\3a\\3afoo\\3a\\3a"],
    ["<foo>", "\\3cfoo\\3e"],
    ["user@host", "user\\40host"],
    ["c:\\net", "c\\3a\\net"],
    ["c:\\\\net", "c\\3a\\\\net"],
    ["c:\\cool stuff", "c\\3a\\cool\\20stuff"],
    ["c:\\5commas", "c\\3a\\5c5commas"],
  ];

  for (const [unescaped, escaped] of examples) {
    it(`${JSON.stringify(unescaped)} <-> ${JSON.stringify(escaped)}`, () => {
      assert.equal(escapeLocal(unescaped), escaped);
      assert.equal(unescapeLocal(escaped), unescaped);
      // Every escaped form is a valid JID localpart.
      assert.equal(parseJid(`${escaped}@example.com`).local, escaped);
    });
  }

  it("escapes each of the ten characters", () => {
    const table: ReadonlyArray<[string, string]> = [
      [" ", "\\20"],
      ['"', "\\22"],
      ["&", "\\26"],
      ["'", "\\27"],
      ["/", "\\2f"],
      [":", "\\3a"],
      ["<", "\\3c"],
      [">", "\\3e"],
      ["@", "\\40"],
    ];
    for (const [c, e] of table) {
      assert.equal(escapeLocal(`a${c}b`), `a${e}b`);
      assert.equal(unescapeLocal(`a${e}b`), `a${c}b`);
    }
    assert.equal(escapeLocal("a\\40b"), "a\\5c40b");
    assert.equal(unescapeLocal("a\\5c40b"), "a\\40b");
  });

  it("leaves other backslashes and plain text alone", () => {
    assert.equal(escapeLocal("alice"), "alice");
    assert.equal(escapeLocal("a\\b"), "a\\b");
    assert.equal(unescapeLocal("a\\b"), "a\\b");
    assert.equal(unescapeLocal("a\\4"), "a\\4");
    assert.equal(unescapeLocal("a\\2F"), "a/");
  });

  it("round-trips awkward strings", () => {
    for (const s of ["\\", "\\\\5c", "a\\5c\\40", "carol@example.com", "x@[2001:db8::1]:5070", "o'brien"]) {
      assert.equal(unescapeLocal(escapeLocal(s)), s);
    }
  });

  it("refuses a leading or trailing space (XEP-0106 §3.2)", () => {
    assertAddressError(() => escapeLocal(" alice"), " alice", "leading or trailing space");
    assertAddressError(() => escapeLocal("alice "), "alice ", "leading or trailing space");
    assertAddressError(() => unescapeLocal("\\20alice"), "\\20alice", "starts or ends with \\20");
    assertAddressError(() => unescapeLocal("alice\\20"), "alice\\20", "starts or ends with \\20");
    assertAddressError(() => escapeLocal(""), "", "nothing to escape");
  });

  it("tryUnescapeLocal gives null where unescapeLocal throws, for JIDs that parseJid accepts", () => {
    for (const local of ["\\20alice", "alice\\20", "\\20", "\\20A"]) {
      assert.equal(parseJid(`${local}@example.org`).local, local.toLowerCase());
      assert.equal(tryUnescapeLocal(local), null);
    }
    assert.equal(tryUnescapeLocal("o\\27brien"), "o'brien");
    assert.equal(tryUnescapeLocal("a\\20b"), "a b");
  });
});
