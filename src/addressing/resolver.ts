// The resolver chain (DESIGN.md "Addressing"): an extension or local number → the directory; an
// E.164 number → the directory, then ENUM; a SIP URI or JID → itself, enriched from the directory.
// The result keeps every step with its answer or miss, so `switchboard lookup` can print the chain.
import { e164Fallback, homeIdentity } from "../domain/gateway-mapping.js";
import { formatSipUri, parseSipUri } from "../domain/sip-uri.js";
import { isExtension, toE164 } from "../domain/phone-number.js";
import type { Directory, DirectoryEntry } from "../ports/directory.js";
import type { EnumLookup } from "../ports/enum-lookup.js";

export interface ResolutionStep {
  step: "address" | "directory" | "enum" | "fallback";
  query: string;
  /** What the step found, or null for a miss. */
  answer: string | null;
  detail?: string;
}

export interface Resolution {
  input: string;
  kind: "extension" | "number" | "address" | "invalid";
  /** E.164 for a number, the address for an address. */
  normalized: string | null;
  steps: ResolutionStep[];
  /** Whether the directory or ENUM (or the address itself) answered. */
  resolved: boolean;
  sipUri: string | null;
  jid: string | null;
  displayName: string | null;
}

export interface ResolverOptions {
  directory: Directory;
  enum?: EnumLookup;
  homeDomain: string;
  defaultRegion: string;
}

export class AddressResolver {
  constructor(private readonly options: ResolverOptions) {}

  private fromEntry(entry: DirectoryEntry): { sipUri: string; jid: string; displayName: string } {
    const home = this.options.homeDomain;
    return {
      sipUri: entry.sipUri ?? `sip:${entry.uid}@${home}`,
      jid: entry.jid ?? `${entry.uid}@${home}`,
      displayName: entry.displayName,
    };
  }

  async resolve(input: string): Promise<Resolution> {
    const text = input.trim();
    const result: Resolution = {
      input,
      kind: "invalid",
      normalized: null,
      steps: [],
      resolved: false,
      sipUri: null,
      jid: null,
      displayName: null,
    };
    const { directory, homeDomain, defaultRegion } = this.options;
    const fromDirectory = async (query: string): Promise<boolean> => {
      let entry: DirectoryEntry | null;
      try {
        entry = await directory.findPerson(query);
      } catch (err) {
        // The directory is away: say so, and go on to ENUM and the fallback.
        result.steps.push({ step: "directory", query, answer: null, detail: (err as Error).message });
        return false;
      }
      result.steps.push({ step: "directory", query, answer: entry ? entry.uid : null });
      if (!entry) return false;
      Object.assign(result, this.fromEntry(entry), { resolved: true });
      return true;
    };

    // tel:+442071234567;phone-context=… is the number it names.
    if (/^tel:/i.test(text)) return this.resolve(text.slice(4).split(";")[0] ?? "");
    if (/^(sips?|xmpp):|@/i.test(text)) {
      return this.resolveAddress(text, result, fromDirectory);
    }
    if (isExtension(text)) {
      result.kind = "extension";
      result.normalized = text;
      await fromDirectory(text);
      return result;
    }
    const e164 = toE164(text, defaultRegion);
    if (e164 === null) {
      result.steps.push({
        step: "address",
        query: text,
        answer: null,
        detail: "not a number, extension or address",
      });
      return result;
    }
    result.kind = "number";
    result.normalized = e164;
    if (await fromDirectory(e164)) return result;
    if (this.options.enum) {
      try {
        const { targets } = await this.options.enum.resolve(e164);
        const sip = targets.find((t) => t.service === "sip");
        const xmpp = targets.find((t) => t.service === "xmpp");
        result.steps.push({
          step: "enum",
          query: e164,
          answer: targets.length > 0 ? targets.map((t) => t.uri).join(" ") : null,
        });
        if (sip || xmpp) {
          result.resolved = true;
          result.sipUri = sip?.uri ?? null;
          result.jid = xmpp ? xmpp.uri.replace(/^xmpp:/i, "") : null;
          return result;
        }
      } catch (err) {
        result.steps.push({ step: "enum", query: e164, answer: null, detail: (err as Error).message });
      }
    }
    // Nothing knows it: it goes to the outbound proxy as a phone number (DESIGN.md).
    const fallback = formatSipUri(e164Fallback(e164, homeDomain));
    result.steps.push({ step: "fallback", query: e164, answer: fallback, detail: "to the outbound proxy" });
    result.sipUri = fallback;
    return result;
  }

  private async resolveAddress(
    text: string,
    result: Resolution,
    fromDirectory: (query: string) => Promise<boolean>,
  ): Promise<Resolution> {
    const { homeDomain } = this.options;
    result.kind = "address";
    let local: string | null = null;
    let numericUser: string | null = null;
    try {
      if (/^sips?:/i.test(text)) {
        const uri = parseSipUri(text);
        result.normalized = formatSipUri(uri);
        result.sipUri = result.normalized;
        local = homeIdentity({ kind: "sip", uri }, homeDomain);
        if (
          local === null &&
          uri.user !== null &&
          /^\+?[0-9*#]+$/.test(uri.user) &&
          uri.host === homeDomain
        ) {
          numericUser = uri.user;
        }
      } else {
        const bare = text.replace(/^xmpp:/i, "").replace(/\/.*$/, "");
        const at = bare.lastIndexOf("@");
        if (at <= 0) throw new Error("no local part");
        result.normalized = bare.toLowerCase();
        result.jid = result.normalized;
        if (bare.slice(at + 1).toLowerCase() === homeDomain) local = bare.slice(0, at).toLowerCase();
      }
    } catch (err) {
      result.kind = "invalid";
      result.steps.push({ step: "address", query: text, answer: null, detail: (err as Error).message });
      return result;
    }
    result.steps.push({ step: "address", query: text, answer: result.normalized });
    result.resolved = true;
    if (local !== null) await fromDirectory(`${local}@${homeDomain}`);
    else if (numericUser !== null) {
      // sip:8001@example.org or sip:+442071234567@example.org;user=phone: whose line it is.
      const number = isExtension(numericUser)
        ? numericUser
        : (toE164(numericUser, this.options.defaultRegion) ?? numericUser);
      await fromDirectory(number);
    }
    return result;
  }
}
