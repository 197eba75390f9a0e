import assert from "node:assert/strict";

import { bareJid, formatJid, jidEquals, makeJid, parseJid, type Jid } from "../../src/domain/jid.js";
import { formatXmppUri, parseXmppUri, xmppUriForJid, type XmppUri } from "../../src/domain/xmpp-uri.js";
import { assertAddressError } from "./assert-error.js";

const jid = (local: string | null, domain: string, resource: string | null = null): Jid => ({
  local,
  domain,
  resource,
});

describe("parseJid / formatJid (RFC 7622)", () => {
  const valid: ReadonlyArray<{ input: string; expected: Jid; formatted?: string }> = [
    { input: "alice@example.org", expected: jid("alice", "example.org") },
    {
      input: "Alice@Example.ORG/Home",
      expected: jid("alice", "example.org", "Home"),
      formatted: "alice@example.org/Home",
    },
    { input: "example.org", expected: jid(null, "example.org") },
    { input: "example.org/resource", expected: jid(null, "example.org", "resource") },
    { input: "alice@example.org.", expected: jid("alice", "example.org"), formatted: "alice@example.org" },
    { input: "alice@example.org/a/b@c d", expected: jid("alice", "example.org", "a/b@c d") },
    { input: "alice@[::1]", expected: jid("alice", "[::1]") },
    { input: "alice@192.0.2.1", expected: jid("alice", "192.0.2.1") },
    { input: "+442071234567@sip.example.org", expected: jid("+442071234567", "sip.example.org") },
    {
      input: "carol\\40example.com@sip.example.org",
      expected: jid("carol\\40example.com", "sip.example.org"),
    },
    {
      input: "JÜRGEN@bücher.example",
      expected: jid("jürgen", "bücher.example"),
      formatted: "jürgen@bücher.example",
    },
    // NFC: "e" + combining acute becomes "é".
    {
      input: "rene\u0301@example.org",
      expected: jid("ren\u00e9", "example.org"),
      formatted: "ren\u00e9@example.org",
    },
    { input: `${"a".repeat(1023)}@example.org`, expected: jid("a".repeat(1023), "example.org") },
  ];

  for (const { input, expected, formatted } of valid) {
    it(`parses ${input.length > 60 ? `${input.slice(0, 20)}…` : input}`, () => {
      const parsed = parseJid(input);
      assert.deepEqual(parsed, expected);
      assert.equal(formatJid(parsed), formatted ?? input);
      assert.deepEqual(parseJid(formatJid(parsed)), parsed);
    });
  }

  const invalid: ReadonlyArray<[string, string]> = [
    ["", "empty input"],
    ["@example.org", "empty localpart before '@'"],
    ["alice@", "empty domainpart"],
    ["alice@example.org/", "empty resourcepart after '/'"],
    ["alice@.", "empty domainpart"],
    ["al ice@example.org", "space in localpart"],
    ['al"ice@example.org', "forbidden character '\"' in localpart"],
    ["al&ice@example.org", "forbidden character '&' in localpart"],
    ["al'ice@example.org", "forbidden character ''' in localpart"],
    ["al:ice@example.org", "forbidden character ':' in localpart"],
    ["al<ice@example.org", "forbidden character '<' in localpart"],
    ["al>ice@example.org", "forbidden character '>' in localpart"],
    ["a@b@example.org", "invalid character '@' in domainpart"],
    ["al\tice@example.org", "whitespace or control character in localpart"],
    ["alice@example.org:5222", "port or ':' in domainpart"],
    ["alice@exa mple.org", "space in domainpart"],
    ["alice@exa_mple.org", "invalid character '_' in domainpart"],
    ["alice@example..org", "empty label in domainpart"],
    ["alice@-example.org", "starts or ends with '-'"],
    ["alice@[::1", "invalid IPv6 domainpart"],
    ["alice@[1::2::3]", "invalid IPv6 domainpart"],
    ["alice@example.org/a\u0000b", "control character in resourcepart"],
    [`${"a".repeat(1024)}@example.org`, "localpart longer than 1023 bytes"],
    [`${"é".repeat(512)}@example.org`, "localpart longer than 1023 bytes"],
    [`alice@example.org/${"r".repeat(1024)}`, "resourcepart longer than 1023 bytes"],
    [`alice@${"a".repeat(64)}.org`, "longer than 63 bytes"],
    // An all-numeric dotted name is an IPv4 address or nothing, as for SIP hosts (host.ts).
    ["alice@1.2.3", "invalid IPv4 address '1.2.3'"],
    ["alice@999.1.1.1", "invalid IPv4 address '999.1.1.1'"],
    ["alice@1.2.3.4.5", "invalid IPv4 address"],
    ["alice@example.123", "top-level label must start with a letter"],
  ];

  for (const [input, problem] of invalid) {
    it(`rejects ${JSON.stringify(input.length > 60 ? `${input.slice(0, 20)}…` : input)}: ${problem}`, () => {
      assertAddressError(() => parseJid(input), input, problem);
    });
  }

  it("bareJid drops the resource; jidEquals compares all parts; makeJid normalizes", () => {
    const full = parseJid("alice@example.org/phone");
    assert.deepEqual(bareJid(full), jid("alice", "example.org"));
    assert.ok(jidEquals(bareJid(full), parseJid("ALICE@example.org")));
    assert.ok(!jidEquals(full, bareJid(full)));
    assert.deepEqual(makeJid({ local: "Bob", domain: "Example.org" }), jid("bob", "example.org"));
    assertAddressError(
      () => makeJid({ local: "b b", domain: "example.org" }),
      "b b@example.org",
      "space in localpart",
    );
  });

  // Each part is checked on its own: a delimiter inside a part is an error naming that part, never a
  // different JID (formatting "a" + "b/c" and parsing it again would give a@b with resource c).
  const badParts: ReadonlyArray<[Parameters<typeof makeJid>[0], string, string]> = [
    [{ local: "a", domain: "b/c" }, "a@b/c", "invalid character '/' in domainpart"],
    [{ local: null, domain: "x@y" }, "x@y", "invalid character '@' in domainpart"],
    [{ local: "a/b", domain: "y" }, "a/b@y", "forbidden character '/' in localpart"],
    [{ local: "a@b", domain: "y" }, "a@b@y", "forbidden character '@' in localpart"],
    [{ local: "", domain: "y" }, "@y", "empty localpart"],
    [{ local: "a", domain: "" }, "a@", "empty domainpart"],
    [{ local: "a", domain: "y", resource: "" }, "a@y/", "empty resourcepart"],
    [{ local: "a", domain: "y:5222" }, "a@y:5222", "port or ':' in domainpart"],
    [{ local: "a", domain: "1.2.3" }, "a@1.2.3", "invalid IPv4 address"],
  ];

  for (const [parts, input, problem] of badParts) {
    it(`makeJid refuses ${JSON.stringify(parts)}: ${problem}`, () => {
      assertAddressError(() => makeJid(parts), input, problem);
    });
  }

  it("makeJid keeps delimiters that a resourcepart may hold", () => {
    assert.deepEqual(
      makeJid({ local: "a", domain: "Y.example", resource: "x/y@z" }),
      jid("a", "y.example", "x/y@z"),
    );
    assert.deepEqual(makeJid({ domain: "[::1]" }), jid(null, "[::1]"));
    assert.deepEqual(makeJid({ local: "a", domain: "192.0.2.1" }), jid("a", "192.0.2.1"));
  });
});

