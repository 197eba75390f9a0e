import assert from "node:assert/strict";

import { AddressError, formatAddress, parseAddress, type Address } from "../../src/domain/address.js";
import { assertAddressError } from "./assert-error.js";

describe("parseAddress / formatAddress", () => {
  const kinds: ReadonlyArray<[string, Address["kind"]]> = [
    ["sip:alice@example.org", "sip"],
    ["sips:alice@example.org:5061;transport=tls", "sip"],
    ["SIP:alice@example.org", "sip"],
    ["tel:+442071234567", "tel"],
    ["tel:8001;phone-context=example.org", "tel"],
    ["xmpp:alice@example.org", "xmpp"],
    ["xmpp:alice@example.org/phone?message;body=hi", "xmpp"],
    ["alice@example.org", "jid"],
    ["alice@example.org/home:1", "jid"],
    ["example.org", "jid"],
    ["carol\\40example.com@sip.example.org", "jid"],
    ["+442071234567@sip.example.org", "jid"],
    ["8001@sip.example.org", "jid"],
  ];

  for (const [input, kind] of kinds) {
    it(`reads ${input} as ${kind} and formats it back`, () => {
      const address = parseAddress(input);
      assert.equal(address.kind, kind);
      const text = formatAddress(address);
      assert.equal(text.toLowerCase(), input.toLowerCase());
      assert.deepEqual(parseAddress(text), address);
    });
  }

  it("returns the parsed parts in the union", () => {
    const sip = parseAddress("sip:Bob@Example.org:5070");
    assert.ok(sip.kind === "sip");
    assert.equal(sip.uri.user, "Bob");
    assert.equal(sip.uri.host, "example.org");
    assert.equal(sip.uri.port, 5070);
    const jid = parseAddress("Bob@Example.org/Desk");
    assert.deepEqual(jid, { kind: "jid", jid: { local: "bob", domain: "example.org", resource: "Desk" } });
  });

  const invalid: ReadonlyArray<[string, string]> = [
    ["", "empty address"],
    [" sip:alice@example.org", "leading or trailing whitespace"],
    ["alice@example.org\n", "leading or trailing whitespace"],
    ["<sip:alice@example.org>", "angle brackets"],
    ["mailto:alice@example.org", "unsupported scheme 'mailto'"],
    ["http://example.org", "unsupported scheme 'http'"],
    ["example.org:5060", "unsupported scheme 'example.org'"],
    ["sip:alice@", "empty host in SIP URI 'sip:alice@'"],
    ["tel:8001", "without ';phone-context='"],
    ["xmpp:", "no JID"],
    ["alice@", "empty domainpart in JID 'alice@'"],
    ["a b@example.org", "space in localpart"],
  ];

  for (const [input, problem] of invalid) {
    it(`rejects ${JSON.stringify(input)}: ${problem}`, () => {
      assertAddressError(() => parseAddress(input), input, problem);
    });
  }
});

describe("one host syntax for SIP hosts and JID domainparts (host.ts)", () => {
  // [host, accepted]: an all-numeric dotted name must be a valid IPv4 address in both.
  const hosts: ReadonlyArray<[string, boolean]> = [
    ["example.org", true],
    ["example.org.", true],
    ["192.0.2.1", true],
    ["255.255.255.255", true],
    ["[2001:db8::1]", true],
    ["123.example", true],
    ["1.2.3", false],
    ["999.1.1.1", false],
    ["1.2.3.4.5", false],
    ["256.1.1.1", false],
    ["example.123", false],
    ["exa_mple.org", false],
    ["-example.org", false],
    ["example..org", false],
    ["[1::2::3]", false],
  ];

  for (const [host, accepted] of hosts) {
    it(`${host} is ${accepted ? "accepted" : "refused"} by both`, () => {
      const sip = (): unknown => parseAddress(`sip:alice@${host}`);
      const jid = (): unknown => parseAddress(`alice@${host}`);
      if (accepted) {
        assert.doesNotThrow(sip);
        assert.doesNotThrow(jid);
      } else {
        assert.throws(sip, AddressError);
        assert.throws(jid, AddressError);
      }
    });
  }
});
