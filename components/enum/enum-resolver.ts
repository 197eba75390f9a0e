// ENUM (RFC 6116): an E.164 number → NAPTR records (RFC 3403) under each configured suffix → SIP
// URIs, JIDs (RFC 6118 "E2U+xmpp") and tel: URIs.
//
// DNS is spoken directly with dns-packet over UDP (TCP when the answer is truncated) rather than with
// node's dns.resolveNaptr: the latter returns no TTL, and answers are cached by their TTL here. Each
// query has its own timeout, a random id, and an answer is only taken if its id and question match.
import type { Metrics } from "../../src/ports/metrics.js";
import { createSocket } from "node:dgram";
import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, isIP, isIPv6 } from "node:net";
import * as dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, NaptrData, Packet } from "dns-packet";

import { SwitchboardError } from "../../src/domain/errors.js";
import { formatJid } from "../../src/domain/jid.js";
import { parseSipUri } from "../../src/domain/sip-uri.js";
import { parseTelUri } from "../../src/domain/tel-uri.js";
import { parseXmppUri } from "../../src/domain/xmpp-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import { applyNaptrRegexp } from "./naptr-regexp.js";

/** Most NAPTR answers kept (a long-running bridge messages many numbers). */
const MAX_CACHED = 10_000;
export type EnumService = "sip" | "xmpp" | "tel";

export interface EnumNaptrRecord {
  order: number;
  preference: number;
  flags: string;
  service: string;
  regexp: string;
  replacement: string;
}

export interface EnumTarget {
  service: EnumService;
  /** `sip:`/`sips:` URI, the JID (scheme stripped) for xmpp, or the `tel:` URI. */
  uri: string;
  order: number;
  preference: number;
  suffix: string;
}

/** What one suffix's query gave. */
export interface EnumDomainOutcome {
  suffix: string;
  domain: string;
  answer: "records" | "no-records" | "error" | "not-needed";
  /** NAPTR records found, or the error text, or "NXDOMAIN"/"NODATA". */
  detail: string;
}

export interface EnumResult {
  /** The E.164 number, the Application Unique String (RFC 6116 §3.2.2). */
  number: string;
  /** One entry per configured suffix, in configured order. */
  domains: EnumDomainOutcome[];
  /** The suffix whose answer was used, or null when none had records. */
  suffix: string | null;
  /** That suffix's NAPTR records, sorted by order then preference (RFC 3403 §4.1). */
  records: EnumNaptrRecord[];
  /** Usable terminal records of the lowest order that has one, sorted by preference. */
  targets: EnumTarget[];
  /** What was tried, for `switchboard lookup`. */
  steps: string[];
}

export interface EnumResolverOptions {
  /** Cache hits and misses are counted here. */
  metrics?: Metrics;
  /** Suffixes in order of preference, e.g. ["e164.arpa", "e164.example.net"]. */
  suffixes: string[];
  /** `host:port` or `[v6]:port`; empty → the nameservers of /etc/resolv.conf on port 53. */
  servers: string[];
  /** Per query and server. */
  timeoutMs?: number;
  /** Upper bound for positive and negative cache entries. */
  maxCacheTtlSeconds?: number;
  log: Logger;
}

interface Server {
  host: string;
  port: number;
}

/** A query's answer as cached. */
interface NaptrAnswer {
  kind: "records" | "nxdomain" | "nodata";
  records: EnumNaptrRecord[];
  ttlSeconds: number;
  server: string;
}

type QueryOutcome = { ok: true; answer: NaptrAnswer; cached: boolean } | { ok: false; error: string };

/** Negative answers without an SOA are cached this long (RFC 2308 §5 wants the SOA minimum). */
const DEFAULT_NEGATIVE_TTL = 60;
const E164 = /^\+[1-9][0-9]{0,14}$/;

export function parseServer(text: string): Server {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) return { host: v6[1] ?? "", port: Number(v6[2] ?? 53) };
  if (isIPv6(text)) return { host: text, port: 53 };
  const m = /^([^:]+)(?::(\d+))?$/.exec(text);
  if (m === null)
    throw new SwitchboardError("bad-request", `ENUM: bad DNS server '${text}' (want host:port)`);
  const port = Number(m[2] ?? 53);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SwitchboardError("bad-request", `ENUM: bad port in DNS server '${text}'`);
  }
  return { host: m[1] ?? "", port };
}

