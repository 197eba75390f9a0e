// The tenants of one process as configs (src/config/tenants.ts), and the config checks that keep
// them apart, each refusal naming its key path.
import assert from "node:assert/strict";
import { ConfigError, parseConfigText } from "../../src/config/load.js";
import { otherTenantDomains, tenantsOf } from "../../src/config/tenants.js";

const TWO = `domain: a.example
xmpp:
  component: { jid: sip.a.example, secret: a }
  allowedDomains: [partner.example]
sip:
  realm: a.example
  users: [{ username: alice, password: pw-a }]
  mwi:
    mailboxes: [{ user: alice, uri: "sip:alice@pbx.a.example" }]
store: { url: "redis://127.0.0.1:6379", prefix: "sb-a:" }
ldap: { url: "ldap://127.0.0.1:389", base: "ou=a,dc=example" }
enum: { suffixes: [e164.a.example], servers: ["127.0.0.1:53"], defaultRegion: FR }
directory:
  users: [{ uid: alice, displayName: Alice, extension: "8001" }]
tenants:
  - domain: b.example
    xmpp:
      component: { jid: sip.b.example, secret: b }
    sip:
      users: [{ username: bob, password: pw-b }]
    store: { prefix: "sb-b:" }
    ldap: { base: "ou=b,dc=example" }
    enum: { suffixes: [e164.b.example] }
    directory:
      users: [{ uid: bob, displayName: Bob, extension: "8002" }]
`;

