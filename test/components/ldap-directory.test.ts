// The LDAP directory adapter against a real OpenLDAP slapd seeded with config/ldap/example.ldif:
// lookups by every kind of key (numbers in any format matched against values written with spaces
// or in national format), the HA1 attribute hidden by an ACL, coalescing, stale-while-error while
// slapd is halted or stopped, and StartTLS (RFC 4513 §3) with a generated certificate. Filter
// injection is in the security suite (test/security/ldap-injection.test.ts).
import { parseConfigText } from "../../src/config/load.js";
import assert from "node:assert/strict";
import { Attribute, Change } from "ldapts";
import {
  LdapDirectory,
  type LdapAttributeMap,
  type LdapDirectoryOptions,
} from "../../components/ldap/ldap-directory.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, LDAP_SUFFIX, Slapd } from "../harness/slapd.js";
import { testCertificate, type TestCertificate } from "../harness/tls.js";

// The attribute map an operator gets by default (the config schema's), not a copy of it.
const ATTRIBUTES: LdapAttributeMap =
  parseConfigText(
    'domain: example.org\nxmpp: { component: { jid: sip.example.org, secret: s } }\nldap: { url: ldap://127.0.0.1, base: "dc=example,dc=org" }\n',
    "defaults.yaml",
    {},
  ).ldap?.attributes ?? assert.fail("no ldap defaults");
const PEOPLE = `ou=people,${LDAP_SUFFIX}`;

