// The from/to of a stanza the server routed to the component, parsed; null (and logged) when either
// is not a JID — such a stanza cannot be answered sensibly and is dropped.
import type { Element } from "@xmpp/component";
import { parseJid, type Jid } from "../../src/domain/jid.js";
import type { Logger } from "../../src/ports/logger.js";

export function stanzaAddresses(stanza: Element, log: Logger): { from: Jid; to: Jid } | null {
  try {
    return { from: parseJid(stanza.attrs.from ?? ""), to: parseJid(stanza.attrs.to ?? "") };
  } catch (err) {
    log.warn(
      { err: String(err), stanza: stanza.toString().slice(0, 500) },
      `${stanza.name} with a bad address ignored`,
    );
    return null;
  }
}
