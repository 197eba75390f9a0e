// SIP Digest authentication (RFC 3261 §22, with the hash algorithms of RFC 7616 as RFC 8760 brings
// them to SIP). Pure: no I/O beyond node:crypto and the caller's credential lookup.
//
// UAC side (the bridge answering a 401/407): parseChallenges → chooseChallenge → authorize.
// UAS side (the bridge challenging a peer it does not trust): DigestVerifier.challenge → verify.
//
// The UAS keeps no per-challenge state: a nonce carries its own issue time and an HMAC, so any
// nonce can be checked for authenticity and age without a table of what was handed out. The only
// state is the highest nonce count accepted per nonce, which is what stops a captured request
// from being replayed (the purpose of nc, RFC 7616 §3.4), kept bounded in time and size.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { SwitchboardError } from "../../src/domain/errors.js";

// ---------------------------------------------------------------------------------------------
// Algorithms (RFC 7616 §3.2, RFC 8760 §2.1)

/** The algorithms this module can compute, spelled as on the wire. */
export const DIGEST_ALGORITHMS = ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"] as const;

/** One of {@link DIGEST_ALGORITHMS}. The `-sess` variants fold the nonces into HA1 (RFC 7616 §3.4.2). */
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

const HASH: Record<DigestAlgorithm, "md5" | "sha256"> = {
  MD5: "md5",
  "MD5-sess": "md5",
  "SHA-256": "sha256",
  "SHA-256-sess": "sha256",
};

/** Algorithm names are case-insensitive tokens (RFC 7616 §3.3); returns the canonical spelling. */
function canonicalAlgorithm(name: string): DigestAlgorithm | undefined {
  return DIGEST_ALGORITHMS.find((known) => known.toLowerCase() === name.toLowerCase());
}

function isSupported(name: string): name is DigestAlgorithm {
  return (DIGEST_ALGORITHMS as readonly string[]).includes(name);
}

function hashHex(algorithm: DigestAlgorithm, data: string): string {
  return createHash(HASH[algorithm]).update(data, "utf8").digest("hex");
}

/** H(username ":" realm ":" password), the HA1 of the non-session algorithms (RFC 7616 §3.4.2). */
function passwordHa1(algorithm: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hashHex(algorithm, `${username}:${realm}:${password}`);
}

interface ResponseInput {
  algorithm: DigestAlgorithm;
  /** H(username:realm:password); the session variant is derived here. */
  ha1: string;
  nonce: string;
  method: string;
  uri: string;
  /** Present for qop=auth; absent for an RFC 2069 response. */
  counted?: { nc: string; cnonce: string };
}

/** The request-digest: RFC 7616 §3.4.1 with qop, RFC 2069 §2.1.2 without (kept by RFC 3261 §22.4). */
function requestDigest(input: ResponseInput): string {
  const { algorithm, nonce, counted } = input;
  const h = (data: string): string => hashHex(algorithm, data);
  const ha1 = algorithm.endsWith("-sess") ? h(`${input.ha1}:${nonce}:${counted?.cnonce ?? ""}`) : input.ha1;
  const ha2 = h(`${input.method}:${input.uri}`);
  if (counted === undefined) return h(`${ha1}:${nonce}:${ha2}`);
  return h(`${ha1}:${nonce}:${counted.nc}:${counted.cnonce}:auth:${ha2}`);
}

// ---------------------------------------------------------------------------------------------
// Syntax shared by challenges and credentials: auth-scheme followed by comma-separated
// auth-params (RFC 3261 §25.1 "challenge"/"credentials", RFC 7235 §2.1). A header value may hold
// several of them (HTTP style; RFC 3261 §7.3.1 says SIP sends one per header row, but a peer or a
// SIP stack may still join them), and commas inside quoted strings belong to the value.

interface AuthItem {
  scheme: string;
  /** Parameter names lowercased (they are case-insensitive); values unquoted and unescaped. */
  params: Map<string, string>;
}

