import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  ConfigError,
  configPath,
  loadConfig,
  parseConfigText,
  substituteEnv,
} from "../../src/config/load.js";
import { configReference } from "../../src/config/reference.js";
import { configSchema } from "../../src/config/schema.js";

const EXAMPLE = "config/switchboard.example.yaml";
const MINIMAL = `domain: example.org
xmpp:
  component:
    jid: sip.example.org
    secret: s3cret
`;

/**
 * The example with one of the store's commented alternatives (`  #sentinel:` and the `  #  ` lines
 * after it) in force, in place of store.url.
 */
function storeAlternative(example: string, kind: string): string {
  const lines = example.split("\n");
  const start = lines.indexOf(`  #${kind}:`);
  assert.ok(start >= 0, `no commented store.${kind} block in the example`);
  let end = start + 1;
  while (lines[end]?.startsWith("  #  ")) end++;
  const block = lines.slice(start, end).map((line) => line.replace(/^ {2}#/, "  "));
  const rest = [...lines.slice(0, start), ...lines.slice(end)];
  const url = rest.indexOf("  url: redis://127.0.0.1:6379");
  assert.ok(url >= 0, "no store.url in the example");
  rest.splice(url, 1, ...block);
  return rest.join("\n");
}

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfigText(text, "test.yaml", env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail("expected the config to be refused");
}

describe("config", function () {
  it("refuses SIP settings that cannot work together, naming the key", function () {
    const sip = (yaml: string): string[] => problems(`${MINIMAL}sip:\n${yaml}`);
    assert.deepEqual(sip("  listen: [udp:0.0.0.0:5060]\n"), [
      'sip.listen[0]: a wildcard address cannot go in Via and Contact: set sip.advertisedHost (the address peers reach) (got "udp:0.0.0.0:5060")',
    ]);
    assert.deepEqual(sip("  listen: [tls:127.0.0.1:5061]\n"), [
      'sip.listen[0]: tls: needs sip.tls.cert and sip.tls.key (got "tls:127.0.0.1:5061")',
    ]);
    assert.deepEqual(sip("  timers: { t1: 500, t2: 100 }\n"), [
      "sip.timers.t2: must be at least t1 (500) (got 100)",
    ]);
    const ok = parseConfigText(
      `${MINIMAL}sip:\n  listen: [udp:0.0.0.0:5060]\n  advertisedHost: sip.example.org\n`,
      "test.yaml",
      {},
    );
    assert.equal(ok.sip.advertisedHost, "sip.example.org");
  });

  it("accepts the example file with every section", function () {
    const config = loadConfig(EXAMPLE, {});
    assert.equal(config.domain, "example.org");
    assert.equal(config.xmpp.component.jid, "sip.example.org");
    assert.equal(config.xmpp.component.secret, "change-me");
    assert.deepEqual(config.sip.listen, ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]);
    assert.equal(config.ldap?.attributes.extension, "switchboardExtension");
    assert.equal(config.tenants?.[0]?.xmpp.component.jid, "sip.example.com");
  });

  it("fills defaults for a minimal file (in-memory store, loopback HTTP)", function () {
    const config = parseConfigText(MINIMAL, "minimal.yaml", {});
    assert.equal(config.store.url, undefined);
    assert.equal(config.store.prefix, "switchboard:");
    assert.equal(config.xmpp.component.port, 5347);
    assert.equal(config.http.listen, "127.0.0.1:8480");
    assert.equal(config.log.level, "info");
    assert.equal(config.asterisk, undefined);
  });

  const refused: [string, string, RegExp][] = [
    [
      "a wrong type",
      MINIMAL.replace("secret: s3cret", "secret: s3cret\n    port: five"),
      /^xmpp\.component\.port: .*number.*\(got "five"\)$/,
    ],
    [
      "a port out of range",
      MINIMAL.replace("secret: s3cret", "secret: s3cret\n    port: 70000"),
      /^xmpp\.component\.port: .*65535/,
    ],
    ["an unknown key", MINIMAL + "sip:\n  listn: []\n", /^sip\.listn: unknown key$/],
    ["an unknown top-level key", MINIMAL + "colour: blue\n", /^colour: unknown key$/],
    [
      "a missing required key",
      "domain: example.org\nxmpp:\n  component:\n    jid: sip.example.org\n",
      /^xmpp\.component\.secret: required/,
    ],
    [
      "a bad list item",
      MINIMAL + "sip:\n  listen: [udp:127.0.0.1:5060, sctp:127.0.0.1:5060]\n",
      /^sip\.listen\[1\]: expected <udp\|tcp\|tls\|ws\|wss>/,
    ],
    [
      "a bad domain",
      MINIMAL.replace("domain: example.org", "domain: 'not a domain'"),
      /^domain: expected a domain name/,
    ],
    ["a bad store URL", MINIMAL + "store:\n  url: http://localhost\n", /^store\.url: expected redis:\/\//],
    ["an empty file", "", /^\(top level\): the file is empty/],
    [
      "a port out of range in host:port",
      MINIMAL + "http:\n  listen: 127.0.0.1:99999\n",
      /^http\.listen: port 99999 is outside 1-65535/,
    ],
    [
      "a bad IPv4 host",
      MINIMAL + "http:\n  listen: 999.1.1.1:8480\n",
      /^http\.listen: bad host '999\.1\.1\.1'/,
    ],
    ["SIP port 0", MINIMAL + "sip:\n  listen: [udp:127.0.0.1:0]\n", /^sip\.listen\[0\]: .*port 0 is outside/],
    [
      "a Redis URL without a host",
      MINIMAL + "store:\n  url: 'redis://'\n",
      /^store\.url: expected redis:\/\/host:port/,
    ],
    [
      "an outbound proxy that is no SIP URI",
      MINIMAL + "sip:\n  outboundProxy: 'sip:%%%'\n",
      /^sip\.outboundProxy: expected a SIP URI/,
    ],
    [
      "an LDAP bindDN without password",
      MINIMAL + "ldap:\n  url: ldap://h\n  base: dc=x\n  bindDN: cn=a\n",
      /^ldap\.password: required when bindDN is set/,
    ],
    [
      "a gateway domain equal to the home domain",
      MINIMAL.replace("jid: sip.example.org", "jid: example.org"),
      /^xmpp\.component\.jid: 'example\.org' is already used by domain/,
    ],
    [
      "a tenant reusing the component",
      MINIMAL +
        "tenants:\n  - domain: example.com\n    xmpp:\n      component: { jid: SIP.example.org, secret: x }\n",
      /^tenants\[0\]\.xmpp\.component\.jid: 'sip\.example\.org' is already used by xmpp\.component\.jid/,
    ],
    ["YAML that does not parse", "domain: [example.org\n", /^\(file\): YAML/],
    ["a duplicate key", MINIMAL + "domain: example.com\n", /^\(file\): YAML DUPLICATE_KEY/],
  ];
  for (const [what, text, expected] of refused) {
    it(`refuses ${what}, naming the key path`, function () {
      const found = problems(text);
      assert.ok(
        found.some((p) => expected.test(p)),
        `no problem matched ${String(expected)} in ${JSON.stringify(found)}`,
      );
    });
  }

  it("lowercases domains, as JID domainparts are", function () {
    const config = parseConfigText(
      MINIMAL.replace("domain: example.org", "domain: Example.ORG"),
      "case.yaml",
      {},
    );
    assert.equal(config.domain, "example.org");
  });

  it("takes secrets from the environment, with defaults and escapes", function () {
    const text =
      MINIMAL.replace("secret: s3cret", "secret: ${COMPONENT_SECRET}") +
      "ldap:\n  url: ldap://h\n  base: ${BASE:-dc=example,dc=org}\n  bindDN: $${literal}\n  password: pw\n";
    const config = parseConfigText(text, "env.yaml", { COMPONENT_SECRET: "from-env" });
    assert.equal(config.xmpp.component.secret, "from-env");
    assert.equal(config.ldap?.base, "dc=example,dc=org");
    assert.equal(config.ldap?.bindDN, "${literal}");
  });

  it("names the key whose environment variable is missing", function () {
    const found = problems(MINIMAL.replace("secret: s3cret", "secret: ${NOPE_NOT_SET}"));
    assert.deepEqual(found, ["xmpp.component.secret: environment variable NOPE_NOT_SET is not set"]);
  });

  it("substitutes inside lists and keeps non-strings", function () {
    assert.deepEqual(substituteEnv({ a: ["${X}", 5, true] }, { X: "y" }), { a: ["y", 5, true] });
  });

  it("chooses --config, then SWITCHBOARD_CONFIG, then the default path", function () {
    assert.equal(configPath("a.yaml", { SWITCHBOARD_CONFIG: "b.yaml" }), "a.yaml");
    assert.equal(configPath(undefined, { SWITCHBOARD_CONFIG: "b.yaml" }), "b.yaml");
    assert.equal(configPath(undefined, {}), "config/switchboard.yaml");
  });

  it("reports a missing file with the way to name another", function () {
    assert.throws(
      () => loadConfig("/nonexistent/switchboard.yaml", {}),
      /file not found \(use --config FILE or SWITCHBOARD_CONFIG\)/,
    );
  });

  it("offers store.sentinel and store.cluster in the example as commented alternatives to store.url, each valid", function () {
    const example = readFileSync(EXAMPLE, "utf8");
    for (const kind of ["sentinel", "cluster"]) {
      const variant = storeAlternative(example, kind);
      const config = parseConfigText(variant, EXAMPLE, {});
      assert.equal(config.store.url, undefined);
      assert.ok(config.store[kind as "sentinel" | "cluster"], `store.${kind} not in the example`);
    }
  });

  it("refuses more than one of store.url, store.sentinel and store.cluster, naming the key", function () {
    const sentinel = "  sentinel:\n    masterName: m\n    sentinels: ['127.0.0.1:26379']\n";
    const cluster = "  cluster:\n    nodes: ['127.0.0.1:7000']\n";
    assert.deepEqual(problems(`${MINIMAL}store:\n  url: redis://127.0.0.1:6379\n${sentinel}`), [
      "store.sentinel: store.url is set too: set one of store.url, store.sentinel, store.cluster (got a mapping)",
    ]);
    assert.deepEqual(problems(`${MINIMAL}store:\n${sentinel}${cluster}`), [
      "store.cluster: store.sentinel is set too: set one of store.url, store.sentinel, store.cluster (got a mapping)",
    ]);
    assert.match(
      problems(`${MINIMAL}store:\n  cluster:\n    nodes: ['127.0.0.1']\n`).join("\n"),
      /^store\.cluster\.nodes\[0\]: expected host:port/,
    );
    assert.match(
      problems(`${MINIMAL}store:\n  prefix: "a{b}:"\n`).join("\n"),
      /^store\.prefix: must not contain \{ or \}/,
    );
  });

  it("documents every schema key in the example file", function () {
    // The store's alternatives to store.url are in the file as commented blocks (checked above).
    const example = ["sentinel", "cluster"].reduce(
      (text, kind) => `${text}\n${storeAlternative(readFileSync(EXAMPLE, "utf8"), kind)}`,
      readFileSync(EXAMPLE, "utf8"),
    );
    const keys = new Set<string>();
    const walk = (schema: unknown): void => {
      const node = schema as { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[] };
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        keys.add(key);
        walk(child);
      }
      if (node.items) walk(node.items);
      for (const option of node.anyOf ?? []) walk(option);
    };
    walk(z.toJSONSchema(configSchema, { io: "input" }));
    assert.ok(keys.size > 30, `only ${keys.size} keys found in the schema`);
    const missing = [...keys].filter((key) => !new RegExp(`^\\s*(- )?${key}:`, "m").test(example));
    assert.deepEqual(missing, []);
  });
});

describe("config reference", function () {
  it("docs/config-reference.md is what the schema generates (npm run docs:config)", function () {
    assert.equal(readFileSync("docs/config-reference.md", "utf8"), configReference());
  });

  it("lists every key path with its default", function () {
    const reference = configReference();
    assert.match(reference, /^\| `xmpp\.component\.port` \| integer 1–65535 \| {2}\| `5347` \|/m);
    assert.match(reference, /^\| `asterisk\.url` \| string \| yes \|/m);
  });
});
