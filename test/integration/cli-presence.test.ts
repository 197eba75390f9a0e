// `switchboard presence` as an operator runs it: the real executable asking a bridge's HTTP endpoint
// (started here in-process over the in-memory store, on a free loopback port).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { stringify } from "yaml";
import { startHttpServer, type HttpServer, type PresenceView } from "../../components/http/http-server.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { switchboard } from "../harness/cli.js";
import { memoryLogger } from "../harness/memory-logger.js";
import { freePort, tempDir, type TempDir } from "../harness/net.js";

// A fixed clock on the bridge side: the ages the CLI prints are exact.
const NOW = Date.UTC(2025, 0, 15, 10, 0, 0);

describe("switchboard presence (real executable, bridge HTTP endpoint)", function () {
  let dir: TempDir;
  let server: HttpServer;
  let configFile: string;
  const presence = new PresenceService(new MemoryPresenceStore(), () => NOW);

  function writeConfig(listen: string, name: string): string {
    const config: ConfigInput = {
      domain: "example.org",
      xmpp: { component: { jid: "sip.example.org", secret: "not-used-by-presence" } },
      http: { listen },
    };
    const file = dir.file(name);
    writeFileSync(file, stringify(config));
    return file;
  }

  before(async function () {
    dir = tempDir("cli-presence");
    await presence.report("alice@example.org", {
      source: { kind: "xmpp", resource: "laptop" },
      state: "available",
      note: null,
      updatedAt: NOW - 125_000,
      expiresAt: null,
    });
    await presence.report("alice@example.org", {
      source: { kind: "sip-publish", etag: "a1b2c3" },
      state: "dnd",
      note: "In a meeting",
      updatedAt: NOW - 30_000,
      expiresAt: NOW + 3_570_000,
    });
    await presence.report("alice@example.org", {
      source: { kind: "pbx-device" },
      device: "idle",
      updatedAt: NOW - 7_500_000,
      expiresAt: null,
    });
    server = await startHttpServer({
      listen: "127.0.0.1:0",
      presence,
      domains: { homeDomain: "example.org", gatewayDomain: "sip.example.org" },
      ready: () => ({ ready: true, reasons: [] }),
      version: "test",
      log: memoryLogger(),
    });
    configFile = writeConfig(`127.0.0.1:${server.port}`, "switchboard.yaml");
  });
  after(async function () {
    await server?.close();
    presence.close();
    dir?.remove();
  });

  it("prints the aggregate, then one line per source with its age and expiry", async function () {
    const result = await switchboard(["presence", "alice@example.org", "--config", configFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    assert.deepEqual(result.stdout.split("\n"), [
      'alice@example.org: dnd "In a meeting" since 2025-01-15T09:59:30.000Z (30s ago), from sip-publish a1b2c3',
      "SOURCE       ID      STATE      NOTE          AGE     EXPIRES",
      "sip-publish  a1b2c3  dnd        In a meeting  30s     in 59m 30s",
      "xmpp         laptop  available  -             2m 05s  never",
      "pbx-device   -       idle       -             2h 05m  never",
      "",
    ]);
  });

  it("finds the same person by SIP URI and by gateway JID", async function () {
    for (const address of ["sip:alice@example.org", "alice@sip.example.org"]) {
      const result = await switchboard(["presence", address, "--config", configFile]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^alice@example\.org: dnd "In a meeting"/);
    }
  });

  it("prints the bridge's JSON with --json", async function () {
    const result = await switchboard([
      "presence",
      "xmpp:alice@example.org",
      "--json",
      "--config",
      configFile,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const view = JSON.parse(result.stdout) as PresenceView;
    assert.equal(view.address, "xmpp:alice@example.org");
    assert.equal(view.person, "alice@example.org");
    assert.deepEqual(view.aggregate, {
      state: "dnd",
      note: "In a meeting",
      since: "2025-01-15T09:59:30.000Z",
      winner: { kind: "sip-publish", id: "a1b2c3" },
    });
    assert.deepEqual(
      view.sources.map((s) => [s.kind, s.id, s.state, s.ageSeconds, s.expiresInSeconds]),
      [
        ["sip-publish", "a1b2c3", "dnd", 30, 3570],
        ["xmpp", "laptop", "available", 125, null],
        ["pbx-device", null, "idle", 7500, null],
      ],
    );
  });

  it("shows someone with no sources as unavailable, and exits 0", async function () {
    const result = await switchboard(["presence", "sip:carol@example.com", "--config", configFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "sip:carol@example.com: unavailable\nno presence sources\n");
  });

  it("says plainly when the bridge is not running, and exits 1", async function () {
    const port = await freePort();
    const file = writeConfig(`127.0.0.1:${port}`, "not-running.yaml");
    const result = await switchboard(["presence", "alice@example.org", "--config", file]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      `switchboard presence: cannot reach the bridge at http://127.0.0.1:${port} (http.listen): connect ECONNREFUSED — is \`switchboard start\` running?\n`,
    );
  });

  it("says so when something else answers at http.listen", async function () {
    const other: Server = createServer((_req, res) =>
      res.writeHead(200, { "Content-Type": "text/html" }).end("<p>hi</p>"),
    );
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    try {
      const file = writeConfig(`127.0.0.1:${(other.address() as AddressInfo).port}`, "not-a-bridge.yaml");
      const result = await switchboard(["presence", "alice@example.org", "--config", file]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /did not answer as a Switchboard bridge: HTTP 200 with text\/html, not JSON/,
      );
    } finally {
      other.closeAllConnections();
      other.close();
    }
  });

  it("exits 2 for usage errors: no address, two addresses, a bad address, a foreign option", async function () {
    for (const [args, message] of [
      [["presence", "--config", configFile], /presence needs an address/],
      [
        ["presence", "alice@example.org", "bob@example.org", "--config", configFile],
        /presence takes one address/,
      ],
      [["presence", "sip:", "--config", configFile], /bad address: .*sip:/],
      [
        ["presence", "alice@example.org", "--no-probe", "--config", configFile],
        /presence does not take --no-probe/,
      ],
    ] as const) {
      const result = await switchboard([...args]);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, "");
    }
  });

  it("exits 1 naming the file when the config cannot be read", async function () {
    const result = await switchboard(["presence", "alice@example.org", "--config", dir.file("missing.yaml")]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /missing\.yaml: invalid configuration\n {2}\(file\): file not found/);
  });
});