class AuthSyntaxError extends Error {}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// token68 (RFC 7235 §2.1) is what Basic/Bearer/Negotiate carry; it must be skipped, not mistaken
// for a parameter, to reach a Digest challenge that follows it.
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*[ \t]*(?:,|$)/y;

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  done(): boolean {
    return this.pos >= this.text.length;
  }

  at(char: string): boolean {
    return this.text[this.pos] === char;
  }

  atWhitespace(): boolean {
    return /[ \t\r\n]/.test(this.text[this.pos] ?? "");
  }

  skipWhitespace(): void {
    while (this.atWhitespace()) this.pos++;
  }

  /** Empty list elements are allowed (RFC 7230 §7), so runs of commas are skipped too. */
  skipSeparators(): void {
    while (this.atWhitespace() || this.at(",")) this.pos++;
  }

  token(): string {
    const start = this.pos;
    while (TCHAR.test(this.text[this.pos] ?? "")) this.pos++;
    if (this.pos === start) throw new AuthSyntaxError(`token expected at ${start}`);
    return this.text.slice(start, this.pos);
  }

  token68Ahead(): boolean {
    TOKEN68.lastIndex = this.pos;
    return TOKEN68.test(this.text);
  }

  skipToken68(): void {
    while (!this.done() && !this.at(",")) this.pos++;
  }

  /** quoted-string with quoted-pair (RFC 3261 §25.1); control characters would end a header. */
  quotedString(): string {
    let value = "";
    this.pos++; // opening DQUOTE
    for (;;) {
      let char = this.text[this.pos++];
      if (char === undefined) throw new AuthSyntaxError("unterminated quoted string");
      if (char === '"') return value;
      if (char === "\\") char = this.text[this.pos++];
      if (char === undefined) throw new AuthSyntaxError("unterminated quoted string");
      if (isControl(char)) throw new AuthSyntaxError("control character in quoted string");
      value += char;
    }
  }
}

function isControl(char: string): boolean {
  const code = char.charCodeAt(0);
  return (code < 0x20 && char !== "\t") || code === 0x7f;
}

/** Parses the params after a scheme, stopping at the end or before the next item's scheme. */
function parseParams(scanner: Scanner): Map<string, string> {
  const params = new Map<string, string>();
  if (!scanner.done() && !scanner.atWhitespace() && !scanner.at(","))
    throw new AuthSyntaxError("scheme must be followed by a space");
  scanner.skipWhitespace();
  if (scanner.token68Ahead()) {
    scanner.skipToken68();
    return params;
  }
  for (;;) {
    scanner.skipSeparators();
    if (scanner.done()) return params;
    const mark = scanner.pos;
    const name = scanner.token().toLowerCase();
    scanner.skipWhitespace();
    if (!scanner.at("=")) {
      scanner.pos = mark; // a token without "=" is the scheme of the next item
      return params;
    }
    scanner.pos++;
    scanner.skipWhitespace();
    const value = scanner.at('"') ? scanner.quotedString() : scanner.token();
    // RFC 7235 §2.2: each parameter name only once; a duplicate makes the item ambiguous.
    if (params.has(name)) throw new AuthSyntaxError(`parameter '${name}' repeated`);
    params.set(name, value);
    scanner.skipWhitespace();
    if (!scanner.done() && !scanner.at(",")) throw new AuthSyntaxError("',' expected after a parameter");
  }
}

/** The items of one header value, or none at all when any part of it is malformed. */
function parseAuthItems(value: string): AuthItem[] {
  const scanner = new Scanner(value);
  const items: AuthItem[] = [];
  try {
    scanner.skipSeparators();
    while (!scanner.done()) {
      const scheme = scanner.token();
      items.push({ scheme, params: parseParams(scanner) });
      scanner.skipSeparators();
    }
  } catch (err) {
    // A malformed value is dropped whole: past the error its item boundaries cannot be trusted.
    if (err instanceof AuthSyntaxError) return [];
    throw err;
  }
  return items;
}

function digestItems(headerValues: readonly string[]): AuthItem[] {
  return headerValues.flatMap(parseAuthItems).filter((item) => item.scheme.toLowerCase() === "digest");
}

