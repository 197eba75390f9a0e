// Who sent a request (RFC 3261 §22, RFC 3325): a trusted peer (the proxy, the PBX, by source address)
// is believed about the sender — its P-Asserted-Identity when it asserts one, else the From; anyone
// else must prove a home-domain identity with digest (RFC 8760: SHA-256 and MD5 challenges, nonces
// that expire and cannot be replayed), and is then that user whatever the From says. A
// P-Asserted-Identity from an untrusted source is ignored (RFC 3325 §5).
import { BlockList, isIPv6 } from "node:net";
import { makeSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import { DigestVerifier, type Credentials, type OfferedAlgorithm, type VerifyFailure } from "./digest.js";
import type { SipRequest } from "./sip-message.js";
import type { Flow } from "./transports.js";

export interface SipUserCredentials {
  username: string;
  password?: string;
  /** MD5(username:realm:password), for configs that keep no clear password. */
  ha1?: string;
  /** SHA-256(username:realm:password) (RFC 8760 §2.2). */
  ha1Sha256?: string;
}

export interface AuthenticatorOptions {
  trustedPeers: readonly string[];
  homeDomain: string;
  /** Digest realm; the home domain by default. */
  realm?: string;
  /** Users who may authenticate with digest; none → untrusted peers get 403. */
  users?: readonly SipUserCredentials[];
  nonceLifetimeMs?: number;
  /** Challenges offered, most preferred first (RFC 8760 §2.3); default SHA-256 then MD5. */
  algorithms?: readonly OfferedAlgorithm[];
  /** Told of every refusal worth the security log. */
  onSecurityEvent?: (event: SecurityEvent) => void;
}

/**
 * A refusal for the security log, named as Asterisk's security events are where one fits (so the
 * same fail2ban filters and habits apply): FailedACL (not allowed from this address),
 * InvalidAccountID (no such user), ChallengeResponseFailed (wrong answer to a challenge),
 * RequestBadFormat (unusable credentials), RequestNotAllowed (a user acting for someone else);
 * and NonceReplayed, RateLimited, ScannerDropped, which Asterisk has no name for.
 */
export interface SecurityEvent {
  event:
    | "FailedACL"
    | "InvalidAccountID"
    | "ChallengeResponseFailed"
    | "RequestBadFormat"
    | "RequestNotAllowed"
    | "NonceReplayed"
    | "RateLimited"
    | "ScannerDropped";
  remote: { address: string; port: number };
  transport: string;
  /** The account the request claimed or authenticated as, when there is one. */
  account?: string;
  reason: string;
}

export type Authentication =
  | { ok: true; sender: SipUri; via: "trusted-peer" | "asserted" | "digest" }
  | { ok: false; status: 400 | 401 | 403; reason: string; headers: [string, string][] };

/** The security event of each digest refusal; an expired nonce is ordinary (the client retries). */
const SECURITY_EVENT_OF: Record<VerifyFailure, SecurityEvent["event"] | undefined> = {
  format: "RequestBadFormat",
  nonce: "ChallengeResponseFailed",
  "unknown-user": "InvalidAccountID",
  "wrong-response": "ChallengeResponseFailed",
  expired: undefined,
  replayed: "NonceReplayed",
};

/** The parts of a SIP URI that identify where it leads, for comparing the digest `uri`. */
function sameTarget(a: string, b: string): boolean {
  try {
    const [x, y] = [parseSipUri(a), parseSipUri(b)];
    return x.scheme === y.scheme && x.user === y.user && x.host === y.host && (x.port ?? 0) === (y.port ?? 0);
  } catch {
    return false;
  }
}

function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = "", prefix] = cidr.split("/");
    const family = isIPv6(address) ? "ipv6" : "ipv4";
    list.addSubnet(address, Number(prefix ?? (family === "ipv6" ? 128 : 32)), family);
  }
  return list;
}

