// `switchboard lookup <number|address> [--json]`: the resolver chain as this config builds it (the
// LDAP directory, then the config file's; ENUM), printed step by step. It runs here, not in the
// bridge: it needs only the directory and DNS.
import { EnumResolver } from "../../components/enum/enum-resolver.js";
import { LdapDirectory } from "../../components/ldap/ldap-directory.js";
import { AddressResolver, type Resolution } from "../addressing/resolver.js";
import type { Config } from "../config/schema.js";
import { ChainDirectory } from "../directory/chain-directory.js";
import { ConfigDirectory } from "../directory/config-directory.js";
import type { Directory } from "../ports/directory.js";
import { silentLogger } from "../ports/logger.js";

export interface LookupIo {
  out(line: string): void;
  err(line: string): void;
}

/** The directories and ENUM a config names, for the resolver (and the bridge). */
export function addressingFor(config: Config): {
  resolver: AddressResolver;
  directory: Directory;
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
        log: silentLogger,
      })
    : undefined;
  const directory = new ChainDirectory([
    ...(ldap ? [ldap] : []),
    new ConfigDirectory(config.directory?.users ?? [], config.domain),
  ]);
  const enumResolver = config.enum
    ? new EnumResolver({ suffixes: config.enum.suffixes, servers: config.enum.servers, log: silentLogger })
    : undefined;
  const resolver = new AddressResolver({
    directory,
    ...(enumResolver ? { enum: enumResolver } : {}),
    homeDomain: config.domain,
    defaultRegion: region,
  });
  return { resolver, directory, close: async () => ldap?.close() };
}

function describe(step: Resolution["steps"][number]): string {
  const answer = step.answer === null ? "no answer" : step.answer;
  return `  ${step.step.padEnd(9)} ${step.query} → ${answer}${step.detail ? ` (${step.detail})` : ""}`;
}

export async function lookup(config: Config, input: string, json: boolean, io: LookupIo): Promise<number> {
  const { resolver, close } = addressingFor(config);
  let result: Resolution;
  try {
    result = await resolver.resolve(input);
  } finally {
    await close();
  }
  if (json) {
    io.out(JSON.stringify(result, null, 2));
  } else {
    io.out(
      `${input} (${result.kind}${result.normalized && result.normalized !== input ? `, ${result.normalized}` : ""})`,
    );
    for (const step of result.steps) io.out(describe(step));
    if (result.resolved) {
      const parts = [
        result.sipUri,
        result.jid ? `xmpp:${result.jid}` : null,
        result.displayName ? `"${result.displayName}"` : null,
      ];
      io.out(`result: ${parts.filter((p) => p !== null).join("  ")}`);
    }
  }
  if (!result.resolved) {
    io.err(
      `switchboard lookup: nothing resolves '${input}'${
        result.sipUri ? ` (it would go to the outbound proxy as ${result.sipUri})` : ""
      }`,
    );
    return 1;
  }
  return 0;
}
