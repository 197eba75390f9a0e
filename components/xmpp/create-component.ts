// One place that builds the @xmpp/component entity for a configured component, so the bridge's
// connection and `check`'s probe connect the same way. The library's own reconnect (a fixed one
// second, forever) is switched off: callers decide whether and when to try again. Every stanza
// leaving the entity — ours and the replies the library frames — has the characters XML forbids
// removed first: one of them would make the server close the component's stream.
import { component, type Component, type Element } from "@xmpp/component";
import { xmlSafeText } from "../../src/util/xml-text.js";

export interface ComponentEndpoint {
  jid: string;
  host: string;
  port: number;
  secret: string;
}

/** Removes XML-forbidden characters from every text node and attribute value, in place. */
export function sanitizeElement(element: Element): Element {
  for (const [name, value] of Object.entries(element.attrs)) {
    if (typeof value === "string") element.attrs[name] = xmlSafeText(value);
  }
  element.children = element.children.map((child) =>
    typeof child === "string" ? xmlSafeText(child) : sanitizeElement(child),
  );
  return element;
}

export function createComponent(endpoint: ComponentEndpoint): Component {
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host; // IPv6 literal
  const entity = component({
    service: `xmpp://${host}:${endpoint.port}`,
    domain: endpoint.jid,
    password: endpoint.secret,
  });
  entity.reconnect.stop();
  guardParser(entity);
  // Stanzas are small and each should go at once: without TCP_NODELAY, Nagle's algorithm holds a
  // write while an earlier one is unacknowledged, and the server's delayed ACK makes that ~40 ms.
  entity.on("connect", () => {
    (entity as unknown as { socket?: { setNoDelay?: (noDelay: boolean) => void } }).socket?.setNoDelay?.(
      true,
    );
  });
  const send = entity.send.bind(entity);
  entity.send = (...elements: Element[]) => send(...elements.map(sanitizeElement));
  return entity;
}

/** The library's connection internals that guardParser wraps (@xmpp/connection 0.13). */
interface ConnectionInternals {
  _onData(data: Buffer): void;
  _onParserError(error: Error): void;
}

/**
 * ltx throws from inside a socket's data handler on some malformed input (an undeclared entity
 * such as `&lol9;`), which would be an uncaught exception: the whole process down because the
 * server (or whoever sits on the component link) sent bad XML. Turn it into what the library does
 * for the parse errors it does catch: a bad-format stream error, the connection closed, an `error`
 * event (reported, then reconnected with backoff). Set before any socket is attached, since the
 * library binds `_onData` when it attaches one.
 */
function guardParser(entity: Component): void {
  const internals = entity as unknown as ConnectionInternals;
  const onData = internals._onData.bind(internals);
  internals._onData = (data: Buffer): void => {
    try {
      onData(data);
    } catch (err) {
      internals._onParserError(err instanceof Error ? err : new Error(String(err)));
    }
  };
}
