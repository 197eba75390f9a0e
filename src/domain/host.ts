// Host syntax shared by SIP URIs (RFC 3261 §25.1 "host") and JID domainparts (RFC 7622 §3.2).
// Validation only: names are not resolved here.

export type HostKind = "dns" | "ipv4" | "ipv6";

/** IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each octet 0-255. */
export function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^[0-9]{1,3}$/.test(p) && Number(p) <= 255);
}

/** IPv6address per RFC 3261 §25.1 / RFC 4291 §2.2: 8 groups, one "::" shortcut, optional IPv4 tail. */
export function isIPv6(text: string): boolean {
  let body = text;
  if (body.includes(".")) {
    const cut = body.lastIndexOf(":");
    if (cut < 0 || !isIPv4(body.slice(cut + 1))) return false;
    body = `${body.slice(0, cut + 1)}0:0`;
  }
  const hexGroup = /^[0-9a-fA-F]{1,4}$/;
  const pieces = body.split("::");
  if (pieces.length > 2) return false;
  const groups = (s: string): string[] | null => {
    if (s === "") return [];
    const g = s.split(":");
    return g.every((x) => hexGroup.test(x)) ? g : null;
  };
  if (pieces.length === 1) {
    const g = groups(body);
    return g !== null && g.length === 8;
  }
  const head = groups(pieces[0] ?? "");
  const tail = groups(pieces[1] ?? "");
  return head !== null && tail !== null && head.length + tail.length <= 7;
}

/** How a host name is checked: where it appears (for messages) and whether U-labels are allowed. */
export interface HostnameRules {
  /** Names the place in messages: "host name" (SIP, tel) or "domainpart" (JID). */
  readonly where: string;
  /** JID domainparts may hold IDNA U-labels (non-ASCII letters); SIP and tel hosts may not. */
  readonly unicode: boolean;
}

const SIP_HOST: HostnameRules = { where: "host name", unicode: false };
const NOT_A_LETTER = /[\s\p{Cc}\p{Cf}\p{Z}]/u;

/** A letter, digit or hyphen (the "LDH" characters of RFC 1123 host names). */
function isLdh(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d
  );
}
const encoder = new TextEncoder();

/**
 * hostname = *( domainlabel "." ) toplabel [ "." ] (RFC 3261 §25.1, RFC 1123 §2.1): letters, digits
 * and inner hyphens in labels of 1 to 63 bytes. The top label starts with a letter so that it is never
 * confused with an IPv4 address: a name whose labels are all digits is an IPv4 address or nothing
 * (`1.2.3` and `999.1.1.1` are refused). The one rule for SIP hosts, tel phone-contexts and JID
 * domainparts; with `unicode` a label may also hold non-ASCII letters (an approximation of IDNA
 * U-labels). Returns what is wrong, or null when the name is valid. An IPv4 address is not a host
 * name: callers accept it before asking (see parseHost).
 */
export function hostnameProblem(name: string, rules: HostnameRules = SIP_HOST): string | null {
  const { where, unicode } = rules;
  if (!unicode && name.length > 255) return `${where} longer than 255 characters`;
  const labels = (name.endsWith(".") ? name.slice(0, -1) : name).split(".");
  for (const label of labels) {
    if (label === "") return `empty label in ${where}`;
    for (const c of label) {
      const ok = isLdh(c.charCodeAt(0)) || (unicode && c.charCodeAt(0) > 0x7f && !NOT_A_LETTER.test(c));
      if (!ok) return c === " " ? `space in ${where}` : `invalid character '${c}' in ${where}`;
    }
    if (label.startsWith("-") || label.endsWith("-"))
      return `${where} label '${label}' starts or ends with '-'`;
    if (encoder.encode(label).length > 63)
      return `${where} label '${label.slice(0, 20)}…' longer than 63 bytes`;
  }
  const top = labels[labels.length - 1] ?? "";
  if (/^[0-9]/.test(top)) {
    if (!labels.every((l) => /^[0-9]+$/.test(l)))
      return `top-level label must start with a letter ('${top}')`;
    return isIPv4(name)
      ? `IPv4 address '${name}' where a host name is required`
      : `invalid IPv4 address '${name}'`;
  }
  return null;
}

/**
 * Classifies and normalizes a host: `[v6]`, dotted IPv4, or a DNS name (hostnameProblem). Hosts compare
 * case-insensitively (RFC 3261 §19.1.4), so the value is lowercased; nothing else is changed (a trailing
 * dot stays). SIP URIs and JID domainparts both go through here, so they accept the same hosts.
 */
export function parseHost(text: string, rules: HostnameRules = SIP_HOST): ParsedHost {
  // Every message names the same few hosts (the home domain, the gateway, the proxy) several times:
  // remember the answers, within a bound (the memo starts over when full, so hostile input cannot
  // grow it). Results are frozen, so a caller cannot change what the next one gets.
  let memo = memos.get(rules);
  if (memo === undefined) memos.set(rules, (memo = new Map<string, ParsedHost>()));
  let parsed = memo.get(text);
  if (parsed === undefined) {
    parsed = Object.freeze(classifyHost(text, rules));
    // Only host-sized texts are kept, and as copies: a host sliced from a 64 KB message would
    // otherwise keep the whole message alive.
    if (text.length <= 255) {
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(Buffer.from(text, "utf8").toString("utf8"), parsed);
    }
  }
  return parsed;
}

export type ParsedHost = Readonly<{ kind: HostKind; value: string } | { problem: string }>;

const MEMO_LIMIT = 1_000;
/** One memo per rules object (the callers' constants); weak, so rules made on the fly cannot pile up. */
const memos = new WeakMap<HostnameRules, Map<string, ParsedHost>>();

function classifyHost(text: string, rules: HostnameRules): ParsedHost {
  if (text === "") return { problem: "empty host" };
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) return { problem: "unterminated IPv6 reference" };
    const inner = text.slice(1, -1);
    return isIPv6(inner)
      ? { kind: "ipv6", value: `[${inner.toLowerCase()}]` }
      : { problem: `invalid IPv6 address '${inner}'` };
  }
  if (isIPv4(text)) return { kind: "ipv4", value: text };
  const problem = hostnameProblem(text, rules);
  return problem === null ? { kind: "dns", value: text.toLowerCase() } : { problem };
}
