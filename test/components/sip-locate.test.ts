// Locating SIP servers (RFC 3263 §4) against a real DNS server: dnsmasq serving NAPTR, SRV and
// A/AAAA records for example.com, each test's names under its own subdomain. Unknown names under
// example.com get NXDOMAIN; names elsewhere get REFUSED.
import assert from "node:assert/strict";
import { Resolver } from "node:dns/promises";
import { createSocket, type Socket } from "node:dgram";
import {
  locateSipServer,
  orderSrv,
  type LocateOptions,
  type SipResolver,
  type SipTarget,
} from "../../components/sip/locate.js";
import { SwitchboardError, type Condition } from "../../src/domain/errors.js";
import { parseSipUri } from "../../src/domain/sip-uri.js";
import { DnsServer, type NaptrRecord } from "../harness/dns.js";
import { LOOPBACK } from "../harness/net.js";

const ALL = ["udp", "tcp", "tls"] as const;

const naptr = (name: string, order: number, preference: number, service: string, replacement: string) =>
  ({ name, order, preference, flags: "s", service, regexp: "", replacement }) satisfies NaptrRecord;

// naptr.example.com: UDP first, then TCP (same order, higher preference), then TLS (higher order).
// sctp.example.com: an SCTP service and an ENUM-style "u" record ahead of TCP, neither usable.
const NAPTR: NaptrRecord[] = [
  naptr("naptr.example.com", 10, 20, "SIP+D2T", "_sip._tcp.naptr.example.com"),
  naptr("naptr.example.com", 20, 10, "SIPS+D2T", "_sips._tcp.naptr.example.com"),
  naptr("naptr.example.com", 10, 10, "SIP+D2U", "_sip._udp.naptr.example.com"),
  naptr("sctp.example.com", 5, 10, "SIP+D2S", "_sip._sctp.sctp.example.com"),
  {
    name: "sctp.example.com",
    order: 6,
    preference: 10,
    flags: "u",
    service: "E2U+sip",
    regexp: "!^.*$!sip:bob@udp.naptr.example.com!",
  },
  naptr("sctp.example.com", 10, 10, "SIP+D2T", "_sip._tcp.sctp.example.com"),
];

const SRV = [
  { name: "_sip._udp.naptr.example.com", target: "udp.naptr.example.com", port: 5070 },
  { name: "_sip._tcp.naptr.example.com", target: "tcp.naptr.example.com", port: 5071 },
  { name: "_sips._tcp.naptr.example.com", target: "tls.naptr.example.com", port: 5072 },
  { name: "_sip._sctp.sctp.example.com", target: "sctp.sctp.example.com", port: 5073 },
  { name: "_sip._tcp.sctp.example.com", target: "tcp.sctp.example.com", port: 5074 },
  // srv.example.com has no NAPTR records, only SRV.
  { name: "_sip._udp.srv.example.com", target: "udp.srv.example.com", port: 5080 },
  { name: "_sip._tcp.srv.example.com", target: "tcp.srv.example.com", port: 5081 },
  { name: "_sips._tcp.srv.example.com", target: "tls.srv.example.com", port: 5082 },
  // prio.example.com: two servers at priority 10 (weights 1 and 3), a backup at priority 20.
  {
    name: "_sip._udp.prio.example.com",
    target: "backup.prio.example.com",
    port: 5060,
    priority: 20,
    weight: 5,
  },
  { name: "_sip._udp.prio.example.com", target: "w1.prio.example.com", port: 5060, priority: 10, weight: 1 },
  { name: "_sip._udp.prio.example.com", target: "w3.prio.example.com", port: 5060, priority: 10, weight: 3 },
];

const HOSTS = [
  { name: "udp.naptr.example.com", address: "127.0.0.10" },
  { name: "tcp.naptr.example.com", address: "127.0.0.11" },
  { name: "tls.naptr.example.com", address: "127.0.0.12" },
  // naptr.example.com itself, for URIs with an explicit port.
  { name: "naptr.example.com", address: "127.0.0.13" },
  { name: "sctp.sctp.example.com", address: "127.0.0.20" },
  { name: "tcp.sctp.example.com", address: "127.0.0.21" },
  { name: "udp.srv.example.com", address: "127.0.0.30" },
  { name: "tcp.srv.example.com", address: "127.0.0.31" },
  { name: "tls.srv.example.com", address: "127.0.0.32" },
  { name: "w1.prio.example.com", address: "127.0.0.41" },
  { name: "w3.prio.example.com", address: "127.0.0.43" },
  { name: "backup.prio.example.com", address: "127.0.0.49" },
  // host.example.com: no NAPTR, no SRV, an A and an AAAA record.
  { name: "host.example.com", address: "127.0.0.50" },
  { name: "host.example.com", address: "::50" },
];

