// PUBLISH for `Event: presence` (RFC 3903): a phone or softphone says what state its user is in.
// Each publication is a `sip-publish` presence source with its expiry; the entity tag changes on
// every refresh and modification (§4), and a publication is removed with `Expires: 0` or when it
// expires.
import { SwitchboardError } from "../../src/domain/errors.js";
import { homeIdentity, type GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { pidfState } from "./pidf.js";
import type { SipRequest } from "./sip-message.js";
import { randomToken } from "../../src/util/random-token.js";

export interface PublishLimits {
  /** Shorter requested Expires get 423 (RFC 3903 §6 step 5). */
  minExpires: number;
  /** Longer ones are cut to this; also the default when Expires is absent. */
  maxExpires: number;
}

export const DEFAULT_PUBLISH_LIMITS: PublishLimits = { minExpires: 60, maxExpires: 3600 };

export interface PublishAnswer {
  status: number;
  reason?: string;
  headers?: [string, string][];
}

interface Publication {
  person: string;
  /** The source id stays the first entity tag: one publication is one source however often refreshed. */
  source: { kind: "sip-publish"; etag: string };
  timer?: NodeJS.Timeout;
}

export class PublishHandler {
  /** By current entity tag. */
  private readonly publications = new Map<string, Publication>();

  constructor(
    private readonly presence: PresenceService,
    private readonly domains: GatewayDomains,
    private readonly log: Logger,
    private readonly limits: PublishLimits = DEFAULT_PUBLISH_LIMITS,
  ) {}

  /**
   * `publisher`: the digest-authenticated sender, who may publish only their own presence; absent
   * for a trusted peer (a proxy or PBX publishing on its users' behalf).
   */
  async handle(request: SipRequest, publisher?: SipUri): Promise<PublishAnswer> {
    const event = (request.getHeader("Event") ?? "").split(";")[0]?.trim().toLowerCase();
    if (event !== "presence") return { status: 489, headers: [["Allow-Events", "presence"]] };
    const expiresHeader = request.getHeader("Expires");
    const requested = expiresHeader === undefined ? this.limits.maxExpires : Number(expiresHeader.trim());
    if (!Number.isInteger(requested) || requested < 0) return { status: 400, reason: "Bad Expires" };
    if (requested > 0 && requested < this.limits.minExpires) {
      return { status: 423, headers: [["Min-Expires", String(this.limits.minExpires)]] };
    }
    const expires = Math.min(requested, this.limits.maxExpires);
    const ifMatch = request.getHeader("SIP-If-Match")?.trim();
    const body = request.body ?? "";

    let person: string | null;
    try {
      person = homeIdentity(
        { kind: "sip", uri: parseSipUri(request.ruri?.toString() ?? "") },
        this.domains.homeDomain,
      );
    } catch {
      person = null;
    }
    if (person === null) return { status: 404, reason: "Not a user of this domain" };
    person = `${person}@${this.domains.homeDomain}`;
    if (
      publisher &&
      homeIdentity({ kind: "sip", uri: publisher }, this.domains.homeDomain) !== person.split("@")[0]
    ) {
      return { status: 403, reason: "You may publish only your own presence" };
    }

    let publication: Publication | undefined;
    if (ifMatch !== undefined) {
      publication = this.publications.get(ifMatch);
      if (!publication || publication.person !== person) return { status: 412 };
      if (expires === 0) {
        // Taken out only once the store has it, so a failed write leaves the tag usable.
        await this.presence.withdraw(person, publication.source);
        this.publications.delete(ifMatch);
        clearTimeout(publication.timer);
        this.log.info({ person, etag: ifMatch }, "publication removed");
        return { status: 200, headers: [["Expires", "0"]] };
      }
    } else if (body === "") {
      return { status: 400, reason: "Initial PUBLISH needs a body" };
    }

    const etag = randomToken(9, "base64url");
    const source = publication?.source ?? { kind: "sip-publish" as const, etag };
    if (body !== "") {
      const type = (request.getHeader("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase();
      if (type !== "application/pidf+xml")
        return { status: 415, headers: [["Accept", "application/pidf+xml"]] };
      let value: ReturnType<typeof pidfState>;
      try {
        value = pidfState(body);
      } catch (err) {
        if (publication) this.keep(ifMatch ?? etag, publication, expires);
        return {
          status: 400,
          reason: err instanceof SwitchboardError ? err.message.slice(0, 100) : "Bad PIDF",
        };
      }
      const now = this.presence.now();
      await this.presence.report(person, {
        source,
        state: value.state,
        note: value.note,
        updatedAt: now,
        expiresAt: now + expires * 1000,
      });
    } else if (publication) {
      // A refresh (RFC 3903 §4.3): same state, later expiry.
      const { records } = await this.presence.snapshot(person);
      const current = records.find((r) => r.source.kind === "sip-publish" && r.source.etag === source.etag);
      if (current && "state" in current) {
        await this.presence.report(person, { ...current, expiresAt: this.presence.now() + expires * 1000 });
      }
    }
    if (publication && ifMatch !== undefined) {
      // The store has the new state: the old tag is done (RFC 3903 §4.3: a new tag each time).
      this.publications.delete(ifMatch);
      clearTimeout(publication.timer);
    }
    this.keep(etag, { person, source }, expires);
    return {
      status: 200,
      headers: [
        ["SIP-ETag", etag],
        ["Expires", String(expires)],
      ],
    };
  }

  /** Remembers a publication under `etag` and removes it when it expires. */
  private keep(etag: string, publication: Publication, expires: number): void {
    clearTimeout(publication.timer);
    publication.timer = setTimeout(() => {
      this.publications.delete(etag);
      this.presence
        .withdraw(publication.person, publication.source)
        .catch((err: unknown) =>
          this.log.warn({ err: String(err) }, "could not remove an expired publication"),
        );
    }, expires * 1000);
    publication.timer.unref();
    this.publications.set(etag, publication);
  }

  close(): void {
    for (const publication of this.publications.values()) clearTimeout(publication.timer);
    this.publications.clear();
  }
}
