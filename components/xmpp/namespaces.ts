// XML namespaces of the protocols the XMPP side speaks, in one place.
export const NS = {
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas", // RFC 6120 §8.3.3
  roster: "jabber:iq:roster", // RFC 6121 §2
  discoInfo: "http://jabber.org/protocol/disco#info", // XEP-0030
  discoItems: "http://jabber.org/protocol/disco#items", // XEP-0030
  ping: "urn:xmpp:ping", // XEP-0199
  version: "jabber:iq:version", // XEP-0092
  gateway: "jabber:iq:gateway", // XEP-0100
  receipts: "urn:xmpp:receipts", // XEP-0184
  chatStates: "http://jabber.org/protocol/chatstates", // XEP-0085
  privilege: "urn:xmpp:privilege:2", // XEP-0356
  vcard: "vcard-temp", // XEP-0054
  rosterx: "http://jabber.org/protocol/rosterx", // XEP-0144
} as const;
