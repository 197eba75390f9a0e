// The bridge's own requests (MESSAGE, NOTIFY, SUBSCRIBE) as a user agent client: the next hop is
// the first Route, else `sip.outboundProxy`, else the Request-URI (RFC 3261 §8.1.2); its servers
// are located by DNS (RFC 3263 §4) and tried in turn on a transport failure or 503 (§4.3). A
// request too large for UDP goes over TCP or TLS (RFC 3261 §18.1.1), else fails with 513. A 401
// or 407 is answered once with digest credentials (RFC 3261 §22.2, RFC 8760).
import { isIP } from "node:net";
import { SwitchboardError, type Condition } from "../../src/domain/errors.js";
import { formatSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import type { ClientTransactionResult, ClientTransactions } from "./client-transactions.js";
import { authorize, chooseChallenge, parseChallenges } from "./digest.js";
import type { SipTarget } from "./locate.js";
import { parseSip } from "./sip-message.js";
import type { Flow, SipTransports, TransportName } from "./transports.js";
import { randomToken } from "../../src/util/random-token.js";

/** RFC 3261 §18.1.1: a request over ~1300 bytes should not go over UDP. */
export const UDP_MESSAGE_LIMIT = 1300;

export interface DigestCredentials {
  username: string;
  password: string;
  /** Only answer challenges from this realm. */
  realm?: string;
}

export interface RequestSpec {
  method: string;
  ruri: SipUri;
  /** From and To header values (From with its tag). */
  from: string;
  to: string;
  callId: string;
  cseq: number;
  /**
   * The dialog's route set, for a request inside a dialog (RFC 3261 §12.2.1.1): it then goes by
   * the route set or straight to the remote target, never through the outbound proxy.
   */
  routes?: readonly string[];
  inDialog?: boolean;
  headers?: readonly [string, string][];
  body?: { type: string; text: string };
  /** The connection the far end opened to us, used while it is open (RFC 5626 §4.5, RFC 7118 §5). */
  flow?: Flow;
}

export interface SendResult extends ClientTransactionResult {
  /** Set when the request never left for a reason of our own (e.g. the next hop is not in DNS). */
  condition?: Condition;
  /** The CSeq number finally used (one more when a challenge was answered). */
  cseq: number;
  flow?: Flow;
}

export interface RequestSenderOptions {
  transports: SipTransports;
  clients: ClientTransactions;
  /** Every branch we generate starts with it (loop detection). */
  branchPrefix: string;
  outboundProxy?: SipUri;
  credentials?: DigestCredentials;
  locate: (uri: SipUri, options: { preferReliable: boolean }) => Promise<SipTarget[]>;
  log: Logger;
}

const WIRE: Record<TransportName, string> = { udp: "UDP", tcp: "TCP", tls: "TLS", ws: "WS", wss: "WSS" };

/** The URI inside a Route or name-addr value (`<sip:p.example.org;lr>` → the URI). */
function routeUri(route: string): SipUri {
  return parseSipUri(route.trim().replace(/^[^<]*<([^>]*)>.*$/, "$1"));
}

export class RequestSender {
  constructor(private readonly options: RequestSenderOptions) {}

  /** The request's text over `transport` with a new branch (and credentials when challenged). */
  private build(spec: RequestSpec, transport: TransportName, cseq: number, extra: [string, string][]) {
    const { transports, outboundProxy, branchPrefix } = this.options;
    const branch = `${branchPrefix}${randomToken(8)}`;
    const sentBy = transports.sentBy(transport);
    const routes = spec.routes?.length
      ? spec.routes
      : !spec.inDialog && outboundProxy?.params.has("lr")
        ? [`<${formatSipUri(outboundProxy)}>`]
        : [];
    const body = spec.body?.text ?? "";
    const contactParams = transport === "udp" ? "" : `;transport=${transport}`;
    const lines = [
      `${spec.method} ${formatSipUri(spec.ruri)} SIP/2.0`,
      `Via: SIP/2.0/${WIRE[transport]} ${sentBy};branch=${branch};rport`,
      "Max-Forwards: 70",
      `From: ${spec.from}`,
      `To: ${spec.to}`,
      `Call-ID: ${spec.callId}`,
      `CSeq: ${cseq} ${spec.method}`,
      ...routes.map((route) => `Route: ${route}`),
      `Contact: <sip:${sentBy}${contactParams}>`,
      ...[...(spec.headers ?? []), ...extra].map(([name, value]) => `${name}: ${value}`),
      ...(spec.body ? [`Content-Type: ${spec.body.type}`] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      "",
      body,
    ];
    return { branch, text: lines.join("\r\n") };
  }

  /** The next hop (RFC 3261 §8.1.2): the first Route, the outbound proxy, or the Request-URI. */
  private nextHop(spec: RequestSpec): SipUri {
    const first = spec.routes?.[0];
    if (first) return routeUri(first);
    return (!spec.inDialog && this.options.outboundProxy) || spec.ruri;
  }

  /** Sends one request and resolves with its final outcome; never rejects. */
  async send(spec: RequestSpec): Promise<SendResult> {
    // Room for the Authorization header a challenge would add (~400 bytes with SHA-256).
    const margin = this.options.credentials ? 400 : 0;
    const size = Buffer.byteLength(this.build(spec, "udp", spec.cseq, []).text) + margin;
    const tooLargeForUdp = size > UDP_MESSAGE_LIMIT;
    let last: SendResult = { status: 503, reason: "no server to send to", cseq: spec.cseq };
    let attempted = false;
    if (spec.flow && (spec.flow.reliable || !tooLargeForUdp)) {
      last = await this.exchange(spec, spec.flow);
      if (last.status !== 503 || last.response !== undefined) return last;
      // The connection is gone: fall back to the Contact / route as a new flow.
      attempted = true;
    }
    let targets: SipTarget[];
    let hop: SipUri;
    try {
      hop = this.nextHop(spec);
    } catch (err) {
      // A route set from the far end that is not a SIP URI: this request cannot go anywhere.
      return { status: 503, reason: `bad next hop: ${(err as Error).message}`, cseq: spec.cseq };
    }
    // RFC 5922 §4.1: a TLS server proves the domain of the URI we located it from.
    const servername = isIP(hop.host.replace(/^\[|\]$/g, "")) === 0 ? hop.host : undefined;
    try {
      targets = await this.options.locate(hop, { preferReliable: tooLargeForUdp });
    } catch (err) {
      return {
        status: 503,
        reason: `cannot locate the next hop: ${(err as Error).message}`,
        cseq: spec.cseq,
        ...(err instanceof SwitchboardError ? { condition: err.condition } : {}),
      };
    }
    for (const target of targets) {
      if (target.transport === "udp" && tooLargeForUdp) {
        last = {
          status: 513,
          reason: `request of ${size} bytes is too large for UDP and ${target.host} offers no TCP or TLS`,
          cseq: spec.cseq,
        };
        continue;
      }
      let flow: Flow;
      try {
        flow = await this.options.transports.connect(target.transport, target.host, target.port, servername);
      } catch (err) {
        last = tooLargeForUdp
          ? { status: 513, reason: `too large for UDP, and ${(err as Error).message}`, cseq: spec.cseq }
          : { status: 503, reason: (err as Error).message, cseq: spec.cseq };
        continue;
      }
      // Each further server gets the next CSeq (a request inside a dialog must never repeat one).
      last = await this.exchange({ ...spec, cseq: attempted ? last.cseq + 1 : spec.cseq }, flow);
      attempted = true;
      // RFC 3263 §4.3: a transport failure, a timeout or a 503 moves on to the next server.
      if (last.status !== 503 && !(last.status === 408 && last.response === undefined)) return last;
    }
    return last;
  }

  /** One transaction over `flow`, answering one digest challenge if credentials allow. */
  private async exchange(spec: RequestSpec, flow: Flow): Promise<SendResult> {
    const { clients, credentials, log } = this.options;
    let cseq = spec.cseq;
    let extra: [string, string][] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const { branch, text } = this.build(spec, flow.transport, cseq, extra);
      const result = await clients.start(branch, spec.method, text, () => flow.send(text), flow.reliable);
      if (
        (result.status !== 401 && result.status !== 407) ||
        attempt > 0 ||
        !credentials ||
        !result.response
      ) {
        return { ...result, cseq, flow };
      }
      const response = parseSip(result.response);
      const header = result.status === 401 ? "WWW-Authenticate" : "Proxy-Authenticate";
      const choice = chooseChallenge(parseChallenges(response?.getHeaders(header) ?? []));
      if (!choice.ok || (credentials.realm !== undefined && choice.challenge.realm !== credentials.realm)) {
        log.warn(
          {
            reason: choice.ok ? `realm ${choice.challenge.realm} is not ours` : choice.reason,
            status: result.status,
          },
          "sip: challenge we cannot answer",
        );
        return { ...result, cseq, flow };
      }
      const challenge = choice.challenge;
      cseq += 1; // a new request in the same Call-ID (RFC 3261 §22.2)
      extra = [
        [
          result.status === 401 ? "Authorization" : "Proxy-Authorization",
          authorize(challenge, {
            username: credentials.username,
            password: credentials.password,
            method: spec.method,
            uri: formatSipUri(spec.ruri),
            nc: 1,
          }),
        ],
      ];
    }
    /* c8 ignore next */
    throw new Error("unreachable");
  }
}