/** The first SIP URI of a P-Asserted-Identity (it may also carry a tel URI, RFC 3325 §9.1). */
export function assertedIdentity(request: SipRequest): SipUri | undefined {
  for (const header of request.getHeaders("p-asserted-identity")) {
    for (const part of header.split(/,(?=\s*(?:"|<|sips?:|tel:))/)) {
      const uri = /<([^>]*)>/.exec(part)?.[1] ?? part.trim();
      if (!/^sips?:/i.test(uri)) continue;
      try {
        return parseSipUri(uri);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export class Authenticator {
  private readonly trusted: BlockList;

  private readonly trustedMemo = new Map<string, boolean>();
  private readonly verifier: DigestVerifier | undefined;

  constructor(private readonly options: AuthenticatorOptions) {
    this.trusted = blockList(options.trustedPeers);
    const users = new Map((options.users ?? []).map((u) => [u.username.toLowerCase(), u]));
    this.verifier =
      users.size > 0
        ? new DigestVerifier({
            realm: options.realm ?? options.homeDomain,
            ...(options.nonceLifetimeMs ? { nonceLifetimeMs: options.nonceLifetimeMs } : {}),
            ...(options.algorithms ? { algorithms: options.algorithms } : {}),
            lookup: (username) => Promise.resolve(credentialsOf(users.get(username.toLowerCase()))),
          })
        : undefined;
  }

  isTrusted(flow: Flow): boolean {
    // Most requests come from the same few peers (the proxy): remember the answer per address
    // (bounded; the memo starts over when full). Checking the list costs more than the lookup.
    const address = flow.remote.address;
    let trusted = this.trustedMemo.get(address);
    if (trusted === undefined) {
      if (this.trustedMemo.size >= 1_000) this.trustedMemo.clear();
      trusted = this.trusted.check(address, isIPv6(address) ? "ipv6" : "ipv4");
      this.trustedMemo.set(address, trusted);
    }
    return trusted;
  }

  private security(flow: Flow, event: SecurityEvent["event"], reason: string, account?: string): void {
    this.options.onSecurityEvent?.({
      event,
      remote: flow.remote,
      transport: flow.transport,
      reason,
      ...(account === undefined ? {} : { account }),
    });
  }

  /**
   * Whether requests on this flow are a trusted peer's: its address is in sip.trustedPeers and, over
   * TLS with sip.tls.clientCa, it proved itself with a certificate from that CA.
   */
  trusts(flow: Flow): boolean {
    return this.isTrusted(flow) && flow.clientCertified !== false;
  }

  async authenticate(request: SipRequest, flow: Flow): Promise<Authentication> {
    const trusted = this.trusts(flow);
    if (!trusted && this.isTrusted(flow)) {
      // sip.tls.clientCa: over TLS a trusted peer must also prove itself with a certificate; without
      // one it is anyone else (digest).
      this.security(flow, "FailedACL", "trusted address without a verified client certificate");
    }
    if (trusted) {
      const asserted = assertedIdentity(request);
      if (asserted) return { ok: true, sender: asserted, via: "asserted" };
      // From is there: a request without it was answered 400 before (missingHeaders).
      return { ok: true, sender: parseSipUri(request.from?.uri.toString() ?? ""), via: "trusted-peer" };
    }
    if (!this.verifier) {
      this.security(flow, "FailedACL", "not a trusted peer, and no SIP users are configured");
      return {
        ok: false,
        status: 403,
        reason: "Not a trusted peer, and no SIP users are configured",
        headers: [],
      };
    }
    const authorization = request.getHeaders("authorization");
    if (authorization.length === 0) return this.challenge("Authentication required", false);
    const result = await this.verifier.verify(request.method, authorization);
    if (!result.ok) {
      const event = SECURITY_EVENT_OF[result.failure];
      if (event !== undefined) this.security(flow, event, result.reason, result.username);
      return this.challenge(result.reason, result.stale);
    }
    // RFC 7616 §3.4.6: the credentials must be for this request's target, not replayed from another.
    if (!sameTarget(result.uri, request.ruri?.toString() ?? "")) {
      this.security(
        flow,
        "RequestBadFormat",
        "Authorization uri does not match the Request-URI",
        result.username,
      );
      return {
        ok: false,
        status: 400,
        reason: "Authorization uri does not match the Request-URI",
        headers: [],
      };
    }
    return {
      ok: true,
      sender: makeSipUri({ user: result.username.toLowerCase(), host: this.options.homeDomain }),
      via: "digest",
    };
  }

  private challenge(reason: string, stale: boolean): Authentication {
    const headers = (this.verifier?.challenge(stale) ?? []).map(
      (value) => ["WWW-Authenticate", value] as [string, string],
    );
    return { ok: false, status: 401, reason, headers };
  }
}

function credentialsOf(user: SipUserCredentials | undefined): Credentials | undefined {
  if (!user) return undefined;
  if (user.password !== undefined) return { password: user.password };
  return {
    ha1: { ...(user.ha1 ? { md5: user.ha1 } : {}), ...(user.ha1Sha256 ? { sha256: user.ha1Sha256 } : {}) },
  };
}