/** Escapes a quoted-string value; CR/LF or other controls cannot be escaped (RFC 3261 §25.1). */
function quote(value: string): string {
  if ([...value].some(isControl))
    throw new SwitchboardError("bad-request", "a Digest parameter contains a control character");
  return `"${value.replace(/[\\"]/g, "\\$&")}"`;
}

// ---------------------------------------------------------------------------------------------
// UAC: answering WWW-Authenticate / Proxy-Authenticate (RFC 3261 §22.2, §22.3)

/** One Digest challenge from a WWW-Authenticate or Proxy-Authenticate header value. */
export interface DigestChallenge {
  readonly realm: string;
  readonly nonce: string;
  /** Returned unchanged in the answer (RFC 7616 §3.3). */
  readonly opaque?: string;
  /** Canonical spelling when supported ("SHA-256"), as sent otherwise; absent means MD5 (RFC 7616 §3.3). */
  readonly algorithm: string;
  /** Whether {@link algorithm} is one of {@link DIGEST_ALGORITHMS}. */
  readonly supported: boolean;
  /** Offered qop values, lowercased; empty for an RFC 2069 challenge without qop. */
  readonly qop: readonly string[];
  /** The previous answer was refused only because its nonce expired: retry without asking for a password. */
  readonly stale: boolean;
}

function toChallenge({ params }: AuthItem): DigestChallenge | undefined {
  const realm = params.get("realm");
  const nonce = params.get("nonce");
  // realm and nonce are required (RFC 7616 §3.3); without them there is nothing to answer.
  if (realm === undefined || nonce === undefined) return undefined;
  const sent = params.get("algorithm") ?? "MD5";
  const algorithm = canonicalAlgorithm(sent) ?? sent;
  const opaque = params.get("opaque");
  return {
    realm,
    nonce,
    ...(opaque === undefined ? {} : { opaque }),
    algorithm,
    supported: isSupported(algorithm),
    qop: (params.get("qop") ?? "")
      .split(",")
      .map((qop) => qop.trim().toLowerCase())
      .filter((qop) => qop !== ""),
    stale: params.get("stale")?.toLowerCase() === "true",
  };
}

/**
 * The Digest challenges in `WWW-Authenticate` / `Proxy-Authenticate` values, in the order given.
 * Other schemes are skipped; a value that does not parse contributes nothing; a challenge with an
 * unknown algorithm is kept with `supported: false`. Never throws.
 */
export function parseChallenges(headerValues: readonly string[]): DigestChallenge[] {
  return digestItems(headerValues)
    .map(toChallenge)
    .filter((challenge) => challenge !== undefined);
}

/** Why this module cannot answer a challenge, or undefined when it can. */
function unanswerable(challenge: DigestChallenge): string | undefined {
  if (!isSupported(challenge.algorithm)) return `algorithm ${challenge.algorithm} is not supported`;
  // auth-int would need the body hashed into HA2; only auth is implemented.
  if (challenge.qop.length > 0 && !challenge.qop.includes("auth"))
    return `qop ${challenge.qop.join(",")} offered, but only qop=auth is supported`;
  // A -sess HA1 includes the cnonce (RFC 7616 §3.4.2), which is only sent with qop.
  if (challenge.qop.length === 0 && challenge.algorithm.endsWith("-sess"))
    return `${challenge.algorithm} without qop cannot be answered`;
  return undefined;
}

/** The challenge to answer, or why none can be. */
export type ChallengeChoice = { ok: true; challenge: DigestChallenge } | { ok: false; reason: string };

/**
 * Picks the challenge to answer: the topmost one this module supports. RFC 8760 §2.3 has the UAS
 * list its challenges "in the order in which it would prefer to see them used" and §2.4 has the
 * UAC "use the topmost header field that it supports unless a local policy dictates otherwise";
 * a server that follows §2.3 lists SHA-256 above MD5. Ordering is not integrity-protected (RFC
 * 8760 §3 warns of downgrade by an on-path attacker): a caller whose policy refuses MD5 filters
 * it out of the list before calling.
 */
