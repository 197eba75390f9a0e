// The XMPP edge's one translator from a protocol-neutral condition to a stanza error
// (RFC 6120 §8.3.3 conditions, §8.3.2 error types).
import { xml, type Element } from "@xmpp/component";
import type { Condition } from "../../src/domain/errors.js";
import { NS } from "./namespaces.js";

type ErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

const TABLE: Readonly<Record<Condition, [string, ErrorType]>> = {
  "bad-request": ["bad-request", "modify"],
  "malformed-address": ["jid-malformed", "modify"],
  "not-authorized": ["not-authorized", "auth"],
  forbidden: ["forbidden", "auth"],
  "item-not-found": ["item-not-found", "cancel"],
  "not-acceptable": ["not-acceptable", "modify"],
  "feature-not-implemented": ["feature-not-implemented", "cancel"],
  "policy-violation": ["policy-violation", "modify"],
  conflict: ["conflict", "cancel"],
  "loop-detected": ["recipient-unavailable", "cancel"],
  "recipient-unavailable": ["recipient-unavailable", "wait"],
  "remote-server-not-found": ["remote-server-not-found", "cancel"],
  "remote-server-timeout": ["remote-server-timeout", "wait"],
  "resource-constraint": ["resource-constraint", "wait"],
  "service-unavailable": ["service-unavailable", "cancel"],
  "internal-server-error": ["internal-server-error", "cancel"],
};

export function stanzaErrorFor(condition: Condition): { condition: string; type: ErrorType } {
  const [name, type] = TABLE[condition];
  return { condition: name, type };
}

/** The `<error/>` element for a condition (RFC 6120 §8.3.2), with an explaining text. */
export function errorElement(condition: Condition, text?: string): Element {
  const { condition: name, type } = stanzaErrorFor(condition);
  return xml(
    "error",
    { type },
    xml(name, { xmlns: NS.stanzas }),
    text ? xml("text", { xmlns: NS.stanzas, "xml:lang": "en" }, text) : null,
  );
}

/** An error reply to `stanza` (RFC 6120 §8.3.1): addresses swapped, same id, the condition and a text. */
export function errorReply(stanza: Element, condition: Condition, text?: string): Element {
  return xml(
    stanza.name,
    { type: "error", id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from },
    errorElement(condition, text),
  );
}
