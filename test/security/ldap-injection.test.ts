// LDAP filter injection (RFC 4515 §3): values from SIP and XMPP addresses, numbers and extensions
// reach the directory's search filters escaped, so metacharacters match literally. Checked on the
// directory adapter's every lookup, and through the whole address resolver a lookup or a message
// goes through, against a real slapd seeded with config/ldap/example.ldif (where * would match
// alice, bob and carol).
import assert from "node:assert/strict";
import { LdapDirectory } from "../../components/ldap/ldap-directory.js";
import { addressingFor } from "../../src/app/addressing.js";
import { parseConfigText } from "../../src/config/load.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, LDAP_SUFFIX, Slapd } from "../harness/slapd.js";

const PEOPLE = `ou=people,${LDAP_SUFFIX}`;
const INJECTIONS = [
  "*)(uid=*",
  "*",
  "\\",
  "(",
  ")",
  "\u0000",
  "alice)(|(uid=*",
  "a*",
  "*)(uid=*@example.org",
  "alice\\2a",
  "*)(|(objectClass=*",
];

describe("LDAP filter injection (real slapd)", function () {
  let slapd: Slapd;
  let lines: LogLine[];

  before(async function () {
    slapd = await Slapd.start();
  });
  after(async function () {
    await slapd?.stop();
  });
  beforeEach(function () {
    lines = [];
  });

  function config() {
    return parseConfigText(
      [
        "domain: example.org",
        "xmpp: { component: { jid: sip.example.org, secret: s } }",
        `ldap: { url: "${slapd.url}", bindDN: "${LDAP_ADMIN_DN}", password: "${LDAP_ADMIN_PASSWORD}", base: "${PEOPLE}" }`,
        "",
      ].join("\n"),
      "injection.yaml",
      {},
    );
  }

  it("takes filter metacharacters literally in every directory lookup: nothing found, nothing thrown", async function () {
    const ldap = config().ldap ?? assert.fail("no ldap config");
    const directory = LdapDirectory.create({
      url: ldap.url,
      bindDN: LDAP_ADMIN_DN,
      password: LDAP_ADMIN_PASSWORD,
      base: PEOPLE,
      attributes: ldap.attributes,
      defaultRegion: "GB",
      homeDomain: "example.org",
      log: memoryLogger(lines),
    });
    try {
      // The control: the directory answers real keys, so "nothing found" below means something.
      assert.equal((await directory.findByUid("alice"))?.uid, "alice");
      for (const value of INJECTIONS) {
        const what = JSON.stringify(value);
        assert.equal(await directory.findPerson(value), null, what);
        assert.equal(await directory.findByUid(value), null, what);
        assert.equal(await directory.findByMail(value), null, what);
        assert.equal(await directory.findByJid(value), null, what);
        assert.equal(await directory.findByExtension(value), null, what);
        assert.equal(await directory.findBySipUri(`sip:${value}`), null, what);
      }
    } finally {
      await directory.close();
    }
    assert.ok(!lines.some((l) => l.level === "warn" || l.level === "error"), JSON.stringify(lines));
  });

  it("resolves no address form carrying an injection to a person", async function () {
    const addressing = addressingFor(config(), memoryLogger(lines));
    try {
      assert.equal((await addressing.resolver.resolve("sip:alice@example.org")).displayName, "Alice Archer");
      const forms = INJECTIONS.filter((v) => v !== "\u0000").flatMap((value) => [
        value,
        `${value}@example.org`,
        `sip:${value}@example.org`,
        `xmpp:${value}@example.org`,
        `tel:${value}`,
      ]);
      for (const form of forms) {
        const resolution = await addressing.resolver.resolve(form);
        // Whatever the form makes of it (invalid, or an address the directory does not know), no
        // directory entry answered it.
        assert.ok(
          resolution.steps.every((s) => s.step !== "directory" || s.answer === null),
          `${JSON.stringify(form)} → ${JSON.stringify(resolution.steps)}`,
        );
        assert.equal(resolution.displayName, null, JSON.stringify(form));
      }
    } finally {
      await addressing.close();
    }
    assert.ok(
      !lines.some((l) => l.level === "error"),
      JSON.stringify(lines.filter((l) => l.level === "error")),
    );
  });
});
