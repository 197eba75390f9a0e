// An XMPP gateway (the component adapter) on a harness Prosody component, with the in-memory
// store and a capturing logger, started and online — the setup every XMPP component test shares.
import { setTimeout as sleep } from "node:timers/promises";
import { XmppGateway, type XmppGatewayOptions } from "../../components/xmpp/xmpp-gateway.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { memoryLogger } from "./memory-logger.js";
import { HarnessError } from "./process.js";
import type { ComponentGrant, Prosody } from "./prosody.js";

export interface StartedGateway {
  gateway: XmppGateway;
  service: PresenceService;
  log: ReturnType<typeof memoryLogger>;
}

/** Waits (bounded) until the gateway's component is online. */
export async function waitOnline(gateway: XmppGateway, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (gateway.connection.state !== "online") {
    if (Date.now() > deadline) throw new HarnessError(`component not online within ${timeoutMs} ms`);
    await sleep(25);
  }
}

export async function startGateway(
  prosody: Prosody,
  grant: ComponentGrant,
  options: Partial<Omit<XmppGatewayOptions, "log">> = {},
): Promise<StartedGateway> {
  const service = options.presence ?? new PresenceService(new MemoryPresenceStore());
  const log = memoryLogger();
  const gateway = new XmppGateway({
    homeDomain: prosody.domain,
    version: "0.1.0",
    log,
    privilegeWaitMs: 300,
    ...options,
    connection: { backoff: { baseMs: 100, capMs: 1_000 }, ...grant, ...options.connection },
    presence: service,
  });
  gateway.start();
  await waitOnline(gateway);
  return { gateway, service, log };
}
