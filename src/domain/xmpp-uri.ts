// xmpp: URIs/IRIs, RFC 5122 §2: `xmpp:[//authority/]jid[?querytype;key=value][#fragment]`.
// Each JID part is percent-decoded separately (§2.2), then validated as a JID (RFC 7622).
import { AddressError, quote } from "./errors.js";
import { makeJid, type Jid } from "./jid.js";
import { percentDecode, percentEncode } from "./percent-encoding.js";

export interface XmppUriQuery {
  /** iquerytype, e.g. "message", "subscribe" (XEP-0147 registry). */
  readonly action: string;
  readonly params: ReadonlyMap<string, string>;
}

export interface XmppUri {
  readonly scheme: "xmpp";
  /** The account to act as (`xmpp://guest@example.com/...`, §2.3), usually null. */
  readonly authority: Jid | null;
  readonly jid: Jid;
  readonly query: XmppUriQuery | null;
  readonly fragment: string | null;
}

const UNRESERVED = (c: string): boolean => /^[a-zA-Z0-9\-._~]$/.test(c) || c.charCodeAt(0) > 0x7f;
// inodeallow (RFC 5122 §2.2): iunreserved, "!" "$" "(" ")" "*" "+" "," ";" "=" "[" "\" "]"
const NODE = (c: string): boolean => UNRESERVED(c) || "!$()*+,;=[\\]".includes(c);
// iresallow: iunreserved, sub-delims, ":" "@" and "/" (no "?" or "#", which delimit the IRI).
const RES = (c: string): boolean => UNRESERVED(c) || "!$&'()*+,;=:@/".includes(c);
const QUERY = (c: string): boolean => UNRESERVED(c) || "!$'()*+,:@/".includes(c);

/** Parses an `xmpp:` URI or IRI. Throws AddressError naming the first problem found. */
export function parseXmppUri(input: string): XmppUri {
  const fail = (what: string): never => {
    throw new AddressError(input, `${what} in XMPP URI ${quote(input)}`);
  };
  if (!/^xmpp:/i.test(input)) fail("missing 'xmpp:' scheme");
  let rest = input.slice(5);
  if (/[\s\p{Cc}]/u.test(rest)) fail("whitespace or control character");
  let fragment: string | null = null;
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    fragment = percentDecode(rest.slice(hash + 1), (what) => fail(`${what} in fragment`));
    rest = rest.slice(0, hash);
  }
  let queryText: string | null = null;
  const q = rest.indexOf("?");
  if (q >= 0) {
    queryText = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let authority: Jid | null = null;
  if (rest.startsWith("//")) {
    const end = rest.indexOf("/", 2);
    const authText = end >= 0 ? rest.slice(2, end) : rest.slice(2);
    if (authText === "") fail("empty authority after '//'");
    authority = jidFromIri(authText, (what) => fail(`${what} in authority`));
    rest = end >= 0 ? rest.slice(end + 1) : "";
  }
  if (rest === "") fail("no JID");
  const jid = jidFromIri(rest, fail);

  let query: XmppUriQuery | null = null;
  if (queryText !== null) {
    const [actionText = "", ...pairs] = queryText.split(";");
    if (actionText === "") fail("empty query type after '?'");
    const params = new Map<string, string>();
    for (const pair of pairs) {
      const eq = pair.indexOf("=");
      if (eq <= 0) fail(`query pair '${pair}' is not key=value`);
      const key = percentDecode(pair.slice(0, eq), (what) => fail(`${what} in query`));
      if (params.has(key)) fail(`duplicate query key '${key}'`);
      params.set(
        key,
        percentDecode(pair.slice(eq + 1), (what) => fail(`${what} in query`)),
      );
    }
    query = { action: percentDecode(actionText, (what) => fail(`${what} in query`)), params };
  }
  return { scheme: "xmpp", authority, jid, query, fragment };
}

function jidFromIri(text: string, fail: (what: string) => never): Jid {
  // Split on the raw delimiters before decoding, so an escaped "/" or "@" stays inside its part.
  const slash = text.indexOf("/");
  const head = slash >= 0 ? text.slice(0, slash) : text;
  const at = head.indexOf("@");
  const decode = (part: string, where: string): string =>
    percentDecode(part, (what) => fail(`${what} in ${where}`));
  const local = at >= 0 ? decode(head.slice(0, at), "localpart") : null;
  const domain = decode(at >= 0 ? head.slice(at + 1) : head, "domainpart");
  const resource = slash >= 0 ? decode(text.slice(slash + 1), "resourcepart") : null;
  if (local === "") fail("empty localpart before '@'");
  if (resource === "") fail("empty resourcepart after '/'");
  if (local !== null && /[@/]/.test(local)) fail("forbidden character in localpart");
  if (/[@/]/.test(domain)) fail("forbidden character in domainpart");
  try {
    return makeJid({ local, domain, resource });
  } catch (err) {
    if (err instanceof AddressError) return fail(err.reason.replace(/ in JID '.*'$/s, ""));
    throw err;
  }
}

/** Formats an XmppUri as an IRI (non-ASCII characters are kept, RFC 5122 §2.8). */
export function formatXmppUri(uri: XmppUri): string {
  let out = "xmpp:";
  if (uri.authority !== null) out += `//${jidToIri(uri.authority)}/`;
  out += jidToIri(uri.jid);
  if (uri.query !== null) {
    out += `?${percentEncode(uri.query.action, QUERY)}`;
    for (const [k, v] of uri.query.params) out += `;${percentEncode(k, QUERY)}=${percentEncode(v, QUERY)}`;
  }
  if (uri.fragment !== null) out += `#${percentEncode(uri.fragment, QUERY)}`;
  return out;
}

function jidToIri(jid: Jid): string {
  return (
    (jid.local === null ? "" : `${percentEncode(jid.local, NODE)}@`) +
    jid.domain +
    (jid.resource === null ? "" : `/${percentEncode(jid.resource, RES)}`)
  );
}

/** The xmpp: URI for a JID, without query: what `xmpp:alice@example.org` means. */
export function xmppUriForJid(jid: Jid): XmppUri {
  return parseXmppUri(`xmpp:${jidToIri(jid)}`);
}
