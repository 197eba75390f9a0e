import assert from "node:assert/strict";

import { parseAddress, type Address } from "../../src/domain/address.js";
import {
  e164Fallback,
  gatewayJidToSip,
  homeIdentity,
  homeJidToSip,
  isNumber,
  isSamePerson,
  sipToGatewayJid,
  sipToHomeJid,
  type GatewayDomains,
} from "../../src/domain/gateway-mapping.js";
import { formatJid, parseJid } from "../../src/domain/jid.js";
import { formatSipUri, parseSipUri } from "../../src/domain/sip-uri.js";
import { parseTelUri } from "../../src/domain/tel-uri.js";
import { assertAddressError } from "./assert-error.js";

const domains: GatewayDomains = { homeDomain: "example.org", gatewayDomain: "sip.example.org" };

function sipOrTel(text: string): ReturnType<typeof parseSipUri> | ReturnType<typeof parseTelUri> {
  return text.startsWith("tel:") ? parseTelUri(text) : parseSipUri(text);
}

describe("gateway mapping (DESIGN.md Addressing)", () => {
  // SIP → JID, and back where the mapping is reversible.
  const reversible: ReadonlyArray<[string, string]> = [
    ["sip:bob@example.org", "bob@sip.example.org"],
    ["sip:carol@example.com", "carol\\40example.com@sip.example.org"],
    ["sip:carol@example.com:5070", "carol\\40example.com\\3a5070@sip.example.org"],
    ["sip:carol@[2001:db8::1]", "carol\\40[2001\\3adb8\\3a\\3a1]@sip.example.org"],
    ["sip:carol@192.0.2.7", "carol\\40192.0.2.7@sip.example.org"],
    ["sip:o'brien@example.org", "o\\27brien@sip.example.org"],
    ["sip:a%40b@example.org", "a\\40b\\40example.org@sip.example.org"],
    ["sip:8001@example.com", "8001\\40example.com@sip.example.org"],
    ["sip:bob@example.org:5080", "bob\\40example.org\\3a5080@sip.example.org"],
  ];

  for (const [sip, jid] of reversible) {
    it(`${sip} <-> ${jid}`, () => {
      assert.equal(formatJid(sipToGatewayJid(parseSipUri(sip), domains)), jid);
      const back = gatewayJidToSip(parseJid(jid), domains);
      assert.ok(back.kind === "sip");
      assert.equal(formatSipUri(back.uri), sip);
    });
  }

  // Projections: several SIP/tel forms map to one JID; the way back is the canonical form.
  const projections: ReadonlyArray<[string, string]> = [
    ["sip:Bob@example.org", "bob@sip.example.org"],
    ["sip:Bob@EXAMPLE.ORG;transport=tcp", "bob@sip.example.org"],
    ["sip:bob@example.org?subject=hi", "bob@sip.example.org"],
    ["sip:Carol@Example.COM", "carol\\40example.com@sip.example.org"],
    ["sip:+442071234567@example.org", "+442071234567@sip.example.org"],
    ["sip:+442071234567@example.com", "+442071234567@sip.example.org"],
    ["sip:+44-20-7123-4567@example.org;user=phone", "+442071234567@sip.example.org"],
    ["tel:+442071234567", "+442071234567@sip.example.org"],
    ["tel:+44-20-7123-4567", "+442071234567@sip.example.org"],
    ["sip:8001@example.org", "8001@sip.example.org"],
    ["tel:8001;phone-context=example.org", "8001@sip.example.org"],
    // A trailing dot names the same DNS host.
    ["sip:bob@example.org.", "bob@sip.example.org"],
    ["sip:carol@example.com.", "carol\\40example.com@sip.example.org"],
  ];

  for (const [from, jid] of projections) {
    it(`${from} -> ${jid}`, () => {
      assert.equal(formatJid(sipToGatewayJid(sipOrTel(from), domains)), jid);
    });
  }

  // Numbers go to the resolver chain (LDAP, ENUM) before anything else.
  const numbers: ReadonlyArray<[string, string]> = [
    ["8001@sip.example.org", "8001"],
    ["+442071234567@sip.example.org", "+442071234567"],
    ["+442071234567@sip.example.org/phone", "+442071234567"],
  ];

  for (const [jid, number] of numbers) {
    it(`${jid} -> number ${number}`, () => {
      assert.deepEqual(gatewayJidToSip(parseJid(jid), domains), { kind: "number", number });
    });
  }

  it("numbers round-trip through the number result", () => {
    for (const n of ["+442071234567", "8001"]) {
      const jid = parseJid(`${n}@sip.example.org`);
      const back = gatewayJidToSip(jid, domains);
      assert.deepEqual(back, { kind: "number", number: n });
      assert.deepEqual(sipToGatewayJid(parseSipUri(`sip:${n}@example.org`), domains), jid);
    }
  });

  it("ignores the resource and uses the configured domains case-insensitively", () => {
    const back = gatewayJidToSip(parseJid("bob@sip.example.org/desk"), {
      homeDomain: "Example.ORG",
      gatewayDomain: "SIP.example.org",
    });
    assert.ok(back.kind === "sip");
    assert.equal(formatSipUri(back.uri), "sip:bob@example.org");
  });

  it("refuses to map the gateway domain itself (loop)", () => {
    for (const input of ["sip:bob@sip.example.org", "sip:+4420@sip.example.org"]) {
      assertAddressError(
        () => sipToGatewayJid(parseSipUri(input), domains),
        input,
        "is on the gateway domain 'sip.example.org' itself (loop)",
        "loop-detected",
      );
    }
    const jid = "bob\\40sip.example.org@sip.example.org";
    assertAddressError(
      () => gatewayJidToSip(parseJid(jid), domains),
      jid,
      "points back at the gateway domain (loop)",
      "loop-detected",
    );
  });

  const badSip: ReadonlyArray<[string, string]> = [
    ["sip:example.org", "no user part"],
    ["tel:+442071234567;ext=12", "tel URI parameter 'ext' cannot be carried"],
    [
      "tel:8001;phone-context=example.com",
      "local number in phone-context 'example.com' outside 'example.org'",
    ],
    ["sip:%20bob@example.org", "leading or trailing space"],
    // sips: asks for TLS to the party on every hop; the bridge cannot promise that to an XMPP user.
    ["sips:bob@example.org", "a sips: URI requires TLS end to end"],
    ["sips:carol@example.com;transport=tls", "a sips: URI requires TLS end to end"],
    ["sips:+442071234567@example.org", "a sips: URI requires TLS end to end"],
  ];

  for (const [input, problem] of badSip) {
    it(`cannot map ${input}: ${problem}`, () => {
      assertAddressError(() => sipToGatewayJid(sipOrTel(input), domains), input, problem);
    });
  }

  const badJid: ReadonlyArray<[string, string]> = [
    ["bob@example.org", "is not on the gateway domain 'sip.example.org'"],
    ["bob@other.example", "is not on the gateway domain"],
    ["sip.example.org", "is the gateway itself"],
    ["\\40example.com@sip.example.org", "empty user before '@'"],
    ["carol\\40@sip.example.org", "invalid host ''"],
    ["carol\\40example.com;transport=tcp@sip.example.org", "invalid host 'example.com;transport=tcp'"],
    ["carol\\40exa_mple.com@sip.example.org", "invalid host 'exa_mple.com'"],
    ["carol\\40-example.com@sip.example.org", "starts or ends with '-'"],
    ["carol\\40example.com\\3a99999@sip.example.org", "invalid port '99999'"],
    ["carol\\401.2.3@sip.example.org", "invalid IPv4 address '1.2.3'"],
    // Valid JIDs that are the escaped form of no name (XEP-0106: nothing escapes to a leading \\20).
    ["\\20bob@sip.example.org", "starts or ends with \\20"],
    ["bob\\20@sip.example.org", "starts or ends with \\20"],
  ];

  for (const [input, problem] of badJid) {
    it(`cannot map ${input}: ${problem}`, () => {
      assertAddressError(() => gatewayJidToSip(parseJid(input), domains), input, problem);
    });
  }

  // One party, one JID: a gateway JID that is not the canonical form (sipToGatewayJid of the party it
  // names) would give the party a second roster entry and subscription key, so it is refused.
  const aliases: ReadonlyArray<[string, string]> = [
    ["bob\\40example.org@sip.example.org", "bob@sip.example.org"],
    ["bob\\40example.org.@sip.example.org", "bob@sip.example.org"],
    ["8001\\40example.org@sip.example.org", "8001@sip.example.org"],
    ["+442071234567\\40example.com@sip.example.org", "+442071234567@sip.example.org"],
    ["+442071234567\\40example.org@sip.example.org", "+442071234567@sip.example.org"],
    ["carol\\40example.com.@sip.example.org", "carol\\40example.com@sip.example.org"],
    ["carol\\40example.com\\3a05070@sip.example.org", "carol\\40example.com\\3a5070@sip.example.org"],
    ["a\\5cb@sip.example.org", "a\\b@sip.example.org"],
  ];

  for (const [alias, canonical] of aliases) {
    it(`refuses the alias ${alias} and names ${canonical}`, () => {
      assertAddressError(
        () => gatewayJidToSip(parseJid(alias), domains),
        alias,
        `is another spelling of '${canonical}': use '${canonical}'`,
      );
      // The canonical JID itself is accepted.
      gatewayJidToSip(parseJid(canonical), domains);
    });
  }

  it("refuses a JID built with upper case parts (JIDs are lowercased)", () => {
    for (const local of ["Bob", "Carol\\40Example.com", "o\\27Brien"]) {
      const jid = { local, domain: "sip.example.org", resource: null };
      const canonical = `${local.toLowerCase()}@sip.example.org`;
      assertAddressError(
        () => gatewayJidToSip(jid, domains),
        `${local}@sip.example.org`,
        `use '${canonical}'`,
      );
      assert.equal(formatJid(parseJid(`${local}@sip.example.org`)), canonical);
    }
  });

  it("every JID sipToGatewayJid gives maps back to a party with that same JID", () => {
    for (const [from] of [...reversible, ...projections]) {
      const jid = sipToGatewayJid(sipOrTel(from), domains);
      const back = gatewayJidToSip(jid, domains);
      if (back.kind === "sip") assert.deepEqual(sipToGatewayJid(back.uri, domains), jid, from);
      else assert.equal(back.number, jid.local, from);
    }
  });

  it("isNumber accepts digits with an optional leading +", () => {
    const table: ReadonlyArray<[string, boolean]> = [
      ["8001", true],
      ["+442071234567", true],
      ["+", false],
      ["", false],
      ["80a1", false],
      ["+44+20", false],
      ["*98", false],
    ];
    for (const [s, expected] of table) assert.equal(isNumber(s), expected, s);
  });
});

