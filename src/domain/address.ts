// One address type for everything the bridge is given: SIP/SIPS URIs, tel URIs, xmpp URIs and bare
// JIDs. The edges and the CLI (`switchboard lookup <address>`) call parseAddress() and switch on kind.
import { AddressError, quote } from "./errors.js";
import { formatJid, parseJid, type Jid } from "./jid.js";
import { formatSipUri, parseSipUri, type SipUri } from "./sip-uri.js";
import { formatTelUri, parseTelUri, type TelUri } from "./tel-uri.js";
import { formatXmppUri, parseXmppUri, type XmppUri } from "./xmpp-uri.js";

export type Address =
  | { readonly kind: "sip"; readonly uri: SipUri }
  | { readonly kind: "tel"; readonly uri: TelUri }
  | { readonly kind: "xmpp"; readonly uri: XmppUri }
  | { readonly kind: "jid"; readonly jid: Jid };

/**
 * Parses any address. A string with a `sip:`, `sips:`, `tel:` or `xmpp:` scheme (case-insensitive) is
 * that URI; a string without a scheme (`user@host`, `host`, `user@host/resource`) is a JID. Input is
 * not trimmed: surrounding whitespace is an error, so what is stored is exactly what was checked.
 */
export function parseAddress(input: string): Address {
  if (input === "") throw new AddressError(input, "empty address");
  if (input.trim() !== input)
    throw new AddressError(input, `leading or trailing whitespace in address ${quote(input)}`);
  if (input.startsWith("<") || input.endsWith(">")) {
    throw new AddressError(input, `angle brackets around address ${quote(input)} (pass the URI inside them)`);
  }
  // A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" (RFC 3986 §3.1); a JID cannot have a
  // ':' before its first '@' or '/', so this never misreads a JID.
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(input)?.[1]?.toLowerCase();
  switch (scheme) {
    case undefined:
      return { kind: "jid", jid: parseJid(input) };
    case "sip":
    case "sips":
      return { kind: "sip", uri: parseSipUri(input) };
    case "tel":
      return { kind: "tel", uri: parseTelUri(input) };
    case "xmpp":
      return { kind: "xmpp", uri: parseXmppUri(input) };
    default:
      throw new AddressError(
        input,
        `unsupported scheme '${scheme}' in address ${quote(input)} (expected sip:, sips:, tel:, xmpp: or a JID)`,
      );
  }
}

/** Formats an Address; parseAddress(formatAddress(a)) equals a. */
export function formatAddress(address: Address): string {
  switch (address.kind) {
    case "sip":
      return formatSipUri(address.uri);
    case "tel":
      return formatTelUri(address.uri);
    case "xmpp":
      return formatXmppUri(address.uri);
    case "jid":
      return formatJid(address.jid);
  }
}

export { AddressError } from "./errors.js";
export { bareJid, formatJid, jidEquals, makeJid, parseJid, type Jid } from "./jid.js";
export { escapeLocal, unescapeLocal } from "./jid-escape.js";
export { formatSipUri, makeSipUri, parseSipUri, type SipUri, type SipUriHeader } from "./sip-uri.js";
export { formatTelUri, parseTelUri, type TelUri } from "./tel-uri.js";
export { formatXmppUri, parseXmppUri, xmppUriForJid, type XmppUri, type XmppUriQuery } from "./xmpp-uri.js";