export function chooseChallenge(challenges: readonly DigestChallenge[]): ChallengeChoice {
  const refusals: string[] = [];
  for (const challenge of challenges) {
    const refusal = unanswerable(challenge);
    if (refusal === undefined) return { ok: true, challenge };
    refusals.push(`realm "${challenge.realm}": ${refusal}`);
  }
  if (refusals.length === 0) return { ok: false, reason: "no Digest challenge offered" };
  return { ok: false, reason: `no Digest challenge can be answered (${refusals.join("; ")})` };
}

/** What the UAC puts into its answer besides the challenge. */
export interface AuthorizeOptions {
  username: string;
  password: string;
  /** The request's method; for ACK and CANCEL, that of the INVITE (RFC 3261 §22.4). */
  method: string;
  /** The Request-URI as sent, copied to the digest-uri (RFC 3261 §22.4 item 8). */
  uri: string;
  /** Nonce count, 1 for the first request with this nonce (RFC 7616 §3.4). */
  nc: number;
  /** Client nonce; a random one when absent. Fixed only in tests. */
  cnonce?: string;
}

function formatNonceCount(nc: number): string {
  if (!Number.isInteger(nc) || nc < 1 || nc > 0xffffffff)
    throw new RangeError(`nonce count ${nc} out of range`);
  return nc.toString(16).padStart(8, "0");
}

/**
 * The `Authorization` / `Proxy-Authorization` header value answering `challenge`. Uses qop=auth
 * when offered, else the RFC 2069 form (no cnonce, qop or nc). Throws SwitchboardError
 * (feature-not-implemented) for a challenge {@link chooseChallenge} would not pick.
 */
export function authorize(challenge: DigestChallenge, options: AuthorizeOptions): string {
  const algorithm = challenge.algorithm;
  const refusal = unanswerable(challenge);
  if (refusal !== undefined || !isSupported(algorithm))
    throw new SwitchboardError("feature-not-implemented", `cannot answer Digest challenge: ${refusal ?? ""}`);
  const counted = challenge.qop.includes("auth")
    ? { nc: formatNonceCount(options.nc), cnonce: options.cnonce ?? randomBytes(18).toString("base64url") }
    : undefined;
  const ha1 = passwordHa1(algorithm, options.username, challenge.realm, options.password);
  const { method, uri } = options;
  const response = requestDigest({ algorithm, ha1, nonce: challenge.nonce, method, uri, counted });
  const parts = [
    `username=${quote(options.username)}`,
    `realm=${quote(challenge.realm)}`,
    `nonce=${quote(challenge.nonce)}`,
    `uri=${quote(options.uri)}`,
    `response="${response}"`,
    `algorithm=${algorithm}`,
  ];
  // RFC 3261 §25.1: cnonce is quoted, message-qop and nonce-count are bare tokens.
  if (counted) parts.push(`cnonce=${quote(counted.cnonce)}`, "qop=auth", `nc=${counted.nc}`);
  if (challenge.opaque !== undefined) parts.push(`opaque=${quote(challenge.opaque)}`);
  return `Digest ${parts.join(", ")}`;
}

// ---------------------------------------------------------------------------------------------
// UAS: challenging and verifying (RFC 3261 §22.2, RFC 8760 §2.3)

/** What the directory knows about a user: the password, or HA1 = H(user:realm:password) per hash. */
export type Credentials = { password: string } | { ha1: { md5?: string; sha256?: string } };

/** The algorithms the bridge offers: no -sess, which adds nothing for a stateless verifier. */
export type OfferedAlgorithm = "SHA-256" | "MD5";

