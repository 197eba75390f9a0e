// tel: URIs, RFC 3966 §3. Visual separators ("-" "." "(" ")") are stripped, since §5.1.1 says
// they carry no meaning and must be ignored when comparing.
import { AddressError, quote } from "./errors.js";
import { hostnameProblem } from "./host.js";
import { percentDecode, percentEncode } from "./percent-encoding.js";

export interface TelUri {
  readonly scheme: "tel";
  /** Global: "+" and digits ("+442071234567"). Local: digits, A-F, "*", "#" ("8001"). */
  readonly number: string;
  readonly global: boolean;
  /** Required for a local number (§5.1.5): a domain name (lowercased) or a global prefix ("+44"). */
  readonly phoneContext: string | null;
  /** Other parameters (`ext`, `isub`, extensions), names lowercased, values decoded. */
  readonly params: ReadonlyMap<string, string | null>;
}

const SEPARATORS = /[-.()]/g;
const PARAM = (c: string): boolean => /^[a-zA-Z0-9\-_.!~*'()]$/.test(c) || "[]/:&+$".includes(c);

/** Parses a `tel:` URI. Throws AddressError naming the first problem found. */
export function parseTelUri(input: string): TelUri {
  const fail = (what: string): never => {
    throw new AddressError(input, `${what} in tel URI ${quote(input)}`);
  };
  if (!/^tel:/i.test(input)) fail("missing 'tel:' scheme");
  const rest = input.slice(4);
  if (/[\s\p{Cc}]/u.test(rest)) fail("whitespace or control character");
  const [digitsText = "", ...paramTexts] = rest.split(";");
  if (digitsText === "") fail("empty number");

  let number: string;
  const global = digitsText.startsWith("+");
  if (global) {
    // global-number-digits = "+" *phonedigit DIGIT *phonedigit
    if (!/^\+[0-9\-.()]*$/.test(digitsText)) fail(`invalid character in global number '${digitsText}'`);
    number = digitsText.replace(SEPARATORS, "");
    if (number === "+") fail("global number without digits");
  } else {
    // local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
    if (!/^[0-9a-fA-F*#\-.()]*$/.test(digitsText)) fail(`invalid character in local number '${digitsText}'`);
    number = digitsText.replace(SEPARATORS, "").toUpperCase();
    if (number === "") fail("local number without digits");
  }

  let phoneContext: string | null = null;
  const params = new Map<string, string | null>();
  for (const p of paramTexts) {
    if (p === "") fail("empty parameter");
    const eq = p.indexOf("=");
    const name = (eq >= 0 ? p.slice(0, eq) : p).toLowerCase();
    const raw = eq >= 0 ? p.slice(eq + 1) : null;
    if (!/^[a-z0-9-]+$/.test(name)) fail(`invalid parameter name '${name}'`);
    if (name === "phone-context" ? phoneContext !== null : params.has(name))
      fail(`duplicate parameter '${name}'`);
    if (raw === "") fail(`empty value for parameter '${name}'`);
    if (raw !== null) {
      for (const c of raw)
        if (c !== "%" && !PARAM(c)) fail(`invalid character '${c}' in parameter '${name}'`);
    }
    const value = raw === null ? null : percentDecode(raw, (what) => fail(`${what} in parameter '${name}'`));
    if (name === "phone-context") {
      if (value === null) return fail("phone-context without a value");
      phoneContext = parseContext(value, fail);
    } else if (name === "ext") {
      // extension = ";ext=" 1*phonedigit
      if (value === null || !/^[0-9\-.()]*[0-9][0-9\-.()]*$/.test(value)) fail("invalid ext parameter");
      params.set(name, (value ?? "").replace(SEPARATORS, ""));
    } else {
      params.set(name, value);
    }
  }
  // §5.1.5: local numbers MUST carry a phone-context; global numbers are already unambiguous.
  if (!global && phoneContext === null) fail(`local number '${number}' without ';phone-context='`);
  if (global && phoneContext !== null) fail("phone-context on a global number");
  return { scheme: "tel", number, global, phoneContext, params };
}

function parseContext(value: string, fail: (what: string) => never): string {
  if (value.startsWith("+")) {
    if (!/^\+[0-9\-.()]*[0-9][0-9\-.()]*$/.test(value)) fail(`invalid phone-context '${value}'`);
    return value.replace(SEPARATORS, "");
  }
  const problem = hostnameProblem(value);
  if (problem !== null) fail(`${problem} in phone-context '${value}'`);
  return value.toLowerCase();
}

/** Formats a TelUri; `ext` and `isub` come first, then phone-context, as RFC 3966 §3 orders them. */
export function formatTelUri(uri: TelUri): string {
  let out = `tel:${uri.number}`;
  const enc = (v: string): string => percentEncode(v, PARAM);
  const ordered = [...uri.params].sort(([a], [b]) => rank(a) - rank(b));
  for (const [name, value] of ordered.filter(([n]) => rank(n) < 2)) {
    out += `;${name}${value === null ? "" : `=${enc(value)}`}`;
  }
  if (uri.phoneContext !== null) out += `;phone-context=${enc(uri.phoneContext)}`;
  for (const [name, value] of ordered.filter(([n]) => rank(n) === 2)) {
    out += `;${name}${value === null ? "" : `=${enc(value)}`}`;
  }
  return out;
}

function rank(name: string): number {
  return name === "ext" ? 0 : name === "isub" ? 1 : 2;
}
