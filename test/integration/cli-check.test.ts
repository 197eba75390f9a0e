// `switchboard check` as an operator runs it: the real executable against real servers.
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { switchboard } from "../harness/cli.js";
import { Scene } from "../harness/scene.js";

describe("switchboard check (real servers)", function () {
  let scene: Scene;

  before(async function () {
    scene = await Scene.start();
  });
  after(async function () {
    await scene?.stop();
  });

  it("validates the example config without probing", async function () {
    const result = await switchboard(["check", "--no-probe", "--config", "config/switchboard.example.yaml"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /config\/switchboard\.example\.yaml: valid/);
  });

  it("probes every configured component and exits 0 when all answer", async function () {
    const file = scene.writeConfig(await scene.config());
    const result = await switchboard(["check", "--config", file]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    for (const expected of [
      /^ok {3}xmpp +xmpp\.component: handshake with 127\.0\.0\.1:\d+ accepted for gw\d+\.example\.org$/m,
      /^ok {3}redis +store\.url: PONG, Redis \d+\.\S+, append-only on$/m,
      /^ok {3}ldap +ldap: bound as cn=admin,dc=example,dc=org \(no TLS\), base ou=people,dc=example,dc=org found$/m,
      /^ok {3}enum +enum\.servers: NAPTR e164\.arpa: answered \(ENO(TFOUND|DATA)\)$/m,
      /^ok {3}sip +sip\.listen\[0\]: udp:127\.0\.0\.1:\d+ can be bound$/m,
      /^ok {3}http +http\.listen: 127\.0\.0\.1:\d+ can be bound$/m,
    ]) {
      assert.match(result.stdout, expected);
    }
  });

  it("exits non-zero naming the component and key path when the component secret is wrong", async function () {
    const config = await scene.config();
    config.xmpp.component.secret = "wrong-secret";
    const result = await switchboard(["check", "--config", scene.writeConfig(config, "wrong-secret.yaml")]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^FAIL xmpp +xmpp\.component: .*not-authorized/m);
    assert.match(result.stdout, /hint: check the Component section/);
    assert.match(result.stderr, /check failed: xmpp \(xmpp\.component\)/);
  });

  it("reports an unreachable store and a missing LDAP base", async function () {
    const config = await scene.config();
    config.store = { url: "redis://127.0.0.1:1" };
    if (config.ldap) config.ldap.base = "ou=nowhere,dc=example,dc=org";
    const result = await switchboard(["check", "--config", scene.writeConfig(config, "broken.yaml")]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^FAIL redis +store\.url: .*ECONNREFUSED/m);
    assert.match(result.stdout, /^FAIL ldap +ldap: .*(No Such Object|NoSuchObject)/im);
    assert.match(result.stderr, /check failed: redis \(store\.url\), ldap \(ldap\)/);
  });

  it("gives up on a peer that accepts TCP but never answers, and exits", async function () {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const config = await scene.config();
      config.store = { url: `redis://127.0.0.1:${(silent.address() as AddressInfo).port}` };
      const file = scene.writeConfig(config, "silent.yaml");
      const result = await switchboard(["check", "--config", file, "--timeout", "1500"], {
        timeoutMs: 20_000,
      });
      assert.equal(result.code, 1, "the process exited on its own with the failure code");
      assert.match(result.stdout, /^FAIL redis +store\.url: no answer within 1500 ms$/m);
    } finally {
      silent.close();
    }
  });

  it("refuses a config with a wrong type, naming the key path, before probing", async function () {
    const config = await scene.config();
    const file = scene.writeConfig(
      { ...config, http: { listen: 8080 as unknown as string } },
      "wrong-type.yaml",
    );
    const result = await switchboard(["check", "--config", file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^ {2}http\.listen: .*expected string.*\(got 8080\)$/m);
    assert.doesNotMatch(result.stdout, /xmpp/);
  });

  it("takes the config from SWITCHBOARD_CONFIG and refuses unknown commands and options", async function () {
    const viaEnv = await switchboard(["check", "--no-probe"], {
      env: { SWITCHBOARD_CONFIG: "config/switchboard.example.yaml" },
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const unknown = await switchboard(["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const badOption = await switchboard(["check", "--colour"]);
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /Unknown option '--colour'/);
    const wrongCommand = await switchboard([
      "check",
      "--json",
      "--config",
      "config/switchboard.example.yaml",
    ]);
    assert.equal(wrongCommand.code, 2);
    assert.match(wrongCommand.stderr, /check does not take --json/);
  });

  // Last in this file: it stops the scene's servers.
  it("fails naming each component as its server is stopped in turn, and only those", async function () {
    this.timeout(120_000);
    const file = scene.writeConfig(await scene.config(), "in-turn.yaml");
    const stops: [component: string, keyPath: string, stop: () => Promise<void>][] = [
      ["xmpp", "xmpp.component", () => scene.prosody.halt()],
      ["redis", "store.url", () => scene.redis.halt()],
      ["ldap", "ldap", () => scene.slapd.stop()],
      ["enum", "enum.servers", () => scene.dns.stop()],
    ];
    const failing: string[] = [];
    for (const [component, keyPath, stop] of stops) {
      await stop();
      failing.push(component);
      const result = await switchboard(["check", "--config", file, "--timeout", "2000"], {
        timeoutMs: 30_000,
      });
      assert.equal(result.code, 1, `exit code with ${failing.join(", ")} stopped`);
      assert.match(result.stdout, new RegExp(`^FAIL ${component} +${keyPath.replace(".", "\\.")}: `, "m"));
      assert.match(
        result.stderr,
        new RegExp(`check failed: .*${component} \\(${keyPath.replace(".", "\\.")}\\)`),
      );
      const failed = [...result.stdout.matchAll(/^FAIL (\S+)/gm)].map((m) => m[1]);
      assert.deepEqual(failed.sort(), [...failing].sort(), "only the stopped components fail");
    }
  });
});