/** A resolver that records the queries it passes on to the real one. */
function spy(resolver: Resolver): SipResolver & { queries: string[] } {
  const queries: string[] = [];
  return {
    queries,
    resolveNaptr: (name) => (queries.push(`NAPTR ${name}`), resolver.resolveNaptr(name)),
    resolveSrv: (name) => (queries.push(`SRV ${name}`), resolver.resolveSrv(name)),
    resolve4: (name) => (queries.push(`A ${name}`), resolver.resolve4(name)),
    resolve6: (name) => (queries.push(`AAAA ${name}`), resolver.resolve6(name)),
  };
}

/** A resolver that must not be asked. */
const noDns: SipResolver = {
  resolveNaptr: (name) => Promise.reject(new Error(`unexpected NAPTR query for ${name}`)),
  resolveSrv: (name) => Promise.reject(new Error(`unexpected SRV query for ${name}`)),
  resolve4: (name) => Promise.reject(new Error(`unexpected A query for ${name}`)),
  resolve6: (name) => Promise.reject(new Error(`unexpected AAAA query for ${name}`)),
};

const t = (transport: SipTarget["transport"], host: string, port: number): SipTarget => ({
  transport,
  host,
  port,
});

async function assertLocateFails(
  promise: Promise<unknown>,
  condition: Condition,
  ...problems: string[]
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SwitchboardError, `expected SwitchboardError, got ${String(err)}`);
    assert.equal(err.condition, condition, err.message);
    for (const problem of problems) {
      assert.ok(err.message.includes(problem), `'${err.message}' should name '${problem}'`);
    }
    return true;
  });
}