describe("parseXmppUri / formatXmppUri (RFC 5122)", () => {
  const x = (j: Jid, more: Partial<XmppUri> = {}): XmppUri => ({
    scheme: "xmpp",
    authority: null,
    jid: j,
    query: null,
    fragment: null,
    ...more,
  });
  const valid: ReadonlyArray<{ input: string; expected: XmppUri; formatted?: string }> = [
    { input: "xmpp:alice@example.org", expected: x(jid("alice", "example.org")) },
    {
      input: "XMPP:Alice@Example.org/Home",
      expected: x(jid("alice", "example.org", "Home")),
      formatted: "xmpp:alice@example.org/Home",
    },
    { input: "xmpp:example.org", expected: x(jid(null, "example.org")) },
    {
      input: "xmpp:alice@example.org/some%20resource",
      expected: x(jid("alice", "example.org", "some resource")),
    },
    {
      input: "xmpp:carol%5C40example.com@sip.example.org",
      expected: x(jid("carol\\40example.com", "sip.example.org")),
      formatted: "xmpp:carol\\40example.com@sip.example.org",
    },
    {
      input: "xmpp:j%C3%BCrgen@example.org",
      expected: x(jid("jürgen", "example.org")),
      formatted: "xmpp:jürgen@example.org",
    },
    {
      input: "xmpp:alice@example.org?message;subject=Hello%20World;body=Hi",
      expected: x(jid("alice", "example.org"), {
        query: {
          action: "message",
          params: new Map([
            ["subject", "Hello World"],
            ["body", "Hi"],
          ]),
        },
      }),
    },
    {
      input: "xmpp://guest@example.com/support@example.com?message",
      expected: x(jid("support", "example.com"), {
        authority: jid("guest", "example.com"),
        query: { action: "message", params: new Map() },
      }),
    },
    { input: "xmpp:alice@example.org#frag", expected: x(jid("alice", "example.org"), { fragment: "frag" }) },
  ];

  for (const { input, expected, formatted } of valid) {
    it(`parses ${input}`, () => {
      const parsed = parseXmppUri(input);
      assert.deepEqual(parsed, expected);
      assert.equal(formatXmppUri(parsed), formatted ?? input);
      assert.deepEqual(parseXmppUri(formatXmppUri(parsed)), parsed);
    });
  }

  const invalid: ReadonlyArray<[string, string]> = [
    ["alice@example.org", "missing 'xmpp:' scheme"],
    ["xmpp:", "no JID"],
    ["xmpp:@example.org", "empty localpart before '@'"],
    ["xmpp:al%20ice@example.org", "space in localpart"],
    ["xmpp:a%40b@example.org", "forbidden character in localpart"],
    ["xmpp:alice@example.org/", "empty resourcepart after '/'"],
    ["xmpp:alice@example.org?", "empty query type"],
    ["xmpp:alice@example.org?message;body", "query pair 'body' is not key=value"],
    ["xmpp:alice@example.org?message;a=1;a=2", "duplicate query key 'a'"],
    ["xmpp:alice@exa%zzmple.org", "bad percent-escape '%zz' in domainpart"],
    ["xmpp://alice@example.org", "no JID"],
    ["xmpp:///alice@example.org", "empty authority"],
    ["xmpp:alice @example.org", "whitespace"],
  ];

  for (const [input, problem] of invalid) {
    it(`rejects ${JSON.stringify(input)}: ${problem}`, () => {
      assertAddressError(() => parseXmppUri(input), input, problem);
    });
  }

  it("xmppUriForJid encodes what an IRI must", () => {
    const u = xmppUriForJid(jid("alice", "example.org", "a?b#c"));
    assert.equal(formatXmppUri(u), "xmpp:alice@example.org/a%3Fb%23c");
    assert.deepEqual(u.jid, jid("alice", "example.org", "a?b#c"));
  });
});
