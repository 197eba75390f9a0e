// ENUM against the harness's real dnsmasq (and, where dnsmasq cannot show a behaviour, a scripted
// DNS server built with dns-packet: dnsmasq serves its configured records with TTL 0 and answers
// every name at once, so a positive TTL and a slow first suffix need the scripted one).
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import * as dnsPacket from "dns-packet";
import type { Answer, Packet } from "dns-packet";

import { EnumResolver, enumService } from "../../components/enum/enum-resolver.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { DnsServer, enumDomain, exampleEnumRecords, type NaptrRecord } from "../harness/dns.js";
import { memoryLogger } from "../harness/memory-logger.js";
import { LOOPBACK } from "../harness/net.js";

const ALICE = "+442071234567";
const BOB = "+15551234567";
const SECOND_SUFFIX = "e164.example.net";

function sipRecord(
  e164: string,
  suffix: string,
  order: number,
  preference: number,
  uri: string,
): NaptrRecord {
  return {
    name: enumDomain(e164, suffix),
    order,
    preference,
    flags: "u",
    service: "E2U+sip",
    regexp: `!^.*$!${uri}!`,
  };
}

/** A UDP DNS server that answers NAPTR queries from a script, after an optional delay per name. */
class ScriptedDns {
  queries = 0;
  private constructor(private readonly socket: Socket) {}

  static async start(
    answer: (name: string) => { answers: Answer[]; rcode?: "NXDOMAIN"; delayMs?: number } | null,
  ): Promise<ScriptedDns> {
    const socket = createSocket("udp4");
    const server = new ScriptedDns(socket);
    socket.on("message", (msg, rinfo) => {
      server.queries++;
      const query = dnsPacket.decode(msg);
      const question = query.questions?.[0];
      if (question === undefined) return;
      const scripted = answer(question.name);
      if (scripted === null) return; // never answers
      const response: Packet = {
        type: "response",
        id: query.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (scripted.rcode === "NXDOMAIN" ? 3 : 0),
        questions: [question],
        answers: scripted.answers,
      };
      setTimeout(
        () => socket.send(dnsPacket.encode(response), rinfo.port, rinfo.address),
        scripted.delayMs ?? 0,
      );
    });
    await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
    return server;
  }

