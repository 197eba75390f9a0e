// `npm run demo`: starts the servers a deployment talks to (Prosody with mod_privilege, Redis,
// OpenLDAP, a DNS server with ENUM records), writes a config pointing at them, runs
// `switchboard check` against it, prints what it found, and stops everything again.
import { readFileSync } from "node:fs";
import { switchboard } from "./cli.js";
import { Scene } from "./scene.js";

function section(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

const scene = await Scene.start().catch((err: unknown) => {
  process.stderr.write(
    `demo: could not start the servers: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.stderr.write(
    "demo: the servers come from Debian packages; .ci/run lists them (apt-get install -y ...)\n",
  );
  process.exit(1);
});

// Ctrl-C stops the servers cleanly and exits 0 (npm runs this through `exec`, so the signal is ours).
process.once("SIGINT", () => {
  void scene.stop().finally(() => process.exit(0));
});

let code: number;
try {
  section("servers started on loopback");
  process.stdout.write(
    [
      `Prosody      c2s 127.0.0.1:${scene.prosody.c2sPort}, components 127.0.0.1:${scene.prosody.componentPort}`,
      `Redis        ${scene.redis.url} (append-only on)`,
      `OpenLDAP     ${scene.slapd.url} (seeded from config/ldap/example.ldif)`,
      `DNS (ENUM)   ${scene.dns.address} (NAPTR for +44 20 7123 4567)`,
      "",
    ].join("\n"),
  );
  const file = scene.writeConfig(await scene.config());
  section(`config written to ${file}`);
  process.stdout.write(readFileSync(file, "utf8"));
  section(`switchboard check --config ${file}`);
  const result = await switchboard(["check", "--config", file]);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  code = result.code;
  section(code === 0 ? "every component answered" : `check failed (exit ${code})`);
} finally {
  await scene.stop();
  process.stdout.write("servers stopped\n");
}
process.exit(code);
