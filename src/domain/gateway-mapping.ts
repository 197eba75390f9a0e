// The reversible mapping between SIP parties and JIDs on the gateway domain (DESIGN.md "Addressing"),
// and the "same person" identity between a home-domain SIP URI and a home-domain JID.
//
//   sip:bob@example.org                ↔ bob@sip.example.org
//   sip:carol@example.com              ↔ carol\40example.com@sip.example.org   (XEP-0106)
//   sip:+442071234567@example.org      → +442071234567@sip.example.org
//   tel:+442071234567                  → +442071234567@sip.example.org
//   8001@sip.example.org, +4420...@sip.example.org → { kind: "number" } for the resolver chain
import type { Address } from "./address.js";
import { AddressError, quote } from "./errors.js";
import { escapeLocal, tryUnescapeLocal } from "./jid-escape.js";
import { formatJid, makeJid, type Jid } from "./jid.js";
import { formatSipUri, makeSipUri, parseHostPort, type SipUri } from "./sip-uri.js";
import { formatTelUri, type TelUri } from "./tel-uri.js";

export interface GatewayDomains {
  /** The users' home domain (`domain`), e.g. "example.org". */
  readonly homeDomain: string;
  /** The component's domain (`xmpp.component.jid`), e.g. "sip.example.org". */
  readonly gatewayDomain: string;
}

/**
 * Where a gateway JID leads: a SIP URI, or a number that the resolver chain (LDAP, ENUM) must resolve
 * before anything else (DESIGN.md "Addressing"); see e164Fallback() for an E.164 number nothing resolves.
 */
export type GatewayTarget =
  { readonly kind: "sip"; readonly uri: SipUri } | { readonly kind: "number"; readonly number: string };

/** A user part that is a number: digits, optionally one leading "+" (an E.164 number or an extension). */
export function isNumber(user: string): boolean {
  return /^\+?[0-9]+$/.test(user);
}

/** The JID on the gateway domain that stands for a SIP or tel address. */
export function sipToGatewayJid(address: SipUri | TelUri, domains: GatewayDomains): Jid {
  const home = domains.homeDomain.toLowerCase();
  const gateway = domains.gatewayDomain.toLowerCase();
  const input = address.scheme === "tel" ? formatTelUri(address) : formatSipUri(address);
  const fail = (what: string): never => {
    throw new AddressError(input, `${what}: cannot map ${quote(input)} to a gateway JID`);
  };
  try {
    return makeJid({ local: gatewayLocalpart(address, home, gateway, input, fail), domain: gateway });
  } catch (err) {
    // Problems found further down (escaping, JID limits) are reported against this input.
    if (err instanceof AddressError && err.input !== input) return fail(err.reason);
    throw err;
  }
}

function gatewayLocalpart(
  address: SipUri | TelUri,
  home: string,
  gateway: string,
  input: string,
  fail: (what: string) => never,
): string {
  let local: string;
  if (address.scheme === "tel") {
    // Parameters such as ext and isub have no place in a JID; refuse rather than drop them.
    for (const name of address.params.keys()) fail(`tel URI parameter '${name}' cannot be carried`);
    if (address.global) {
      local = address.number;
    } else {
      if (address.phoneContext !== home)
        fail(`local number in phone-context '${address.phoneContext}' outside '${home}'`);
      local = address.number;
    }
  } else {
    // A trailing dot names the same DNS host (RFC 1034 §3.1); without it here, one party would have
    // two JIDs.
    const host = address.host.endsWith(".") ? address.host.slice(0, -1) : address.host;
    if (host === gateway) {
      // The bridge would be routing to itself (DESIGN.md: 482 Loop Detected).
      throw new AddressError(
        input,
        `SIP URI ${quote(input)} is on the gateway domain '${gateway}' itself (loop)`,
        "loop-detected",
      );
    }
    // sips: asks for TLS on every hop to the party (RFC 3261 §19.1); the XMPP side of the bridge cannot
    // promise that, and the way back would be plain sip:, so refuse rather than drop the requirement.
    if (address.scheme === "sips")
      fail("a sips: URI requires TLS end to end, which the bridge cannot promise to an XMPP user (use sip:)");
    if (address.user === null) return fail("no user part");
    const user = address.user;
    // RFC 3261 §19.1.6: with user=phone the user part is a telephone-subscriber, whose visual
    // separators carry no meaning.
    const phone = address.params.get("user")?.toLowerCase() === "phone";
    const digits = phone ? user.replace(/[-.()]/g, "") : user;
    const isHome = host === home && address.port === null;
    const hostport = address.port === null ? host : `${host}:${address.port}`;
    if (isNumber(digits) && (digits.startsWith("+") || isHome)) {
      // An E.164 number is global, so its domain is not kept; an extension is only unique within
      // the home domain, so a foreign extension keeps its domain (below).
      local = digits;
    } else if (isHome && !user.includes("@")) {
      // DESIGN.md: home-domain user names compare case-insensitively, like JID localparts.
      local = escapeLocal(user.toLowerCase());
    } else {
      local = escapeLocal(`${user}@${hostport}`.toLowerCase());
    }
  }
  return local;
}

