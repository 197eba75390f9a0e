// PIDF (RFC 3863) with RPID activities (RFC 4480) and the data model's notes (RFC 4479): parsed with
// a strict, namespace-aware XML parser (saxes) that expands no entities — a DOCTYPE with entity
// definitions, an external entity or an undefined reference is an error, never a billion laughs —
// and built with escaped text and the conventional prefixes (`rpid:`, `dm:`), which some phones
// match literally (baresip looks for `<rpid:busy/>`).
import { SaxesParser } from "saxes";
import { SwitchboardError } from "../../src/domain/errors.js";
import { pidfToPresence, presenceToPidf } from "../../src/domain/mapping/pidf-rpid.js";
import type { PresenceState } from "../../src/domain/presence.js";

export const NS_PIDF = "urn:ietf:params:xml:ns:pidf";
export const NS_DM = "urn:ietf:params:xml:ns:pidf:data-model";
export const NS_RPID = "urn:ietf:params:xml:ns:pidf:rpid";

const LIMITS = { maxBytes: 64 * 1024, maxDepth: 16, maxElements: 2_000 };

export interface ParsedPidf {
  entity: string;
  basic: "open" | "closed" | null;
  activities: string[];
  note: string | null;
}

/** Reads what presence needs from a PIDF document; throws SwitchboardError('bad-request') otherwise. */
export function parsePidf(xml: string): ParsedPidf {
  if (Buffer.byteLength(xml) > LIMITS.maxBytes)
    throw new SwitchboardError("bad-request", "PIDF document too large");
  if (/<!DOCTYPE/i.test(xml)) throw new SwitchboardError("bad-request", "PIDF with a DOCTYPE is refused");
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: { ns: string; name: string }[] = [];
  const result: ParsedPidf = { entity: "", basic: null, activities: [], note: null };
  let elements = 0;
  let text = "";
  let failure: string | null = null;
  parser.on("error", (err) => {
    failure ??= err.message;
  });
  parser.on("opentag", (tag) => {
    if (++elements > LIMITS.maxElements || stack.length >= LIMITS.maxDepth) {
      // Stop parsing at once (the throw leaves write() and is caught below): saxes resolves each
      // element's namespace by walking up the open elements, so going on through 64 KB of `<a>`
      // cost seconds of CPU per document (found by test/components/sip-fuzz.test.ts).
      throw new Error("PIDF document too deep or too large");
    }
    const ns = tag.uri;
    const parent = stack[stack.length - 1];
    if (stack.length === 0) {
      if (ns !== NS_PIDF || tag.local !== "presence") failure ??= "not a PIDF <presence> document";
      result.entity = tag.attributes.entity?.value ?? "";
    }
    // RPID activities are the children of <rpid:activities> (RFC 4480 §3.2).
    if (parent?.ns === NS_RPID && parent.name === "activities" && ns === NS_RPID)
      result.activities.push(tag.local);
    stack.push({ ns, name: tag.local });
    text = "";
  });
  parser.on("text", (t) => {
    text += t;
  });
  parser.on("closetag", (tag) => {
    stack.pop();
    const value = text.trim();
    if (tag.uri === NS_PIDF && tag.local === "basic" && (value === "open" || value === "closed"))
      result.basic ??= value;
    // The first note wins: PIDF <note> (tuple or presence) or the data model's <dm:note>.
    if (
      ((tag.uri === NS_PIDF && tag.local === "note") || (tag.uri === NS_DM && tag.local === "note")) &&
      value
    )
      result.note ??= value;
    text = "";
  });
  try {
    parser.write(xml).close();
  } catch (err) {
    failure ??= err instanceof Error ? err.message : String(err);
  }
  if (failure !== null) throw new SwitchboardError("bad-request", `bad PIDF: ${failure}`);
  return result;
}

/** The presence state and note a PIDF document says (see mapping/pidf-rpid.ts for the table). */
export function pidfState(xml: string): { state: PresenceState; note: string | null } {
  const parsed = parsePidf(xml);
  return pidfToPresence({ basic: parsed.basic ?? "open", activities: parsed.activities, note: parsed.note });
}

/** Text and attribute values in generated XML bodies (PIDF, dialog-info). */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A PIDF document for `entity` in `state`: one tuple, one dm:person with RPID activities. */
export function buildPidf(
  entity: string,
  state: PresenceState,
  note: string | null,
  tupleId = "switchboard",
): string {
  const value = presenceToPidf(state, note);
  const activities = value.activities.map((a) => `<rpid:${a}/>`).join("");
  const noteXml = value.note ? `<dm:note>${escapeXml(value.note)}</dm:note>` : "";
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<presence xmlns="${NS_PIDF}" xmlns:dm="${NS_DM}" xmlns:rpid="${NS_RPID}" entity="${escapeXml(entity)}">`,
    `<tuple id="${escapeXml(tupleId)}"><status><basic>${value.basic}</basic></status>${value.note ? `<note>${escapeXml(value.note)}</note>` : ""}</tuple>`,
    `<dm:person id="p-${escapeXml(tupleId)}">${activities ? `<rpid:activities>${activities}</rpid:activities>` : ""}${noteXml}</dm:person>`,
    `</presence>`,
  ].join("");
}
