// The LDAP adapter of the directory port: who a person is, looked up by number, extension, uid,
// mail, JID or SIP URI in an LDAP directory (ldapts; RFC 4511 operations, RFC 4513 simple bind
// and StartTLS).
//
// Filters are ldapts filter objects, encoded to BER by the library (RFC 4511 §4.5.1.7): a value
// never passes through the RFC 4515 string parser, so `*)(uid=*` is just an odd value that matches
// nothing.
//
// Numbers: the input is normalised to E.164 with the configured region; the search asks for the
// entries whose telephoneNumber ends with the number's last digits (a final-substring assertion,
// which telephoneNumberSubstringsMatch evaluates ignoring spaces and hyphens, RFC 4517 §4.2.30, and
// the stock `sub` index answers), OR-ed with equality on the E.164 and national written forms
// (telephoneNumberMatch, §4.2.29). Every value returned is then normalised in code and compared
// with the E.164 form, so `020 7123 4568`, `+44 20 7123 4568` and `+442071234568` all match and a
// number that merely shares its tail does not. This needs no local copy of the directory (which a
// TTL-refreshed index would, and which goes stale between refreshes).
//
// One client is reused; it is dropped and rebuilt (connect, StartTLS, bind) after any connection
// failure or timeout. Answers are cached (positive and negative TTL), identical concurrent lookups
// share one search, and while the server is unreachable an expired answer is still served up to
// `staleMaxMs`; a lookup with nothing cached fails with `service-unavailable`.
import type { Metrics } from "../../src/ports/metrics.js";
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import {
  Client,
  EqualityFilter,
  OrFilter,
  PresenceFilter,
  ResultCodeError,
  SubstringFilter,
  type Entry,
  type Filter,
} from "ldapts";
import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { SwitchboardError } from "../../src/domain/errors.js";
import { isExtension, toE164 } from "../../src/domain/phone-number.js";
import type { Directory, DirectoryEntry } from "../../src/ports/directory.js";
import type { Logger } from "../../src/ports/logger.js";

/** Attribute names in the directory (config `ldap.attributes`). */
export interface LdapAttributeMap {
  uid: string;
  mail: string;
  telephoneNumber: string;
  extension: string;
  displayName: string;
  sipUri: string;
  jid: string;
  ha1: string;
}

export interface LdapDirectoryOptions {
  /** `ldap://host:port` or `ldaps://host:port`. */
  url: string;
  /** Cache hits and misses are counted here. */
  metrics?: Metrics;
  /** Absent: anonymous. */
  bindDN?: string;
  password?: string;
  /** Search base, e.g. `ou=people,dc=example,dc=org`. */
  base: string;
  attributes: LdapAttributeMap;
  /** Region for numbers written without a country code (`enum.defaultRegion`), e.g. `GB`. */
  defaultRegion: string;
  /** The bridge's home domain: `alice@<homeDomain>` is uid alice. */
  homeDomain: string;
  log: Logger;
  /** Upgrade an `ldap://` connection with StartTLS (RFC 4513 §3) before binding. */
  startTls?: boolean;
  /** PEM file of the CA(s) to trust for `ldaps://` and StartTLS; absent: the system's CAs. */
  tlsCa?: string;
  /** Bound on connect + StartTLS + bind + search, per request. */
  timeoutMs?: number;
  cacheTtlMs?: number;
  negativeTtlMs?: number;
  /** How long past its TTL a cached answer may still be served while the server is unreachable. */
  staleMaxMs?: number;
  /**
   * After a connection failure, lookups fail (or are served stale) at once for this long instead
   * of each waiting for a dead server.
   */
  retryMs?: number;
  /** Most entries `entries()` returns. */
  maxEntries?: number;
  /** Most cached answers kept (oldest dropped first). */
  maxCached?: number;
}

/** What a lookup searches by. */
export type LookupKind = "number" | "extension" | "uid" | "mail" | "jid" | "sipUri" | "address";

interface Cached<T> {
  value: T;
  storedAt: number;
}