export interface DigestVerifierOptions {
  /** The protection domain, usually the SIP domain (RFC 3261 §22.1). */
  realm: string;
  /** HMAC key for nonces, at least 16 bytes; random when absent. Share it between instances behind one address. */
  secret?: Buffer;
  /** How long a nonce is accepted; older ones are refused with stale=true. Default 300 000 ms. */
  nonceLifetimeMs?: number;
  /** Clock in ms since the epoch; Date.now by default. */
  now?: () => number;
  /** Offered in this order of preference (RFC 8760 §2.3). Default SHA-256 then MD5. */
  algorithms?: readonly OfferedAlgorithm[];
  /** Most nonces whose count is remembered at once (replay protection); default 100 000. */
  maxTrackedNonces?: number;
  /** Finds a user's credentials; undefined for an unknown user. A rejection propagates from verify. */
  lookup: (username: string, realm: string) => Promise<Credentials | undefined>;
}

/**
 * The outcome of {@link DigestVerifier.verify}. On success, `uri` is the digest-uri, which the
 * caller compares with the Request-URI (RFC 7616 §3.4.6). On failure, `reason` is for the log and
 * `stale` says whether to challenge with stale=true (the password was right, only the nonce was not).
 */
export type VerifyResult =
  | { ok: true; username: string; uri: string }
  | { ok: false; reason: string; stale: boolean; failure: VerifyFailure; username?: string };

/**
 * Why an answer was refused, for the security log: `format` (no usable credentials), `nonce` (not
 * one we issued), `unknown-user`, `wrong-response` (bad password, or a hash we do not hold),
 * `expired` (an old nonce, otherwise right), `replayed` (a nonce count seen before).
 */
export type VerifyFailure = "format" | "nonce" | "unknown-user" | "wrong-response" | "expired" | "replayed";

const NONCE_BYTES = { time: 8, random: 8, mac: 16 };
const NONCE_LENGTH = NONCE_BYTES.time + NONCE_BYTES.random + NONCE_BYTES.mac;
const NONCE_TEXT = /^[A-Za-z0-9_-]{43}$/; // base64url of 32 bytes, no padding

/** Credentials for our realm from an Authorization value, with a nonce we issued. */
interface Answer {
  params: ReadonlyMap<string, string>;
  nonce: string;
  issuedAt: number;
}

/** The checked fields of an answer (qop=auth is implied: nothing else is accepted). */
interface AnswerFields {
  username: string;
  uri: string;
  response: string;
  algorithm: OfferedAlgorithm;
  nc: string;
  cnonce: string;
}

function fail(failure: VerifyFailure, reason: string, username?: string): VerifyResult {
  const stale = failure === "expired" || failure === "replayed";
  return { ok: false, reason, stale, failure, ...(username === undefined ? {} : { username }) };
}

/**
 * Challenges peers and checks their answers. Nonces are self-validating (issue time, random bytes
 * and an HMAC); the only memory is the last accepted nonce count per nonce, for replay protection.
 */
export class DigestVerifier {
  private readonly secret: Buffer;
  private readonly lifetimeMs: number;
  private readonly now: () => number;
  private readonly algorithms: readonly OfferedAlgorithm[];
  private readonly counts: NonceCounts;

  constructor(private readonly options: DigestVerifierOptions) {
    quote(options.realm); // a realm that cannot be sent is a configuration error, found here
    this.secret = options.secret ?? randomBytes(32);
    if (this.secret.length < 16) throw new RangeError("Digest nonce secret must be at least 16 bytes");
    this.lifetimeMs = options.nonceLifetimeMs ?? 300_000;
    this.now = options.now ?? Date.now;
    this.algorithms = [...new Set(options.algorithms ?? (["SHA-256", "MD5"] as const))];
    if (this.algorithms.length === 0) throw new RangeError("Digest verifier needs at least one algorithm");
    this.counts = new NonceCounts(this.lifetimeMs, options.maxTrackedNonces ?? 100_000);
  }

  /**
   * `WWW-Authenticate` values for a 401 (or `Proxy-Authenticate` for a 407): one per algorithm,
   * most preferred first (RFC 8760 §2.3), each with a fresh nonce. `stale` after a refusal whose
   * result said so, so the client retries without asking its user (RFC 7616 §3.3).
   */
  challenge(stale = false): string[] {
    return this.algorithms.map(
      (algorithm) =>
        `Digest realm=${quote(this.options.realm)}, nonce="${this.issueNonce()}", algorithm=${algorithm}, qop="auth"` +
        (stale ? ", stale=true" : ""),
    );
  }

