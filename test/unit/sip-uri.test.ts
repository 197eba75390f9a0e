import assert from "node:assert/strict";

import { formatSipUri, makeSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import { assertAddressError } from "./assert-error.js";

function uri(parts: Partial<SipUri> & { host: string }): SipUri {
  return {
    scheme: "sip",
    user: null,
    port: null,
    params: new Map(),
    headers: [],
    ...parts,
  };
}

describe("parseSipUri / formatSipUri (RFC 3261 §19.1)", () => {
  const valid: ReadonlyArray<{ input: string; expected: SipUri; formatted?: string }> = [
    { input: "sip:alice@example.org", expected: uri({ user: "alice", host: "example.org" }) },
    {
      input: "sips:alice@example.org",
      expected: uri({ scheme: "sips", user: "alice", host: "example.org" }),
    },
    {
      input: "SIP:Alice@Example.ORG",
      expected: uri({ user: "Alice", host: "example.org" }),
      formatted: "sip:Alice@example.org",
    },
    { input: "sip:example.org", expected: uri({ host: "example.org" }) },
    {
      input: "sip:alice@example.org:5061",
      expected: uri({ user: "alice", host: "example.org", port: 5061 }),
    },
    { input: "sip:alice@192.0.2.10:5060", expected: uri({ user: "alice", host: "192.0.2.10", port: 5060 }) },
    { input: "sip:alice@[::1]", expected: uri({ user: "alice", host: "[::1]" }) },
    {
      input: "sip:alice@[2001:DB8::10]:5070",
      expected: uri({ user: "alice", host: "[2001:db8::10]", port: 5070 }),
      formatted: "sip:alice@[2001:db8::10]:5070",
    },
    { input: "sip:alice@[::ffff:192.0.2.1]", expected: uri({ user: "alice", host: "[::ffff:192.0.2.1]" }) },
    {
      input: "sip:alice@example.org;transport=TCP;lr",
      expected: uri({
        user: "alice",
        host: "example.org",
        params: new Map<string, string | null>([
          ["transport", "TCP"],
          ["lr", null],
        ]),
      }),
    },
    {
      input: "sip:+1-212-555-1212@gateway.com;user=phone",
      expected: uri({ user: "+1-212-555-1212", host: "gateway.com", params: new Map([["user", "phone"]]) }),
    },
    {
      input: "sip:alice@example.org?subject=project%20x&priority=urgent",
      expected: uri({
        user: "alice",
        host: "example.org",
        headers: [
          { name: "subject", value: "project x" },
          { name: "priority", value: "urgent" },
        ],
      }),
    },
    { input: "sip:j%40hn@example.org", expected: uri({ user: "j@hn", host: "example.org" }) },
    {
      input: "sip:j%C3%BCrgen@example.org",
      expected: uri({ user: "jürgen", host: "example.org" }),
      formatted: "sip:j%C3%BCrgen@example.org",
    },
    {
      input: "sip:%61lice@example.org",
      expected: uri({ user: "alice", host: "example.org" }),
      formatted: "sip:alice@example.org",
    },
    { input: "sip:o'brien@example.org", expected: uri({ user: "o'brien", host: "example.org" }) },
    {
      input: "sip:a;b?c/d&e=f+$,@example.org",
      expected: uri({ user: "a;b?c/d&e=f+$,", host: "example.org" }),
    },
    { input: "sip:alice@example.org.", expected: uri({ user: "alice", host: "example.org." }) },
    { input: "sip:alice@host-1.example.org", expected: uri({ user: "alice", host: "host-1.example.org" }) },
    {
      input: "sip:alice@example.org;maddr=[2001:db8::1]",
      expected: uri({ user: "alice", host: "example.org", params: new Map([["maddr", "[2001:db8::1]"]]) }),
    },
    {
      input: "sip:alice@example.org;X-Tag=a%3Bb",
      expected: uri({ user: "alice", host: "example.org", params: new Map([["x-tag", "a;b"]]) }),
      formatted: "sip:alice@example.org;x-tag=a%3Bb",
    },
  ];

  for (const { input, expected, formatted } of valid) {
    it(`parses ${input}`, () => {
      const parsed = parseSipUri(input);
      assert.deepEqual(parsed, expected);
      assert.equal(formatSipUri(parsed), formatted ?? input);
      // Formatting loses nothing: the formatted text parses to the same value.
      assert.deepEqual(parseSipUri(formatSipUri(parsed)), parsed);
    });
  }

  const invalid: ReadonlyArray<[string, string]> = [
    ["", "missing 'sip:' or 'sips:' scheme"],
    ["alice@example.org", "missing 'sip:' or 'sips:' scheme"],
    ["sip:", "nothing after the scheme"],
    ["sip:alice@", "empty host in SIP URI 'sip:alice@'"],
    ["sip:@example.org", "empty user part"],
    ["sip:alice:secret@example.org", "password in the user part"],
    ["sip:alice@bob@example.org", "more than one '@'"],
    ["sip:al ice@example.org", "space"],
    ["sip:alice@example.org\r\n", "whitespace or control character"],
    ["sip:al<ice@example.org", "invalid character '<' in user part"],
    ["sip:al%4@example.org", "bad percent-escape '%4' in user part"],
    ["sip:al%zzce@example.org", "bad percent-escape '%zz'"],
    ["sip:al%ffce@example.org", "not valid UTF-8"],
    ["sip:alice@example.org:", "empty port"],
    ["sip:alice@example.org:0", "invalid port '0'"],
    ["sip:alice@example.org:65536", "invalid port '65536'"],
    ["sip:alice@example.org:50a", "invalid port '50a'"],
    ["sip:alice@[::1", "unterminated IPv6 reference"],
    ["sip:alice@[::1]x", "unexpected 'x' after IPv6 reference"],
    ["sip:alice@[1::2::3]", "invalid IPv6 address '1::2::3'"],
    ["sip:alice@[12345::]", "invalid IPv6 address"],
    ["sip:alice@exa_mple.org", "invalid character '_' in host name"],
    ["sip:alice@-example.org", "starts or ends with '-'"],
    ["sip:alice@example..org", "empty label in host name"],
    ["sip:alice@256.1.1.1", "invalid IPv4 address"],
    ["sip:alice@1.2.3", "invalid IPv4 address '1.2.3'"],
    ["sip:alice@999.1.1.1", "invalid IPv4 address '999.1.1.1'"],
    ["sip:alice@example.123", "top-level label must start with a letter"],
    ["sip:alice@exämple.org", "invalid character 'ä' in host name"],
    ["sip:alice@example.org;", "empty URI parameter"],
    ["sip:alice@example.org;;lr", "empty URI parameter"],
    ["sip:alice@example.org;=tcp", "URI parameter without a name"],
    ["sip:alice@example.org;transport=", "empty value for URI parameter 'transport'"],
    ["sip:alice@example.org;lr;LR", "duplicate URI parameter 'lr'"],
    ['sip:alice@example.org;a=b"c', "invalid character '\"' in URI parameter 'a'"],
    ["sip:alice@example.org?", "empty headers component"],
    ["sip:alice@example.org?subject", "header 'subject' is not name=value"],
    ["sip:alice@example.org?=x", "header '=x' is not name=value"],
    ["sip:alice@example.org?a=<b>", "invalid character '<' in header 'a'"],
  ];

  for (const [input, problem] of invalid) {
    it(`rejects ${JSON.stringify(input)}: ${problem}`, () => {
      assertAddressError(() => parseSipUri(input), input, problem);
    });
  }

  it("names the input in the message exactly as the brief's example", () => {
    assertAddressError(() => parseSipUri("sip:alice@"), "sip:alice@", "empty host in SIP URI 'sip:alice@'");
  });

  it("escapes what the grammar requires when formatting", () => {
    const u = uri({
      user: "a b@c",
      host: "example.org",
      params: new Map([["x", "a;b c"]]),
      headers: [{ name: "subject", value: "hi & bye" }],
    });
    const text = formatSipUri(u);
    assert.equal(text, "sip:a%20b%40c@example.org;x=a%3Bb%20c?subject=hi%20%26%20bye");
    assert.deepEqual(parseSipUri(text), u);
  });

  it("makeSipUri validates and normalizes what code builds", () => {
    assert.deepEqual(
      makeSipUri({ user: "bob", host: "Example.ORG", params: [["user", "phone"]] }),
      uri({ user: "bob", host: "example.org", params: new Map([["user", "phone"]]) }),
    );
    assertAddressError(() => makeSipUri({ user: "bob", host: "" }), "sip:bob@", "empty host");
  });

  // The host is not escaped when formatted, so it is checked on its own: "a;x=y" must not come back
  // as host "a" with a parameter x=y.
  const badParts: ReadonlyArray<[Parameters<typeof makeSipUri>[0], string, string]> = [
    [{ host: "a;x=y" }, "sip:a;x=y", "invalid character ';' in host name"],
    [
      { user: "bob", host: "example.org?subject=x" },
      "sip:bob@example.org?subject=x",
      "invalid character '?'",
    ],
    [{ user: "bob", host: "example.org:5060" }, "sip:bob@example.org:5060", "invalid character ':'"],
    [{ user: "bob", host: "carol@example.org" }, "sip:bob@carol@example.org", "invalid character '@'"],
    [{ user: "bob", host: "1.2.3" }, "sip:bob@1.2.3", "invalid IPv4 address"],
    [{ user: "bob", host: "example.org", port: 0 }, "sip:bob@example.org:0", "invalid port '0'"],
    [{ user: "bob", host: "example.org", port: 5.5 }, "sip:bob@example.org:5.5", "invalid port '5.5'"],
  ];

  for (const [parts, input, problem] of badParts) {
    it(`makeSipUri refuses ${JSON.stringify(parts)}: ${problem}`, () => {
      assertAddressError(() => makeSipUri(parts), input, problem);
    });
  }

  it("makeSipUri carries what the encoding allows", () => {
    assert.deepEqual(
      makeSipUri({
        user: "a@b;c",
        host: "[2001:DB8::1]",
        port: 5070,
        headers: [{ name: "s", value: "a&b" }],
      }),
      uri({ user: "a@b;c", host: "[2001:db8::1]", port: 5070, headers: [{ name: "s", value: "a&b" }] }),
    );
  });
});