function resolvConfServers(): Server[] {
  let text: string;
  try {
    text = readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    return [];
  }
  const servers: Server[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    // A scoped IPv6 address (fe80::1%eth0) is kept as is; dgram accepts the scope id.
    if (m?.[1]) servers.push({ host: m[1], port: 53 });
  }
  return servers;
}

const display = (s: Server): string => (isIPv6(s.host) ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`);

/** The ENUM domain (RFC 6116 §2.4): the digits reversed, dot-separated, under the suffix. */
export function enumDomainFor(e164: string, suffix: string): string {
  const digits = e164.replace(/[^0-9]/g, "");
  return `${[...digits].reverse().join(".")}.${suffix.replace(/\.$/, "")}`;
}

/**
 * Maps an Enumservice field to the service Switchboard handles. RFC 6116 §3.4.3: `E2U+type[:subtype]`
 * (several types joined by "+" are allowed, RFC 3761 §2.4.2); the RFC 2916 form is `sip+E2U`.
 */
export function enumService(field: string): EnumService | null {
  const lower = field.toLowerCase();
  if (lower === "sip+e2u") return "sip";
  if (!lower.startsWith("e2u+")) return null;
  for (const type of lower.slice(4).split("+")) {
    if (type === "sip") return "sip";
    if (type === "xmpp") return "xmpp";
    if (type === "pstn:tel" || type === "tel") return "tel";
  }
  return null;
}

export class EnumResolver {
  private readonly suffixes: string[];
  private readonly servers: Server[];
  private readonly timeoutMs: number;
  private readonly maxTtl: number;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly cache = new Map<string, { expires: number; answer: NaptrAnswer }>();
  private readonly inFlight = new Map<string, Promise<QueryOutcome>>();
  /** DNS messages sent (UDP and TCP), for tests and metrics. */
  queriesSent = 0;

  constructor(options: EnumResolverOptions) {
    if (options.suffixes.length === 0)
      throw new SwitchboardError("bad-request", "ENUM: no suffixes configured");
    this.suffixes = options.suffixes.map((s) => s.replace(/\.$/, "").toLowerCase());
    this.servers = options.servers.length > 0 ? options.servers.map(parseServer) : resolvConfServers();
    if (this.servers.length === 0) {
      throw new SwitchboardError(
        "bad-request",
        "ENUM: no DNS servers configured and none in /etc/resolv.conf",
      );
    }
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.maxTtl = options.maxCacheTtlSeconds ?? 3_600;
    this.log = options.log.child({ component: "enum" });
    this.metrics = options.metrics;
  }

  /**
   * Looks an E.164 number up under every suffix in parallel and uses the answer of the first suffix,
   * in configured order, that has NAPTR records (RFC 6116 §3.4: the suffixes are tried in order; a
   * later suffix that answers first does not win). Throws SwitchboardError when no suffix gave records
   * and at least one query failed (timeout, SERVFAIL), since the failed one might have had records.
   */
  async resolve(e164: string): Promise<EnumResult> {
    if (!E164.test(e164)) {
      throw new SwitchboardError(
        "malformed-address",
        `ENUM: '${e164}' is not an E.164 number (+ and 1–15 digits)`,
      );
    }
    const steps: string[] = [];
    const domains = this.suffixes.map((suffix) => ({ suffix, domain: enumDomainFor(e164, suffix) }));
    // Every query starts now; none rejects, so an answer nobody awaits is no dropped promise.
    const pending = domains.map(({ domain }) => this.query(domain));
    const outcomes: EnumDomainOutcome[] = domains.map((d) => ({ ...d, answer: "not-needed", detail: "" }));
    const errors: string[] = [];
    let chosen: { suffix: string; records: EnumNaptrRecord[] } | null = null;
    for (const [i, { suffix, domain }] of domains.entries()) {
      const outcome = await (pending[i] as Promise<QueryOutcome>);
      const entry = outcomes[i] as EnumDomainOutcome;
      if (!outcome.ok) {
        entry.answer = "error";
        entry.detail = outcome.error;
        errors.push(`${domain}: ${outcome.error}`);
        steps.push(`NAPTR ${domain}: error: ${outcome.error}`);
        continue;
      }
      const { answer, cached } = outcome;
      const from = cached ? "cache" : answer.server;
      if (answer.kind === "records") {
        entry.answer = "records";
        entry.detail = `${answer.records.length} record(s)`;
        steps.push(
          `NAPTR ${domain}: ${answer.records.length} record(s) (${from}, ttl ${answer.ttlSeconds}s)`,
        );
        chosen = { suffix, records: answer.records };
        break;
      }
      entry.answer = "no-records";
      entry.detail = answer.kind === "nxdomain" ? "NXDOMAIN" : "NODATA";
      steps.push(`NAPTR ${domain}: ${entry.detail} (${from})`);
    }

    if (chosen === null) {
      if (errors.length > 0) {
        const timeout = errors.every((e) => e.includes("timed out"));
        throw new SwitchboardError(
          timeout ? "remote-server-timeout" : "service-unavailable",
          `ENUM lookup of ${e164} failed: ${errors.join("; ")}`,
        );
      }
      return { number: e164, domains: outcomes, suffix: null, records: [], targets: [], steps };
    }
    const records = [...chosen.records].sort((a, b) => a.order - b.order || a.preference - b.preference);
    const targets = this.targetsOf(e164, chosen.suffix, records, steps);
    return { number: e164, domains: outcomes, suffix: chosen.suffix, records, targets, steps };
  }

  /**
   * RFC 3403 §4.1 processing for ENUM (RFC 6116 §3.2): records in order/preference; the lowest order
   * with a usable record wins, and all usable records of that order are returned by preference.
   */
  private targetsOf(e164: string, suffix: string, sorted: EnumNaptrRecord[], steps: string[]): EnumTarget[] {
    const targets: EnumTarget[] = [];
    for (const r of sorted) {
      const label = `NAPTR ${r.order} ${r.preference} "${r.flags}" "${r.service}" "${r.regexp}" ${r.replacement || "."}`;
      const first = targets[0];
      if (first !== undefined && r.order !== first.order) {
        steps.push(`${label}: skipped (order ${first.order} already answered)`);
        continue;
      }
      const skip = (why: string): void => {
        steps.push(`${label}: ${why}`);
      };
      const service = enumService(r.service);
      if (service === null) {
        skip("skipped (Enumservice not handled)");
        continue;
      }
      const flags = r.flags.toLowerCase();
      if (flags === "") {
        // RFC 6116 §3.4.1 lets a client follow a non-terminal rule to another domain; Switchboard
        // does not (one lookup, bounded time, no loops to detect), which §3.4.1 permits by making
        // following optional. The record is skipped and the next one tried.
        skip("ignored (non-terminal rule, not followed)");
        continue;
      }
      if (flags !== "u") {
        skip(`skipped (flags '${r.flags}' are not ENUM's terminal 'u')`);
        continue;
      }
      if (r.regexp === "") {
        skip("skipped (terminal rule without a regexp)");
        continue;
      }
      let uri: string | null;
      try {
        uri = applyNaptrRegexp(r.regexp, e164);
      } catch (err) {
        skip(`refused: ${(err as Error).message}`);
        continue;
      }
      if (uri === null) {
        skip(`skipped (regexp does not match ${e164})`);
        continue;
      }
      const checked = checkUri(service, uri);
      if ("problem" in checked) {
        skip(`skipped (${checked.problem})`);
        continue;
      }
      steps.push(`${label}: ${service} ${checked.uri}`);
      targets.push({ service, uri: checked.uri, order: r.order, preference: r.preference, suffix });
    }
    return targets;
  }

  /** One NAPTR lookup: cache, then the in-flight query, then the servers in order. Never rejects. */
  private query(domain: string): Promise<QueryOutcome> {
    const hit = this.cache.get(domain);
    if (hit !== undefined) {
      if (hit.expires > Date.now()) {
        this.log.debug({ domain, kind: hit.answer.kind }, "NAPTR answer from cache");
        this.metrics?.cacheLookup("enum", true);
        return Promise.resolve({ ok: true, answer: hit.answer, cached: true });
      }
      this.cache.delete(domain);
    }
    this.metrics?.cacheLookup("enum", false);
    const running = this.inFlight.get(domain);
    if (running !== undefined) return running;
    const started = this.queryServers(domain).finally(() => this.inFlight.delete(domain));
    this.inFlight.set(domain, started);
    return started;
  }

  private async queryServers(domain: string): Promise<QueryOutcome> {
    const errors: string[] = [];
    for (const server of this.servers) {
      try {
        const answer = await this.queryServer(domain, server);
        if (answer.ttlSeconds > 0) {
          this.cache.set(domain, { expires: Date.now() + answer.ttlSeconds * 1000, answer });
          // Bounded: expired entries go first, then the oldest (a Map keeps insertion order).
          if (this.cache.size > MAX_CACHED) {
            const now = Date.now();
            for (const [key, entry] of this.cache) if (entry.expires <= now) this.cache.delete(key);
            while (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value ?? "");
          }
        }
        return { ok: true, answer, cached: false };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.log.debug({ domain, server: display(server), err: message }, "NAPTR query failed");
        errors.push(`${display(server)} ${message}`);
      }
    }
    return { ok: false, error: errors.join(", ") };
  }

  private async queryServer(domain: string, server: Server): Promise<NaptrAnswer> {
    const id = randomInt(0, 0x10000);
    const query: Packet = {
      type: "query",
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "NAPTR", class: "IN", name: domain }],
    };
    let response = await this.exchangeUdp(query, domain, server);
    if (response.flag_tc) {
      // RFC 1035 §4.2.1 / RFC 7766: a truncated UDP answer is retried over TCP.
      this.log.debug({ domain, server: display(server) }, "NAPTR answer truncated, retrying over TCP");
      response = await this.exchangeTcp({ ...query, id: randomInt(0, 0x10000) }, domain, server);
    }
    return this.interpret(domain, server, response);
  }

  private interpret(domain: string, server: Server, response: DecodedPacket): NaptrAnswer {
    const rcode = (response as DecodedPacket & { rcode?: string }).rcode ?? "NOERROR";
    const serverName = display(server);
    if (rcode === "NXDOMAIN") {
      return { kind: "nxdomain", records: [], ttlSeconds: this.negativeTtl(response), server: serverName };
    }
    if (rcode !== "NOERROR") throw new Error(`answered ${rcode}`);
    // Follow CNAMEs inside the answer section (a recursive server puts the chain there).
    const names = new Set([domain.toLowerCase()]);
    for (const a of response.answers ?? []) {
      if (a.type === "CNAME" && names.has(a.name.toLowerCase())) names.add(a.data.toLowerCase());
    }
    const naptrs = (response.answers ?? []).filter(
      (a): a is Answer & { type: "NAPTR"; data: NaptrData } =>
        a.type === "NAPTR" && names.has(a.name.toLowerCase()),
    );
    if (naptrs.length === 0) {
      return { kind: "nodata", records: [], ttlSeconds: this.negativeTtl(response), server: serverName };
    }
    const ttl = Math.min(...naptrs.map((a) => a.ttl ?? 0));
    const records = naptrs.map(({ data }) => ({
      order: data.order,
      preference: data.preference,
      flags: data.flags,
      service: data.services,
      regexp: data.regexp,
      replacement: data.replacement === "." ? "" : data.replacement,
    }));
    return { kind: "records", records, ttlSeconds: Math.min(ttl, this.maxTtl), server: serverName };
  }

  /** RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM); without an SOA, 60 s. */
  private negativeTtl(response: DecodedPacket): number {
    const soa = (response.authorities ?? []).find((a) => a.type === "SOA");
    const ttl =
      soa?.type === "SOA"
        ? Math.min(soa.ttl ?? 0, soa.data.minimum ?? DEFAULT_NEGATIVE_TTL)
        : DEFAULT_NEGATIVE_TTL;
    return Math.min(ttl, this.maxTtl);
  }

  /** Takes only a response to this query: QR set, same id, same question (RFC 5452 §4.1). */
  private matches(response: DecodedPacket, id: number, domain: string): boolean {
    const q = response.questions?.[0];
    return (
      response.flag_qr &&
      response.id === id &&
      response.questions?.length === 1 &&
      q !== undefined &&
      q.type === "NAPTR" &&
      (q.class ?? "IN") === "IN" &&
      q.name.toLowerCase() === domain.toLowerCase()
    );
  }

  private exchangeUdp(query: Packet, domain: string, server: Server): Promise<DecodedPacket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket(isIPv6(server.host.replace(/%.*$/, "")) ? "udp6" : "udp4");
      let finished = false;
      const done = (err: Error | null, response?: DecodedPacket): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        socket.close();
        if (err !== null) reject(err);
        else resolve(response as DecodedPacket);
      };
      const timer = setTimeout(
        () => done(new Error(`timed out after ${this.timeoutMs} ms (UDP)`)),
        this.timeoutMs,
      );
      socket.on("error", (err) => done(err));
      socket.on("message", (msg, rinfo) => {
        // RFC 5452: only the server asked may answer (its address as well as its port).
        if (rinfo.port !== server.port) return;
        if (isIP(server.host.replace(/%.*$/, "")) !== 0 && rinfo.address !== server.host.replace(/%.*$/, ""))
          return;
        let response: DecodedPacket;
        try {
          response = dnsPacket.decode(msg);
        } catch {
          this.log.debug({ domain, server: display(server) }, "undecodable DNS message ignored");
          return;
        }
        // A mismatched answer may be spoofed or late; keep waiting for the right one.
        if (!this.matches(response, query.id ?? -1, domain)) {
          this.log.debug(
            { domain, server: display(server), id: response.id },
            "mismatched DNS answer ignored",
          );
          return;
        }
        done(null, response);
      });
      this.queriesSent++;
      this.log.debug({ domain, server: display(server), id: query.id, transport: "udp" }, "NAPTR query sent");
      socket.send(dnsPacket.encode(query), server.port, server.host, (err) => {
        if (err) done(err);
      });
    });
  }

  private exchangeTcp(query: Packet, domain: string, server: Server): Promise<DecodedPacket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: server.host, port: server.port });
      let buffered = Buffer.alloc(0);
      let finished = false;
      const done = (err: Error | null, response?: DecodedPacket): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        socket.destroy();
        if (err !== null) reject(err);
        else resolve(response as DecodedPacket);
      };
      const timer = setTimeout(
        () => done(new Error(`timed out after ${this.timeoutMs} ms (TCP)`)),
        this.timeoutMs,
      );
      socket.on("error", (err) => done(err));
      socket.on("connect", () => {
        this.queriesSent++;
        this.log.debug(
          { domain, server: display(server), id: query.id, transport: "tcp" },
          "NAPTR query sent",
        );
        socket.write(dnsPacket.streamEncode(query));
      });
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        // RFC 1035 §4.2.2: each message is preceded by its two-byte length.
        while (buffered.length >= 2) {
          const length = buffered.readUInt16BE(0);
          if (buffered.length < 2 + length) return;
          const message = buffered.subarray(2, 2 + length);
          buffered = buffered.subarray(2 + length);
          let response: DecodedPacket;
          try {
            response = dnsPacket.decode(message);
          } catch {
            done(new Error("undecodable DNS message over TCP"));
            return;
          }
          if (this.matches(response, query.id ?? -1, domain)) {
            done(null, response);
            return;
          }
        }
      });
      socket.on("end", () => done(new Error("connection closed before an answer (TCP)")));
    });
  }
}

function checkUri(service: EnumService, uri: string): { uri: string } | { problem: string } {
  try {
    if (service === "sip") {
      if (!/^sips?:/i.test(uri)) return { problem: `E2U+sip result '${uri}' is not a sip: URI` };
      parseSipUri(uri);
      return { uri };
    }
    if (service === "xmpp") {
      if (!/^xmpp:/i.test(uri)) return { problem: `E2U+xmpp result '${uri}' is not an xmpp: URI` };
      // RFC 6118 §4: the URI names an XMPP address; the bridge routes to the JID.
      return { uri: formatJid(parseXmppUri(uri).jid) };
    }
    if (!/^tel:/i.test(uri)) return { problem: `E2U+pstn:tel result '${uri}' is not a tel: URI` };
    parseTelUri(uri);
    return { uri };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}
