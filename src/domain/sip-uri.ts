// SIP and SIPS URIs, RFC 3261 §19.1 (grammar in §25.1). Parsed into decoded parts; formatted back with
// the escaping the grammar requires, so parse(format(x)) is x.
import { AddressError, quote } from "./errors.js";
import { parseHost } from "./host.js";
import { percentDecode, percentEncode } from "./percent-encoding.js";

export interface SipUriHeader {
  readonly name: string;
  readonly value: string;
}

export interface SipUri {
  readonly scheme: "sip" | "sips";
  /** The user part, percent-decoded; null when the URI has none (`sip:example.org`). */
  readonly user: string | null;
  /** Lowercased DNS name, dotted IPv4, or bracketed IPv6 (`[2001:db8::1]`). */
  readonly host: string;
  readonly port: number | null;
  /** uri-parameters in order; names lowercased (§19.1.4), values decoded, null for `;lr`. */
  readonly params: ReadonlyMap<string, string | null>;
  /** headers component (`?subject=hi&priority=urgent`), decoded, in order. */
  readonly headers: readonly SipUriHeader[];
}

// unreserved = alphanum / mark; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
const UNRESERVED = /^[a-zA-Z0-9\-_.!~*'()]$/;
// user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
const USER = (c: string): boolean => UNRESERVED.test(c) || "&=+$,;?/".includes(c);
// param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
const PARAM = (c: string): boolean => UNRESERVED.test(c) || "[]/:&+$".includes(c);
// hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
const HEADER = (c: string): boolean => UNRESERVED.test(c) || "[]/?:+$".includes(c);

/** Parses `sip:` / `sips:` URIs. Throws AddressError naming the first problem found. */
export function parseSipUri(input: string): SipUri {
  const fail = (what: string): never => {
    throw new AddressError(input, `${what} in SIP URI ${quote(input)}`);
  };
  const scheme = /^(sips?):/i.exec(input);
  if (scheme === null) fail("missing 'sip:' or 'sips:' scheme");
  const schemeName = (scheme?.[1] ?? "").toLowerCase() === "sips" ? "sips" : "sip";
  const rest = input.slice(schemeName.length + 1);
  const space = /[\s\p{Cc}]/u.exec(rest);
  if (space !== null) fail(space[0] === " " ? "space" : "whitespace or control character");
  if (rest === "") fail("nothing after the scheme");

  // '@' may appear only once: user, password, params and headers carry it escaped (%40).
  const ats = rest.split("@").length - 1;
  if (ats > 1) fail("more than one '@' (escape it as %40)");
  const at = rest.indexOf("@");
  const userinfo = at >= 0 ? rest.slice(0, at) : null;
  const afterUser = at >= 0 ? rest.slice(at + 1) : rest;

  let user: string | null = null;
  if (userinfo !== null) {
    if (userinfo === "") fail("empty user part");
    // §19.1.1: a password in the URI is "NOT RECOMMENDED" and would put a credential into logs,
    // rosters and stores; the bridge refuses it rather than silently dropping it.
    if (userinfo.includes(":")) fail("password in the user part (not accepted)");
    checkChars(userinfo, USER, "user part", fail);
    user = percentDecode(userinfo, (what) => fail(`${what} in user part`));
  }

  const q = afterUser.indexOf("?");
  const beforeHeaders = q >= 0 ? afterUser.slice(0, q) : afterUser;
  const headerText = q >= 0 ? afterUser.slice(q + 1) : null;
  const semi = beforeHeaders.indexOf(";");
  const hostport = semi >= 0 ? beforeHeaders.slice(0, semi) : beforeHeaders;
  const paramText = semi >= 0 ? beforeHeaders.slice(semi + 1) : null;

  const hp = parseHostPort(hostport);
  if ("problem" in hp) return fail(hp.problem);
  const { host, port } = hp;

  const params = new Map<string, string | null>();
  if (paramText !== null) {
    for (const p of paramText.split(";")) {
      if (p === "") fail("empty URI parameter");
      const eq = p.indexOf("=");
      const rawName = eq >= 0 ? p.slice(0, eq) : p;
      const rawValue = eq >= 0 ? p.slice(eq + 1) : null;
      if (rawName === "") fail("URI parameter without a name");
      checkChars(rawName, PARAM, "URI parameter name", fail);
      const name = percentDecode(rawName, (what) => fail(`${what} in URI parameter name`)).toLowerCase();
      if (rawValue === "") fail(`empty value for URI parameter '${name}'`);
      if (rawValue !== null) checkChars(rawValue, PARAM, `URI parameter '${name}'`, fail);
      // §19.1.4: a URI with a parameter twice has no single meaning; refuse it.
      if (params.has(name)) fail(`duplicate URI parameter '${name}'`);
      params.set(
        name,
        rawValue === null
          ? null
          : percentDecode(rawValue, (what) => fail(`${what} in URI parameter '${name}'`)),
      );
    }
  }

  const headers: SipUriHeader[] = [];
  if (headerText !== null) {
    if (headerText === "") fail("empty headers component after '?'");
    for (const h of headerText.split("&")) {
      const eq = h.indexOf("=");
      if (eq <= 0) fail(`header '${h}' is not name=value`);
      const rawName = h.slice(0, eq);
      const rawValue = h.slice(eq + 1);
      checkChars(rawName, HEADER, "header name", fail);
      checkChars(rawValue, HEADER, `header '${rawName}'`, fail);
      headers.push({
        name: percentDecode(rawName, (what) => fail(`${what} in header name`)),
        value: percentDecode(rawValue, (what) => fail(`${what} in header '${rawName}'`)),
      });
    }
  }

  return { scheme: schemeName, user, host, port, params, headers };
}

/**
 * hostport = host [ ":" port ] (RFC 3261 §25.1): the host validated and lowercased (host.ts), the port
 * 1 to 65535. Also reads the `host:port` that a gateway JID carries after its last `\40`.
 */
export function parseHostPort(text: string): { host: string; port: number | null } | { problem: string } {
  let hostText = text;
  let portText: string | null = null;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return { problem: "unterminated IPv6 reference" };
    hostText = text.slice(0, close + 1);
    const tail = text.slice(close + 1);
    if (tail !== "") {
      if (!tail.startsWith(":")) return { problem: `unexpected '${tail}' after IPv6 reference` };
      portText = tail.slice(1);
    }
  } else {
    const colon = text.indexOf(":");
    if (colon >= 0) {
      hostText = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  const host = parseHost(hostText);
  if ("problem" in host) return host;
  if (portText === null) return { host: host.value, port: null };
  if (portText === "") return { problem: "empty port" };
  if (!/^[0-9]{1,5}$/.test(portText) || !isPort(Number(portText))) {
    return { problem: `invalid port '${portText}'` };
  }
  return { host: host.value, port: Number(portText) };
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Formats a SipUri with the escaping of RFC 3261 §19.1.2. */
export function formatSipUri(uri: SipUri): string {
  let out = `${uri.scheme}:`;
  if (uri.user !== null) out += `${percentEncode(uri.user, USER)}@`;
  out += uri.host;
  if (uri.port !== null) out += `:${uri.port}`;
  for (const [name, value] of uri.params) {
    out += `;${percentEncode(name, PARAM)}`;
    if (value !== null) out += `=${percentEncode(value, PARAM)}`;
  }
  if (uri.headers.length > 0) {
    out += `?${uri.headers.map((h) => `${percentEncode(h.name, HEADER)}=${percentEncode(h.value, HEADER)}`).join("&")}`;
  }
  return out;
}

/**
 * Builds a validated SipUri from parts, so a value built in code obeys the same rules as one read from
 * the wire. The host and port are checked on their own first: formatting does not escape the host, so
 * `{ host: "a;x=y" }` would otherwise come back as host `a` with a parameter. User, parameters and
 * headers are percent-encoded when formatted; the formatted URI is parsed again and must give back the
 * same parts.
 */
export function makeSipUri(parts: {
  scheme?: "sip" | "sips";
  user?: string | null;
  host: string;
  port?: number | null;
  params?: Iterable<readonly [string, string | null]>;
  headers?: readonly SipUriHeader[];
}): SipUri {
  const wanted: SipUri = {
    scheme: parts.scheme ?? "sip",
    user: parts.user ?? null,
    host: parts.host,
    port: parts.port ?? null,
    params: new Map(parts.params ?? []),
    headers: parts.headers ?? [],
  };
  const input = formatSipUri(wanted);
  const fail = (what: string): never => {
    throw new AddressError(input, `${what} in SIP URI ${quote(input)}`);
  };
  if (wanted.scheme !== "sip" && wanted.scheme !== "sips") fail(`invalid scheme '${String(wanted.scheme)}'`);
  const host = parseHost(wanted.host);
  if ("problem" in host) return fail(`${host.problem} (host ${quote(wanted.host)})`);
  if (wanted.port !== null && !isPort(wanted.port)) fail(`invalid port '${wanted.port}'`);
  const uri = parseSipUri(input);
  const same =
    uri.scheme === wanted.scheme &&
    uri.user === wanted.user &&
    uri.host === host.value &&
    uri.port === wanted.port &&
    uri.params.size === wanted.params.size &&
    [...wanted.params].every(([name, value]) => uri.params.get(name.toLowerCase()) === value) &&
    uri.headers.length === wanted.headers.length &&
    uri.headers.every((h, i) => h.name === wanted.headers[i]?.name && h.value === wanted.headers[i]?.value);
  if (!same) fail("parts do not survive formatting (not valid Unicode?)");
  return uri;
}

function checkChars(
  text: string,
  allowed: (c: string) => boolean,
  where: string,
  fail: (w: string) => never,
): void {
  for (const c of text) {
    if (c !== "%" && !allowed(c)) fail(`invalid character '${c}' in ${where}`);
  }
}
