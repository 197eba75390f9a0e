// Jabber IDs, RFC 7622. The PRECIS profiles are approximated without a Unicode table library:
// NFC normalization, toLowerCase() for the localpart and domainpart (the Case Mapping Rule of
// RFC 8265 §3.3.2 is toLowerCase), the eight ASCII characters RFC 7622 §3.3.1 forbids in a
// localpart, and no spaces or control characters where the IdentifierClass forbids them.
import { AddressError, quote } from "./errors.js";
import { parseHost, type HostnameRules } from "./host.js";

export interface Jid {
  /** Lowercased localpart in its escaped (XEP-0106) wire form, or null for a domain JID. */
  readonly local: string | null;
  /** Lowercased domainpart, trailing dot removed (§3.2); IPv6 in brackets. */
  readonly domain: string;
  /** Resourcepart, case and spaces preserved (OpaqueString, §3.4), or null for a bare JID. */
  readonly resource: string | null;
}

const MAX_OCTETS = 1023; // RFC 7622 §3.1: each part is 1 to 1023 octets of UTF-8
const FORBIDDEN_LOCAL = `"&'/:<>@`; // RFC 7622 §3.3.1
const DOMAINPART: HostnameRules = { where: "domainpart", unicode: true };
const encoder = new TextEncoder();

/** Parses a JID string (`local@domain/resource`, `domain`, ...). Throws AddressError on any problem. */
export function parseJid(input: string): Jid {
  const fail = (what: string): never => {
    throw new AddressError(input, `${what} in JID ${quote(input)}`);
  };
  if (input === "") fail("empty input");
  // §3.1: the resourcepart starts at the first '/', the localpart ends at the first '@' before it.
  const slash = input.indexOf("/");
  const head = slash >= 0 ? input.slice(0, slash) : input;
  const resourceText = slash >= 0 ? input.slice(slash + 1) : null;
  const at = head.indexOf("@");
  const localText = at >= 0 ? head.slice(0, at) : null;
  const domainText = at >= 0 ? head.slice(at + 1) : head;
  if (localText === "") fail("empty localpart before '@'");
  if (resourceText === "") fail("empty resourcepart after '/'");
  return {
    local: localText === null ? null : localpart(localText, fail),
    domain: domainpart(domainText, fail),
    resource: resourceText === null ? null : resourcepart(resourceText, fail),
  };
}

/** The localpart rules (§3.3), on the part alone: returns the normalized localpart. */
function localpart(text: string, fail: (what: string) => never): string {
  if (text === "") fail("empty localpart");
  const local = text.normalize("NFC").toLowerCase();
  for (const c of local) {
    if (FORBIDDEN_LOCAL.includes(c)) fail(`forbidden character '${c}' in localpart (use XEP-0106 escaping)`);
    if (/[\s\p{Cc}\p{Cf}]/u.test(c))
      fail(c === " " ? "space in localpart" : "whitespace or control character in localpart");
  }
  if (octets(local) > MAX_OCTETS) fail("localpart longer than 1023 bytes");
  return local;
}

/**
 * The domainpart rules (§3.2), on the part alone. The host syntax is the one SIP uses (host.ts), so a
 * JID domainpart and a SIP host accept the same names and addresses; U-labels are also allowed here.
 */
function domainpart(text: string, fail: (what: string) => never): string {
  if (text === "") fail("empty domainpart");
  if (text.startsWith("[")) {
    const host = parseHost(text, DOMAINPART);
    if ("problem" in host) fail(`invalid IPv6 domainpart '${text}'`);
    return text.toLowerCase();
  }
  // §3.2: a trailing dot is removed before any other processing.
  const name = (text.endsWith(".") ? text.slice(0, -1) : text).normalize("NFC").toLowerCase();
  if (name === "") fail("empty domainpart");
  if (name.includes(":")) fail("port or ':' in domainpart");
  if (octets(name) > MAX_OCTETS) fail("domainpart longer than 1023 bytes");
  const host = parseHost(name, DOMAINPART);
  if ("problem" in host) fail(host.problem);
  return name;
}

/** The resourcepart rules (§3.4), on the part alone: case and spaces are kept. */
function resourcepart(text: string, fail: (what: string) => never): string {
  if (text === "") fail("empty resourcepart");
  const resource = text.normalize("NFC");
  if (/[\p{Cc}]/u.test(resource)) fail("control character in resourcepart");
  if (octets(resource) > MAX_OCTETS) fail("resourcepart longer than 1023 bytes");
  return resource;
}

/** Formats a JID (`local@domain/resource`). */
export function formatJid(jid: Jid): string {
  return `${jid.local === null ? "" : `${jid.local}@`}${jid.domain}${jid.resource === null ? "" : `/${jid.resource}`}`;
}

/** The bare JID (RFC 6120 §1.4): the same JID without its resourcepart. */
export function bareJid(jid: Jid): Jid {
  return { local: jid.local, domain: jid.domain, resource: null };
}

/**
 * Builds a validated, normalized JID from parts (the localpart must already be XEP-0106 escaped). Each
 * part is checked on its own, so a delimiter inside a part is an error naming that part, never a
 * different JID: `{ local: "a", domain: "b/c" }` is refused, not read as `a@b` with resource `c`.
 */
export function makeJid(parts: { local?: string | null; domain: string; resource?: string | null }): Jid {
  const local = parts.local ?? null;
  const resource = parts.resource ?? null;
  const input = formatJid({ local, domain: parts.domain, resource });
  const fail = (what: string): never => {
    throw new AddressError(input, `${what} in JID ${quote(input)}`);
  };
  return {
    local: local === null ? null : localpart(local, fail),
    domain: domainpart(parts.domain, fail),
    resource: resource === null ? null : resourcepart(resource, fail),
  };
}

/** Compares two JIDs (all three parts; use bareJid() first to compare bare JIDs). */
export function jidEquals(a: Jid, b: Jid): boolean {
  return a.local === b.local && a.domain === b.domain && a.resource === b.resource;
}

function octets(text: string): number {
  return encoder.encode(text).length;
}
