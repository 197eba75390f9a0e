// One place that builds the @xmpp/component entity for a configured component, so the bridge's
// connection and `check`'s probe connect the same way. The library's own reconnect (a fixed one
// second, forever) is switched off: callers decide whether and when to try again.
import { component, type Component } from "@xmpp/component";

export interface ComponentEndpoint {
  jid: string;
  host: string;
  port: number;
  secret: string;
}

export function createComponent(endpoint: ComponentEndpoint): Component {
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host; // IPv6 literal
  const entity = component({
    service: `xmpp://${host}:${endpoint.port}`,
    domain: endpoint.jid,
    password: endpoint.secret,
  });
  entity.reconnect.stop();
  return entity;
}
