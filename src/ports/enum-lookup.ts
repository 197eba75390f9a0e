// The ENUM port (RFC 6116): an E.164 number → the URIs its NAPTR records give (E2U+sip, E2U+xmpp,
// E2U+pstn:tel), best first. The adapter (components/enum/) queries DNS.

export interface EnumTarget {
  service: "sip" | "xmpp" | "tel";
  uri: string;
  order: number;
  preference: number;
  suffix: string;
}

export interface EnumLookup {
  resolve(e164: string): Promise<{ targets: EnumTarget[] }>;
}