/**
 * The SIP party (or number to resolve) behind a JID on the gateway domain. The resource is ignored.
 * Only the canonical JID of a party is accepted (the one sipToGatewayJid gives): another spelling of
 * the same party, such as `bob\40example.org` for `bob`, would give one party two JIDs (two roster
 * entries, two subscriptions), so it is refused with an error naming the JID to use.
 */
export function gatewayJidToSip(jid: Jid, domains: GatewayDomains): GatewayTarget {
  const home = domains.homeDomain.toLowerCase();
  const gateway = domains.gatewayDomain.toLowerCase();
  const input = formatJid(jid);
  if (jid.domain !== gateway) {
    throw new AddressError(input, `JID ${quote(input)} is not on the gateway domain '${gateway}'`);
  }
  if (jid.local === null) {
    throw new AddressError(input, `JID ${quote(input)} is the gateway itself, not a SIP party`);
  }
  const local = jid.local;
  try {
    // A Jid built in code may not be normalized; read it as parseJid would, then insist on the
    // canonical spelling below.
    const target = gatewayTarget(local.normalize("NFC").toLowerCase(), home, gateway, input);
    const canonical = target.kind === "number" ? target.number : sipToGatewayJid(target.uri, domains).local;
    if (canonical !== local) {
      const use = formatJid({ local: canonical, domain: gateway, resource: null });
      throw new AddressError(
        input,
        `gateway JID ${quote(input)} is another spelling of ${quote(use)}: use ${quote(use)} (a party has one JID)`,
      );
    }
    return target;
  } catch (err) {
    if (err instanceof AddressError && err.input !== input) {
      throw new AddressError(input, `${err.reason} (from gateway JID ${quote(input)})`);
    }
    throw err;
  }
}

function gatewayTarget(local: string, home: string, gateway: string, input: string): GatewayTarget {
  const user = tryUnescapeLocal(local);
  if (user === null) {
    throw new AddressError(
      input,
      `gateway JID ${quote(input)} starts or ends with \\20, which is the escaped form of no SIP address`,
    );
  }
  if (isNumber(user)) return { kind: "number", number: user };
  const at = user.lastIndexOf("@");
  if (at < 0) return { kind: "sip", uri: makeSipUri({ user, host: home }) };
  const name = user.slice(0, at);
  const hostport = user.slice(at + 1);
  if (name === "") throw new AddressError(input, `empty user before '@' in gateway JID ${quote(input)}`);
  // Only host[:port] may follow: ';' or '?' here would smuggle URI parameters or headers in.
  if (!/^[a-z0-9.\-[\]:]+$/.test(hostport)) {
    throw new AddressError(input, `invalid host '${hostport}' in gateway JID ${quote(input)}`);
  }
  const hp = parseHostPort(hostport);
  if ("problem" in hp) throw new AddressError(input, `${hp.problem} in gateway JID ${quote(input)}`);
  const uri = makeSipUri({ user: name, host: hp.host, port: hp.port });
  if (uri.host === gateway || uri.host === `${gateway}.`) {
    throw new AddressError(
      input,
      `gateway JID ${quote(input)} points back at the gateway domain (loop)`,
      "loop-detected",
    );
  }
  if (uri.host === home && uri.port === null && isNumber(name)) return { kind: "number", number: name };
  return { kind: "sip", uri };
}