/** The mapping from an LDAP entry to a DirectoryEntry: null when the entry has no uid. */
export function ldapToDirectoryEntry(entry: Entry, attributes: LdapAttributeMap): DirectoryEntry | null {
  // Attribute descriptions are case-insensitive (RFC 4512 §2.5); servers echo their own spelling.
  const byName = new Map<string, string[]>();
  for (const [name, value] of Object.entries(entry)) {
    if (name === "dn") continue;
    const values = (Array.isArray(value) ? value : [value]).map((v) =>
      Buffer.isBuffer(v) ? v.toString("utf8") : String(v),
    );
    byName.set(name.toLowerCase(), values);
  }
  const all = (attribute: string): string[] => byName.get(attribute.toLowerCase()) ?? [];
  const first = (attribute: string): string | undefined => all(attribute)[0];
  const uid = first(attributes.uid);
  if (!uid) return null;
  const result: DirectoryEntry = {
    uid,
    displayName: first(attributes.displayName) ?? first("cn") ?? uid,
    numbers: all(attributes.telephoneNumber),
  };
  const extension = first(attributes.extension);
  if (extension) result.extension = extension;
  const sipUri = first(attributes.sipUri);
  if (sipUri) result.sipUri = sipUri;
  const jid = first(attributes.jid);
  if (jid) result.jid = jid;
  const mail = first(attributes.mail);
  if (mail) result.mail = mail;
  // Present only when the bind DN may read it. HA1 is as good as a password for SIP digest: the
  // directory must protect it with an ACL that lets only the bridge's bind DN read it
  // (config/ldap/switchboard.schema shows one).
  const ha1 = first(attributes.ha1);
  if (ha1) result.ha1 = ha1;
  return result;
}

/** Written forms a directory may hold for an E.164 number, compared with telephoneNumberMatch. */
function writtenForms(e164: string, defaultRegion: string): string[] {
  const forms = new Set([e164]);
  const parsed = parsePhoneNumberFromString(e164);
  if (parsed && parsed.country === defaultRegion.toUpperCase()) {
    // National format (`020 7123 4568`); telephoneNumberMatch ignores its spaces and hyphens.
    forms.add(parsed.formatNational().replace(/[^0-9+]/g, ""));
  }
  return [...forms];
}

/** The last digits of a number, used as the final substring of the search. */
const TAIL_DIGITS = 7;

export class LdapDirectory implements Directory {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private readonly cache = new Map<string, Cached<unknown>>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly ca: Buffer | undefined;
  private closed = false;
  private searchCount = 0;
  /** Set after a connection failure: until `until`, fail with `reason` without trying. */
  private down: { until: number; reason: string } | null = null;

  private constructor(
    private readonly options: Required<
      Omit<LdapDirectoryOptions, "bindDN" | "password" | "tlsCa" | "startTls" | "metrics">
    > &
      LdapDirectoryOptions,
    private readonly log: Logger,
  ) {
    this.ca = options.tlsCa === undefined ? undefined : readFileSync(options.tlsCa);
  }

  static create(options: LdapDirectoryOptions): LdapDirectory {
    const url = new URL(options.url);
    if (url.protocol !== "ldap:" && url.protocol !== "ldaps:") {
      throw new SwitchboardError("bad-request", `LDAP url ${options.url}: expected ldap:// or ldaps://`);
    }
    if (options.startTls && url.protocol === "ldaps:") {
      throw new SwitchboardError(
        "bad-request",
        `LDAP url ${options.url}: StartTLS is for ldap://, not ldaps://`,
      );
    }
    return new LdapDirectory(
      {
        timeoutMs: 3_000,
        cacheTtlMs: 60_000,
        negativeTtlMs: 10_000,
        staleMaxMs: 3_600_000,
        retryMs: 1_000,
        maxEntries: 1_000,
        maxCached: 10_000,
        ...options,
      },
      options.log.child({ component: "ldap", url: options.url }),
    );
  }

  /**
   * False since the last search failed to reach the server (until one succeeds again). Lookups go
   * to LDAP only on cache misses, so this is the server as last seen, not a live probe.
   */
  get reachable(): boolean {
    return this.down === null;
  }

  /** Searches sent to the server so far (cache hits and coalesced lookups do not count). */
  get searches(): number {
    return this.searchCount;
  }

  // --- Directory port -----------------------------------------------------------------------

