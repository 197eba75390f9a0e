// RFC 3680 registration information (`application/reginfo+xml`, §5): the body of a `reg` NOTIFY,
// saying which contacts are bound to an address-of-record at the registrar. Parsed like PIDF (see
// pidf.ts): a strict, namespace-aware XML parser (saxes) that expands no entities, so a DOCTYPE, an
// external entity or an undefined reference makes the document refused, never a billion laughs;
// size, depth and element count are bounded. Pure: what a change means is reg-watcher.ts's call.
import { SaxesParser, type SaxesTagNS } from "saxes";

export const NS_REGINFO = "urn:ietf:params:xml:ns:reginfo";
export const REGINFO_CONTENT_TYPE = "application/reginfo+xml";

const LIMITS = { maxBytes: 64 * 1024, maxDepth: 16, maxElements: 2_000 };

/** RFC 3680 §5.1: `init` (no contacts yet), `active` (at least one), `terminated` (none left). */
export type RegistrationState = "init" | "active" | "terminated";
export type ContactState = "active" | "terminated";

export interface ReginfoContact {
  /** Identifies the binding across documents (partial updates name it again). */
  id: string;
  uri: string;
  state: ContactState;
  /**
   * What last changed it (RFC 3680 §5.1: registered, created, refreshed, shortened, expired,
   * deactivated, probation, unregistered, rejected); kept as sent.
   */
  event: string;
}

export interface ReginfoRegistration {
  aor: string;
  id: string;
  state: RegistrationState;
  contacts: ReginfoContact[];
}

export interface Reginfo {
  /** Counts the documents of one subscription from 0 (RFC 3680 §5.2). */
  version: number;
  /** `full`: the whole state; `partial`: only what changed (RFC 3680 §5.1). */
  state: "full" | "partial";
  registrations: ReginfoRegistration[];
}

const REGISTRATION_STATES: ReadonlySet<string> = new Set<RegistrationState>(["init", "active", "terminated"]);
const CONTACT_STATES: ReadonlySet<string> = new Set<ContactState>(["active", "terminated"]);

/** An unprefixed attribute's value (prefixed ones, `xmlns` included, belong to other vocabularies). */
function attribute(tag: SaxesTagNS, name: string): string | undefined {
  const attr = tag.attributes[name];
  return attr && attr.prefix === "" ? attr.value : undefined;
}

/**
 * Reads a reginfo document; null for anything that is not a well-formed one in the RFC 3680
 * namespace: a DOCTYPE or entity reference, too large or too deep, another root, a version that is
 * not a non-negative integer, a state other than full/partial, a registration without aor or id or
 * with an unknown state, a contact without id or event, with an unknown state, or without exactly
 * one `<uri>`. Elements of other namespaces (the schema's extension points) and the optional
 * elements and attributes (display-name, unknown-param, expires, q, duration-registered …) are
 * ignored. Never throws.
 */
export function parseReginfo(xml: string): Reginfo | null {
  // A leading BOM or blank line is not well-formed before the declaration, but harmless.
  const doc = xml.trimStart();
  if (Buffer.byteLength(doc) > LIMITS.maxBytes) return null;
  if (/<!DOCTYPE/i.test(doc)) return null;

  const parser = new SaxesParser({ xmlns: true, position: false });
  let failed = false;
  let depth = 0;
  let elements = 0;
  let result: Reginfo | undefined;
  let registration: ReginfoRegistration | undefined;
  let contact: (Omit<ReginfoContact, "uri"> & { uris: string[] }) | undefined;
  /** Inside the contact's `<uri>`: its text so far (null when it has child elements). */
  let uri: string | null | undefined;
  /** Depth of an element of another namespace whose subtree is skipped. */
  let skipping: number | undefined;

  parser.on("error", () => {
    failed = true;
  });
  parser.on("doctype", () => {
    failed = true;
  });
  parser.on("opentag", (tag) => {
    if (++elements > LIMITS.maxElements || depth >= LIMITS.maxDepth) {
      // Stop at once (the throw leaves write() and is caught below), as pidf.ts does: saxes walks
      // up the open elements for every namespace lookup, so going on would cost CPU per element.
      throw new Error("reginfo too deep or too large");
    }
    depth++;
    if (skipping !== undefined) return;
    const ours = tag.uri === NS_REGINFO;
    if (depth === 1) {
      const version = attribute(tag, "version") ?? "";
      const state = attribute(tag, "state");
      if (!ours || tag.local !== "reginfo" || !/^\d{1,15}$/.test(version)) failed = true;
      if (state !== "full" && state !== "partial") failed = true;
      result = {
        version: Number(version),
        state: state === "partial" ? "partial" : "full",
        registrations: [],
      };
    } else if (depth === 2 && ours && tag.local === "registration") {
      const aor = attribute(tag, "aor");
      const id = attribute(tag, "id");
      const state = attribute(tag, "state") ?? "";
      if (!aor || !id || !REGISTRATION_STATES.has(state)) failed = true;
      registration = { aor: aor ?? "", id: id ?? "", state: state as RegistrationState, contacts: [] };
      result?.registrations.push(registration);
    } else if (depth === 3 && ours && tag.local === "contact" && registration) {
      const id = attribute(tag, "id");
      const state = attribute(tag, "state") ?? "";
      const event = attribute(tag, "event");
      if (!id || !event || !CONTACT_STATES.has(state)) failed = true;
      contact = { id: id ?? "", state: state as ContactState, event: event ?? "", uris: [] };
    } else if (depth === 4 && ours && tag.local === "uri" && contact) {
      uri = "";
    } else if (depth === 5 && uri !== undefined) {
      uri = null; // <uri> is a plain anyURI (RFC 3680 §5.4)
    } else {
      skipping = depth; // another namespace, or an element the watcher does not need
    }
  });
  const onText = (t: string): void => {
    if (typeof uri === "string" && skipping === undefined) uri += t;
  };
  parser.on("text", onText);
  parser.on("cdata", onText);
  parser.on("closetag", () => {
    if (skipping !== undefined) {
      if (depth === skipping) skipping = undefined;
      depth--;
      return;
    }
    if (depth === 4 && uri !== undefined) {
      const value = uri?.trim();
      if (!value) failed = true;
      contact?.uris.push(value ?? "");
      uri = undefined;
    } else if (depth === 3 && contact) {
      if (contact.uris.length !== 1) failed = true; // exactly one <uri> (RFC 3680 §5.4)
      registration?.contacts.push({
        id: contact.id,
        uri: contact.uris[0] ?? "",
        state: contact.state,
        event: contact.event,
      });
      contact = undefined;
    } else if (depth === 2) {
      registration = undefined;
    }
    depth--;
  });
  try {
    parser.write(doc).close();
  } catch {
    failed = true;
  }
  return failed || !result ? null : result;
}
