// `switchboard lookup` as a real executable against the harness's slapd and dnsmasq (the scene):
// the chain printed for an extension and for a number, JSON output, and a clear failure.
import assert from "node:assert/strict";
import { switchboard } from "../harness/cli.js";
import { Scene } from "../harness/scene.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, LDAP_SUFFIX } from "../harness/slapd.js";

describe("switchboard lookup (real executable, slapd and dnsmasq)", function () {
  let scene: Scene;
  let file: string;

  before(async function () {
    scene = await Scene.start();
    file = scene.writeConfig(await scene.config(), "lookup.yaml");
  });
  after(async function () {
    await scene?.stop();
  });

  it("prints the chain for an extension, from LDAP", async function () {
    const result = await switchboard(["lookup", "8001", "--config", file]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout.trim(),
      [
        "8001 (extension)",
        "  directory 8001 → alice",
        'result: sip:alice@example.org  xmpp:alice@example.org  "Alice Archer"',
      ].join("\n"),
    );
  });

  it("prints the chain of a number as JSON, whatever way it is written", async function () {
    for (const input of ["+442071234567", "+44 20 7123 4567", "02071234567"]) {
      const result = await switchboard(["lookup", input, "--json", "--config", file]);
      assert.equal(result.code, 0, result.stderr);
      const chain = JSON.parse(result.stdout) as {
        normalized: string;
        resolved: boolean;
        jid: string;
        steps: unknown[];
      };
      assert.deepEqual(
        [chain.normalized, chain.resolved, chain.jid],
        ["+442071234567", true, "alice@example.org"],
      );
      assert.deepEqual(chain.steps, [{ step: "directory", query: "+442071234567", answer: "alice" }]);
    }
  });

  it("exits non-zero with a clear message when nothing resolves", async function () {
    const result = await switchboard(["lookup", "+1 212 555 0199", "--config", file]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /directory \+12125550199 → no answer/);
    assert.match(result.stdout, /enum +\+12125550199 → no answer/);
    assert.match(
      result.stderr,
      /nothing resolves '\+1 212 555 0199' \(it would go to the outbound proxy as sip:\+12125550199@example\.org;user=phone\)/,
    );
    const usage = await switchboard(["lookup", "--config", file]);
    assert.equal(usage.code, 2);
  });

  it("resolves in a tenant's own LDAP base with --tenant, and nowhere else", async function () {
    const config = await scene.config();
    // Tenant B: a copy of the people under its own base; tenant C: a base with nobody in it. Both
    // search the one LDAP server of the top level, each under its own base only.
    const baseB = await scene.slapd.newBase("tenant-b");
    const baseC = `ou=tenant-c-empty,${LDAP_SUFFIX}`;
    const client = scene.slapd.client();
    try {
      await client.bind(LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD);
      await client.add(baseC, { objectClass: "organizationalUnit", ou: "tenant-c-empty" });
    } finally {
      await client.unbind();
    }
    const tenant = (domain: string, base: string, prefix: string) => ({
      domain,
      xmpp: { component: { jid: `gw.${domain}`, secret: "x" } },
      store: { prefix },
      ldap: { base },
    });
    const tenants = scene.writeConfig(
      {
        ...config,
        tenants: [tenant("example.net", baseB, "lookup-b:"), tenant("example.com", baseC, "lookup-c:")],
      },
      "lookup-tenants.yaml",
    );
    const inB = await switchboard(["lookup", "8001", "--tenant", "example.net", "--config", tenants]);
    assert.equal(inB.code, 0, inB.stderr);
    // Found under B's base (the copied entry keeps the addresses it names).
    assert.match(inB.stdout, /^ {2}directory 8001 → alice$/m);
    const inDefault = await switchboard(["lookup", "8001", "--config", tenants]);
    assert.match(inDefault.stdout, /^result: sip:alice@example\.org /m);
    const inC = await switchboard(["lookup", "8001", "--tenant", "example.com", "--config", tenants]);
    assert.equal(inC.code, 1);
    assert.match(inC.stderr, /nothing resolves '8001'/);
    const unknown = await switchboard(["lookup", "8001", "--tenant", "nope.example", "--config", tenants]);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /--tenant: no tenant has the domain 'nope\.example' \(tenants: example\.org, example\.net, example\.com\)/,
    );
  });
});
