// vCards of gateway contacts (XEP-0054): name and phone numbers from the directory, so chat clients
// show "Bob Baker" with his numbers rather than a bare address.
import { xml, type Element } from "@xmpp/component";
import type { GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { parseJid } from "../../src/domain/jid.js";
import type { Directory } from "../../src/ports/directory.js";
import { personForContact } from "../../src/presence/person.js";
import { NS } from "./namespaces.js";
import { errorElement } from "./stanza-error.js";

export function isVcardGet(iq: Element, payload: Element): boolean {
  return iq.attrs.type === "get" && payload.is("vCard", NS.vcard);
}

/** The answer to a vCard get addressed to a gateway contact. */
export async function answerVcard(
  iq: Element,
  domains: GatewayDomains,
  directory: Directory | undefined,
): Promise<Element> {
  const to = parseJid(iq.attrs.to ?? "");
  if (to.local === null) return errorElement("service-unavailable", "the gateway has no vCard");
  const person = personForContact(to, domains);
  const entry = directory ? await directory.findPerson(person) : null;
  if (!entry) return errorElement("item-not-found", `no directory entry for ${person}`);
  const tel = (number: string): Element =>
    xml("TEL", {}, xml("WORK"), xml("VOICE"), xml("NUMBER", {}, number));
  return xml(
    "vCard",
    { xmlns: NS.vcard },
    xml("FN", {}, entry.displayName),
    ...entry.numbers.map(tel),
    entry.extension ? tel(entry.extension) : null,
    xml("JABBERID", {}, `${entry.uid}@${domains.homeDomain}`),
  );
}
