// `check` probe for the directory: connect as the bridge does (ldaps:// or StartTLS, with ldap.ca),
// bind with the configured DN and read the search base entry.
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Client } from "ldapts";
import type { Probe } from "../../src/check/probe.js";

export interface LdapProbeConfig {
  url: string;
  bindDN?: string;
  password?: string;
  base: string;
  startTls?: boolean;
  /** CA bundle file for the server's certificate (ldap.ca); absent: the system's CAs. */
  ca?: string;
}

export function ldapProbe(config: LdapProbeConfig): Probe {
  return {
    component: "ldap",
    keyPath: "ldap",
    hint: "check ldap.url, ldap.bindDN/password, ldap.startTls/ca and that ldap.base exists (ldapsearch -H URL -ZZ -D DN -W -b BASE -s base)",
    async run() {
      const url = new URL(config.url);
      const tlsOptions: ConnectionOptions = {
        ...(config.ca ? { ca: readFileSync(config.ca) } : {}),
        host: url.hostname.replace(/^\[|\]$/g, ""),
      };
      const client = new Client({
        url: config.url,
        timeout: 3_000,
        connectTimeout: 3_000,
        ...(url.protocol === "ldaps:" ? { tlsOptions } : {}),
      });
      try {
        // Never a bind in clear text when the config asks for StartTLS: upgrade first, or fail.
        if (config.startTls) await client.startTLS(tlsOptions);
        if (config.bindDN) await client.bind(config.bindDN, config.password ?? "");
        const { searchEntries } = await client.search(config.base, {
          scope: "base",
          filter: "(objectClass=*)",
          attributes: ["1.1"],
        });
        if (searchEntries.length === 0) throw new Error(`ldap.base ${config.base} not found`);
        const security = url.protocol === "ldaps:" ? "LDAPS" : config.startTls ? "StartTLS" : "no TLS";
        return `bound as ${config.bindDN ?? "anonymous"} (${security}), base ${config.base} found`;
      } finally {
        await client.unbind().catch(() => undefined);
      }
    },
  };
}
