// IQs addressed to the gateway domain or to a gateway contact: service discovery (XEP-0030), ping
// (XEP-0199), software version (XEP-0092) and gateway interaction (XEP-0100 §6.3). Every get/set
// gets exactly one answer (RFC 6120 §8.2.3): a result, or an error naming the condition.
import { xml, type Element } from "@xmpp/component";
import { parseSipUri } from "../../src/domain/address.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { formatJid, makeJid } from "../../src/domain/jid.js";
import { sipToGatewayJid } from "../../src/domain/gateway-mapping.js";
import { errorReply } from "./stanza-error.js";

export const NS = {
  discoInfo: "http://jabber.org/protocol/disco#info",
  discoItems: "http://jabber.org/protocol/disco#items",
  ping: "urn:xmpp:ping",
  version: "jabber:iq:version",
  gateway: "jabber:iq:gateway",
  receipts: "urn:xmpp:receipts",
  chatStates: "http://jabber.org/protocol/chatstates",
  privilege: "urn:xmpp:privilege:2",
  vcard: "vcard-temp",
} as const;

export interface GatewayIdentity {
  /** The gateway domain (component JID). */
  gatewayDomain: string;
  homeDomain: string;
  name: string;
  version: string;
}

/** Features the gateway domain itself answers; only what is implemented is listed. */
export const GATEWAY_FEATURES = [NS.discoInfo, NS.discoItems, NS.ping, NS.version, NS.gateway] as const;
/** Features of a gateway contact (a SIP party). */
export const CONTACT_FEATURES = [NS.discoInfo, NS.ping, NS.receipts, NS.chatStates] as const;

const PROMPT_DESC = "Enter the phone number or SIP address of the person you want to add.";

function result(iq: Element, ...children: Element[]): Element {
  return xml("iq", { type: "result", id: iq.attrs.id, from: iq.attrs.to, to: iq.attrs.from }, ...children);
}

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
    return formatJid(makeJid({ local: digits, domain: identity.gatewayDomain }));
  }
  const uri = /^sips?:/i.test(text) ? text : `sip:${text}`;
  return formatJid(sipToGatewayJid(parseSipUri(uri), domains));
}

/** Answers one IQ; returns null for result/error IQs (nothing to answer, RFC 6120 §8.2.3). */
export function handleIq(iq: Element, identity: GatewayIdentity): Element | null {
  const type = iq.attrs.type;
  if (type !== "get" && type !== "set") return null;
  const payloads = iq.getChildElements();
  const [payload] = payloads;
  if (payloads.length !== 1 || !payload) {
    return errorReply(iq, "bad-request", "an IQ get/set carries exactly one payload element");
  }
  const to = iq.attrs.to ?? identity.gatewayDomain;
  const toGateway = to === identity.gatewayDomain;
  const ns = payload.attrs.xmlns;
  const key = `${type} ${ns ?? ""} ${payload.name}`;

  try {
    switch (key) {
      case `get ${NS.discoInfo} query`: {
        if (payload.attrs.node) return errorReply(iq, "item-not-found", `no node '${payload.attrs.node}'`);
        const identityEl = toGateway
          ? xml("identity", { category: "gateway", type: "sip", name: identity.name })
          : xml("identity", { category: "client", type: "phone" });
        const features = toGateway ? GATEWAY_FEATURES : CONTACT_FEATURES;
        return result(
          iq,
          xml(
            "query",
            { xmlns: NS.discoInfo },
            identityEl,
            ...features.map((f) => xml("feature", { var: f })),
          ),
        );
      }
      case `get ${NS.discoItems} query`:
        return result(iq, xml("query", { xmlns: NS.discoItems }));
      case `get ${NS.ping} ping`:
        return result(iq);
      case `get ${NS.version} query`:
        if (!toGateway) break;
        return result(
          iq,
          xml(
            "query",
            { xmlns: NS.version },
            xml("name", {}, identity.name),
            xml("version", {}, identity.version),
          ),
        );
      case `get ${NS.gateway} query`:
        if (!toGateway) break;
        return result(
          iq,
          xml(
            "query",
            { xmlns: NS.gateway },
            xml("desc", {}, PROMPT_DESC),
            xml("prompt", {}, "Phone number or SIP address"),
          ),
        );
      case `set ${NS.gateway} query`: {
        if (!toGateway) break;
        const prompt = payload.getChildText("prompt");
        if (!prompt?.trim()) return errorReply(iq, "bad-request", "missing <prompt/>");
        const jid = promptToJid(prompt, identity);
        // XEP-0100 §6.3.2: the answer carries <jid/>; <prompt/> too, for older clients.
        return result(iq, xml("query", { xmlns: NS.gateway }, xml("jid", {}, jid), xml("prompt", {}, jid)));
      }
    }
  } catch (err) {
    if (err instanceof SwitchboardError) return errorReply(iq, err.condition, err.message);
    throw err;
  }
  // RFC 6120 §8.4: an IQ for a namespace the entity does not understand gets service-unavailable.
  return errorReply(iq, "service-unavailable");
}