  /**
   * Checks the `Authorization` (or `Proxy-Authorization`) values of a request. Values for other
   * realms are skipped, as a proxy must (RFC 3261 §22.3). Never throws for bad input; rejects
   * only if `lookup` does.
   */
  async verify(method: string, authorizationHeaderValues: readonly string[]): Promise<VerifyResult> {
    const answer = this.findAnswer(authorizationHeaderValues);
    if ("ok" in answer) return answer;
    const fields = this.readFields(answer.params);
    if (typeof fields === "string") return fail("format", fields);
    const { username, algorithm, uri } = fields;
    const credentials = await this.options.lookup(username, this.options.realm);
    if (credentials === undefined) return fail("unknown-user", `unknown user "${username}"`, username);
    const ha1 = this.ha1For(credentials, username, algorithm);
    if (ha1 === undefined)
      return fail("wrong-response", `no ${algorithm} HA1 stored for "${username}"`, username);
    const expected = requestDigest({ algorithm, ha1, nonce: answer.nonce, method, uri, counted: fields });
    if (!sameHex(expected, fields.response))
      return fail("wrong-response", "wrong response (bad password?)", username);
    // Only now, with the digest proven right, may stale=true be said (RFC 7616 §3.3).
    const now = this.now();
    if (now - answer.issuedAt > this.lifetimeMs) return fail("expired", "nonce expired", username);
    // Check-and-record after the last await, so two concurrent requests cannot share a count.
    // A refusal here is stale: the digest was right, so the sender knows the password, and a
    // client whose requests merely overtook each other gets a fresh nonce, not a password prompt;
    // a replaying attacker gains nothing from a new nonce it cannot answer.
    const replay = this.counts.advance(answer.nonce, answer.issuedAt, parseInt(fields.nc, 16), now);
    if (replay !== undefined) return fail("replayed", replay, username);
    return { ok: true, username, uri };
  }

  /** The first Digest credentials for our realm that carry a nonce we issued. */
  private findAnswer(values: readonly string[]): Answer | VerifyResult {
    const ours = digestItems(values).filter((item) => item.params.get("realm") === this.options.realm);
    if (ours.length === 0)
      return fail("format", `no well-formed Digest credentials for realm "${this.options.realm}"`);
    for (const { params } of ours) {
      const nonce = params.get("nonce") ?? "";
      const issuedAt = this.nonceIssuedAt(nonce);
      if (issuedAt !== undefined) return { params, nonce, issuedAt };
    }
    return fail("nonce", "nonce not issued by this verifier (forged, tampered or from another server)");
  }

  /** The fields verify needs, or what is wrong; checked before any lookup, so junk costs none. */
  private readFields(params: ReadonlyMap<string, string>): AnswerFields | string {
    const [username, uri, response, nc, cnonce] = ["username", "uri", "response", "nc", "cnonce"].map(
      (name) => params.get(name),
    );
    if (username === undefined || uri === undefined || response === undefined)
      return "Digest credentials need username, uri and response";
    const sent = params.get("algorithm") ?? "MD5";
    const algorithm = this.algorithms.find((offered) => offered === canonicalAlgorithm(sent));
    if (algorithm === undefined) return `algorithm ${sent} was not offered`;
    const qop = params.get("qop")?.toLowerCase();
    // Without qop there is no nonce count, so a captured request could be replayed at will.
    if (qop === undefined) return "qop=auth required (an RFC 2069 answer cannot be protected against replay)";
    if (qop !== "auth") return `qop ${qop} not supported (qop=auth required)`;
    if (nc === undefined || !/^[0-9a-fA-F]{8}$/.test(nc)) return "qop=auth without a valid nc";
    if (!cnonce) return "qop=auth without cnonce";
    return { username, uri, response, algorithm, nc, cnonce };
  }

