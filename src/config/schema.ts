// The one configuration schema. Types are inferred from it (`Config`), the reference in
// docs/config-reference.md is generated from it, and every object is strict: an unknown key is an
// error naming its path, never silently ignored. Hosts, ports and SIP URIs inside strings are
// checked with the same parsers the bridge uses (src/domain), so a value the bridge would refuse
// at run time is refused here, with its key path.
import { isIP } from "node:net";
import { z } from "zod";
import { parseHost } from "../domain/host.js";
import { parseSipUri } from "../domain/sip-uri.js";

/** A DNS domain name (not an IP address), lowercased as JID domainparts are (RFC 7622 §3.2). */
const hostname = z
  .string()
  .refine(
    (name) => {
      const parsed = parseHost(name);
      return !("problem" in parsed) && parsed.kind === "dns";
    },
    { message: "expected a domain name such as example.org" },
  )
  .transform((name) => name.toLowerCase());

const port = z.number().int().min(1).max(65535);

/** Problem with `host:port` (IPv6 hosts in brackets), or null. */
function hostPortProblem(value: string): string | null {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!match) return "expected host:port, e.g. 127.0.0.1:8480 or [::1]:8480";
  const host = match[1] ?? match[2] ?? "";
  const parsed = parseHost(match[1] !== undefined ? `[${host}]` : host);
  if ("problem" in parsed) return `bad host '${host}': ${parsed.problem}`;
  const number = Number(match[3]);
  if (number < 1 || number > 65535) return `port ${number} is outside 1-65535`;
  return null;
}