/**
 * The last resort for an E.164 number that neither LDAP nor ENUM resolves: the outbound proxy as
 * `sip:+number@homeDomain;user=phone` (DESIGN.md "Addressing"; RFC 3261 §19.1.6). The number must
 * already be E.164 ("+", then 1 to 15 digits, no leading zero: ITU-T E.164 §6).
 */
export function e164Fallback(number: string, homeDomain: string): SipUri {
  if (!/^\+[1-9][0-9]{0,14}$/.test(number)) {
    throw new AddressError(number, `${quote(number)} is not an E.164 number ('+' and up to 15 digits)`);
  }
  return makeSipUri({ user: number, host: homeDomain, params: [["user", "phone"]] });
}

/**
 * The home-domain user an address names, or null. `sip:Alice@example.org`, `alice@example.org` and
 * `xmpp:alice@example.org/phone` all give "alice" (DESIGN.md: one identity, two protocols). Numbers
 * give null: they name a line, not a person, until the resolver chain says whose it is. JID
 * localparts are compared unescaped (XEP-0106), SIP users as written, both NFC-normalized and lowercased.
 */
export function homeIdentity(address: Address, homeDomain: string): string | null {
  const home = homeDomain.toLowerCase();
  let user: string | null;
  switch (address.kind) {
    case "sip":
      // `example.org.` is the same host as `example.org`, as in sipToGatewayJid.
      user =
        address.uri.host.replace(/\.$/, "") === home && address.uri.port === null ? address.uri.user : null;
      break;
    case "jid":
    case "xmpp": {
      const jid = address.kind === "jid" ? address.jid : address.uri.jid;
      // A localpart that is the escaped form of no name (`\20bob`) is nobody at home: null, not an error.
      user = jid.domain === home && jid.local !== null ? tryUnescapeLocal(jid.local) : null;
      break;
    }
    case "tel":
      user = null;
      break;
  }
  if (user === null || isNumber(user)) return null;
  return user.normalize("NFC").toLowerCase();
}

/** True when both addresses name the same home-domain person (see homeIdentity). */
export function isSamePerson(a: Address, b: Address, homeDomain: string): boolean {
  const identity = homeIdentity(a, homeDomain);
  return identity !== null && identity === homeIdentity(b, homeDomain);
}

/** A home-domain user's chat account for their SIP address: `sip:Alice@example.org` → `alice@example.org`. */
export function sipToHomeJid(uri: SipUri, homeDomain: string): Jid {
  const identity = homeIdentity({ kind: "sip", uri }, homeDomain);
  if (identity === null) {
    const input = formatSipUri(uri);
    throw new AddressError(
      input,
      `SIP URI ${quote(input)} does not name a user of the home domain '${homeDomain}'`,
    );
  }
  return makeJid({ local: escapeLocal(identity), domain: homeDomain });
}

/** A home-domain user's SIP address for their chat JID: `alice@example.org/x` → `sip:alice@example.org`. */
export function homeJidToSip(jid: Jid, homeDomain: string): SipUri {
  const identity = homeIdentity({ kind: "jid", jid }, homeDomain);
  if (identity === null) {
    const input = formatJid(jid);
    throw new AddressError(
      input,
      `JID ${quote(input)} does not name a user of the home domain '${homeDomain}'`,
    );
  }
  return makeSipUri({ user: identity, host: homeDomain });
}
