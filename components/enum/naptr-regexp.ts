// The NAPTR `regexp` field (RFC 3402 §3.2, RFC 3403 §4.1, RFC 6116 §3.2.2): a sed-like substitution
// `<delim>ERE<delim>replacement<delim>flags` applied to the Application Unique String, for ENUM the
// E.164 number with its leading "+".
//
// The field comes from DNS, i.e. from whoever controls the zone: untrusted input. It is run with
// re2js, a linear-time engine (no backtracking, so `(a+)+$` cannot blow up), after size limits, and
// any construct re2js refuses (back-references in the ERE, look-arounds) is refused with the reason.
import { RE2JS, type Matcher } from "re2js";
import { SwitchboardError, quote } from "../../src/domain/errors.js";

/** Size limits for untrusted NAPTR substitutions (bytes of UTF-8, except `input`, in characters). */
export const NAPTR_REGEXP_LIMITS = {
  /** The ERE between the first two delimiters. */
  ere: 256,
  /** The replacement between the second and third delimiters. */
  replacement: 512,
  /** The string the ERE is applied to (an E.164 AUS is at most 16 characters). */
  input: 4096,
  /** The substituted result. */
  result: 2048,
} as const;

/** A parsed substitution expression. */
export interface NaptrSubstitution {
  readonly delimiter: string;
  /** The ERE as given to re2js (escaped delimiters turned into literal ones). */
  readonly ere: string;
  /** Literal text and back-reference numbers (1–9), in order. */
  readonly replacement: readonly (string | number)[];
  /** The `i` flag: case-insensitive matching (RFC 3402 §3.2). */
  readonly caseInsensitive: boolean;
}

function refuse(field: string, reason: string): never {
  throw new SwitchboardError("bad-request", `NAPTR regexp refused: ${reason} in ${quote(field)}`);
}

const utf8Length = (text: string): number => Buffer.byteLength(text, "utf8");

/**
 * Parses `!ERE!replacement!flags` (RFC 3402 §3.2 grammar). Throws SwitchboardError("bad-request")
 * naming the problem: bad delimiter, missing part, unknown flag, oversize, a construct re2js refuses.
 */
export function parseNaptrRegexp(field: string): NaptrSubstitution {
  if (field === "") refuse(field, "empty field");
  const delimiter = field[0] ?? "";
  // delim-char is any octet but POS-DIGIT and the flag "i" (§3.2); letters, digits, "\" and
  // whitespace as delimiters only make the field ambiguous, so they are refused too.
  if (!/^[!-~]$/.test(delimiter) || /[0-9a-zA-Z\\]/.test(delimiter)) {
    refuse(field, `bad delimiter ${quote(delimiter)} (use a punctuation character such as '!')`);
  }

  // Split on unescaped delimiters; "\" escapes the next character in both the ERE and the replacement.
  const parts: string[] = [];
  let current = "";
  for (let i = 1; i < field.length; i++) {
    const c = field[i] ?? "";
    if (c === "\\" && parts.length < 2) {
      const next = field[i + 1];
      if (next === undefined) refuse(field, "trailing backslash");
      current += c + next;
      i++;
    } else if (c === delimiter && parts.length < 2) {
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  if (parts.length < 2)
    refuse(
      field,
      `missing delimiter ${quote(delimiter)} (want ${delimiter}ERE${delimiter}replacement${delimiter}flags)`,
    );
  const [rawEre = "", rawReplacement = ""] = parts;
  const flags = current;
  if (flags !== "" && flags.toLowerCase() !== "i") {
    refuse(field, `unknown flags ${quote(flags)} after the third delimiter (only 'i' is defined)`);
  }
  if (rawEre === "") refuse(field, "empty ERE");
  if (utf8Length(rawEre) > NAPTR_REGEXP_LIMITS.ere) {
    refuse(field, `ERE longer than ${NAPTR_REGEXP_LIMITS.ere} bytes`);
  }
  if (utf8Length(rawReplacement) > NAPTR_REGEXP_LIMITS.replacement) {
    refuse(field, `replacement longer than ${NAPTR_REGEXP_LIMITS.replacement} bytes`);
  }

  // An escaped delimiter inside the ERE means the literal character (escapeddelim, §3.2).
  const escapedDelimiter = `\\${delimiter}`;
  const ere = rawEre.split(escapedDelimiter).join(RE2JS.quote(delimiter));

  const replacement: (string | number)[] = [];
  let literal = "";
  for (let i = 0; i < rawReplacement.length; i++) {
    const c = rawReplacement[i] ?? "";
    if (c !== "\\") {
      literal += c;
      continue;
    }
    const next = rawReplacement[i + 1] ?? "";
    i++;
    if (/^[1-9]$/.test(next)) {
      if (literal !== "") replacement.push(literal);
      literal = "";
      replacement.push(Number(next));
    } else if (next === "\\" || next === delimiter) {
      literal += next;
    } else if (next === "0") {
      refuse(field, "back-reference \\0 in the replacement (only \\1 to \\9 are allowed)");
    } else {
      refuse(field, `unknown escape \\${next} in the replacement`);
    }
  }
  if (literal !== "") replacement.push(literal);

  return { delimiter, ere, replacement, caseInsensitive: flags !== "" };
}

function compile(field: string, sub: NaptrSubstitution): RE2JS {
  // POSIX EREs match leftmost-longest (POSIX.1 §9.1), hence LONGEST_MATCH.
  const flags = RE2JS.LONGEST_MATCH | (sub.caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0);
  try {
    return RE2JS.compile(sub.ere, flags);
  } catch (err) {
    // re2js refuses what it cannot run in linear time (back-references, look-arounds) and syntax errors.
    const why = err instanceof Error ? err.message : String(err);
    return refuse(field, `ERE not accepted by the linear-time engine (${why})`);
  }
}

/**
 * Applies a NAPTR `regexp` field to `input` (for ENUM the AUS, e.g. "+442071234567"): the first
 * match of the ERE is replaced by the replacement with `\1`..`\9` expanded, as sed's `s` command
 * does (RFC 3402 §3.2). Returns null when the ERE does not match (the rule does not apply).
 * Throws SwitchboardError("bad-request") for a malformed, oversize or refused expression.
 */
export function applyNaptrRegexp(field: string, input: string): string | null {
  const sub = parseNaptrRegexp(field);
  if (input.length > NAPTR_REGEXP_LIMITS.input) {
    refuse(field, `input longer than ${NAPTR_REGEXP_LIMITS.input} characters`);
  }
  const re = compile(field, sub);
  const matcher: Matcher = re.matcher(input);
  if (!matcher.find()) return null;
  const groups = matcher.groupCount();
  let expanded = "";
  for (const part of sub.replacement) {
    if (typeof part === "string") {
      expanded += part;
      continue;
    }
    if (part > groups) {
      refuse(field, `back-reference \\${part} but the ERE has ${groups} group(s)`);
    }
    // A group that did not take part in the match expands to nothing, as in sed.
    expanded += matcher.group(part) ?? "";
  }
  const result = input.slice(0, matcher.start()) + expanded + input.slice(matcher.end());
  if (utf8Length(result) > NAPTR_REGEXP_LIMITS.result) {
    refuse(field, `result longer than ${NAPTR_REGEXP_LIMITS.result} bytes`);
  }
  return result;
}
