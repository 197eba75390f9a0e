// `check` probe for the XEP-0114 component: connect and complete the handshake, then close.
// The XMPP server accepts one connection per component domain, so while the bridge runs this
// probe reports the conflict — which also proves the server and secret are right. A server set to
// replace the old connection by a new one (Prosody's component_conflict_resolve = "kick_old", for
// several instances) would hand the component to the probe: so when a running instance holds the
// component lease (`heldBy`), the handshake is not tried.
import type { Probe } from "../../src/check/probe.js";
import { createComponent, type ComponentEndpoint } from "./create-component.js";

export function xmppComponentProbe(
  config: ComponentEndpoint,
  keyPath = "xmpp.component",
  /** Which running instance holds the component (the lease), or null; absent: no lease (memory store). */
  heldBy?: () => Promise<string | null>,
): Probe {
  return {
    component: "xmpp",
    keyPath,
    hint: "check the Component section and component_ports of the XMPP server, and that the secrets match",
    async run(signal) {
      const holder = await heldBy?.().catch(() => null); // Redis away: its own probe says so
      if (holder)
        return `held by running instance ${holder} (component lease): handshake not tried, so as not to take the component over`;
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
