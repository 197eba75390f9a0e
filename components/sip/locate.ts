// Locating a SIP server by DNS (RFC 3263 §4) for requests the bridge sends without an outbound
// proxy: NAPTR picks the transport, SRV the hosts and ports, A/AAAA the addresses. The result is the
// ordered list of targets to try in turn; failing over between them (§4.3) is the caller's job.
import type { NaptrRecord, SrvRecord } from "node:dns";
import { isIP } from "node:net";
import { SwitchboardError } from "../../src/domain/errors.js";
import type { SipUri } from "../../src/domain/sip-uri.js";

export type SipTransport = "udp" | "tcp" | "tls";

export interface SipTarget {
  transport: SipTransport;
  /** An IP address, IPv6 without brackets, ready for a socket. */
  host: string;
  port: number;
}

/** The four lookups this needs; a `node:dns/promises` Resolver is one. */
export interface SipResolver {
  resolveNaptr(name: string): Promise<NaptrRecord[]>;
  resolveSrv(name: string): Promise<SrvRecord[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

export interface LocateOptions {
  /** E.g. `new Resolver({ timeout: 1000, tries: 2 })`, whose options bound each single query. */
  resolver: SipResolver;
  /** The transports the bridge can send over. */
  supported: readonly SipTransport[];
  /**
   * The request is too large for UDP (RFC 3261 §18.1.1: within 200 bytes of the path MTU, or over
   * 1300 bytes): TCP/TLS targets come first and UDP ones last.
   */
  preferReliable?: boolean;
  /** Overall limit for all queries of one location, in ms (default 5000). */
  timeoutMs?: number;
  /** For the weighted choice among SRV records of one priority (RFC 2782); Math.random by default. */
  random?: () => number;
}

const DEFAULT_TIMEOUT_MS = 5_000;

// RFC 3261 §19.1.2: 5060 for UDP and TCP, 5061 for TLS.
const DEFAULT_PORT: Record<SipTransport, number> = { udp: 5060, tcp: 5060, tls: 5061 };

// RFC 3263 §4.1 and the IANA registry of NAPTR services for SIP; SCTP and WebSocket are not ours.
const NAPTR_SERVICES: ReadonlyMap<string, SipTransport> = new Map([
  ["SIP+D2U", "udp"],
  ["SIP+D2T", "tcp"],
  ["SIPS+D2T", "tls"],
]);

// RFC 3263 §4.2: "_sips" for TLS, also when a SIP URI is sent over TLS.
const SRV_SERVICE: Record<SipTransport, string> = { udp: "_sip._udp", tcp: "_sip._tcp", tls: "_sips._tcp" };

// RFC 3263 §4.1: with nothing else to go on, UDP for a SIP URI (the one transport every SIP element
// has); a request too large for UDP goes over TCP instead (RFC 3261 §18.1.1).
const PREFERENCE: readonly SipTransport[] = ["udp", "tcp", "tls"];
const PREFERENCE_RELIABLE: readonly SipTransport[] = ["tcp", "tls", "udp"];

/**
 * The targets for a request to `uri`, in the order to try them. Throws SwitchboardError:
 * `remote-server-not-found` when DNS says there is no such server, `service-unavailable` when lookups failed
 * (timeout, SERVFAIL, REFUSED; the message names them), `feature-not-implemented` when the URI asks
 * for a transport the bridge cannot send over, `bad-request` for `sips:` with `transport=udp`.
 */
export async function locateSipServer(uri: SipUri, options: LocateOptions): Promise<SipTarget[]> {
  const preferReliable = options.preferReliable ?? false;
  const explicit = explicitTransport(uri);
  const candidates = candidateTransports(uri, explicit, options.supported, preferReliable);
  // §4: an maddr parameter, when it has a value, names the server to contact instead of the host.
  const target = uri.params.get("maddr") ?? uri.host;

  // The transport parameter's when there is one, else §4.1's default (UDP for SIP, TLS for SIPS).
  const preferred = candidates[0];

  // §4.1, §4.2: a numeric address needs no DNS at all.
  const ip = ipLiteral(target);
  if (ip !== null) return [{ transport: preferred, host: ip, port: uri.port ?? DEFAULT_PORT[preferred] }];

  const lookup = new Lookup(options.resolver, Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS));
  let targets: SipTarget[];
  if (uri.port !== null) {
    // §4.2: an explicit port means the host is not a domain with SIP services but a host: A/AAAA only.
    targets = await lookup.addresses(target, preferred, uri.port);
  } else if (explicit !== null) {
    // §4.1: a transport parameter skips NAPTR; §4.2: SRV for that transport, else the host itself.
    targets = await lookup.srv(`${SRV_SERVICE[explicit]}.${target}`, explicit, options.random);
    if (targets.length === 0) targets = await lookup.addresses(target, explicit, DEFAULT_PORT[explicit]);
  } else {
    targets = await lookup.naptr(target, candidates, options.random);
    if (targets.length === 0) {
      // §4.1: no usable NAPTR records (or none that led to an address): an SRV query per supported
      // transport, in our own order of preference, which §4.1 leaves to the client.
      const perTransport = await Promise.all(
        candidates.map((t) => lookup.srv(`${SRV_SERVICE[t]}.${target}`, t, options.random)),
      );
      targets = perTransport.flat();
    }
    if (targets.length === 0) {
      // §4.2: no SRV records: the host's addresses at the transport's default port.
      targets = await lookup.addresses(target, preferred, DEFAULT_PORT[preferred]);
    }
  }

  if (targets.length === 0) {
    const where = `${uri.scheme}:${target}${uri.port !== null ? `:${uri.port}` : ""}`;
    if (lookup.failures.length === 0) {
      throw new SwitchboardError(
        "remote-server-not-found",
        `no SIP server found for ${where} in DNS (RFC 3263)`,
      );
    }
    throw new SwitchboardError(
      "service-unavailable",
      `no SIP server found for ${where}; DNS lookups failed: ${lookup.failures.join("; ")}`,
    );
  }
  return reliableFirst(unique(targets), preferReliable);
}

/** The transport demanded by the URI's `transport` parameter (RFC 3261 §19.1.1), or null. */
function explicitTransport(uri: SipUri): SipTransport | null {
  if (!uri.params.has("transport")) return null;
  const value = uri.params.get("transport")?.toLowerCase();
  const secure = uri.scheme === "sips";
  // RFC 3261 §26.2.2: a SIPS URI is always TLS, so `transport=tcp` there means TLS over TCP;
  // `transport=tls` is the older spelling of TLS (deprecated by RFC 5630) that some URIs still carry.
  if (value === "tls" || (secure && value === "tcp")) return "tls";
  if (secure && value === "udp") {
    throw new SwitchboardError("bad-request", `sips: URI with transport=udp cannot be sent over TLS`);
  }
  if (value === "udp" || value === "tcp") return value;
  throw new SwitchboardError("feature-not-implemented", `cannot send over transport=${value ?? "(empty)"}`);
}

/**
 * The transports this URI may use, most preferred first: TLS only for a SIPS URI (RFC 3263 §4.1);
 * for a SIP URI all we support, TLS included (§4.1 allows it for "security better than none").
 * Throws when the URI demands a transport we cannot send over.
 */
function candidateTransports(
  uri: SipUri,
  explicit: SipTransport | null,
  supported: readonly SipTransport[],
  preferReliable: boolean,
): [SipTransport, ...SipTransport[]] {
  const allowed = explicit !== null ? [explicit] : uri.scheme === "sips" ? ["tls"] : PREFERENCE;
  const candidates = (preferReliable ? PREFERENCE_RELIABLE : PREFERENCE).filter(
    (t) => allowed.includes(t) && supported.includes(t),
  );
  const [head, ...rest] = candidates;
  if (head === undefined) {
    throw new SwitchboardError(
      "feature-not-implemented",
      `cannot send to ${uri.scheme}:${uri.host} over ${allowed.join("/")} (supported: ${supported.join(", ") || "none"})`,
    );
  }
  return [head, ...rest];
}

/** The address of a numeric host (`192.0.2.1`, `[2001:db8::1]`) without brackets, else null. */
function ipLiteral(host: string): string | null {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return isIP(bare) !== 0 ? bare : null;
}

function unique(targets: SipTarget[]): SipTarget[] {
  const seen = new Set<string>();
  return targets.filter((t) => {
    const key = `${t.transport}|${t.host}|${t.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** RFC 3261 §18.1.1: a large request must go over a congestion-controlled transport; UDP last. */
function reliableFirst(targets: SipTarget[], preferReliable: boolean): SipTarget[] {
  if (!preferReliable) return targets;
  return [...targets.filter((t) => t.transport !== "udp"), ...targets.filter((t) => t.transport === "udp")];
}

/**
 * RFC 2782 "Usage rules": lowest priority first; within a priority, a weighted random order where
 * a record's chance of coming next is its share of the remaining weight, and weight 0 is a last
 * resort (placed first in the running sum, so it is picked only on a draw of exactly 0).
 */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const ordered: SrvRecord[] = [];
  for (const priority of priorities) {
    // Any order is allowed before the draw; a fixed one makes an injected `random` reproducible.
    const pool = records
      .filter((r) => r.priority === priority)
      .sort((a, b) => a.weight - b.weight || a.name.localeCompare(b.name) || a.port - b.port);
    while (pool.length > 0) {
      const total = pool.reduce((sum, r) => sum + r.weight, 0);
      const draw = random() * total;
      let running = 0;
      const index = pool.findIndex((r) => (running += r.weight) >= draw);
      ordered.push(...pool.splice(index < 0 ? pool.length - 1 : index, 1));
    }
  }
  return ordered;
}

/**
 * The queries of one location, all under one deadline. NXDOMAIN and NODATA mean "no records"; any
 * other failure also yields no records, so the next step of §4 is tried, but is kept for the error.
 */
class Lookup {
  readonly failures: string[] = [];

  constructor(
    private readonly resolver: SipResolver,
    private readonly deadline: number,
  ) {}

  /** §4.1: NAPTR records with flag "s" and a service we can use, by order then preference, each via SRV. */
  async naptr(
    name: string,
    candidates: readonly SipTransport[],
    random?: () => number,
  ): Promise<SipTarget[]> {
    const records = await this.query("NAPTR", name, (n) => this.resolver.resolveNaptr(n));
    // RFC 3403 §4.1: lower order first, then lower preference. Anything but flag "s" (go to SRV) has
    // no meaning for SIP; a SIPS URI keeps only SIPS services because TLS is its only candidate.
    const usable = records
      .map((r) => ({ record: r, transport: NAPTR_SERVICES.get(r.service.toUpperCase()) }))
      .filter(
        (u): u is { record: NaptrRecord; transport: SipTransport } =>
          u.transport !== undefined &&
          candidates.includes(u.transport) &&
          u.record.flags.toLowerCase() === "s" &&
          u.record.replacement !== "" &&
          u.record.replacement !== ".",
      )
      .sort((a, b) => a.record.order - b.record.order || a.record.preference - b.record.preference);
    const perRecord = await Promise.all(
      usable.map((u) => this.srv(u.record.replacement, u.transport, random)),
    );
    return perRecord.flat();
  }

  /** SRV records in RFC 2782 order, each target resolved to its addresses at the record's port. */
  async srv(name: string, transport: SipTransport, random?: () => number): Promise<SipTarget[]> {
    const records = await this.query("SRV", name, (n) => this.resolver.resolveSrv(n));
    // RFC 2782: a target of "." means the service is decidedly not available at this domain.
    const usable = records.filter((r) => r.name !== "" && r.name !== ".");
    const perRecord = await Promise.all(
      orderSrv(usable, random).map((r) => this.addresses(r.name, transport, r.port)),
    );
    return perRecord.flat();
  }

  /** A then AAAA records of `name`. */
  async addresses(name: string, transport: SipTransport, port: number): Promise<SipTarget[]> {
    const [v4, v6] = await Promise.all([
      this.query("A", name, (n) => this.resolver.resolve4(n)),
      this.query("AAAA", name, (n) => this.resolver.resolve6(n)),
    ]);
    return [...v4, ...v6].map((host) => ({ transport, host, port }));
  }

  private async query<T>(type: string, name: string, run: (name: string) => Promise<T[]>): Promise<T[]> {
    const remaining = this.deadline - Date.now();
    if (remaining <= 0) {
      this.failures.push(`${type} ${name}: ETIMEOUT (overall limit)`);
      return [];
    }
    let timer: NodeJS.Timeout | undefined;
    // The Resolver bounds each query itself; this also bounds the whole location, whatever the
    // Resolver's timeout and tries. A query still running afterwards is left to its own timeout.
    const overall = new Promise<"deadline">((resolve) => {
      timer = setTimeout(() => resolve("deadline"), remaining);
    });
    try {
      const result = await Promise.race([run(name), overall]);
      if (result === "deadline") {
        this.failures.push(`${type} ${name}: ETIMEOUT (overall limit)`);
        return [];
      }
      return result;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENODATA" || code === "ENOTFOUND") return [];
      this.failures.push(`${type} ${name}: ${code ?? String(err)}`);
      return [];
    } finally {
      clearTimeout(timer);
    }
  }
}
