// `check` probe for the XEP-0114 component: connect and complete the handshake, then close.
// The XMPP server accepts one connection per component domain, so while the bridge runs this
// probe reports the conflict — which also proves the server and secret are right.
import type { Probe } from "../../src/check/probe.js";
import { createComponent, type ComponentEndpoint } from "./create-component.js";

export function xmppComponentProbe(config: ComponentEndpoint, keyPath = "xmpp.component"): Probe {
  return {
    component: "xmpp",
    keyPath,
    hint: "check the Component section and component_ports of the XMPP server, and that the secrets match",
    async run(signal) {
      const entity = createComponent(config); // one attempt only
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