  get address(): string {
    return `${LOOPBACK}:${this.socket.address().port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

function naptrAnswer(name: string, ttl: number, preference: number, uri: string): Answer {
  return {
    type: "NAPTR",
    name,
    ttl,
    class: "IN",
    data: {
      order: 100,
      preference,
      flags: "u",
      services: "E2U+sip",
      regexp: `!^.*$!${uri}!`,
      replacement: ".",
    },
  };
}

describe("EnumResolver (RFC 6116, RFC 3403) against dnsmasq", function () {
  this.timeout(60_000);
  let dns: DnsServer;
  const nonTerminal = enumDomain("+4930123456");
  const pathological = enumDomain("+4930999999");
  const backReference = enumDomain("+33140000000");
  const big = enumDomain("+61299999999");

  before(async () => {
    const records: NaptrRecord[] = [
      ...exampleEnumRecords(),
      // Order beats preference: the order-50 tel: record comes first even with a worse preference;
      // the order-100 records are then not used (RFC 3403 §4.1).
      { ...sipRecord(BOB, "e164.arpa", 100, 10, "sip:bob@example.org") },
      {
        name: enumDomain(BOB),
        order: 50,
        preference: 90,
        flags: "u",
        service: "E2U+pstn:tel",
        regexp: "!^(.*)$!tel:\\1!",
      },
      {
        name: enumDomain(BOB),
        order: 50,
        preference: 80,
        flags: "U",
        service: "sip+E2U",
        regexp: "!^.*$!sip:bob@legacy.example.org!",
      },
      // Only under the second suffix.
      sipRecord("+15550000001", SECOND_SUFFIX, 100, 10, "sip:carol@second.example.net"),
      // Under both: the first suffix wins.
      sipRecord("+15550000002", "e164.arpa", 100, 10, "sip:dave@first.example.org"),
      sipRecord("+15550000002", SECOND_SUFFIX, 100, 10, "sip:dave@second.example.net"),
      {
        name: backReference,
        order: 10,
        preference: 10,
        flags: "u",
        service: "E2U+sip",
        regexp: "!^\\+33(.*)$!sip:\\1@paris.example.org!",
      },
      // A non-terminal rule with a better order, then a terminal one.
      {
        name: nonTerminal,
        order: 10,
        preference: 10,
        flags: "",
        service: "E2U+sip",
        regexp: "",
        replacement: "elsewhere.example.net",
      },
      sipRecord("+4930123456", "e164.arpa", 20, 10, "sip:erin@example.org"),
      // Untrusted regexps: one re2js refuses, one evaluated (it does not match "+4930999999").
      {
        name: pathological,
        order: 10,
        preference: 10,
        flags: "u",
        service: "E2U+sip",
        regexp: "!^(.)\\1!sip:x@example.org!",
      },
      {
        name: pathological,
        order: 10,
        preference: 20,
        flags: "u",
        service: "E2U+sip",
        regexp: "!(a+)+$!sip:y@example.org!",
      },
      {
        name: pathological,
        order: 10,
        preference: 30,
        flags: "u",
        service: "E2U+xmpp",
        regexp: "!^\\+(([0-9]+)+)+$!xmpp:\\1@example.org!",
      },
      // More records than fit a 512-byte UDP answer: truncated, then asked again over TCP.
      ...Array.from({ length: 20 }, (_, i) => ({
        name: big,
        order: 100,
        preference: i,
        flags: "u",
        service: "E2U+sip",
        regexp: `!^.*$!sip:user${i}@a-rather-long-domain-name.example.org!`,
      })),
    ];
    dns = await DnsServer.start(records, ["e164.arpa", SECOND_SUFFIX]);
  });
  after(async () => {
    await dns.stop();
  });

  const resolver = (suffixes = ["e164.arpa"], log = memoryLogger()): EnumResolver =>
    new EnumResolver({ suffixes, servers: [dns.address], timeoutMs: 2_000, log });

  it("finds E2U+sip and E2U+xmpp in preference order (RFC 6118)", async () => {
    const result = await resolver().resolve(ALICE);
    assert.equal(result.number, ALICE);
    assert.equal(result.suffix, "e164.arpa");
    assert.deepEqual(result.domains, [
      { suffix: "e164.arpa", domain: enumDomain(ALICE), answer: "records", detail: "2 record(s)" },
    ]);
    assert.deepEqual(result.targets, [
      { service: "sip", uri: "sip:alice@example.org", order: 100, preference: 10, suffix: "e164.arpa" },
      { service: "xmpp", uri: "alice@example.org", order: 100, preference: 20, suffix: "e164.arpa" },
    ]);
    assert.deepEqual(
      result.records.map((r) => [r.order, r.preference, r.service]),
      [
        [100, 10, "E2U+sip"],
        [100, 20, "E2U+xmpp"],
      ],
    );
  });

  it("uses the lowest order that has a usable record, all of it by preference", async () => {
    const result = await resolver().resolve(BOB);
    assert.deepEqual(
      result.records.map((r) => [r.order, r.preference]),
      [
        [50, 80],
        [50, 90],
        [100, 10],
      ],
    );
    assert.deepEqual(result.targets, [
      { service: "sip", uri: "sip:bob@legacy.example.org", order: 50, preference: 80, suffix: "e164.arpa" },
      { service: "tel", uri: "tel:+15551234567", order: 50, preference: 90, suffix: "e164.arpa" },
    ]);
    assert.ok(result.steps.some((s) => s.includes("skipped (order 50 already answered)")));
  });

  it("takes the first suffix in configured order that has records", async () => {
    const both = resolver(["e164.arpa", SECOND_SUFFIX]);
    const dave = await both.resolve("+15550000002");
    assert.equal(dave.suffix, "e164.arpa");
    assert.deepEqual(
      dave.targets.map((t) => t.uri),
      ["sip:dave@first.example.org"],
    );
    const carol = await both.resolve("+15550000001");
    assert.equal(carol.suffix, SECOND_SUFFIX);
    assert.deepEqual(
      carol.domains.map((d) => [d.suffix, d.answer, d.detail]),
      [
        ["e164.arpa", "no-records", "NXDOMAIN"],
        [SECOND_SUFFIX, "records", "1 record(s)"],
      ],
    );
    assert.deepEqual(carol.targets, [
      {
        service: "sip",
        uri: "sip:carol@second.example.net",
        order: 100,
        preference: 10,
        suffix: SECOND_SUFFIX,
      },
    ]);
  });

  it("expands a back-reference in the regexp", async () => {
    const result = await resolver().resolve("+33140000000");
    assert.deepEqual(
      result.targets.map((t) => t.uri),
      ["sip:140000000@paris.example.org"],
    );
  });

  it("ignores a non-terminal record and uses the next order's terminal one", async () => {
    const result = await resolver().resolve("+4930123456");
    assert.deepEqual(
      result.targets.map((t) => [t.order, t.uri]),
      [[20, "sip:erin@example.org"]],
    );
    assert.ok(
      result.steps.some((s) =>
        s.includes("elsewhere.example.net: ignored (non-terminal rule, not followed)"),
      ),
    );
  });

  it("refuses a back-reference ERE and evaluates nested quantifiers with the linear-time engine", async () => {
    const result = await resolver().resolve("+4930999999");
    const [refused, noMatch, evaluated] = result.steps.slice(1);
    assert.match(refused ?? "", /refused: NAPTR regexp refused: ERE not accepted by the linear-time engine/);
    assert.match(noMatch ?? "", /skipped \(regexp does not match \+4930999999\)/);
    assert.match(evaluated ?? "", /xmpp 4930999999@example.org$/);
    assert.deepEqual(result.targets, [
      { service: "xmpp", uri: "4930999999@example.org", order: 10, preference: 30, suffix: "e164.arpa" },
    ]);
  });

  it("NXDOMAIN gives no targets", async () => {
    const result = await resolver(["e164.arpa", SECOND_SUFFIX]).resolve("+999123");
    assert.equal(result.suffix, null);
    assert.deepEqual(result.targets, []);
    assert.deepEqual(
      result.domains.map((d) => d.detail),
      ["NXDOMAIN", "NXDOMAIN"],
    );
  });

  it("retries over TCP when the UDP answer is truncated", async () => {
    const log = memoryLogger();
    const result = await resolver(["e164.arpa"], log).resolve("+61299999999");
    assert.equal(result.targets.length, 20);
    assert.equal(result.targets[19]?.uri, "sip:user19@a-rather-long-domain-name.example.org");
    assert.deepEqual(
      log.lines.filter((l) => l.message === "NAPTR query sent").map((l) => l.fields["transport"]),
      ["udp", "tcp"],
    );
  });

  it("caches a negative answer (no SOA: 60 s) and does not cache dnsmasq's TTL 0 answers", async () => {
    const log = memoryLogger();
    const enumResolver = resolver(["e164.arpa"], log);
    await enumResolver.resolve("+999124");
    const again = await enumResolver.resolve("+999124");
    assert.equal(enumResolver.queriesSent, 1);
    assert.match(again.steps[0] ?? "", /NXDOMAIN \(cache\)/);
    assert.equal(log.lines.filter((l) => l.message === "NAPTR answer from cache").length, 1);
    await enumResolver.resolve(ALICE);
    await enumResolver.resolve(ALICE);
    assert.equal(enumResolver.queriesSent, 3);
  });

  it("refuses a number that is not E.164", async () => {
    await assert.rejects(resolver().resolve("02071234567"), (err: unknown) => {
      assert.ok(err instanceof SwitchboardError);
      assert.equal(err.condition, "malformed-address");
      return true;
    });
  });
});

describe("EnumResolver against a scripted DNS server", function () {
  this.timeout(30_000);

  it("caches a positive answer by the smallest TTL", async () => {
    const name = enumDomain(ALICE);
    const server = await ScriptedDns.start(() => ({
      answers: [
        naptrAnswer(name, 300, 10, "sip:alice@example.org"),
        naptrAnswer(name, 120, 20, "sip:a2@example.org"),
      ],
    }));
    try {
      const enumResolver = new EnumResolver({
        suffixes: ["e164.arpa"],
        servers: [server.address],
        log: memoryLogger(),
      });
      const first = await enumResolver.resolve(ALICE);
      assert.match(first.steps[0] ?? "", /2 record\(s\) \(127\.0\.0\.1:\d+, ttl 120s\)/);
      const second = await enumResolver.resolve(ALICE);
      assert.deepEqual(second.targets, first.targets);
      assert.match(second.steps[0] ?? "", /\(cache, ttl 120s\)/);
      assert.equal(enumResolver.queriesSent, 1);
      assert.equal(server.queries, 1);
    } finally {
      await server.stop();
    }
  });

  it("uses the first suffix's records even when the second suffix answers first", async () => {
    const first = enumDomain(ALICE, "e164.arpa");
    const second = enumDomain(ALICE, SECOND_SUFFIX);
    const server = await ScriptedDns.start((name) =>
      name === first
        ? { answers: [naptrAnswer(first, 60, 10, "sip:alice@first.example.org")], delayMs: 300 }
        : { answers: [naptrAnswer(second, 60, 10, "sip:alice@second.example.net")] },
    );
    try {
      const log = memoryLogger();
      const enumResolver = new EnumResolver({
        suffixes: ["e164.arpa", SECOND_SUFFIX],
        servers: [server.address],
        log,
      });
      const result = await enumResolver.resolve(ALICE);
      assert.equal(result.suffix, "e164.arpa");
      assert.deepEqual(
        result.targets.map((t) => t.uri),
        ["sip:alice@first.example.org"],
      );
      assert.deepEqual(
        result.domains.map((d) => d.answer),
        ["records", "not-needed"],
      );
      assert.equal(server.queries, 2, "both suffixes are queried in parallel");
    } finally {
      await server.stop();
    }
  });

  it("fails with a clear error within the timeout when the server does not answer", async () => {
    const silent = await ScriptedDns.start(() => null);
    try {
      const enumResolver = new EnumResolver({
        suffixes: ["e164.arpa", SECOND_SUFFIX],
        servers: [silent.address],
        timeoutMs: 300,
        log: memoryLogger(),
      });
      const started = Date.now();
      await assert.rejects(enumResolver.resolve(ALICE), (err: unknown) => {
        assert.ok(err instanceof SwitchboardError);
        assert.equal(err.condition, "remote-server-timeout");
        assert.match(err.message, /ENUM lookup of \+442071234567 failed: .*timed out after 300 ms \(UDP\)/);
        assert.ok(err.message.includes(silent.address));
        return true;
      });
      // Both suffixes are asked in parallel, so the whole lookup takes about one timeout.
      assert.ok(Date.now() - started < 5_000);
    } finally {
      await silent.stop();
    }
  });
});

describe("enumService (RFC 6116 §3.4.3)", () => {
  const table: [string, ReturnType<typeof enumService>][] = [
    ["E2U+sip", "sip"],
    ["e2u+SIP", "sip"],
    ["E2U+xmpp", "xmpp"],
    ["E2U+pstn:tel", "tel"],
    ["E2U+tel", "tel"],
    ["sip+E2U", "sip"],
    ["E2U+email:mailto", null],
    ["E2U+pstn:sip", null],
    ["SIP+D2U", null],
  ];
  for (const [field, expected] of table) {
    it(`${field} → ${String(expected)}`, () => {
      assert.equal(enumService(field), expected);
    });
  }
});
