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

/**
 * hostname = *( domainlabel "." ) toplabel [ "." ] (RFC 3261 §25.1, RFC 1123 §2.1): ASCII letters,
 * digits and inner hyphens; the top label starts with a letter so that it is never confused with an
 * IPv4 address. Returns what is wrong, or null when the name is valid.
 */
export function hostnameProblem(name: string): string | null {
  if (name.length > 255) return "host name longer than 255 characters";
  const labels = (name.endsWith(".") ? name.slice(0, -1) : name).split(".");
  for (const label of labels) {
    if (label === "") return "empty label in host name";
    if (label.length > 63) return `host name label '${label.slice(0, 20)}…' longer than 63 characters`;
    if (!/^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(label)) {
      const bad = [...label].find((c) => !/[a-zA-Z0-9-]/.test(c));
      return bad === undefined
        ? `host name label '${label}' starts or ends with '-'`
        : `invalid character '${bad}' in host name`;
    }
  }
  const top = labels[labels.length - 1] ?? "";
  if (!/^[a-zA-Z]/.test(top)) {
    return labels.every((l) => /^[0-9]+$/.test(l))
      ? "invalid IPv4 address"
      : "top-level label must start with a letter";
  }
  return null;
}

/**
 * Classifies and normalizes a host as written in a URI: `[v6]`, dotted IPv4, or a DNS name.
 * Hosts compare case-insensitively (RFC 3261 §19.1.4), so the value is lowercased.
 */
export function parseHost(text: string): { kind: HostKind; value: string } | { problem: string } {
  if (text === "") return { problem: "empty host" };
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) return { problem: "unterminated IPv6 reference" };
    const inner = text.slice(1, -1);
    return isIPv6(inner)
      ? { kind: "ipv6", value: `[${inner.toLowerCase()}]` }
      : { problem: `invalid IPv6 address '${inner}'` };
  }
  if (isIPv4(text)) return { kind: "ipv4", value: text };
  const problem = hostnameProblem(text);
  return problem === null ? { kind: "dns", value: text.toLowerCase() } : { problem };
}
