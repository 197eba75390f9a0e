// The tenants of one process (docs/tenants.md): the top-level config is the first (default)
// tenant, and each `tenants[]` entry becomes a whole Config of its own — its per-tenant keys over
// the shared ones — so that every part is composed per tenant exactly as for a single company.
import type { Config } from "./schema.js";

export interface Tenant {
  /** The tenant's home domain (in logs as `tenant`, in readiness reasons). */
  name: string;
  /** The key path of the tenant's keys in the file: "" for the top level, `tenants[0]`... */
  path: string;
  /** The tenant as a single-company config (no `tenants`). */
  config: Config;
}

/** Every tenant of `config`, the top-level one first. */
export function tenantsOf(config: Config): Tenant[] {
  const { tenants, ...top } = config;
  return [
    { name: top.domain, path: "", config: top },
    ...(tenants ?? []).map((tenant, i) => ({
      name: tenant.domain,
      path: `tenants[${i}]`,
      config: tenantConfig(top, tenant),
    })),
  ];
}

function tenantConfig(top: Config, tenant: NonNullable<Config["tenants"]>[number]): Config {
  const { mwi: _mwi, realm: _realm, users: _users, ...sip } = top.sip;
  return {
    ...top,
    domain: tenant.domain,
    xmpp: {
      ...top.xmpp,
      component: tenant.xmpp.component,
      allowedDomains: tenant.xmpp.allowedDomains,
      rosterPhones: tenant.xmpp.rosterPhones,
    },
    // Voicemail subscriptions (sip.mwi) name the top-level tenant's users: not carried over.
    sip: { ...sip, users: tenant.sip.users, ...(tenant.sip.realm ? { realm: tenant.sip.realm } : {}) },
    // Validated: with the store on Redis, every tenant has a prefix of its own.
    store: { ...top.store, prefix: tenant.store.prefix ?? `${top.store.prefix}${tenant.domain}:` },
    ldap: top.ldap && tenant.ldap ? { ...top.ldap, base: tenant.ldap.base } : undefined,
    directory: tenant.directory,
    enum: tenant.enum
      ? {
          suffixes: tenant.enum.suffixes,
          servers: top.enum?.servers ?? [],
          defaultRegion: tenant.enum.defaultRegion ?? top.enum?.defaultRegion ?? "GB",
        }
      : undefined,
    asterisk:
      top.asterisk && tenant.asterisk
        ? {
            ...top.asterisk,
            app: tenant.asterisk.app,
            users: tenant.asterisk.users,
            messages: tenant.asterisk.messages,
            presenceDirection: tenant.asterisk.presenceDirection,
          }
        : undefined,
  };
}

/** The home and gateway domains of every tenant but `self`: addresses a tenant must never reach. */
export function otherTenantDomains(tenants: readonly Tenant[], self: Tenant): string[] {
  return tenants
    .filter((tenant) => tenant !== self)
    .flatMap((tenant) => [tenant.config.domain, tenant.config.xmpp.component.jid]);
}
