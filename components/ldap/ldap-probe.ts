// `check` probe for the directory: bind with the configured DN and read the search base entry.
import { Client } from "ldapts";
import type { Probe } from "../../src/check/probe.js";

export interface LdapProbeConfig {
  url: string;
  bindDN?: string;
  password?: string;
  base: string;
}

export function ldapProbe(config: LdapProbeConfig): Probe {
  return {
    component: "ldap",
    keyPath: "ldap",
    hint: "check ldap.url, ldap.bindDN/password and that ldap.base exists (ldapsearch -H URL -D DN -W -b BASE -s base)",
    async run() {
      const client = new Client({ url: config.url, timeout: 3_000, connectTimeout: 3_000 });
      try {
        if (config.bindDN) await client.bind(config.bindDN, config.password ?? "");
        const { searchEntries } = await client.search(config.base, {
          scope: "base",
          filter: "(objectClass=*)",
          attributes: ["1.1"],
        });
        if (searchEntries.length === 0) throw new Error(`ldap.base ${config.base} not found`);
        return `bound as ${config.bindDN ?? "anonymous"}, base ${config.base} found`;
      } finally {
        await client.unbind();
      }
    },
  };
}