/** `host:port`, with IPv6 hosts in brackets (`[::1]:5060`). */
const hostPort = z.string().superRefine((value, ctx) => {
  const problem = hostPortProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** SIP listen address: `<transport>:<host>:<port>` (RFC 3261 §18, RFC 7118 for ws/wss). */
export const sipListen = z.string().superRefine((value, ctx) => {
  const transport = /^(udp|tcp|tls|ws|wss):/i.exec(value);
  const problem = transport ? hostPortProblem(value.slice(transport[0].length)) : "no transport";
  if (problem) {
    ctx.addIssue({
      code: "custom",
      message: `expected <udp|tcp|tls|ws|wss>:<host>:<port>, e.g. udp:127.0.0.1:5060 (${problem})`,
    });
  }
});

const sipUri = z.string().superRefine((value, ctx) => {
  try {
    parseSipUri(value);
  } catch (err) {
    ctx.addIssue({
      code: "custom",
      message: `expected a SIP URI such as sip:proxy.example.org;lr (${(err as Error).message})`,
    });
  }
});

/** `scheme://host[:port]...` with a host and a valid port, for Redis and LDAP URLs. */
function serverUrl(schemes: string[], example: string) {
  return z.string().superRefine((value, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    const scheme = url?.protocol.slice(0, -1);
    if (!url || !scheme || !schemes.includes(scheme) || url.hostname === "") {
      ctx.addIssue({ code: "custom", message: `expected ${example}` });
    }
  });
}

const secret = z.string().min(1, { message: "expected a non-empty secret (may come from ${ENV_VAR})" });

/** An XEP-0114 component connection; the same shape at the top level and in each tenant. */
function componentSchema(owner: string) {
  return z
    .strictObject({
      jid: hostname.describe(
        `${owner} gateway domain (component JID); SIP parties appear as JIDs on it, e.g. sip.example.org.`,
      ),
      host: z.string().min(1).default("127.0.0.1").describe("Host of the XMPP server's component port."),
      port: port.default(5347).describe("Component port of the XMPP server (Prosody: component_ports)."),
      secret: secret.describe("Component secret shared with the XMPP server (component_secret)."),
    })
    .describe(`${owner} external component connection (XEP-0114).`);
}

/** A SIP user who may authenticate with digest; the same shape at the top level and in each tenant. */
const sipUser = z
  .strictObject({
    username: z.string().min(1).describe("Digest user name: the home-domain user (sip:NAME@domain)."),
    password: secret.optional().describe("Clear password (may come from ${ENV_VAR})."),
    ha1: z
      .string()
      .regex(/^[0-9a-f]{32}$/i, {
        message: "expected 32 hex digits: MD5(username:realm:password)",
      })
      .optional()
      .describe("MD5(username:realm:password), instead of a password."),
    ha1Sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/i, {
        message: "expected 64 hex digits: SHA-256(username:realm:password)",
      })
      .optional()
      .describe("SHA-256(username:realm:password) (RFC 8760), instead of a password."),
  })
  .refine((u) => u.password !== undefined || u.ha1 !== undefined || u.ha1Sha256 !== undefined, {
    message: "expected password, ha1 or ha1Sha256",
  });

/** Who a home user is on the PBX; the same shape at the top level and in each tenant. */
const asteriskUser = z.strictObject({
  user: z.string().min(1).describe("The home user (alice → alice@domain)."),
  devices: z
    .array(z.string().min(1))
    .optional()
    .describe("Their phones' devices, e.g. [PJSIP/alice]; default PJSIP/<user>."),
  presence: z
    .string()
    .min(1)
    .optional()
    .describe("Their CustomPresence provider name (hint CustomPresence:<name>); default <user>."),
  mailbox: z
    .string()
    .min(1)
    .optional()
    .describe("Their voicemail box, e.g. alice@default; default <user>@default."),
  endpoint: z
    .string()
    .min(1)
    .optional()
    .describe("The endpoint ARI sends their messages to, e.g. PJSIP/alice; default PJSIP/<user>."),
});

/** People listed in the config file; the same shape at the top level and in each tenant. */
const directorySchema = z
  .strictObject({
    users: z
      .array(
        z.strictObject({
          uid: z.string().min(1).describe("User name: alice for alice@example.org."),
          displayName: z.string().min(1).describe("Name shown to chat users (vCard FN)."),
          extension: z
            .string()
            .regex(/^[0-9*#]+$/, { message: "expected digits, * or #" })
            .optional()
            .describe("PBX extension."),
          numbers: z
            .array(z.string().regex(/^\+?[0-9\s().-]+$/, { message: "expected a phone number" }))
            .default([])
            .describe("Phone numbers, E.164 preferred."),
        }),
      )
      .default([])
      .describe("People listed here, for sites without LDAP."),
  })
  .optional()
  .describe(
    "A directory in this file: names and numbers of gateway contacts (vCards). LDAP, when configured, comes first.",
  );

/** Colleagues' phones in rosters; the same shape at the top level and in each tenant. */
const rosterPhonesSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe("Offer colleagues' phones (from the directory) to home users."),
    group: z.string().min(1).default("Phones").describe("Roster group of the offered phones."),
  })
  .default({ enabled: false, group: "Phones" })
  .describe(
    "Colleagues' phones in rosters: written directly where XEP-0356 grants roster set/both, else offered with XEP-0144.",
  );

/**
 * One further company (docs/tenants.md): the keys that are per tenant, in the shape they have at
 * the top level. What is not here (SIP listener and transport settings, the LDAP and Redis
 * servers, the HTTP server, logging) is shared by every tenant.
 */
const tenantSchema = z.strictObject({
  domain: hostname.describe("The tenant's home domain."),
  xmpp: z
    .strictObject({
      component: componentSchema("The tenant's"),
      allowedDomains: z
        .array(hostname)
        .default([])
        .describe(
          "Domains besides the tenant's home domain whose users may subscribe to its gateway contacts; another tenant's domains are refused here.",
        ),
      rosterPhones: rosterPhonesSchema,
    })
    .describe("The tenant's XMPP side."),
  sip: z
    .strictObject({
      users: z
        .array(sipUser)
        .default([])
        .describe("The tenant's SIP users who authenticate with digest (as sip.users)."),
      realm: z
        .string()
        .min(1)
        .optional()
        .describe("Digest realm for the tenant's users; absent: the tenant's home domain."),
    })
    .default({ users: [] })
    .describe("The tenant's SIP users; listeners, trusted peers, proxy and timers are the top-level sip's."),
  store: z
    .strictObject({
      prefix: z
        .string()
        .min(1)
        .regex(/^[^{}]*$/, { message: "must not contain { or }: the bridge puts hash tags after it" })
        .optional()
        .describe(
          "Prefix of every key the tenant's part writes; required when the store is Redis (store.url, store.sentinel or store.cluster), and no tenant's prefix may start with another's.",
        ),
    })
    .default({})
    .describe("The tenant's keys in the shared store (store.url, store.sentinel or store.cluster)."),
  ldap: z
    .strictObject({
      base: z
        .string()
        .min(1)
        .describe("Search base of the tenant's people, e.g. ou=people,dc=example,dc=com."),
    })
    .optional()
    .describe("The tenant's people in the LDAP server of the top-level ldap (its url, bind and attributes)."),
  directory: directorySchema,
  enum: z
    .strictObject({
      suffixes: z.array(hostname).min(1).describe("The tenant's ENUM suffixes, tried in order."),
      defaultRegion: z
        .string()
        .regex(/^[A-Z]{2}$/, { message: "expected an ISO 3166 region code such as GB or US" })
        .optional()
        .describe("Region for the tenant's national numbers; absent: enum.defaultRegion, else GB."),
    })
    .optional()
    .describe("The tenant's ENUM lookups, through the DNS servers of the top-level enum. Absent: no ENUM."),
  asterisk: z
    .strictObject({
      app: z.string().min(1).describe("The tenant's Stasis application name (distinct from asterisk.app)."),
      users: z
        .array(asteriskUser)
        .default([])
        .describe("The tenant's people on the PBX (as asterisk.users)."),
      messages: z
        .boolean()
        .default(false)
        .describe("Messages to the tenant's phones go through ARI (as asterisk.messages)."),
      presenceDirection: z
        .enum(["in", "out", "both"])
        .default("both")
        .describe("CustomPresence direction for the tenant (as asterisk.presenceDirection)."),
    })
    .optional()
    .describe(
      "The tenant's PBX side, on the Asterisk of the top-level asterisk (its ARI and AMI connection settings). Absent: no PBX.",
    ),
});

export const configSchema = z
  .strictObject({
    domain: hostname.describe(
      "The users' home domain: alice@example.org is sip:alice@example.org and xmpp:alice@example.org.",
    ),
    xmpp: z
      .strictObject({
        component: componentSchema("The"),
        rosterPhones: rosterPhonesSchema,
        maxMessageBytes: z
          .number()
          .int()
          .min(1024)
          .max(1024 * 1024)
          .default(64 * 1024)
          .describe(
            "Largest message body relayed either way, in UTF-8 bytes; larger ones are refused (policy-violation, SIP 513).",
          ),
        allowedDomains: z
          .array(hostname)
          .default([])
          .describe(
            "Domains besides the home domain whose users may subscribe to gateway contacts (e.g. federated partners); others are refused.",
          ),
      })
      .describe("XMPP side."),
    sip: z
      .strictObject({
        listen: z
          .array(sipListen)
          .min(1)
          .default(["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"])
          .describe(
            "Listen addresses, one per transport: udp:, tcp:, tls:, ws:, wss: followed by host:port.",
          ),
        trustedPeers: z
          .array(
            z
              .string()
              .refine(
                (cidr) => /^[0-9a-f:.]+(\/\d{1,3})?$/i.test(cidr) && isIP(cidr.split("/")[0] ?? "") !== 0,
                {
                  message: "expected an address or CIDR such as 10.0.0.5 or 10.0.0.0/24",
                },
              ),
          )
          .default(["127.0.0.1/32", "::1/128"])
          .describe(
            "Peers (proxy, PBX) whose requests are accepted without digest authentication, and whose P-Asserted-Identity is believed.",
          ),
        advertisedHost: z
          .string()
          .min(1)
          .optional()
          .describe(
            "The address or name phones and proxies reach the bridge at, put in Via and Contact; required when a listen address is 0.0.0.0 or [::].",
          ),
        realm: z
          .string()
          .min(1)
          .optional()
          .describe("Digest realm the bridge challenges untrusted peers with; absent: the home domain."),
        users: z
          .array(sipUser)
          .default([])
          .describe(
            "SIP users who may send MESSAGE/PUBLISH/SUBSCRIBE from untrusted addresses, authenticated with digest (RFC 8760: SHA-256 and MD5). Empty: untrusted peers get 403.",
          ),
        digestAlgorithms: z
          .array(z.enum(["SHA-256", "MD5"]))
          .min(1)
          .default(["SHA-256", "MD5"])
          .refine((list) => new Set(list).size === list.length, { message: "expected each algorithm once" })
          .describe(
            "Digest challenges offered to untrusted peers, most preferred first (RFC 8760). Some older user agents read only the first challenge: put MD5 first (or alone) for them.",
          ),
        tls: z
          .strictObject({
            cert: z.string().min(1).describe("PEM certificate (chain) file for tls: and wss: listeners."),
            key: z.string().min(1).describe("PEM private key file."),
            ca: z
              .string()
              .min(1)
              .optional()
              .describe(
                "PEM CA bundle to verify servers the bridge connects to over TLS; absent: the system's.",
              ),
            clientCa: z
              .string()
              .min(1)
              .optional()
              .describe(
                "PEM CA bundle for client certificates: with it, tls: and wss: listeners ask peers for a certificate, and a trusted peer (sip.trustedPeers) connecting over them is trusted only if its certificate verifies against this bundle (otherwise it must authenticate with digest like anyone else).",
              ),
            minVersion: z
              .enum(["TLSv1.2", "TLSv1.3"])
              .default("TLSv1.2")
              .describe(
                "Oldest TLS version accepted by the listeners and used for the bridge's own connections.",
              ),
          })
          .optional()
          .describe("TLS files; required when sip.listen has a tls: or wss: entry."),
        timers: z
          .strictObject({
            t1: z
              .number()
              .int()
              .min(10)
              .max(10_000)
              .default(500)
              .describe("T1, the RTT estimate, in ms (RFC 3261 §17)."),
            t2: z
              .number()
              .int()
              .min(100)
              .max(60_000)
              .default(4_000)
              .describe("T2, the longest retransmit interval, in ms."),
            t4: z
              .number()
              .int()
              .min(100)
              .max(60_000)
              .default(5_000)
              .describe("T4, the longest a message stays in the network, in ms."),
          })
          .default({ t1: 500, t2: 4_000, t4: 5_000 })
          .describe("Transaction timers over UDP (RFC 3261 §17.1.2.2, Table 4)."),
        rateLimit: z
          .strictObject({
            requestsPerSecond: z
              .number()
              .min(0)
              .max(100_000)
              .default(20)
              .describe("New requests per second allowed from one source address; 0: no limit."),
            burst: z
              .number()
              .int()
              .min(1)
              .max(1_000_000)
              .default(40)
              .describe("Requests one source may send at once after a quiet while (the bucket's size)."),
            trustedPeers: z
              .boolean()
              .default(false)
              .describe(
                "Limit trusted peers too. Off by default: the proxy carries every phone's traffic from one address.",
              ),
          })
          .default({ requestsPerSecond: 20, burst: 40, trustedPeers: false })
          .describe(
            "Per-source rate limiting (token bucket): beyond it a request is answered 503 with Retry-After and logged as a RateLimited security event.",
          ),
        minExpires: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(60)
          .describe(
            "Shortest Expires accepted in PUBLISH and SUBSCRIBE, in seconds (shorter: 423 with Min-Expires).",
          ),
        regEvents: z
          .strictObject({
            registrar: sipUri.describe(
              "The registrar (Kamailio, OpenSIPS) that serves RFC 3680 reg event subscriptions, e.g. sip:registrar.example.org.",
            ),
            expires: z
              .number()
              .int()
              .min(60)
              .max(86_400)
              .default(3600)
              .describe("Subscription duration asked of the registrar, in seconds."),
          })
          .optional()
          .describe(
            "Phone-is-back signal for queued messages: while messages wait for a phone, the bridge subscribes to its registration (Event: reg) and retries them when it registers again.",
          ),
        mwi: z
          .strictObject({
            expires: z
              .number()
              .int()
              .min(60)
              .max(86_400)
              .default(3600)
              .describe("Subscription duration asked of the PBX, in seconds; refreshed before it ends."),
            mailboxes: z
              .array(
                z.strictObject({
                  user: z
                    .string()
                    .min(1)
                    .describe("The home user the mailbox belongs to (alice → alice@domain)."),
                  uri: sipUri.describe(
                    "The mailbox's address at the PBX, SUBSCRIBEd with Event: message-summary.",
                  ),
                  account: sipUri
                    .optional()
                    .describe(
                      "The To address (or Message-Account) of unsolicited NOTIFYs that concern this mailbox alone, e.g. an Asterisk endpoint with only this mailbox.",
                    ),
                }),
              )
              .min(1)
              .describe("One entry per mailbox."),
          })
          .optional()
          .describe("Voicemail counts from the PBX by SIP (RFC 3842 message-summary subscriptions)."),
        dnsServers: z
          .array(hostPort)
          .optional()
          .describe(
            "DNS servers (host:port) for locating SIP servers by NAPTR/SRV/A (RFC 3263) when there is no outboundProxy; absent: the system's resolvers.",
          ),
        outboundProxy: sipUri
          .optional()
          .describe(
            "SIP URI of the proxy the bridge sends its own requests through (Kamailio, OpenSIPS); absent: direct (RFC 3263).",
          ),
        dialogContact: sipUri
          .optional()
          .describe(
            "Contact of the presence subscription dialogs the bridge answers, when several instances share the store (Redis) behind a proxy: a URI the proxy hands to any instance (e.g. sip:switchboard@proxy), so a refresh or unsubscribe reaches whichever is up; absent: the instance's own address. Not used with the in-memory store (one instance).",
          ),
        auth: z
          .strictObject({
            username: z.string().min(1).describe("Digest user name the bridge answers challenges with."),
            password: secret.describe("Digest password."),
            realm: z
              .string()
              .min(1)
              .optional()
              .describe("Only answer challenges from this realm; absent: any realm."),
          })
          .optional()
          .describe(
            "Digest credentials (RFC 8760) for the bridge's own requests when the proxy challenges them.",
          ),
      })
      .default({
        listen: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"],
        trustedPeers: ["127.0.0.1/32", "::1/128"],
        users: [],
        minExpires: 60,
        rateLimit: { requestsPerSecond: 20, burst: 40, trustedPeers: false },
        digestAlgorithms: ["SHA-256", "MD5"],
        timers: { t1: 500, t2: 4_000, t4: 5_000 },
      })
      .describe("SIP side."),
    store: z
      .strictObject({
        url: serverUrl(["redis", "rediss"], "redis://host:port or rediss://host:port")
          .optional()
          .describe(
            "A single Redis server's URL. Absent, with no sentinel and no cluster: the in-memory store (not durable, one instance; for trying it out).",
          ),
        sentinel: z
          .strictObject({
            masterName: z
              .string()
              .min(1)
              .describe("The name the sentinels monitor the primary under (sentinel monitor <name> ...)."),
            sentinels: z
              .array(hostPort)
              .min(1)
              .describe("Sentinels as host:port; three or more, on different machines."),
            password: secret.optional().describe("Password of the primary and replicas (requirepass)."),
            sentinelPassword: secret.optional().describe("Password of the sentinels, if they require one."),
          })
          .optional()
          .describe("Redis Sentinel: the bridge asks the sentinels for the primary and follows failovers."),
        cluster: z
          .strictObject({
            nodes: z
              .array(hostPort)
              .min(1)
              .describe("Some of the cluster's nodes as host:port; the others are discovered from them."),
            password: secret.optional().describe("Password of the cluster's nodes."),
          })
          .optional()
          .describe("Redis Cluster: keys are spread over the primaries by hash tag (docs/store.md)."),
        prefix: z
          .string()
          .min(1)
          .regex(/^[^{}]*$/, { message: "must not contain { or }: the bridge puts hash tags after it" })
          .default("switchboard:")
          .describe("Prefix of every key the bridge writes."),
        queue: z
          .strictObject({
            ttlSeconds: z
              .number()
              .int()
              .min(60)
              .max(30 * 86_400)
              .default(86_400)
              .describe("How long a message waits for an offline phone before the sender gets an error."),
            retryMinSeconds: z
              .number()
              .int()
              .min(1)
              .max(3600)
              .default(30)
              .describe("First retry delay; doubled per attempt."),
            retryMaxSeconds: z
              .number()
              .int()
              .min(1)
              .max(86_400)
              .default(900)
              .describe("Longest retry delay."),
            waitReplicas: z
              .number()
              .int()
              .min(0)
              .max(10)
              .default(0)
              .describe(
                "Replicas that must hold a queued message before it counts as queued (Redis WAIT); 0: the primary alone.",
              ),
            waitTimeoutMs: z
              .number()
              .int()
              .min(10)
              .max(60_000)
              .default(1_000)
              .describe("How long to wait for those replicas before the message is refused."),
          })
          .default({
            ttlSeconds: 86_400,
            retryMinSeconds: 30,
            retryMaxSeconds: 900,
            waitReplicas: 0,
            waitTimeoutMs: 1_000,
          })
          .describe("Messages for offline phones (408/480/503): queued, retried, given up after ttlSeconds."),
      })
      // One place for the store: a single server, a Sentinel set, or a Cluster.
      .superRefine((store, ctx) => {
        const given = (["url", "sentinel", "cluster"] as const).filter((key) => store[key] !== undefined);
        for (const key of given.slice(1))
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: `store.${given[0] ?? ""} is set too: set one of store.url, store.sentinel, store.cluster`,
          });
      })
      .default({
        prefix: "switchboard:",
        queue: {
          ttlSeconds: 86_400,
          retryMinSeconds: 30,
          retryMaxSeconds: 900,
          waitReplicas: 0,
          waitTimeoutMs: 1_000,
        },
      })
      .describe("Presence, subscription and message-queue store."),
    asterisk: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/ })
          .describe("ARI base URL, e.g. http://127.0.0.1:8088 (http.conf)."),
        username: z.string().min(1).describe("ARI user (ari.conf)."),
        password: secret.describe("ARI password."),
        app: z
          .string()
          .min(1)
          .default("switchboard")
          .describe("Stasis application name the bridge registers."),
        ami: z
          .strictObject({
            host: z.string().min(1).default("127.0.0.1").describe("AMI host (manager.conf)."),
            port: port.default(5038).describe("AMI port."),
            username: z.string().min(1).describe("AMI user."),
            password: secret.describe("AMI secret."),
          })
          .optional()
          .describe("AMI, for what ARI cannot do: presence-change events and voicemail counts."),
        users: z
          .array(asteriskUser)
          .default([])
          .describe("Who is who on the PBX: each home user's devices, CustomPresence, mailbox and endpoint."),
        messages: z
          .boolean()
          .default(false)
          .describe(
            "Chat users' messages to the mapped users' phones go through ARI endpoints/sendMessage (phones registered to Asterisk) instead of SIP; Asterisk's 202 gives no receipt.",
          ),
        presenceDirection: z
          .enum(["in", "out", "both"])
          .default("both")
          .describe(
            "CustomPresence: in (PBX → chat), out (chat → PBX, written with PRESENCE_STATE), or both.",
          ),
      })
      .optional()
      .describe("Asterisk PBX: device state, CustomPresence, voicemail. Absent: no PBX."),
    ldap: z
      .strictObject({
        url: serverUrl(["ldap", "ldaps"], "ldap://host:port or ldaps://host:port").describe(
          "Directory server.",
        ),
        bindDN: z.string().min(1).optional().describe("DN to bind as; absent: anonymous."),
        password: secret.optional().describe("Bind password; required with bindDN."),
        base: z.string().min(1).describe("Search base, e.g. ou=people,dc=example,dc=org."),
        startTls: z
          .boolean()
          .default(false)
          .describe(
            "Upgrade an ldap:// connection with StartTLS before binding (so the password is not sent in clear).",
          ),
        ca: z
          .string()
          .min(1)
          .optional()
          .describe(
            "PEM CA bundle to verify the server's certificate (ldaps:// or StartTLS); absent: the system's CAs.",
          ),
        timeoutMs: z
          .number()
          .int()
          .min(100)
          .max(60_000)
          .default(3000)
          .describe("Longest wait for one LDAP request, reconnect included."),
        attributes: z
          .strictObject({
            uid: z.string().default("uid").describe("user id, the local part of home-domain addresses"),
            mail: z.string().default("mail").describe("mail address, also matched as a SIP/XMPP address"),
            telephoneNumber: z
              .string()
              .default("telephoneNumber")
              .describe("phone numbers in any format; matched after E.164 normalisation"),
            extension: z
              .string()
              .default("switchboardExtension")
              .describe("internal extension dialled on the PBX"),
            displayName: z
              .string()
              .default("displayName")
              .describe("name shown to chat users and on phone displays"),
            sipUri: z
              .string()
              .default("switchboardSipUri")
              .describe("SIP address when it differs from uid@domain"),
            jid: z.string().default("switchboardJid").describe("JID when it differs from uid@domain"),
            ha1: z
              .string()
              .default("switchboardHA1")
              .describe("SIP digest HA1 = MD5(user:realm:password); protect it with an ACL"),
          })
          .default({
            uid: "uid",
            mail: "mail",
            telephoneNumber: "telephoneNumber",
            extension: "switchboardExtension",
            displayName: "displayName",
            sipUri: "switchboardSipUri",
            jid: "switchboardJid",
            ha1: "switchboardHA1",
          })
          .describe(
            "Attribute names in your directory (config/ldap/switchboard.schema defines the switchboard* ones).",
          ),
      })
      // An empty password would make a simple bind unauthenticated (RFC 4513 §5.1.2): check would
      // report "bound" without any credential having been checked.
      .refine((ldap) => ldap.bindDN === undefined || ldap.password !== undefined, {
        message: "required when bindDN is set",
        path: ["password"],
      })
      .refine((ldap) => !(ldap.startTls && ldap.url.startsWith("ldaps:")), {
        message: "StartTLS is for ldap:// (ldaps:// is TLS already)",
        path: ["startTls"],
      })
      .optional()
      .describe("LDAP directory for names, extensions and numbers. Absent: no directory."),
    directory: directorySchema,
    enum: z
      .strictObject({
        suffixes: z
          .array(hostname)
          .min(1)
          .prefault(["e164.arpa"])
          .describe("ENUM suffixes, tried in order (RFC 6116)."),
        servers: z
          .array(hostPort)
          .default([])
          .describe("DNS servers as host:port; empty: the system resolvers."),
        defaultRegion: z
          .string()
          .regex(/^[A-Z]{2}$/, { message: "expected an ISO 3166 region code such as GB or US" })
          .default("GB")
          .describe("Region used to read national numbers (020 7123 4567) as E.164."),
      })
      .optional()
      .describe("ENUM lookups of E.164 numbers. Absent: no ENUM."),
    http: z
      .strictObject({
        listen: hostPort
          .default("127.0.0.1:8480")
          .describe("Health, readiness, metrics, JSON API and status page."),
        auth: z
          .strictObject({
            username: z.string().min(1).describe("User name for the status page and the presence API."),
            password: secret.describe("Its password."),
          })
          .optional()
          .describe(
            "HTTP basic auth for the status page, its live feed and the presence API; /healthz, /readyz and /metrics stay open. Absent: no auth (keep http.listen on loopback).",
          ),
      })
      .default({ listen: "127.0.0.1:8480" })
      .describe("HTTP endpoint."),
    log: z
      .strictObject({
        level: z
          .enum(["fatal", "error", "warn", "info", "debug", "trace"])
          .default("info")
          .describe("Log level (a reload on SIGHUP applies a new one)."),
        wire: z
          .strictObject({
            sip: z
              .boolean()
              .default(false)
              .describe("Log every SIP message sent and received, in full (digest responses masked)."),
            xmpp: z
              .boolean()
              .default(false)
              .describe("Log every stanza sent and received on the component connection, in full."),
          })
          .default({ sip: false, xmpp: false })
          .describe("Wire tracing per protocol, at info level; message bodies appear in it."),
      })
      .default({ level: "info", wire: { sip: false, xmpp: false } })
      .describe("Logging (JSON lines on standard output)."),
    tenants: z
      .array(tenantSchema)
      .optional()
      .describe(
        "Further companies served by this process, each isolated from the others (docs/tenants.md). The top-level keys are the first (default) tenant; the SIP listener, HTTP server, LDAP and Redis servers are shared.",
      ),
  })
  .superRefine((config, ctx) => {
    // Each domain and each gateway domain once: a gateway domain equal to a home domain makes every
    // mapping a loop, and the XMPP server accepts one connection per component domain.
    const seen = new Map<string, string>();
    const claim = (name: string, path: (string | number)[]): void => {
      const owner = seen.get(name);
      if (owner) ctx.addIssue({ code: "custom", path, message: `'${name}' is already used by ${owner}` });
      else
        seen.set(
          name,
          path.map((key, i) => (typeof key === "number" ? `[${key}]` : i ? `.${key}` : key)).join(""),
        );
    };
    claim(config.domain, ["domain"]);
    claim(config.xmpp.component.jid, ["xmpp", "component", "jid"]);
    (config.tenants ?? []).forEach((tenant, i) => {
      claim(tenant.domain, ["tenants", i, "domain"]);
      claim(tenant.xmpp.component.jid, ["tenants", i, "xmpp", "component", "jid"]);
    });
    tenantProblems(config).forEach((issue) => ctx.addIssue({ code: "custom", ...issue }));
    config.sip.listen.forEach((entry, i) => {
      if (/^(tls|wss):/i.test(entry) && !config.sip.tls) {
        ctx.addIssue({
          code: "custom",
          path: ["sip", "listen", i],
          message: `${entry.split(":")[0] ?? ""}: needs sip.tls.cert and sip.tls.key`,
        });
      }
    });
    config.sip.listen.forEach((entry, i) => {
      if (/^[a-z]+:(0\.0\.0\.0|\[::\]):/i.test(entry) && !config.sip.advertisedHost) {
        ctx.addIssue({
          code: "custom",
          path: ["sip", "listen", i],
          message:
            "a wildcard address cannot go in Via and Contact: set sip.advertisedHost (the address peers reach)",
        });
      }
    });
    const { t1, t2, t4 } = config.sip.timers;
    if (t2 < t1)
      ctx.addIssue({ code: "custom", path: ["sip", "timers", "t2"], message: `must be at least t1 (${t1})` });
    if (t4 < t1)
      ctx.addIssue({ code: "custom", path: ["sip", "timers", "t4"], message: `must be at least t1 (${t1})` });
  });

