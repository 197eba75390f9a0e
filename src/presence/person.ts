// Who a presence belongs to. A home-domain user is one person on both protocols (DESIGN.md
// "Addressing"), keyed by `name@homedomain` with the name as homeIdentity() gives it (unescaped,
// lowercased): Bob's XMPP client and Bob's desk phone (the gateway contact bob@sip.example.org) feed
// one aggregate. A party of another SIP domain is keyed by its SIP URI, a number by the number itself
// until the resolver chain knows whose line it is.
import { formatSipUri, makeSipUri, parseSipUri } from "../domain/sip-uri.js";
import { formatJid, makeJid, type Jid } from "../domain/jid.js";
import {
  gatewayJidToSip,
  homeIdentity,
  isNumber,
  sipToGatewayJid,
  type GatewayDomains,
} from "../domain/gateway-mapping.js";

/** The person behind a gateway contact; throws AddressError for a JID that is no gateway contact. */
export function personForContact(contact: Jid, domains: GatewayDomains): string {
  const target = gatewayJidToSip(contact, domains);
  if (target.kind === "number") return target.number;
  const name = homeIdentity({ kind: "sip", uri: target.uri }, domains.homeDomain);
  return name === null ? formatSipUri(target.uri) : `${name}@${domains.homeDomain}`;
}

/** The home person a JID on the home domain is, or null for any other JID. */
export function personForHomeJid(jid: Jid, domains: GatewayDomains): string | null {
  const name = homeIdentity({ kind: "jid", jid }, domains.homeDomain);
  return name === null ? null : `${name}@${domains.homeDomain}`;
}

/** The gateway contact (bare JID) that stands for a person key made by the functions above. */
export function contactForPerson(person: string, domains: GatewayDomains): string {
  if (isNumber(person)) return formatJid(makeJid({ local: person, domain: domains.gatewayDomain }));
  const uri = person.startsWith("sip:")
    ? parseSipUri(person)
    : makeSipUri({ user: person.slice(0, person.lastIndexOf("@")), host: domains.homeDomain });
  return formatJid(sipToGatewayJid(uri, domains));
}
