import assert from "node:assert/strict";

import { formatTelUri, parseTelUri, type TelUri } from "../../src/domain/tel-uri.js";
import { assertAddressError } from "./assert-error.js";

function tel(parts: Partial<TelUri> & { number: string }): TelUri {
  return {
    scheme: "tel",
    global: parts.number.startsWith("+"),
    phoneContext: null,
    params: new Map(),
    ...parts,
  };
}

describe("parseTelUri / formatTelUri (RFC 3966)", () => {
  const valid: ReadonlyArray<{ input: string; expected: TelUri; formatted?: string }> = [
    { input: "tel:+442071234567", expected: tel({ number: "+442071234567" }) },
    {
      input: "tel:+44-20-7123-4567",
      expected: tel({ number: "+442071234567" }),
      formatted: "tel:+442071234567",
    },
    {
      input: "tel:+1(212)555.1212",
      expected: tel({ number: "+12125551212" }),
      formatted: "tel:+12125551212",
    },
    {
      input: "TEL:8001;phone-context=Example.ORG",
      expected: tel({ number: "8001", phoneContext: "example.org" }),
      formatted: "tel:8001;phone-context=example.org",
    },
    {
      input: "tel:7042;phone-context=+1-212-555",
      expected: tel({ number: "7042", phoneContext: "+1212555" }),
      formatted: "tel:7042;phone-context=+1212555",
    },
    {
      input: "tel:*98#;phone-context=example.org",
      expected: tel({ number: "*98#", phoneContext: "example.org" }),
    },
    {
      input: "tel:+442071234567;ext=12-34",
      expected: tel({ number: "+442071234567", params: new Map([["ext", "1234"]]) }),
      formatted: "tel:+442071234567;ext=1234",
    },
    {
      input: "tel:8001;x-foo=bar;phone-context=example.org;ext=5",
      expected: tel({
        number: "8001",
        phoneContext: "example.org",
        params: new Map([
          ["x-foo", "bar"],
          ["ext", "5"],
        ]),
      }),
      formatted: "tel:8001;ext=5;phone-context=example.org;x-foo=bar",
    },
  ];

  for (const { input, expected, formatted } of valid) {
    it(`parses ${input}`, () => {
      const parsed = parseTelUri(input);
      assert.deepEqual(parsed, expected);
      assert.equal(formatTelUri(parsed), formatted ?? input);
      assert.deepEqual(parseTelUri(formatTelUri(parsed)), parsed);
    });
  }

  const invalid: ReadonlyArray<[string, string]> = [
    ["+442071234567", "missing 'tel:' scheme"],
    ["tel:", "empty number"],
    ["tel:+", "global number without digits"],
    ["tel:+-().", "global number without digits"],
    ["tel:+44 20", "whitespace"],
    ["tel:+44x20", "invalid character in global number '+44x20'"],
    ["tel:80g1;phone-context=example.org", "invalid character in local number '80g1'"],
    ["tel:8001", "local number '8001' without ';phone-context='"],
    ["tel:+442071234567;phone-context=example.org", "phone-context on a global number"],
    ["tel:8001;phone-context=", "empty value for parameter 'phone-context'"],
    ["tel:8001;phone-context", "phone-context without a value"],
    ["tel:8001;phone-context=exa_mple.org", "invalid character '_' in host name in phone-context"],
    ["tel:8001;phone-context=+", "invalid phone-context '+'"],
    ["tel:+4420;ext=abc", "invalid ext parameter"],
    ["tel:+4420;", "empty parameter"],
    ["tel:+4420;ext=1;ext=2", "duplicate parameter 'ext'"],
    ["tel:+4420;a_b=1", "invalid parameter name 'a_b'"],
    ["tel:8001;phone-context=a.org;phone-context=b.org", "duplicate parameter 'phone-context'"],
  ];

  for (const [input, problem] of invalid) {
    it(`rejects ${JSON.stringify(input)}: ${problem}`, () => {
      assertAddressError(() => parseTelUri(input), input, problem);
    });
  }
});
