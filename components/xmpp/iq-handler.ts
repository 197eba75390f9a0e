// IQs addressed to the gateway domain or to a gateway contact: service discovery (XEP-0030), ping
// (XEP-0199), software version (XEP-0092) and gateway interaction (XEP-0100 §6.3). The library's IQ
// callee (@xmpp/iq) frames the answer — exactly one per get/set (RFC 6120 §8.2.3), `bad-request` for
// a query without exactly one payload, `service-unavailable` when we return nothing — so this only
// says what to answer: a payload for the result, `true` for an empty result, or an `<error/>`.
import { isExtension, toE164 } from "../../src/domain/phone-number.js";
import { xml, type Element } from "@xmpp/component";
import { parseSipUri } from "../../src/domain/address.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { formatJid, makeJid, parseJid } from "../../src/domain/jid.js";
import { personForContact } from "../../src/presence/person.js";
import { sipToGatewayJid } from "../../src/domain/gateway-mapping.js";
import { NS } from "./namespaces.js";
import { errorElement } from "./stanza-error.js";

export interface GatewayIdentity {
  /** The gateway domain (component JID). */
  gatewayDomain: string;
  homeDomain: string;
  name: string;
  version: string;
  /** Region for national numbers typed at the prompt (`020 7123 4567` in GB → +442071234567). */
  defaultRegion?: string;
}

/** Features the gateway domain itself answers; only what is implemented is listed. */
export const GATEWAY_FEATURES = [NS.discoInfo, NS.discoItems, NS.ping, NS.version, NS.gateway] as const;
/** Features of a gateway contact (a SIP party). */
export const CONTACT_FEATURES = [NS.discoInfo, NS.ping, NS.receipts, NS.chatStates, NS.vcard] as const;

const PROMPT_DESC = "Enter the phone number or SIP address of the person you want to add.";

/** What to answer: the result's payload, `true` for an empty result, an `<error/>` element, or
 * undefined when the IQ is not ours (the callee then answers `service-unavailable`). */
export type IqAnswer = Element | true | undefined;

/** What a chat user types at the XEP-0100 prompt → the gateway JID (pure mapping for now). */
export function promptToJid(prompt: string, identity: GatewayIdentity): string {
  const text = prompt.trim();
  const domains = { homeDomain: identity.homeDomain, gatewayDomain: identity.gatewayDomain };
  // A number as people write it: digits with an optional + and visual separators (RFC 3966 §5.1.1).
  if (/^\+?[\d\s().-]+$/.test(text)) {
    const digits = text.replace(/[\s().-]/g, "");
    if (!/^\+?\d{1,15}$/.test(digits)) {
      throw new SwitchboardError("not-acceptable", `not a phone number: '${text}'`);
    }
    // A phone number becomes E.164 (one JID however it was written); an extension stays as dialled.
    const e164 = isExtension(digits) ? null : toE164(text, identity.defaultRegion ?? "GB");
    return formatJid(makeJid({ local: e164 ?? digits, domain: identity.gatewayDomain }));
  }
  const uri = /^sips?:/i.test(text) ? text : `sip:${text}`;
  return formatJid(sipToGatewayJid(parseSipUri(uri), domains));
}

/** The answer to a get/set `iq` whose single payload is `payload`. */
export function answerIq(iq: Element, payload: Element, identity: GatewayIdentity): IqAnswer {
  const type = iq.attrs.type;
  const to = iq.attrs.to ?? identity.gatewayDomain;
  const toGateway = to === identity.gatewayDomain;
  const ns = payload.attrs.xmlns;
  const key = `${type} ${ns ?? ""} ${payload.name}`;

  try {
    // A contact address must be the canonical one (one JID per party), whatever is asked of it.
    if (!toGateway) personForContact(parseJid(to), identity);
    switch (key) {
      case `get ${NS.discoInfo} query`: {
        if (payload.attrs.node) return errorElement("item-not-found", `no node '${payload.attrs.node}'`);
        const identityEl = toGateway
          ? xml("identity", { category: "gateway", type: "sip", name: identity.name })
          : xml("identity", { category: "client", type: "phone" });
        const features = toGateway ? GATEWAY_FEATURES : CONTACT_FEATURES;
        return xml(
          "query",
          { xmlns: NS.discoInfo },
          identityEl,
          ...features.map((f) => xml("feature", { var: f })),
        );
      }
      case `get ${NS.discoItems} query`:
        return xml("query", { xmlns: NS.discoItems });
      case `get ${NS.ping} ping`:
        return true;
      case `get ${NS.version} query`:
        if (!toGateway) break;
        return xml(
          "query",
          { xmlns: NS.version },
          xml("name", {}, identity.name),
          xml("version", {}, identity.version),
        );
      case `get ${NS.gateway} query`:
        if (!toGateway) break;
        return xml(
          "query",
          { xmlns: NS.gateway },
          xml("desc", {}, PROMPT_DESC),
          xml("prompt", {}, "Phone number or SIP address"),
        );
      case `set ${NS.gateway} query`: {
        if (!toGateway) break;
        const prompt = payload.getChildText("prompt");
        if (!prompt?.trim()) return errorElement("bad-request", "missing <prompt/>");
        const jid = promptToJid(prompt, identity);
        // XEP-0100 §6.3.2: the answer carries <jid/>; <prompt/> too, for older clients.
        return xml("query", { xmlns: NS.gateway }, xml("jid", {}, jid), xml("prompt", {}, jid));
      }
    }
  } catch (err) {
    if (err instanceof SwitchboardError) return errorElement(err.condition, err.message);
    throw err;
  }
  // RFC 6120 §8.4: an IQ for a namespace the entity does not understand gets service-unavailable.
  return undefined;
}
