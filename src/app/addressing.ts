// The addressing parts a config names: the LDAP directory, then the config file's people (one
// chain), and ENUM, behind the resolver. Used by `start` (relay, vCards, rosters) and `lookup`.
import { EnumResolver } from "../../components/enum/enum-resolver.js";
import { LdapDirectory } from "../../components/ldap/ldap-directory.js";
import { AddressResolver } from "../addressing/resolver.js";
import type { Config } from "../config/schema.js";
import { ChainDirectory } from "../directory/chain-directory.js";
import { ConfigDirectory } from "../directory/config-directory.js";
import type { Directory } from "../ports/directory.js";
import type { EnumLookup } from "../ports/enum-lookup.js";
import { silentLogger, type Logger } from "../ports/logger.js";
import { noMetrics, type Metrics } from "../ports/metrics.js";
import { measuredDirectory, measuredEnum } from "../directory/measured.js";

/** The directories and ENUM a config names, for the resolver (and the bridge). */
export function addressingFor(
  config: Config,
  log: Logger = silentLogger,
  metrics: Metrics = noMetrics,
): {
  resolver: AddressResolver;
  directory: Directory;
  /** ENUM alone, for a caller that has asked the directory already; absent without `enum`. */
  enumLookup: EnumLookup | undefined;
  /** The LDAP directory, when configured (its reachability is a metric). */
  ldap: LdapDirectory | undefined;
  /** The config file's people, replaced when the config is reloaded. */
  configDirectory: ConfigDirectory;
  close: () => Promise<void>;
} {
  const region = config.enum?.defaultRegion ?? "GB";
  const ldap = config.ldap
    ? LdapDirectory.create({
        url: config.ldap.url,
        ...(config.ldap.bindDN ? { bindDN: config.ldap.bindDN } : {}),
        ...(config.ldap.password ? { password: config.ldap.password } : {}),
        base: config.ldap.base,
        attributes: config.ldap.attributes,
        defaultRegion: region,
        homeDomain: config.domain,
        startTls: config.ldap.startTls,
        ...(config.ldap.ca ? { tlsCa: config.ldap.ca } : {}),
        timeoutMs: config.ldap.timeoutMs,
        log: log.child({ component: "ldap" }),
        metrics,
      })
    : undefined;
  const configDirectory = new ConfigDirectory(config.directory?.users ?? [], config.domain, region);
  const directory = new ChainDirectory([
    ...(ldap ? [measuredDirectory(ldap, "ldap", metrics)] : []),
    measuredDirectory(configDirectory, "config", metrics),
  ]);
  const enumResolver = config.enum
    ? measuredEnum(
        new EnumResolver({
          suffixes: config.enum.suffixes,
          servers: config.enum.servers,
          log: log.child({ component: "enum" }),
          metrics,
        }),
        metrics,
      )
    : undefined;
  const resolver = new AddressResolver({
    directory,
    ...(enumResolver ? { enum: enumResolver } : {}),
    homeDomain: config.domain,
    defaultRegion: region,
  });
  return {
    resolver,
    directory,
    enumLookup: enumResolver,
    ldap,
    configDirectory,
    close: async () => ldap?.close(),
  };
}
