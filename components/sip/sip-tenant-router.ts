// One SIP listener for every tenant of the process (docs/tenants.md): the router owns the
// transports and hands each request to the endpoint of the tenant it is for, each response to the
// endpoint whose client transaction it answers. A tenant is found by the domains its request names:
// the Request-URI's host first (the proxy routed it there), then for a Request-URI that names no
// tenant (an in-dialog request to our Contact, a tel: URI, an IP address) the To URI's host (in a
// dialog, the resource it was made for), then the From URI's; else the default (first) tenant.
// The chosen endpoint refuses a sender of another tenant (403), so no request crosses tenants.
import type { Logger } from "../../src/ports/logger.js";
import { parseSipUri } from "../../src/domain/sip-uri.js";
import {
  newSharedSipState,
  serveSip,
  SipEndpoint,
  type SharedSipState,
  type SipEndpointOptions,
} from "./sip-endpoint.js";
import { buildResponse, missingHeaders, type SipRequest } from "./sip-message.js";
import type { Flow, SipTransports } from "./transports.js";

export class SipTenantRouter {
  private readonly byDomain = new Map<string, SipEndpoint>();
  private readonly list: SipEndpoint[] = [];
  private shared: SharedSipState | undefined;
  private opened = false;

  private constructor(
    readonly transports: SipTransports,
    log: Logger,
  ) {
    serveSip(transports, log, {
      onResponse: (message, text) => this.list.some((endpoint) => endpoint.onResponse(message, text)),
      receive: (request, flow, raw) => this.receive(request, flow, raw),
      answerUnframed: (head, flow) => this.list[0]?.answerUnframed(head, flow) ?? Promise.resolve(),
    });
  }

  /**
   * The process's listeners (sip.listen, with its TLS, advertised host and wire log). Requests are
   * answered 503 with Retry-After until `open()`, when every tenant's endpoint has been added.
   */
  static async listen(
    options: Parameters<typeof SipEndpoint.listen>[0],
    log: Logger,
  ): Promise<SipTenantRouter> {
    return new SipTenantRouter(await SipEndpoint.listen(options), log);
  }

  /**
   * A tenant's endpoint on the shared listeners, for the requests that name its home or gateway
   * domain; the first one added is the default. The rate limit is the first one's (one allowance
   * per source, whichever tenant it writes to).
   */
  add(options: SipEndpointOptions): SipEndpoint {
    this.shared ??= newSharedSipState(options.rateLimit);
    const endpoint = SipEndpoint.attach(this.transports, options, this.shared);
    for (const domain of [options.domains.homeDomain, options.domains.gatewayDomain])
      this.byDomain.set(domain.toLowerCase(), endpoint);
    this.list.push(endpoint);
    return endpoint;
  }

  /** Every tenant is there: requests are served from now on. */
  open(): void {
    this.opened = true;
  }

  get endpoints(): readonly SipEndpoint[] {
    return this.list;
  }

  /** The endpoint of the tenant a request is for (see the top of this file). */
  endpointFor(request: SipRequest): SipEndpoint | undefined {
    for (const uri of [request.ruri, request.to?.uri, request.from?.uri]) {
      const endpoint = uri && this.byDomain.get(hostOf(uri.toString()) ?? "");
      if (endpoint) return endpoint;
    }
    return this.list[0];
  }

  private async receive(request: SipRequest, flow: Flow, raw: Buffer): Promise<void> {
    const endpoint = this.opened ? this.endpointFor(request) : undefined;
    if (endpoint) {
      await endpoint.receive(request, flow, raw);
      return;
    }
    // Starting: statelessly, and only to what can be answered (RFC 3261 §8.2.6, §21.5.4).
    if (request.method === "ACK" || missingHeaders(request).length > 0) return;
    await flow.send(
      buildResponse(request, 503, {
        toTag: "starting",
        source: flow.transport === "udp" ? flow.remote : undefined,
        headers: [["Retry-After", "5"]],
        reason: "Starting",
      }),
    );
  }

  /** Closes the listeners; each endpoint is stopped by its owner first (SipEndpoint.stop). */
  async stop(): Promise<void> {
    await this.transports.close();
  }
}

/** The host of a sip:/sips: URI, lowercased and without a trailing dot; null for anything else. */
function hostOf(text: string): string | null {
  try {
    return parseSipUri(text).host.replace(/\.$/, "").toLowerCase();
  } catch {
    return null;
  }
}