  /**
   * A person by any key: `sip:`/`sips:` URI, `xmpp:` URI or JID, `uid@homeDomain`, mail, an
   * extension, a phone number in any format (`tel:` too), or a bare uid.
   */
  findPerson(person: string): Promise<DirectoryEntry | null> {
    const key = person.trim();
    if (/^sips?:/i.test(key)) return this.findBySipUri(key);
    if (/^xmpp:/i.test(key)) return this.findByJid(key.slice("xmpp:".length));
    if (/^tel:/i.test(key)) return this.findByNumber(key.slice("tel:".length).split(";")[0] ?? "");
    if (key.includes("@")) return this.findByAddress(key);
    if (isExtension(key)) return this.findByExtension(key);
    if (toE164(key, this.options.defaultRegion) !== null) return this.findByNumber(key);
    return this.findByUid(key);
  }

  entries(): Promise<DirectoryEntry[]> {
    return this.cached("entries", "", true, () => this.listAll());
  }

  // --- Explicit lookups ---------------------------------------------------------------------

  /** By phone number in any format; matched after E.164 normalisation. */
  findByNumber(number: string): Promise<DirectoryEntry | null> {
    const e164 = toE164(number, this.options.defaultRegion);
    if (e164 === null) return Promise.resolve(null);
    const a = this.options.attributes;
    const filter = new OrFilter({
      filters: [
        new SubstringFilter({ attribute: a.telephoneNumber, final: e164.slice(-TAIL_DIGITS) }),
        ...writtenForms(e164, this.options.defaultRegion).map(
          (value) => new EqualityFilter({ attribute: a.telephoneNumber, value }),
        ),
      ],
    });
    return this.lookup("number", e164, filter, (entry) =>
      entry.numbers.some((n) => toE164(n, this.options.defaultRegion) === e164),
    );
  }

  findByExtension(extension: string): Promise<DirectoryEntry | null> {
    const value = extension.trim();
    return this.lookup(
      "extension",
      value,
      new EqualityFilter({ attribute: this.options.attributes.extension, value }),
    );
  }

  findByUid(uid: string): Promise<DirectoryEntry | null> {
    const value = uid.trim();
    return this.lookup("uid", value, new EqualityFilter({ attribute: this.options.attributes.uid, value }));
  }

  findByMail(mail: string): Promise<DirectoryEntry | null> {
    const value = mail.trim().toLowerCase();
    return this.lookup("mail", value, new EqualityFilter({ attribute: this.options.attributes.mail, value }));
  }

  /** By bare JID (a resource is ignored). */
  findByJid(jid: string): Promise<DirectoryEntry | null> {
    const value = (jid.trim().split("/")[0] ?? "").toLowerCase();
    return this.lookup("jid", value, new EqualityFilter({ attribute: this.options.attributes.jid, value }));
  }

  /** By SIP URI (`sip:alice@example.org`; URI parameters are ignored). */
  findBySipUri(uri: string): Promise<DirectoryEntry | null> {
    const value = (uri.trim().split(/[;?]/)[0] ?? "").replace(/^sips:/i, "sip:");
    const a = this.options.attributes;
    const filters: Filter[] = [new EqualityFilter({ attribute: a.sipUri, value })];
    const local = this.homeLocalPart(value.slice("sip:".length));
    if (local !== null) filters.push(new EqualityFilter({ attribute: a.uid, value: local }));
    return this.lookup(
      "sipUri",
      value.toLowerCase(),
      new OrFilter({ filters }),
      undefined,
      (entry) => entry.sipUri?.toLowerCase() === value.toLowerCase(),
    );
  }

  /** `user@domain`: uid at the home domain, or a mail address or JID. */
  private findByAddress(address: string): Promise<DirectoryEntry | null> {
    const value = address.toLowerCase();
    const a = this.options.attributes;
    const filters: Filter[] = [
      new EqualityFilter({ attribute: a.mail, value }),
      new EqualityFilter({ attribute: a.jid, value }),
    ];
    const local = this.homeLocalPart(value);
    if (local !== null) filters.push(new EqualityFilter({ attribute: a.uid, value: local }));
    return this.lookup(
      "address",
      value,
      new OrFilter({ filters }),
      undefined,
      (entry) => entry.jid?.toLowerCase() === value || entry.mail?.toLowerCase() === value,
    );
  }

  private homeLocalPart(address: string): string | null {
    const at = address.lastIndexOf("@");
    if (at <= 0) return null;
    return address.slice(at + 1).toLowerCase() === this.options.homeDomain.toLowerCase()
      ? address.slice(0, at)
      : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.dropClient();
  }

  // --- Cache ----------------------------------------------------------------------------------

