// `switchboard lookup <number|address> [--json]`: the resolver chain as this config builds it (the
// LDAP directory, then the config file's; ENUM), printed step by step. It runs here, not in the
// bridge: it needs only the directory and DNS.
import type { Resolution } from "../addressing/resolver.js";
import { addressingFor } from "../app/addressing.js";
import type { Config } from "../config/schema.js";
import { tenantsOf } from "../config/tenants.js";

export interface LookupIo {
  out(line: string): void;
  err(line: string): void;
}

function describe(step: Resolution["steps"][number]): string {
  const answer = step.answer === null ? "no answer" : step.answer;
  return `  ${step.step.padEnd(9)} ${step.query} → ${answer}${step.detail ? ` (${step.detail})` : ""}`;
}

/**
 * `tenant` (`--tenant DOMAIN`): resolve in that tenant's directory and ENUM (docs/tenants.md);
 * absent: the default (top-level) tenant's.
 */
export async function lookup(
  config: Config,
  input: string,
  json: boolean,
  io: LookupIo,
  tenant?: string,
): Promise<number> {
  const tenants = tenantsOf(config);
  const chosen = tenant === undefined ? tenants[0] : tenants.find((t) => t.name === tenant.toLowerCase());
  if (!chosen) {
    io.err(
      `switchboard lookup: --tenant: no tenant has the domain '${tenant ?? ""}' (tenants: ${tenants
        .map((t) => t.name)
        .join(", ")})`,
    );
    return 1;
  }
  const { resolver, close } = addressingFor(chosen.config);
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
