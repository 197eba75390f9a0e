// The resolver chain with the config-file directory and an ENUM port double (our own port; the
// real ENUM adapter is tested against dnsmasq): which step answers, and what each step said.
import assert from "node:assert/strict";
import { AddressResolver } from "../../src/addressing/resolver.js";
import { ConfigDirectory } from "../../src/directory/config-directory.js";
import type { EnumLookup, EnumTarget } from "../../src/ports/enum-lookup.js";

const directory = new ConfigDirectory(
  [
    { uid: "alice", displayName: "Alice Example", extension: "8001", numbers: ["+44 20 7123 4567"] },
    { uid: "bob", displayName: "Bob Baker", extension: "8002", numbers: ["020 7123 4568"] },
  ],
  "example.org",
);

const enumTargets: Record<string, EnumTarget[]> = {
  "+442079460000": [
    { service: "sip", uri: "sip:dave@partner.example", order: 100, preference: 10, suffix: "e164.arpa" },
    { service: "xmpp", uri: "xmpp:dave@partner.example", order: 100, preference: 20, suffix: "e164.arpa" },
  ],
};
const enumPort: EnumLookup = {
  resolve: (e164) => Promise.resolve({ targets: enumTargets[e164] ?? [] }),
};

const resolver = new AddressResolver({
  directory,
  enum: enumPort,
  homeDomain: "example.org",
  defaultRegion: "GB",
});

describe("address resolver chain", function () {
  it("an extension → the directory", async function () {
    const r = await resolver.resolve("8001");
    assert.deepEqual(
      [r.kind, r.normalized, r.resolved, r.sipUri, r.jid, r.displayName],
      ["extension", "8001", true, "sip:alice@example.org", "alice@example.org", "Alice Example"],
    );
    assert.deepEqual(r.steps, [{ step: "directory", query: "8001", answer: "alice" }]);
  });

  for (const input of ["+44 20 7123 4567", "02071234567", "+442071234567"]) {
    it(`a number written ${input} → E.164 → the directory`, async function () {
      const r = await resolver.resolve(input);
      assert.deepEqual(
        [r.kind, r.normalized, r.resolved, r.jid],
        ["number", "+442071234567", true, "alice@example.org"],
      );
    });
  }

  it("an E.164 number nobody in the directory has → ENUM", async function () {
    const r = await resolver.resolve("+44 20 7946 0000");
    assert.equal(r.resolved, true);
    assert.equal(r.sipUri, "sip:dave@partner.example");
    assert.equal(r.jid, "dave@partner.example");
    assert.deepEqual(
      r.steps.map((s) => [s.step, s.answer === null ? "miss" : "hit"]),
      [
        ["directory", "miss"],
        ["enum", "hit"],
      ],
    );
  });

  it("a number nothing resolves → the outbound-proxy fallback, not resolved", async function () {
    const r = await resolver.resolve("+1 212 555 0199");
    assert.equal(r.resolved, false);
    assert.equal(r.sipUri, "sip:+12125550199@example.org;user=phone");
    assert.deepEqual(
      r.steps.map((s) => s.step),
      ["directory", "enum", "fallback"],
    );
  });

  it("an address → itself, enriched from the directory", async function () {
    const r = await resolver.resolve("sip:Bob@example.org");
    assert.deepEqual(
      [r.kind, r.resolved, r.displayName, r.jid],
      ["address", true, "Bob Baker", "bob@example.org"],
    );
    const jid = await resolver.resolve("xmpp:carol@other.example/phone");
    assert.deepEqual([jid.normalized, jid.resolved, jid.displayName], ["carol@other.example", true, null]);
  });

  it("an injection attempt or nonsense resolves to nothing and throws nothing", async function () {
    for (const input of ["*)(uid=*", "", "sip:", "@"]) {
      const r = await resolver.resolve(input);
      assert.equal(r.resolved, false, input);
    }
  });

  it("reads tel: URIs as numbers and finds the owner of a numeric SIP user", async function () {
    const tel = await resolver.resolve("tel:+44-20-7123-4567");
    assert.deepEqual([tel.kind, tel.normalized, tel.jid], ["number", "+442071234567", "alice@example.org"]);
    const line = await resolver.resolve("sip:8002@example.org");
    assert.deepEqual([line.resolved, line.displayName], [true, "Bob Baker"]);
  });

  it("goes on to ENUM when the directory fails", async function () {
    const failing = new AddressResolver({
      directory: {
        findPerson: () => Promise.reject(new Error("LDAP away")),
        entries: () => Promise.resolve([]),
      },
      enum: enumPort,
      homeDomain: "example.org",
      defaultRegion: "GB",
    });
    const r = await failing.resolve("+44 20 7946 0000");
    assert.equal(r.sipUri, "sip:dave@partner.example");
    assert.deepEqual(r.steps[0], {
      step: "directory",
      query: "+442079460000",
      answer: null,
      detail: "LDAP away",
    });
  });

  it("finds a config-file number written nationally by its E.164 form", async function () {
    const r = await resolver.resolve("+442071234568");
    assert.equal(r.jid, "bob@example.org");
  });
});
