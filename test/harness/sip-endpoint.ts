// A SIP endpoint on loopback port 0 with test defaults (home domain example.org, loopback trusted,
// short timers), for the SIP component tests; options override any default.
import { SipEndpoint, type SipEndpointOptions } from "../../components/sip/sip-endpoint.js";
import { ConfigDirectory } from "../../src/directory/config-directory.js";
import { memoryLogger } from "./memory-logger.js";

export async function startSipEndpoint(
  options: Partial<SipEndpointOptions> = {},
): Promise<{ endpoint: SipEndpoint; port: number }> {
  const endpoint = await SipEndpoint.start({
    listen: ["udp:127.0.0.1:0"],
    domains: { homeDomain: "example.org", gatewayDomain: "sip.example.org" },
    directory: new ConfigDirectory([], "example.org"),
    toXmpp: { deliver: () => Promise.resolve("accepted") },
    trustedPeers: ["127.0.0.1/32"],
    maxMessageBytes: 1024,
    timers: { t1: 50, t2: 400, t4: 250 },
    log: memoryLogger(),
    ...options,
  });
  return { endpoint, port: endpoint.transports.addresses()[0]?.port ?? 0 };
}