function problems(text: string): string[] {
  try {
    parseConfigText(text, "test.yaml", {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail("expected the config to be refused");
}

describe("tenants of one process", function () {
  it("makes each tenant a whole config: its own keys over the shared ones, nothing of another's", function () {
    const [a, b, ...rest] = tenantsOf(parseConfigText(TWO, "test.yaml", {}));
    assert.equal(rest.length, 0);
    assert.ok(a && b);
    assert.equal(a.name, "a.example");
    assert.equal(a.path, "");
    assert.equal(a.config.domain, "a.example");
    assert.equal(a.config.tenants, undefined);
    assert.equal(b.name, "b.example");
    assert.equal(b.path, "tenants[0]");
    const config = b.config;
    assert.equal(config.domain, "b.example");
    assert.equal(config.xmpp.component.jid, "sip.b.example");
    assert.deepEqual(config.xmpp.allowedDomains, [], "A's allowed domains are A's");
    assert.deepEqual(
      config.sip.users.map((u) => u.username),
      ["bob"],
    );
    assert.equal(config.sip.realm, undefined, "B's realm is B's domain, not A's realm");
    assert.equal(config.sip.mwi, undefined, "A's mailboxes stay A's");
    assert.deepEqual(config.sip.listen, a.config.sip.listen, "one listener");
    assert.equal(config.store.prefix, "sb-b:");
    assert.equal(config.store.url, "redis://127.0.0.1:6379");
    assert.deepEqual(config.ldap && { url: config.ldap.url, base: config.ldap.base }, {
      url: "ldap://127.0.0.1:389",
      base: "ou=b,dc=example",
    });
    assert.deepEqual(config.enum, {
      suffixes: ["e164.b.example"],
      servers: ["127.0.0.1:53"],
      defaultRegion: "FR",
    });
    assert.deepEqual(
      config.directory?.users.map((u) => u.uid),
      ["bob"],
    );
    assert.equal(config.asterisk, undefined);
    assert.deepEqual(otherTenantDomains([a, b], b), ["a.example", "sip.a.example"]);
    assert.deepEqual(otherTenantDomains([a, b], a), ["b.example", "sip.b.example"]);
  });

  it("leaves a tenant without ldap, enum or directory without them, whatever the top level has", function () {
    const text = TWO.replace('    ldap: { base: "ou=b,dc=example" }\n', "")
      .replace("    enum: { suffixes: [e164.b.example] }\n", "")
      .replace(/ {4}directory:\n.*\n$/, "");
    const b = tenantsOf(parseConfigText(text, "test.yaml", {}))[1]?.config;
    assert.ok(b);
    assert.equal(b.ldap, undefined);
    assert.equal(b.enum, undefined);
    assert.equal(b.directory, undefined);
  });

  const refused: [what: string, text: string, expected: string][] = [
    [
      "two tenants sharing a store prefix",
      TWO.replace('prefix: "sb-b:"', 'prefix: "sb-a:"'),
      "tenants[0].store.prefix: 'sb-a:' starts with 'sb-a:' (store.prefix): each tenant needs a prefix of its own",
    ],
    [
      "a prefix inside another tenant's",
      TWO.replace('prefix: "sb-b:"', 'prefix: "sb-a:b:"'),
      "tenants[0].store.prefix: 'sb-a:b:' starts with 'sb-a:' (store.prefix): each tenant needs a prefix of its own",
    ],
    [
      "a tenant without a prefix on Redis",
      TWO.replace('    store: { prefix: "sb-b:" }\n', ""),
      "tenants[0].store.prefix: required when the store is Redis: each tenant keeps its keys under its own prefix",
    ],
    [
      "a tenant without a prefix on a Redis Cluster",
      TWO.replace('    store: { prefix: "sb-b:" }\n', "").replace(
        'store: { url: "redis://127.0.0.1:6379", prefix: "sb-a:" }',
        'store: { cluster: { nodes: ["127.0.0.1:7000"] }, prefix: "sb-a:" }',
      ),
      "tenants[0].store.prefix: required when the store is Redis: each tenant keeps its keys under its own prefix",
    ],
    [
      "a tenant prefix with a hash tag in it",
      TWO.replace('prefix: "sb-b:"', 'prefix: "sb-{b}:"'),
      "tenants[0].store.prefix: must not contain { or }: the bridge puts hash tags after it",
    ],
    [
      "two tenants sharing a domain",
      TWO.replace("  - domain: b.example", "  - domain: A.example"),
      "tenants[0].domain: 'a.example' is already used by domain",
    ],
    [
      "two tenants sharing a gateway",
      TWO.replace("jid: sip.b.example", "jid: sip.a.example"),
      "tenants[0].xmpp.component.jid: 'sip.a.example' is already used by xmpp.component.jid",
    ],
    [
      "a tenant's gateway on another's home domain",
      TWO.replace("jid: sip.b.example", "jid: a.example"),
      "tenants[0].xmpp.component.jid: 'a.example' is already used by domain",
    ],
    [
      "a tenant allowing another tenant in",
      TWO.replace("allowedDomains: [partner.example]", "allowedDomains: [partner.example, sip.b.example]"),
      "xmpp.allowedDomains[1]: 'sip.b.example' belongs to tenants[0]: tenants are isolated from each other",
    ],
    [
      "a tenant's LDAP base without the LDAP server",
      TWO.replace('ldap: { url: "ldap://127.0.0.1:389", base: "ou=a,dc=example" }\n', ""),
      "tenants[0].ldap: needs the top-level ldap (the server to ask)",
    ],
    [
      "a tenant's PBX app without the PBX",
      TWO + "    asterisk: { app: sb-b }\n",
      "tenants[0].asterisk: needs the top-level asterisk (the PBX to connect to)",
    ],
    [
      "a tenant's PBX app that is the top level's",
      TWO.replace(
        "tenants:",
        "asterisk: { url: http://127.0.0.1:8088, username: u, password: p, app: sb }\ntenants:",
      ) + "    asterisk: { app: sb }\n",
      "tenants[0].asterisk.app: 'sb' is already the top-level tenant's Stasis application",
    ],
  ];
  for (const [what, text, expected] of refused) {
    it(`refuses ${what}, naming the key path`, function () {
      // The loader adds the value it got: "(got ...)".
      assert.deepEqual(
        problems(text).map((p) => p.replace(/ \(got .*\)$/, "")),
        [expected],
      );
    });
  }

  it("needs no prefix with the in-memory store (each tenant has its own store)", function () {
    const text = TWO.replace('store: { url: "redis://127.0.0.1:6379", prefix: "sb-a:" }\n', "").replace(
      '    store: { prefix: "sb-b:" }\n',
      "",
    );
    assert.equal(tenantsOf(parseConfigText(text, "test.yaml", {})).length, 2);
  });
});