describe("SIP server location (RFC 3263) against dnsmasq", function () {
  let dns: DnsServer;
  let resolver: ReturnType<typeof spy>;
  const locate = (uri: string, options: Partial<LocateOptions> = {}) =>
    locateSipServer(parseSipUri(uri), { resolver, supported: ALL, ...options });

  before(async function () {
    dns = await DnsServer.start(NAPTR, ["example.com"], { srv: SRV, hosts: HOSTS });
  });
  after(async function () {
    await dns?.stop();
  });
  beforeEach(function () {
    resolver = spy(dns.resolver());
  });

  it("follows NAPTR → SRV → A by NAPTR order, then preference", async function () {
    assert.deepEqual(await locate("sip:bob@naptr.example.com"), [
      t("udp", "127.0.0.10", 5070),
      t("tcp", "127.0.0.11", 5071),
      t("tls", "127.0.0.12", 5072),
    ]);
    assert.deepEqual(resolver.queries.slice(0, 1), ["NAPTR naptr.example.com"]);
    assert.ok(
      !resolver.queries.some((q) => q.startsWith("A naptr.example.com")),
      resolver.queries.join(", "),
    );
  });

  it("skips NAPTR services it cannot use: other transports, other flags, ones not supported", async function () {
    assert.deepEqual(await locate("sip:bob@sctp.example.com"), [t("tcp", "127.0.0.21", 5074)]);
    assert.ok(!resolver.queries.includes("SRV _sip._sctp.sctp.example.com"), resolver.queries.join(", "));
    assert.deepEqual(await locate("sip:bob@naptr.example.com", { supported: ["tcp"] }), [
      t("tcp", "127.0.0.11", 5071),
    ]);
  });

  it("without NAPTR records, queries SRV for each supported transport", async function () {
    assert.deepEqual(await locate("sip:bob@srv.example.com"), [
      t("udp", "127.0.0.30", 5080),
      t("tcp", "127.0.0.31", 5081),
      t("tls", "127.0.0.32", 5082),
    ]);
    assert.deepEqual(resolver.queries.slice(0, 4), [
      "NAPTR srv.example.com",
      "SRV _sip._udp.srv.example.com",
      "SRV _sip._tcp.srv.example.com",
      "SRV _sips._tcp.srv.example.com",
    ]);
    resolver.queries.length = 0;
    assert.deepEqual(await locate("sip:bob@srv.example.com", { supported: ["udp"] }), [
      t("udp", "127.0.0.30", 5080),
    ]);
    assert.deepEqual(resolver.queries.slice(0, 2), [
      "NAPTR srv.example.com",
      "SRV _sip._udp.srv.example.com",
    ]);
    assert.equal(resolver.queries.length, 4, resolver.queries.join(", ")); // + A, AAAA of the target
  });

  it("without SRV records, uses the host's A and AAAA records with UDP on 5060", async function () {
    assert.deepEqual(await locate("sip:bob@host.example.com"), [
      t("udp", "127.0.0.50", 5060),
      t("udp", "::50", 5060),
    ]);
  });

  it("orders SRV records by priority, weighted at random within one (RFC 2782)", async function () {
    // Draws are fractions of the remaining weight; the pool is ordered by weight: w1 (1), w3 (3).
    assert.deepEqual(await locate("sip:bob@prio.example.com", { random: () => 0.1 }), [
      t("udp", "127.0.0.41", 5060),
      t("udp", "127.0.0.43", 5060),
      t("udp", "127.0.0.49", 5060),
    ]);
    assert.deepEqual(await locate("sip:bob@prio.example.com", { random: () => 0.9 }), [
      t("udp", "127.0.0.43", 5060),
      t("udp", "127.0.0.41", 5060),
      t("udp", "127.0.0.49", 5060),
    ]);
    // With real randomness the backup at priority 20 always comes last.
    for (let i = 0; i < 5; i++) {
      const targets = await locate("sip:bob@prio.example.com");
      assert.deepEqual(targets[2], t("udp", "127.0.0.49", 5060));
    }
  });

  it("a URI with a port skips NAPTR and SRV", async function () {
    assert.deepEqual(await locate("sip:bob@naptr.example.com:5999"), [t("udp", "127.0.0.13", 5999)]);
    assert.deepEqual(resolver.queries.sort(), ["A naptr.example.com", "AAAA naptr.example.com"]);
  });

  it("a numeric host needs no DNS", async function () {
    const direct = (uri: string, options: Partial<LocateOptions> = {}) =>
      locateSipServer(parseSipUri(uri), { resolver: noDns, supported: ALL, ...options });
    assert.deepEqual(await direct("sip:bob@192.0.2.7"), [t("udp", "192.0.2.7", 5060)]);
    assert.deepEqual(await direct("sip:bob@[2001:db8::7]:5070;transport=tcp"), [
      t("tcp", "2001:db8::7", 5070),
    ]);
    assert.deepEqual(await direct("sips:bob@192.0.2.7"), [t("tls", "192.0.2.7", 5061)]);
    assert.deepEqual(await direct("sip:bob@192.0.2.7", { preferReliable: true }), [
      t("tcp", "192.0.2.7", 5060),
    ]);
    // RFC 3263 §4: maddr names the server instead of the host.
    assert.deepEqual(await direct("sip:bob@nowhere.example.com;maddr=192.0.2.8"), [
      t("udp", "192.0.2.8", 5060),
    ]);
  });

  it("honours the transport parameter: SRV for that transport only, else the host on the default port", async function () {
    assert.deepEqual(await locate("sip:bob@naptr.example.com;transport=tcp"), [t("tcp", "127.0.0.11", 5071)]);
    assert.deepEqual(resolver.queries.slice(0, 1), ["SRV _sip._tcp.naptr.example.com"]);
    assert.deepEqual(await locate("sip:bob@host.example.com;transport=TCP"), [
      t("tcp", "127.0.0.50", 5060),
      t("tcp", "::50", 5060),
    ]);
    assert.deepEqual(await locate("sip:bob@host.example.com;transport=tls"), [
      t("tls", "127.0.0.50", 5061),
      t("tls", "::50", 5061),
    ]);
    await assertLocateFails(
      locate("sip:bob@naptr.example.com;transport=sctp"),
      "feature-not-implemented",
      "sctp",
    );
    await assertLocateFails(
      locate("sip:bob@naptr.example.com;transport=tcp", { supported: ["udp"] }),
      "feature-not-implemented",
      "tcp",
    );
  });

  it("a sips: URI goes over TLS only", async function () {
    assert.deepEqual(await locate("sips:bob@naptr.example.com"), [t("tls", "127.0.0.12", 5072)]);
    assert.deepEqual(await locate("sips:bob@srv.example.com"), [t("tls", "127.0.0.32", 5082)]);
    assert.ok(!resolver.queries.some((q) => q.includes("_sip._")), resolver.queries.join(", "));
    assert.deepEqual(await locate("sips:bob@host.example.com"), [
      t("tls", "127.0.0.50", 5061),
      t("tls", "::50", 5061),
    ]);
    assert.deepEqual(await locate("sips:bob@host.example.com;transport=tcp"), [
      t("tls", "127.0.0.50", 5061),
      t("tls", "::50", 5061),
    ]);
    await assertLocateFails(
      locate("sips:bob@naptr.example.com", { supported: ["udp", "tcp"] }),
      "feature-not-implemented",
      "tls",
    );
    await assertLocateFails(
      locate("sips:bob@naptr.example.com;transport=udp"),
      "bad-request",
      "transport=udp",
    );
  });

  it("a request too large for UDP prefers TCP and TLS, UDP last (RFC 3261 §18.1.1)", async function () {
    assert.deepEqual(await locate("sip:bob@naptr.example.com", { preferReliable: true }), [
      t("tcp", "127.0.0.11", 5071),
      t("tls", "127.0.0.12", 5072),
      t("udp", "127.0.0.10", 5070),
    ]);
    assert.deepEqual(await locate("sip:bob@srv.example.com", { preferReliable: true }), [
      t("tcp", "127.0.0.31", 5081),
      t("tls", "127.0.0.32", 5082),
      t("udp", "127.0.0.30", 5080),
    ]);
    assert.deepEqual(await locate("sip:bob@host.example.com", { preferReliable: true }), [
      t("tcp", "127.0.0.50", 5060),
      t("tcp", "::50", 5060),
    ]);
    // UDP still, when that is all we have.
    assert.deepEqual(await locate("sip:bob@host.example.com", { preferReliable: true, supported: ["udp"] }), [
      t("udp", "127.0.0.50", 5060),
      t("udp", "::50", 5060),
    ]);
  });

  it("nothing in DNS is remote-server-not-found", async function () {
    await assertLocateFails(
      locate("sip:bob@nowhere.example.com"),
      "remote-server-not-found",
      "nowhere.example.com",
    );
    assert.deepEqual(resolver.queries, [
      "NAPTR nowhere.example.com",
      "SRV _sip._udp.nowhere.example.com",
      "SRV _sip._tcp.nowhere.example.com",
      "SRV _sips._tcp.nowhere.example.com",
      "A nowhere.example.com",
      "AAAA nowhere.example.com",
    ]);
  });

  it("failed lookups are service-unavailable, naming each failure", async function () {
    // dnsmasq forwards nowhere: a name outside example.com is REFUSED.
    await assertLocateFails(
      locate("sip:bob@elsewhere.test"),
      "service-unavailable",
      "NAPTR elsewhere.test: EREFUSED",
      "A elsewhere.test: EREFUSED",
    );
  });

  describe("against a server that never answers", function () {
    let silent: Socket;
    let address: string;

    before(async function () {
      silent = createSocket("udp4");
      await new Promise<void>((resolve) => silent.bind(0, LOOPBACK, resolve));
      address = `${LOOPBACK}:${silent.address().port}`;
    });
    after(function () {
      silent.close();
    });

    it("each query is bounded by the resolver's timeout", async function () {
      const slow = new Resolver({ timeout: 100, tries: 1 });
      slow.setServers([address]);
      const started = Date.now();
      await assertLocateFails(
        locateSipServer(parseSipUri("sip:bob@example.com"), { resolver: slow, supported: ["udp"] }),
        "service-unavailable",
        "NAPTR example.com: ETIMEOUT",
      );
      assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
    });

    it("the whole location is bounded by timeoutMs, whatever the resolver's own timeout", async function () {
      const stuck = new Resolver({ timeout: 30_000, tries: 1 });
      stuck.setServers([address]);
      const started = Date.now();
      try {
        await assertLocateFails(
          locateSipServer(parseSipUri("sip:bob@example.com"), {
            resolver: stuck,
            supported: ["udp", "tcp"],
            timeoutMs: 300,
          }),
          "service-unavailable",
          "NAPTR example.com: ETIMEOUT (overall limit)",
          "A example.com: ETIMEOUT (overall limit)",
        );
        assert.ok(Date.now() - started < 1_500, `took ${Date.now() - started} ms`);
      } finally {
        stuck.cancel();
      }
    });
  });
});

describe("SRV ordering (RFC 2782)", function () {
  const srv = (name: string, priority: number, weight: number) => ({ name, port: 5060, priority, weight });

  it("puts lower priorities first and weight 0 last within a priority", function () {
    const records = [srv("c", 20, 0), srv("zero", 10, 0), srv("b", 10, 5), srv("a", 5, 0)];
    for (const draw of [0.01, 0.5, 0.99]) {
      assert.deepEqual(
        orderSrv(records, () => draw).map((r) => r.name),
        ["a", "b", "zero", "c"],
      );
    }
  });
});
