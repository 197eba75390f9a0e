import assert from "node:assert/strict";

import {
  applyNaptrRegexp,
  NAPTR_REGEXP_LIMITS,
  parseNaptrRegexp,
} from "../../components/enum/naptr-regexp.js";
import { assertSwitchboardError } from "../unit/assert-error.js";

const AUS = "+442071234567";

describe("NAPTR regexp (RFC 3402 §3.2, RFC 3403, RFC 6116)", () => {
  const results: [field: string, input: string, expected: string | null][] = [
    // RFC 6116 §3.2.3 example: the whole AUS replaced.
    ["!^.*$!sip:info@example.com!", AUS, "sip:info@example.com"],
    ["!^.*$!mailto:info@example.com!", AUS, "mailto:info@example.com"],
    // RFC 3403 §6.2-style back-reference.
    ["!^\\+44(.*)$!sip:\\1@example.org!", AUS, "sip:2071234567@example.org"],
    ["!^\\+(44)(20)(.*)$!tel:+\\1-\\2-\\3!", AUS, "tel:+44-20-71234567"],
    // Any punctuation delimiter; an escaped delimiter is a literal in ERE and replacement.
    ["/^\\+44(.*)$/sip:\\1@example.org/", AUS, "sip:2071234567@example.org"],
    ["#^\\+(.*)$#sip:\\1\\#x@example.org#", AUS, "sip:442071234567#x@example.org"],
    ["|a\\|b|x|", "a|b", "x"],
    // "\\" in the replacement is one backslash.
    ["!^(.*)$!a\\\\\\1!", "z", "a\\z"],
    // sed semantics: only the match is replaced, the rest of the input stays.
    ["!44!XX!", AUS, "+XX2071234567"],
    // A group that did not take part expands to nothing.
    ["!^\\+(9)?(44)!\\1-\\2-!", AUS, "-44-2071234567"],
    // The i flag.
    ["!^ABC$!yes!i", "abc", "yes"],
    ["!^ABC$!yes!", "abc", null],
    // No match: the rule does not apply.
    ["!^\\+1(.*)$!sip:\\1@example.org!", AUS, null],
    // POSIX leftmost-longest.
    ["!(a|ab)(c|bcd)?!<\\1|\\2>!", "abcd", "<a|bcd>"],
  ];
  for (const [field, input, expected] of results) {
    it(`${field} on ${input} → ${String(expected)}`, () => {
      assert.equal(applyNaptrRegexp(field, input), expected);
    });
  }

  it("evaluates the pathological (a+)+$ against a long input (linear-time engine)", () => {
    const long = "a".repeat(4000);
    assert.equal(applyNaptrRegexp("!(a+)+$!matched!", `${long}!`), null);
    assert.equal(applyNaptrRegexp("!^(a+)+$!matched!", long), "matched");
    assert.equal(applyNaptrRegexp("!^(a|aa)+$!matched!", `${long}b`), null);
  });

  it("parses flags and parts", () => {
    assert.deepEqual(parseNaptrRegexp("!^\\+44(.*)$!sip:\\1@example.org!i"), {
      delimiter: "!",
      ere: "^\\+44(.*)$",
      replacement: ["sip:", 1, "@example.org"],
      caseInsensitive: true,
    });
  });

  const refused: [field: string, input: string, reason: string][] = [
    ["", AUS, "empty field"],
    ["1^.*$1x1", AUS, "bad delimiter '1'"],
    ["i^.*$ixi", AUS, "bad delimiter 'i'"],
    ["a^.*$axa", AUS, "bad delimiter 'a'"],
    ["\\^.*$\\x\\", AUS, "bad delimiter"],
    [" ^.*$ x ", AUS, "bad delimiter"],
    ["!^.*$", AUS, "missing delimiter '!'"],
    ["!^.*$!x", AUS, "missing delimiter '!'"],
    ["!^.*$!x!g", AUS, "unknown flags 'g'"],
    ["!^.*$!x!!", AUS, "unknown flags"],
    ["!!x!", AUS, "empty ERE"],
    ["!^.*$!x\\0!", AUS, "back-reference \\0"],
    ["!^.*$!x\\n!", AUS, "unknown escape \\n"],
    ["!^(.*)$!\\2!", AUS, "back-reference \\2 but the ERE has 1 group(s)"],
    // Constructs a linear-time engine cannot run.
    ["!(a)\\1!x!", "aa", "not accepted by the linear-time engine"],
    ["!(?=a)a!x!", "aa", "not accepted by the linear-time engine"],
    ["!(unclosed!x!", "aa", "not accepted by the linear-time engine"],
    // Size limits.
    [
      `!${"a".repeat(NAPTR_REGEXP_LIMITS.ere + 1)}!x!`,
      AUS,
      `ERE longer than ${NAPTR_REGEXP_LIMITS.ere} bytes`,
    ],
    [
      `!^.*$!${"x".repeat(NAPTR_REGEXP_LIMITS.replacement + 1)}!`,
      AUS,
      `replacement longer than ${NAPTR_REGEXP_LIMITS.replacement} bytes`,
    ],
    ["!^.*$!x!", "a".repeat(NAPTR_REGEXP_LIMITS.input + 1), "input longer than"],
    [`!^(.*)$!${"\\1".repeat(200)}!`, "a".repeat(100), "result longer than"],
  ];
  for (const [field, input, reason] of refused) {
    it(`refuses ${JSON.stringify(field.length > 40 ? `${field.slice(0, 40)}…` : field)}: ${reason}`, () => {
      assertSwitchboardError(() => applyNaptrRegexp(field, input), "bad-request", reason);
    });
  }
});
