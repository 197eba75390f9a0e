// `check` probe for the XEP-0114 component: connect and complete the handshake, then close.
// The XMPP server accepts one connection per component domain, so while the bridge runs this
// probe reports the conflict — which also proves the server and secret are right.
import { component } from "@xmpp/component";
import type { Probe } from "../../src/check/probe.js";

export function xmppComponentProbe(
  config: { jid: string; host: string; port: number; secret: string },
  keyPath = "xmpp.component",
): Probe {
  return {
    component: "xmpp",
    keyPath,
    hint: "check the Component section and component_ports of the XMPP server, and that the secrets match",
    async run(signal) {
      const host = config.host.includes(":") ? `[${config.host}]` : config.host;
      const entity = component({
        service: `xmpp://${host}:${config.port}`,
        domain: config.jid,
        password: config.secret,
      });
      entity.reconnect.stop(); // one attempt only: the library would otherwise retry every second forever
      const failed = new Promise<never>((_, reject) => {
        entity.on("error", reject);
        signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
      try {
        await Promise.race([entity.start(), failed]);
        return `handshake with ${config.host}:${config.port} accepted for ${config.jid}`;
      } finally {
        await entity.stop().catch(() => undefined);
      }
    },
  };
}