export type Config = z.infer<typeof configSchema>;

/**
 * What keeps tenants apart and cannot be said by the shape alone: each tenant's keys under a prefix
 * of its own (a prefix that starts with another would put one tenant's keys among the other's), no
 * tenant allowing another tenant's domains in, and the shared servers a tenant's keys refer to.
 */
function tenantProblems(config: {
  domain: string;
  xmpp: { component: { jid: string }; allowedDomains: string[] };
  store: { url?: string | undefined; sentinel?: unknown; cluster?: unknown; prefix: string };
  ldap?: unknown;
  asterisk?: { app: string } | undefined;
  tenants?: {
    domain: string;
    xmpp: { component: { jid: string }; allowedDomains: string[] };
    store: { prefix?: string | undefined };
    ldap?: unknown;
    asterisk?: { app: string } | undefined;
  }[];
}): { path: (string | number)[]; message: string }[] {
  const tenants = config.tenants ?? [];
  if (tenants.length === 0) return [];
  const problems: { path: (string | number)[]; message: string }[] = [];
  const all = [
    { path: [] as (string | number)[], name: "the top-level tenant", ...config },
    ...tenants.map((t, i) => ({ path: ["tenants", i] as (string | number)[], name: `tenants[${i}]`, ...t })),
  ];
  const prefixes: { path: (string | number)[]; prefix: string }[] = [];
  for (const tenant of all) {
    if (!config.store.url && !config.store.sentinel && !config.store.cluster) {
      // The in-memory store: each tenant has a store of its own, prefixes play no part.
    } else if (tenant.store.prefix !== undefined)
      prefixes.push({ path: [...tenant.path, "store", "prefix"], prefix: tenant.store.prefix });
    else
      problems.push({
        path: [...tenant.path, "store", "prefix"],
        message: "required when the store is Redis: each tenant keeps its keys under its own prefix",
      });
    const others = all.filter((other) => other !== tenant);
    tenant.xmpp.allowedDomains.forEach((domain, j) => {
      const owner = others.find((o) => o.domain === domain || o.xmpp.component.jid === domain);
      if (owner)
        problems.push({
          path: [...tenant.path, "xmpp", "allowedDomains", j],
          message: `'${domain}' belongs to ${owner.name}: tenants are isolated from each other`,
        });
    });
  }
  prefixes.forEach((a, i) =>
    prefixes.forEach((b, j) => {
      if (i !== j && a.prefix.startsWith(b.prefix) && (a.prefix !== b.prefix || i > j))
        problems.push({
          path: a.path,
          message: `'${a.prefix}' starts with '${b.prefix}' (${dotted(b.path)}): each tenant needs a prefix of its own`,
        });
    }),
  );
  tenants.forEach((tenant, i) => {
    if (tenant.ldap && !config.ldap)
      problems.push({
        path: ["tenants", i, "ldap"],
        message: "needs the top-level ldap (the server to ask)",
      });
    if (tenant.asterisk && !config.asterisk)
      problems.push({
        path: ["tenants", i, "asterisk"],
        message: "needs the top-level asterisk (the PBX to connect to)",
      });
    const app = tenant.asterisk?.app;
    const owner =
      app === undefined ? undefined : all.find((o) => o !== all[i + 1] && o.asterisk?.app === app);
    if (owner)
      problems.push({
        path: ["tenants", i, "asterisk", "app"],
        message: `'${app}' is already ${owner.name}'s Stasis application`,
      });
  });
  return problems;
}

/** A key path as the errors write it: tenants[1].store.prefix. */
function dotted(path: readonly (string | number)[]): string {
  return path.map((key, i) => (typeof key === "number" ? `[${key}]` : i ? `.${key}` : key)).join("");
}
export type ConfigInput = z.input<typeof configSchema>;