  /**
   * One search answered from the cache, a search already in flight, or the server. `accept`
   * filters the entries the server returned; `prefer` picks among several accepted ones.
   */
  private lookup(
    kind: LookupKind,
    value: string,
    filter: Filter,
    accept: (entry: DirectoryEntry) => boolean = () => true,
    prefer?: (entry: DirectoryEntry) => boolean,
  ): Promise<DirectoryEntry | null> {
    if (value === "") return Promise.resolve(null);
    return this.cached(kind, value, false, async () => {
      const found = (await this.search(filter, 0, { kind, value })).filter(accept);
      if (found.length > 1) {
        this.log.warn(
          { kind, value, uids: found.map((e) => e.uid) },
          "ldap: several entries match; using the first",
        );
      }
      return (prefer && found.find(prefer)) ?? found[0] ?? null;
    });
  }

  private async cached<T>(kind: string, value: string, listing: boolean, load: () => Promise<T>): Promise<T> {
    const key = `${kind}\u0000${value}`;
    const hit = this.cache.get(key) as Cached<T> | undefined;
    const now = Date.now();
    if (hit) {
      const ttl = hit.value === null ? this.options.negativeTtlMs : this.options.cacheTtlMs;
      if (now - hit.storedAt < ttl) {
        this.options.metrics?.cacheLookup("ldap", true);
        return hit.value;
      }
    }
    this.options.metrics?.cacheLookup("ldap", false);
    const pending = this.inFlight.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const attempt = (async () => {
      try {
        const value = await load();
        this.store(key, value);
        return value;
      } catch (err) {
        const stale = this.cache.get(key) as Cached<T> | undefined;
        const ttl = stale?.value === null ? this.options.negativeTtlMs : this.options.cacheTtlMs;
        if (stale && Date.now() - stale.storedAt < ttl + this.options.staleMaxMs) {
          this.log.warn(
            {
              kind,
              value: listing ? undefined : value,
              ageMs: Date.now() - stale.storedAt,
              err: String(err),
            },
            "ldap: server unreachable, serving a stale answer",
          );
          return stale.value;
        }
        throw err;
      }
    })();
    this.inFlight.set(key, attempt);
    try {
      return await attempt;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private store(key: string, value: unknown): void {
    this.cache.delete(key); // re-inserted last: Map order is the eviction order
    this.cache.set(key, { value, storedAt: Date.now() });
    while (this.cache.size > this.options.maxCached) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }

  // --- Server ---------------------------------------------------------------------------------

  private get attributeList(): string[] {
    const a = this.options.attributes;
    return [a.uid, a.displayName, "cn", a.telephoneNumber, a.extension, a.sipUri, a.jid, a.mail, a.ha1];
  }

  private async listAll(): Promise<DirectoryEntry[]> {
    const entries = await this.search(
      new PresenceFilter({ attribute: this.options.attributes.uid }),
      this.options.maxEntries,
      { kind: "entries" },
    );
    return entries;
  }

  /** One search, bounded by `timeoutMs` including any reconnect; errors become service-unavailable. */
  private async search(filter: Filter, sizeLimit: number, context: object): Promise<DirectoryEntry[]> {
    if (this.closed) throw new SwitchboardError("service-unavailable", `LDAP ${this.options.url} closed`);
    if (this.down && Date.now() < this.down.until) {
      throw new SwitchboardError(
        "service-unavailable",
        `LDAP ${this.options.url} unreachable: ${this.down.reason} (retrying in ${this.down.until - Date.now()} ms)`,
      );
    }
    this.searchCount += 1;
    this.log.debug({ ...context, filter: filter.toString() }, "ldap: search");
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out: no answer within ${this.options.timeoutMs} ms`)),
        this.options.timeoutMs,
      );
    });
    try {
      const found = await Promise.race([this.searchOnce(filter, sizeLimit), expired]);
      this.down = null;
      return found;
    } catch (err) {
      if (err instanceof ResultCodeError && isAnswer(err)) {
        // The server answered (e.g. no such base, size limit): the connection is fine.
        throw new SwitchboardError("internal-server-error", `LDAP ${this.options.url}: ${err.message}`, {
          cause: err,
        });
      }
      await this.dropClient();
      const reason = describe(err);
      this.down = { until: Date.now() + this.options.retryMs, reason };
      this.log.warn({ ...context, err: reason }, "ldap: search failed");
      throw new SwitchboardError("service-unavailable", `LDAP ${this.options.url} unreachable: ${reason}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private async searchOnce(filter: Filter, sizeLimit: number): Promise<DirectoryEntry[]> {
    const client = await this.connected();
    const results: DirectoryEntry[] = [];
    const add = (entries: Entry[]): boolean => {
      for (const entry of entries) {
        const mapped = ldapToDirectoryEntry(entry, this.options.attributes);
        if (mapped) results.push(mapped);
        if (sizeLimit > 0 && results.length >= sizeLimit) return false;
      }
      return true;
    };
    if (sizeLimit > 0) {
      // Listing: paged (RFC 2696) so large directories come in bounded pieces, cut at sizeLimit.
      for await (const page of client.searchPaginated(this.options.base, {
        scope: "sub",
        filter,
        attributes: this.attributeList,
        paged: { pageSize: Math.min(200, sizeLimit) },
      })) {
        if (!add(page.searchEntries)) {
          this.log.warn({ limit: sizeLimit }, "ldap: directory listing truncated");
          break;
        }
      }
    } else {
      const { searchEntries } = await client.search(this.options.base, {
        scope: "sub",
        filter,
        attributes: this.attributeList,
        sizeLimit: 50,
      });
      add(searchEntries);
    }
    return results;
  }

  /** The shared client, connected (and upgraded and bound) once; rebuilt after a failure. */
  private async connected(): Promise<Client> {
    if (this.client?.isConnected) return this.client;
    if (this.client) await this.dropClient(); // the socket closed under us: bind state is lost
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const url = new URL(this.options.url);
    const tlsOptions: ConnectionOptions = {
      ...(this.ca ? { ca: this.ca } : {}),
      // Certificate name checked against the URL's host (RFC 4513 §3.1.3).
      host: url.hostname.replace(/^\[|\]$/g, ""),
    };
    const client = new Client({
      url: this.options.url,
      timeout: this.options.timeoutMs,
      connectTimeout: this.options.timeoutMs,
      // ldapts connects with TLS whenever tlsOptions are given, so only for ldaps://.
      ...(url.protocol === "ldaps:" ? { tlsOptions } : {}),
    });
    // The whole connection (TCP, StartTLS, bind) is bounded: ldapts puts no timer on the TLS
    // handshake, and a connection stuck half-way must not hold every later lookup.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ConnectError(`connecting timed out after ${this.options.timeoutMs} ms`)),
        this.options.timeoutMs,
      );
    });
    try {
      await Promise.race([this.handshake(client, tlsOptions), deadline]);
      if (this.closed) throw new ConnectError("closed while connecting");
    } catch (err) {
      await Promise.race([
        client.unbind().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 200).unref()),
      ]);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.client = client;
    this.log.info({ startTls: this.options.startTls ?? false }, "ldap: connected");
    return client;
  }

  /** StartTLS (when configured) and the simple bind, on a new client. */
  private async handshake(client: Client, tlsOptions: ConnectionOptions): Promise<void> {
    if (this.options.startTls) {
      try {
        await client.startTLS({ ...tlsOptions });
      } catch (err) {
        throw new ConnectError(`StartTLS failed: ${describe(err)}`, { cause: err });
      }
    }
    if (this.options.bindDN) {
      // Simple bind (RFC 4513 §5.1.3); anonymous when no DN is configured.
      try {
        await client.bind(this.options.bindDN, this.options.password ?? "");
      } catch (err) {
        // A refused connection is reported as such; a bind result code (e.g. 49) says why.
        if (!(err instanceof ResultCodeError)) throw err;
        throw new ConnectError(`bind as ${this.options.bindDN} failed: ${describe(err)}`, { cause: err });
      }
    }
  }

  private async dropClient(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (!client) return;
    // unbind waits for nothing from the server, but a halted peer can stall the write: bound it.
    await Promise.race([
      client.unbind().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, 200).unref()),
    ]);
  }
}

/** A failure while connecting, upgrading or binding: the server is not usable. */
class ConnectError extends Error {
  override name = "ConnectError";
}

/** Result codes that say the server answered and the connection is healthy. */
function isAnswer(err: ResultCodeError): boolean {
  // 51 busy, 52 unavailable, 80 other: treat as the server being unusable.
  return ![51, 52, 80].includes(err.code);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