  private ha1For(
    credentials: Credentials,
    username: string,
    algorithm: OfferedAlgorithm,
  ): string | undefined {
    if ("password" in credentials)
      return passwordHa1(algorithm, username, this.options.realm, credentials.password);
    const stored = algorithm === "MD5" ? credentials.ha1.md5 : credentials.ha1.sha256;
    return stored?.toLowerCase();
  }

  /** Nonce = base64url(issue time ms ‖ 8 random bytes ‖ HMAC-SHA256(secret, both)[0..16]). */
  private issueNonce(): string {
    const head = Buffer.alloc(NONCE_BYTES.time + NONCE_BYTES.random);
    head.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(this.now()))));
    randomBytes(NONCE_BYTES.random).copy(head, NONCE_BYTES.time);
    return Buffer.concat([head, this.mac(head)]).toString("base64url");
  }

  /** The issue time of a nonce we made, or undefined for anything else. */
  private nonceIssuedAt(nonce: string): number | undefined {
    // Node's base64 decoder skips invalid characters, so the text is checked first.
    if (!NONCE_TEXT.test(nonce)) return undefined;
    const bytes = Buffer.from(nonce, "base64url");
    if (bytes.length !== NONCE_LENGTH) return undefined;
    const head = bytes.subarray(0, NONCE_BYTES.time + NONCE_BYTES.random);
    if (!timingSafeEqual(this.mac(head), bytes.subarray(head.length))) return undefined;
    return Number(head.readBigUInt64BE(0));
  }

  private mac(head: Buffer): Buffer {
    return createHmac("sha256", this.secret).update(head).digest().subarray(0, NONCE_BYTES.mac);
  }
}

/** Compares a computed hex digest with a received one without leaking where they differ. */
function sameHex(expected: string, received: string): boolean {
  const given = Buffer.from(received.toLowerCase(), "utf8");
  const wanted = Buffer.from(expected, "utf8");
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/**
 * The highest accepted nonce count per nonce: nc exists so that the server, keeping its own copy
 * of the count, can tell a replayed request (RFC 7616 §3.4). Memory is bounded: a nonce past its lifetime can never be accepted again,
 * so forgetting it is safe; beyond `cap` entries the oldest still-live one is dropped, and to keep
 * that from reopening its replay window every nonce issued no later than it is refused when
 * next seen without an entry (stale, so its client simply gets a fresh nonce).
 */
class NonceCounts {
  // Map order is first-accept order, which tracks issue time to within one lifetime.
  private readonly last = new Map<string, { nc: number; issuedAt: number }>();
  private evictedUpTo = -Infinity;

  constructor(
    private readonly lifetimeMs: number,
    private readonly cap: number,
  ) {}

  /** Records `nc` for `nonce`; returns why it is refused if it does not advance the count. */
  advance(nonce: string, issuedAt: number, nc: number, now: number): string | undefined {
    this.forgetExpired(now);
    const seen = this.last.get(nonce);
    if (seen !== undefined) {
      if (nc <= seen.nc) return `nonce count ${nc} not above ${seen.nc} already accepted (replay)`;
      seen.nc = nc;
      return undefined;
    }
    if (issuedAt <= this.evictedUpTo) return "nonce count history dropped under load; fresh nonce needed";
    if (nc < 1) return "nonce count must start at 1";
    this.makeRoom();
    this.last.set(nonce, { nc, issuedAt });
    return undefined;
  }

  private forgetExpired(now: number): void {
    // Stops at the first live entry: the order is only roughly by age, and a straggler left
    // behind is removed on a later pass or by the size cap.
    for (const [nonce, { issuedAt }] of this.last) {
      if (now - issuedAt <= this.lifetimeMs) break;
      this.last.delete(nonce);
    }
  }

  private makeRoom(): void {
    while (this.last.size >= this.cap) {
      const oldest = this.last.entries().next().value;
      if (oldest === undefined) return;
      this.evictedUpTo = Math.max(this.evictedUpTo, oldest[1].issuedAt);
      this.last.delete(oldest[0]);
    }
  }
}
