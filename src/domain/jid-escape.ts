// XEP-0106 JID Escaping. Used to carry a foreign SIP address (`carol@example.com`) inside one
// gateway localpart (`carol\40example.com`), as XEP-0106 §1 intends for gateways.
import { AddressError, quote } from "./errors.js";

// XEP-0106 §3.2, the ten escapes: the eight characters RFC 7622 forbids, space, and the backslash.
const ESCAPES: Readonly<Record<string, string>> = {
  " ": "\\20",
  '"': "\\22",
  "&": "\\26",
  "'": "\\27",
  "/": "\\2f",
  ":": "\\3a",
  "<": "\\3c",
  ">": "\\3e",
  "@": "\\40",
};
const SEQUENCE = /\\(20|22|26|27|2f|3a|3c|3e|40|5c)/gi;
const UNESCAPES: Readonly<Record<string, string>> = {
  "20": " ",
  "22": '"',
  "26": "&",
  "27": "'",
  "2f": "/",
  "3a": ":",
  "3c": "<",
  "3e": ">",
  "40": "@",
  "5c": "\\",
};

/**
 * Escapes a would-be localpart (XEP-0106 §3.2, §4.2). A backslash becomes `\5c` only where it is followed by
 * one of the ten escape codes, so `c:\net` stays readable (`c\3a\net`) yet still unescapes exactly.
 */
export function escapeLocal(unescaped: string): string {
  const fail = (what: string): never => {
    throw new AddressError(unescaped, `${what} in localpart ${quote(unescaped)}`);
  };
  if (unescaped === "") fail("nothing to escape");
  // XEP-0106 §3.2: an escaped localpart must not start or end with \20, so such input has no JID.
  if (unescaped.startsWith(" ") || unescaped.endsWith(" ")) fail("leading or trailing space");
  let out = "";
  for (let i = 0; i < unescaped.length; i++) {
    const c = unescaped.charAt(i);
    if (c === "\\") {
      out += /^(20|22|26|27|2f|3a|3c|3e|40|5c)$/i.test(unescaped.slice(i + 1, i + 3)) ? "\\5c" : "\\";
    } else {
      out += ESCAPES[c] ?? c;
    }
  }
  return out;
}

/**
 * Reverses escapeLocal (XEP-0106 §3.3): only the ten sequences are decoded, other backslashes stay.
 * A localpart that starts or ends with `\20` is a valid JID (parseJid accepts it, as RFC 7622 does)
 * but the escaped form of no name, since escapeLocal never produces it: it is refused here. Use
 * tryUnescapeLocal() where such a JID must simply match nobody.
 */
export function unescapeLocal(escaped: string): string {
  const unescaped = tryUnescapeLocal(escaped);
  if (unescaped === null) {
    throw new AddressError(escaped, `escaped localpart ${quote(escaped)} starts or ends with \\20`);
  }
  return unescaped;
}

/** unescapeLocal(), or null for a localpart that starts or ends with `\20` (no name escapes to it). */
export function tryUnescapeLocal(escaped: string): string | null {
  if (/^\\20/i.test(escaped) || /\\20$/i.test(escaped)) return null;
  return escaped.replace(SEQUENCE, (_match, code: string) => UNESCAPES[code.toLowerCase()] ?? _match);
}
