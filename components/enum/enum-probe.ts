// `check` probe for ENUM: the configured DNS servers answer a NAPTR query under the first suffix.
// NXDOMAIN or NODATA is a proper answer (the server works); a timeout or REFUSED is not.
import { Resolver } from "node:dns/promises";
import type { Probe } from "../../src/check/probe.js";

export function enumProbe(config: { suffixes: string[]; servers: string[] }): Probe {
  return {
    component: "enum",
    keyPath: config.servers.length > 0 ? "enum.servers" : "enum.suffixes",
    hint: "check that enum.servers answer NAPTR queries for enum.suffixes (dig @SERVER -p PORT NAPTR <name>)",
    async run() {
      const resolver = new Resolver({ timeout: 2_000, tries: 1 });
      if (config.servers.length > 0) resolver.setServers(config.servers);
      const suffix = config.suffixes[0] ?? "e164.arpa";
      try {
        const records = await resolver.resolveNaptr(suffix);
        return `NAPTR ${suffix}: ${records.length} record(s)`;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOTFOUND" || code === "ENODATA") return `NAPTR ${suffix}: answered (${code})`;
        throw err;
      }
    },
  };
}