describe("LdapDirectory (real slapd)", function () {
  let slapd: Slapd;
  let opened: LdapDirectory[] = [];
  let lines: LogLine[];

  function open(url: string, options: Partial<LdapDirectoryOptions> = {}): LdapDirectory {
    const directory = LdapDirectory.create({
      url,
      bindDN: LDAP_ADMIN_DN,
      password: LDAP_ADMIN_PASSWORD,
      base: PEOPLE,
      attributes: ATTRIBUTES,
      defaultRegion: "GB",
      homeDomain: "example.org",
      log: memoryLogger(lines),
      ...options,
    });
    opened.push(directory);
    return directory;
  }

  before(async function () {
    slapd = await Slapd.start();
  });

  after(async function () {
    await slapd?.stop();
  });

  beforeEach(function () {
    lines = [];
  });

  afterEach(async function () {
    await Promise.all(opened.map((d) => d.close()));
    opened = [];
  });

  describe("lookups", function () {
    let directory: LdapDirectory;

    beforeEach(function () {
      directory = open(slapd.url);
    });

    it("finds alice by number in three formats, written `+44 20 7123 4567` in the directory", async function () {
      for (const number of ["+44 20 7123 4567", "02071234567", "+442071234567"]) {
        const entry = await directory.findPerson(number);
        assert.deepEqual(
          entry,
          {
            uid: "alice",
            displayName: "Alice Archer",
            numbers: ["+44 20 7123 4567"],
            extension: "8001",
            sipUri: "sip:alice@example.org",
            jid: "alice@example.org",
            mail: "alice@example.org",
          },
          number,
        );
        assert.equal((await directory.findByNumber(number))?.uid, "alice", number);
      }
    });

    it("finds bob, written in national format `020 7123 4568`, by his E.164 number", async function () {
      for (const number of ["+442071234568", "+44 20 7123 4568", "tel:+44-20-7123-4568", "020 7123 4568"]) {
        assert.equal((await directory.findPerson(number))?.uid, "bob", number);
      }
    });

    it("finds carol's US number and no one for numbers not in the directory", async function () {
      assert.equal((await directory.findPerson("+1 (212) 555-0100"))?.uid, "carol");
      assert.equal(await directory.findPerson("+44 20 7123 9999"), null);
      assert.equal(await directory.findByNumber("+1 212 555 0199"), null);
      assert.equal(await directory.findByNumber("not a number"), null);
    });

    it("finds by extension", async function () {
      assert.equal((await directory.findPerson("8001"))?.uid, "alice");
      assert.equal((await directory.findByExtension("8002"))?.uid, "bob");
      assert.equal(await directory.findByExtension("8999"), null);
    });

    it("finds by mail, uid and uid@homeDomain", async function () {
      assert.equal((await directory.findByMail("Alice@Example.org"))?.uid, "alice");
      assert.equal((await directory.findPerson("bob@example.org"))?.uid, "bob");
      assert.equal((await directory.findPerson("carol@example.org"))?.uid, "carol"); // mail only, no JID
      assert.equal((await directory.findPerson("alice"))?.uid, "alice");
      assert.equal((await directory.findByUid("bob"))?.uid, "bob");
      assert.equal(await directory.findPerson("alice@elsewhere.example"), null);
    });

    it("finds by JID and SIP URI", async function () {
      assert.equal((await directory.findByJid("alice@example.org/desk"))?.uid, "alice");
      assert.equal((await directory.findPerson("xmpp:bob@example.org"))?.uid, "bob");
      assert.equal((await directory.findPerson("sip:alice@example.org;transport=tcp"))?.uid, "alice");
      assert.equal((await directory.findBySipUri("sips:bob@example.org"))?.uid, "bob");
      assert.equal(await directory.findBySipUri("sip:nobody@example.org"), null);
    });

    it("lists everyone", async function () {
      const everyone = await directory.entries();
      assert.deepEqual(everyone.map((e) => e.uid).sort(), ["alice", "bob", "carol"]);
      assert.equal((await open(slapd.url, { maxEntries: 2 }).entries()).length, 2);
    });
  });

  describe("cache", function () {
    it("coalesces concurrent identical lookups into one search and caches the answer", async function () {
      const directory = open(slapd.url);
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => directory.findPerson("+44 20 7123 4567")),
      );
      assert.ok(answers.every((a) => a?.uid === "alice"));
      assert.equal(directory.searches, 1);
      assert.equal(lines.filter((l) => l.message === "ldap: search").length, 1);
      await directory.findPerson("+44 20 7123 4567");
      assert.equal(directory.searches, 1, "answered from the cache");
    });

    it("caches misses for negativeTtlMs", async function () {
      const directory = open(slapd.url, { negativeTtlMs: 100 });
      assert.equal(await directory.findPerson("nobody"), null);
      assert.equal(await directory.findPerson("nobody"), null);
      assert.equal(directory.searches, 1);
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(await directory.findPerson("nobody"), null);
      assert.equal(directory.searches, 2);
    });
  });

  describe("HA1", function () {
    it("is read when the bind DN may read it and absent when the ACL hides it", async function () {
      const base = await slapd.newBase("ha1");
      const admin = slapd.client();
      try {
        await admin.bind(LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD);
        await admin.modify(
          `uid=alice,${base}`,
          new Change({
            operation: "add",
            modification: new Attribute({
              type: "switchboardHA1",
              values: ["0123456789abcdef0123456789abcdef"],
            }),
          }),
        );
      } finally {
        await admin.unbind();
      }
      const privileged = open(slapd.url, { base });
      assert.equal((await privileged.findPerson("8001"))?.ha1, "0123456789abcdef0123456789abcdef");
      const anonymous = open(slapd.url, { base, bindDN: undefined, password: undefined });
      const entry = await anonymous.findPerson("8001");
      assert.equal(entry?.uid, "alice");
      assert.equal(entry?.ha1, undefined);
    });
  });

  describe("server down", function () {
    let own: Slapd;

    before(async function () {
      own = await Slapd.start();
    });

    after(async function () {
      await own?.stop();
    });

    it("serves cached answers while halted, fails new lookups within the timeout, reconnects", async function () {
      const directory = open(own.url, { timeoutMs: 500, cacheTtlMs: 50, negativeTtlMs: 50, retryMs: 300 });
      assert.equal((await directory.findPerson("+442071234567"))?.uid, "alice");
      assert.equal(await directory.findPerson("nobody"), null);
      await new Promise((resolve) => setTimeout(resolve, 100)); // both answers expired
      own.halt();
      try {
        let started = Date.now();
        await assert.rejects(directory.findPerson("8002"), (err: unknown) => {
          assert.ok(err instanceof SwitchboardError);
          assert.equal(err.condition, "service-unavailable");
          assert.match(err.message, /^LDAP ldap:\/\/127\.0\.0\.1:\d+ unreachable: .*timed out/i);
          return true;
        });
        assert.ok(Date.now() - started < 2_000, `bounded by timeoutMs (took ${Date.now() - started} ms)`);
        // Within retryMs of the failure nothing waits for the halted server again.
        started = Date.now();
        assert.equal((await directory.findPerson("+442071234567"))?.uid, "alice", "stale answer served");
        assert.equal(await directory.findPerson("nobody"), null, "stale miss served");
        assert.ok(lines.some((l) => l.message === "ldap: server unreachable, serving a stale answer"));
        await assert.rejects(
          directory.findPerson("8003"),
          /unreachable: timed out.* \(retrying in \d+ ms\)$/,
        );
        assert.ok(Date.now() - started < 100, `answered at once (took ${Date.now() - started} ms)`);
      } finally {
        own.resume();
      }
      await new Promise((resolve) => setTimeout(resolve, 300)); // retryMs
      assert.equal((await directory.findPerson("8002"))?.uid, "bob", "a new connection after resume");
    });

    it("serves cached answers after slapd stops; a new lookup fails fast with a clear error", async function () {
      const directory = open(own.url, { timeoutMs: 3_000, cacheTtlMs: 50 });
      const strict = open(own.url, { cacheTtlMs: 50, staleMaxMs: 0 });
      assert.equal((await directory.findPerson("alice@example.org"))?.uid, "alice");
      assert.equal((await strict.findPerson("alice@example.org"))?.uid, "alice");
      await new Promise((resolve) => setTimeout(resolve, 100));
      await own.stop();
      assert.equal((await directory.findPerson("alice@example.org"))?.uid, "alice");
      const started = Date.now();
      for (const lookup of [directory.findPerson("carol"), strict.findPerson("alice@example.org")]) {
        await assert.rejects(lookup, (err: unknown) => {
          assert.ok(err instanceof SwitchboardError);
          assert.equal(err.condition, "service-unavailable");
          assert.match(err.message, /^LDAP ldap:\/\/127\.0\.0\.1:\d+ unreachable: .*ECONNREFUSED/);
          return true;
        });
      }
      assert.ok(Date.now() - started < 1_000, `failed fast (took ${Date.now() - started} ms)`);
    });
  });

  describe("StartTLS", function () {
    let certificate: TestCertificate;
    let tlsSlapd: Slapd;

    before(async function () {
      certificate = testCertificate();
      tlsSlapd = await Slapd.start({ tls: { cert: certificate.cert, key: certificate.key } });
    });

    after(async function () {
      await tlsSlapd?.stop();
      certificate?.dir.remove();
    });

    it("upgrades with StartTLS when the certificate's CA is trusted", async function () {
      const directory = open(tlsSlapd.url, { startTls: true, tlsCa: certificate.cert });
      assert.equal((await directory.findPerson("8001"))?.uid, "alice");
    });

    it("fails with a clear error when the CA is not trusted", async function () {
      const directory = open(tlsSlapd.url, { startTls: true });
      await assert.rejects(directory.findPerson("8001"), (err: unknown) => {
        assert.ok(err instanceof SwitchboardError);
        assert.equal(err.condition, "service-unavailable");
        assert.match(err.message, /unreachable: StartTLS failed: .*self[- ]signed certificate/i);
        return true;
      });
    });

    it("refuses StartTLS on an ldaps:// url", function () {
      assert.throws(
        () => LdapDirectory.create({ ...baseOptions(), url: "ldaps://127.0.0.1:636", startTls: true }),
        /StartTLS is for ldap:\/\//,
      );
    });
  });

  function baseOptions(): LdapDirectoryOptions {
    return {
      url: slapd.url,
      base: PEOPLE,
      attributes: ATTRIBUTES,
      defaultRegion: "GB",
      homeDomain: "example.org",
      log: memoryLogger(lines),
    };
  }
});