describe("e164Fallback", () => {
  it("gives sip:+number@homeDomain;user=phone", () => {
    const uri = e164Fallback("+442071234567", "example.org");
    assert.equal(formatSipUri(uri), "sip:+442071234567@example.org;user=phone");
    assert.equal(uri.params.get("user"), "phone");
  });

  for (const [input, problem] of [
    ["442071234567", "is not an E.164 number"],
    ["8001", "is not an E.164 number"],
    ["+0442071234567", "is not an E.164 number"],
    ["+1234567890123456", "is not an E.164 number"],
    ["+44 20", "is not an E.164 number"],
  ] as const) {
    it(`refuses ${input}`, () => {
      assertAddressError(() => e164Fallback(input, "example.org"), input, problem);
    });
  }
});

describe("same person (one identity, two protocols)", () => {
  const a = (s: string): Address => parseAddress(s);

  const identities: ReadonlyArray<[string, string | null]> = [
    ["sip:alice@example.org", "alice"],
    ["sip:Alice@example.org", "alice"],
    ["sips:alice@example.org;transport=tls", "alice"],
    ["alice@example.org", "alice"],
    ["Alice@example.org/phone", "alice"],
    ["xmpp:alice@example.org", "alice"],
    ["o\\27brien@example.org", "o'brien"],
    ["sip:o'brien@example.org", "o'brien"],
    ["sip:alice@example.com", null],
    ["sip:alice@example.org:5080", null],
    ["alice@sip.example.org", null],
    ["example.org", null],
    ["sip:example.org", null],
    ["sip:8001@example.org", null],
    ["8001@example.org", null],
    ["tel:+442071234567", null],
    ["sip:alice@example.org.", "alice"],
    // Valid JIDs whose localpart is the escaped form of no name: nobody, not an error.
    ["\\20bob@example.org", null],
    ["bob\\20@example.org", null],
    ["xmpp:\\20bob@example.org", null],
  ];

  for (const [input, identity] of identities) {
    it(`${input} is ${identity ?? "nobody at home"}`, () => {
      assert.equal(homeIdentity(a(input), "example.org"), identity);
    });
  }

  it("isSamePerson compares home identities", () => {
    assert.ok(isSamePerson(a("sip:alice@example.org"), a("alice@example.org"), "example.org"));
    assert.ok(isSamePerson(a("sip:Alice@example.org"), a("xmpp:alice@example.org/home"), "example.org"));
    assert.ok(!isSamePerson(a("sip:alice@example.org"), a("bob@example.org"), "example.org"));
    assert.ok(!isSamePerson(a("sip:alice@example.org"), a("alice@sip.example.org"), "example.org"));
    assert.ok(!isSamePerson(a("sip:alice@example.com"), a("alice@example.com"), "example.org"));
  });

  it("isSamePerson is false, not an error, for a localpart that starts or ends with \\20", () => {
    assert.ok(!isSamePerson(a("\\20bob@example.org"), a("\\20bob@example.org"), "example.org"));
    assert.ok(!isSamePerson(a("sip:bob@example.org"), a("bob\\20@example.org"), "example.org"));
    assertAddressError(
      () => homeJidToSip(parseJid("\\20bob@example.org"), "example.org"),
      "\\20bob@example.org",
      "does not name a user of the home domain",
    );
  });

  it("sipToHomeJid / homeJidToSip map a person between protocols", () => {
    assert.equal(
      formatJid(sipToHomeJid(parseSipUri("sip:Alice@example.org"), "example.org")),
      "alice@example.org",
    );
    assert.equal(
      formatJid(sipToHomeJid(parseSipUri("sip:o'brien@example.org"), "example.org")),
      "o\\27brien@example.org",
    );
    assert.equal(
      formatSipUri(homeJidToSip(parseJid("alice@example.org/x"), "example.org")),
      "sip:alice@example.org",
    );
    assert.equal(
      formatSipUri(homeJidToSip(parseJid("o\\27brien@example.org"), "example.org")),
      "sip:o'brien@example.org",
    );
    assertAddressError(
      () => sipToHomeJid(parseSipUri("sip:alice@example.com"), "example.org"),
      "sip:alice@example.com",
      "does not name a user of the home domain 'example.org'",
    );
    assertAddressError(
      () => homeJidToSip(parseJid("8001@example.org"), "example.org"),
      "8001@example.org",
      "does not name a user of the home domain",
    );
  });
});
