// The servers a Switchboard deployment talks to, started together on free loopback ports, and a
// config file pointing at them. Used by the CLI tests and by `npm run demo`.
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.js";
import { DnsServer, exampleEnumRecords, type NaptrRecord } from "./dns.js";
import { freePort, tempDir, type TempDir } from "./net.js";
import { Prosody, type ComponentGrant } from "./prosody.js";
import { RedisServer } from "./redis.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, LDAP_SUFFIX, Slapd } from "./slapd.js";

export interface SceneOptions {
  /** The DNS server's NAPTR records; default the example directory's (exampleEnumRecords()). */
  enumRecords?: NaptrRecord[];
}

export class Scene {
  private constructor(
    readonly prosody: Prosody,
    readonly redis: RedisServer,
    readonly slapd: Slapd,
    readonly dns: DnsServer,
    private readonly dir: TempDir,
  ) {}

  /** Starts every server; if one fails, the ones already started are stopped again. */
  static async start(options: SceneOptions = {}): Promise<Scene> {
    const started: { stop(): Promise<void> }[] = [];
    const track = <T extends { stop(): Promise<void> }>(server: T): T => {
      started.push(server);
      return server;
    };
    try {
      const prosody = track(await Prosody.start());
      const redis = track(await RedisServer.start());
      const slapd = track(await Slapd.start());
      const dns = track(await DnsServer.start(options.enumRecords ?? exampleEnumRecords()));
      return new Scene(prosody, redis, slapd, dns, tempDir("scene"));
    } catch (err) {
      for (const server of started.reverse()) await server.stop();
      throw err;
    }
  }

  /** A config for the bridge against these servers, with its own component and free SIP/HTTP ports. */
  async config(component: ComponentGrant = this.prosody.takeComponent()): Promise<ConfigInput> {
    const sipPort = await freePort({ udp: true });
    return {
      domain: this.prosody.domain,
      xmpp: {
        component: {
          jid: component.jid,
          host: component.host,
          port: component.port,
          secret: component.secret,
        },
      },
      sip: { listen: [`udp:127.0.0.1:${sipPort}`, `tcp:127.0.0.1:${sipPort}`] },
      store: { url: this.redis.url, prefix: RedisServer.newPrefix("scene") },
      ldap: {
        url: this.slapd.url,
        bindDN: LDAP_ADMIN_DN,
        password: LDAP_ADMIN_PASSWORD,
        base: `ou=people,${LDAP_SUFFIX}`,
      },
      enum: { suffixes: ["e164.arpa"], servers: [this.dns.address], defaultRegion: "GB" },
      http: { listen: `127.0.0.1:${await freePort()}` },
    };
  }

  writeConfig(config: ConfigInput, name = "switchboard.yaml"): string {
    const file = this.dir.file(name);
    writeFileSync(file, stringify(config));
    return file;
  }

  /** Stops the servers one at a time, in reverse order of start. */
  async stop(): Promise<void> {
    for (const server of [this.dns, this.slapd, this.redis, this.prosody]) await server.stop();
    this.dir.remove();
  }
}
