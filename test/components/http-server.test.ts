// The HTTP endpoint against real sockets: every route, readiness both ways, the error answers, the
// status page's escaping, and hostile or malformed requests answered without taking the server down.
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect, createServer, type AddressInfo } from "node:net";
import {
  personForAddress,
  startHttpServer,
  type HttpServer,
  type PresenceReader,
  type PresenceView,
  type Readiness,
} from "../../components/http/http-server.js";
import type { PresenceRecord } from "../../src/domain/presence.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { memoryLogger } from "../harness/memory-logger.js";

const domains = { homeDomain: "example.org", gatewayDomain: "sip.example.org" };
// A fixed clock: ages and expiries in the answers are exact, whatever the machine's speed.
const NOW = Date.UTC(2025, 0, 15, 10, 0, 0);
const at = (ms: number): string => new Date(NOW + ms).toISOString();
const SCRIPT_NOTE = `Lunch <script>alert("x")</script> & co`;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on its own connection, bounded; the raw target is sent as given (no URL normalising). */
function ask(port: number, target: string, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: target, method, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer to ${method} ${target} within 10 s`)));
    req.on("error", reject);
    req.end();
  });
}

/** Raw bytes on a TCP connection; resolves with everything the server sent before closing. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error("the server kept the connection open")), 10_000);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    socket.on("error", reject);
  });
}

const jsonOf = <T>(answer: Answer): T => {
  assert.match(String(answer.headers["content-type"]), /^application\/json; charset=utf-8$/);
  return JSON.parse(answer.body) as T;
};

describe("HTTP endpoint", function () {
  let server: HttpServer;
  let port: number;
  let readiness: Readiness = { ready: true, reasons: [] };
  let extraMetrics: () => string | Promise<string> = () =>
    "# HELP switchboard_sip_transactions Open SIP transactions.\n# TYPE switchboard_sip_transactions gauge\nswitchboard_sip_transactions 3\n";
  const log = memoryLogger();
  const presence = new PresenceService(new MemoryPresenceStore(), () => NOW);

  const records: [person: string, record: PresenceRecord][] = [
    [
      "alice@example.org",
      {
        source: { kind: "xmpp", resource: "laptop" },
        state: "available",
        note: null,
        updatedAt: NOW - 120_000,
        expiresAt: null,
      },
    ],
    [
      "alice@example.org",
      {
        source: { kind: "sip-publish", etag: "e1" },
        state: "away",
        note: SCRIPT_NOTE,
        updatedAt: NOW - 30_000,
        expiresAt: NOW + 90_000,
      },
    ],
    [
      "alice@example.org",
      { source: { kind: "pbx-device" }, device: "idle", updatedAt: NOW - 600_000, expiresAt: null },
    ],
    [
      "bob@example.org",
      {
        source: { kind: "pbx-custom" },
        state: "dnd",
        note: "Do not disturb",
        updatedAt: NOW - 3_600_000,
        expiresAt: NOW - 5_000,
      },
    ],
  ];

  before(async function () {
    for (const [person, record] of records) await presence.report(person, record);
    server = await startHttpServer({
      listen: "127.0.0.1:0",
      presence,
      domains,
      ready: () => readiness,
      metrics: () => extraMetrics(),
      version: "1.2.3-test",
      log,
    });
    port = server.port;
  });
  after(async function () {
    await server?.close();
    presence.close();
  });

  describe("person keys from addresses", function () {
    const rows: [address: string, person: string][] = [
      ["alice@example.org", "alice@example.org"],
      ["Alice@Example.org", "alice@example.org"],
      ["alice@example.org/phone", "alice@example.org"],
      ["xmpp:alice@example.org", "alice@example.org"],
      ["sip:alice@example.org", "alice@example.org"],
      ["sips:alice@example.org", "alice@example.org"],
      ["sip:Alice@example.org;transport=tcp", "alice@example.org"],
      ["alice@sip.example.org", "alice@example.org"],
      ["o\\27brien@example.org", "o'brien@example.org"],
      ["+442071234567", "+442071234567"],
      ["tel:+44-20-7123-4567", "+442071234567"],
      ["sip:+442071234567@example.org", "+442071234567"],
      ["+442071234567@sip.example.org", "+442071234567"],
      ["8001", "8001"],
      ["8001@sip.example.org", "8001"],
      ["sip:carol@example.com", "sip:carol@example.com"],
      ["sips:carol@example.com", "sip:carol@example.com"],
      ["carol\\40example.com@sip.example.org", "sip:carol@example.com"],
      ["dave@jabber.example.net/home", "dave@jabber.example.net"],
    ];
    for (const [address, person] of rows) {
      it(`${address} is ${person}`, function () {
        assert.equal(personForAddress(address, domains), person);
      });
    }
    for (const bad of [
      "",
      " alice@example.org",
      "sip:",
      "alice@",
      "example.org",
      "sip:bob@sip.example.org",
      "ftp:x",
    ]) {
      it(`refuses ${JSON.stringify(bad)}`, function () {
        assert.throws(() => personForAddress(bad, domains), { name: "AddressError" });
      });
    }
  });

  it("answers /healthz with ok, and HEAD with the headers alone", async function () {
    const get = await ask(port, "/healthz");
    assert.equal(get.status, 200);
    assert.equal(get.body, "ok\n");
    assert.match(String(get.headers["content-type"]), /^text\/plain/);
    const head = await ask(port, "/healthz", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.equal(head.headers["content-length"], "3");
  });

  it("answers /readyz 200 when ready and 503 with the reasons when not", async function () {
    const ready = await ask(port, "/readyz");
    assert.equal(ready.status, 200);
    assert.deepEqual(jsonOf(ready), { ready: true, reasons: [] });
    readiness = { ready: false, reasons: ["xmpp component offline", "redis unreachable"] };
    try {
      const notReady = await ask(port, "/readyz");
      assert.equal(notReady.status, 503);
      assert.deepEqual(jsonOf(notReady), {
        ready: false,
        reasons: ["xmpp component offline", "redis unreachable"],
      });
    } finally {
      readiness = { ready: true, reasons: [] };
    }
  });

  it("serves Prometheus text with the bridge's own metrics appended", async function () {
    const answer = await ask(port, "/metrics");
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    const lines = answer.body.split("\n");
    assert.equal(lines.at(-1), "", "ends with a newline");
    for (const line of lines.slice(0, -1)) {
      // Exposition format 0.0.4: comments, or `name{labels} value`.
      assert.match(
        line,
        /^(# (HELP|TYPE) [a-z_:][a-z0-9_:]* .+|[a-z_:][a-z0-9_:]*(\{[^}]*\})? -?[0-9.e+]+)$/i,
      );
    }
    for (const expected of [
      /^switchboard_up 1$/m,
      /^switchboard_info\{version="1\.2\.3-test"\} 1$/m,
      /^switchboard_ready 1$/m,
      /^switchboard_sip_transactions 3$/m,
      /^switchboard_metrics_collected 1$/m,
      /^switchboard_http_requests_total\{route="\/healthz",code="200"\} [1-9][0-9]*$/m,
    ]) {
      assert.match(answer.body, expected);
    }
  });

  it("still serves its own metrics when the bridge's metrics fail", async function () {
    const saved = extraMetrics;
    extraMetrics = () => Promise.reject(new Error("redis went away"));
    try {
      const answer = await ask(port, "/metrics");
      assert.equal(answer.status, 200);
      assert.match(answer.body, /^switchboard_up 1$/m);
      assert.match(answer.body, /^switchboard_metrics_collected 0$/m);
      assert.ok(log.lines.some((l) => l.message === "bridge metrics not collected" && l.level === "warn"));
    } finally {
      extraMetrics = saved;
    }
  });

  it("shows a person's aggregate and every source, whichever address names them", async function () {
    const expected: Omit<PresenceView, "address"> = {
      person: "alice@example.org",
      now: at(0),
      aggregate: {
        state: "away",
        note: SCRIPT_NOTE,
        since: at(-30_000),
        winner: { kind: "sip-publish", id: "e1" },
      },
      sources: [
        {
          kind: "sip-publish",
          id: "e1",
          state: "away",
          note: SCRIPT_NOTE,
          updatedAt: at(-30_000),
          expiresAt: at(90_000),
          ageSeconds: 30,
          expiresInSeconds: 90,
          live: true,
        },
        {
          kind: "xmpp",
          id: "laptop",
          state: "available",
          note: null,
          updatedAt: at(-120_000),
          expiresAt: null,
          ageSeconds: 120,
          expiresInSeconds: null,
          live: true,
        },
        {
          kind: "pbx-device",
          id: null,
          state: "idle",
          note: null,
          updatedAt: at(-600_000),
          expiresAt: null,
          ageSeconds: 600,
          expiresInSeconds: null,
          live: true,
        },
      ],
    };
    for (const address of [
      "alice@example.org",
      "sip:alice@example.org",
      "xmpp:alice@example.org/phone",
      "alice@sip.example.org",
    ]) {
      const answer = await ask(port, `/api/presence/${encodeURIComponent(address)}`);
      assert.equal(answer.status, 200, answer.body);
      assert.deepEqual(jsonOf(answer), { address, ...expected });
    }
    // Unencoded, as a person would type it into curl.
    const plain = await ask(port, "/api/presence/sip:alice@example.org");
    assert.equal(jsonOf<PresenceView>(plain).person, "alice@example.org");
  });

  it("shows an expired record as not live, and the person unavailable since it expired", async function () {
    const view = jsonOf<PresenceView>(await ask(port, "/api/presence/bob%40example.org"));
    assert.deepEqual(view.aggregate, { state: "unavailable", note: null, since: at(-5_000), winner: null });
    assert.equal(view.sources.length, 1);
    assert.deepEqual(
      {
        kind: view.sources[0]?.kind,
        live: view.sources[0]?.live,
        expiresIn: view.sources[0]?.expiresInSeconds,
      },
      { kind: "pbx-custom", live: false, expiresIn: -5 },
    );
  });

  it("gives an address of another domain, or a number, a key of its own with no sources", async function () {
    for (const [address, person] of [
      ["sip:carol@example.com", "sip:carol@example.com"],
      ["dave@jabber.example.net", "dave@jabber.example.net"],
      ["+442071234567", "+442071234567"],
      ["tel:+442071234567", "+442071234567"],
    ]) {
      const answer = await ask(port, `/api/presence/${encodeURIComponent(address ?? "")}`);
      assert.equal(answer.status, 200, answer.body);
      const view = jsonOf<PresenceView>(answer);
      assert.equal(view.person, person);
      assert.deepEqual(view.sources, []);
      assert.deepEqual(view.aggregate, { state: "unavailable", note: null, since: null, winner: null });
    }
  });

  it("answers a bad address with 400 and the reason", async function () {
    for (const target of [
      "/api/presence/",
      "/api/presence/sip%3A",
      "/api/presence/alice%40",
      "/api/presence/example.org",
      "/api/presence/sip%3Abob%40sip.example.org",
      "/api/presence/%E0%A4%A",
      "/api/presence/%zz",
      `/api/presence/${"a".repeat(3000)}%40example.org`,
    ]) {
      const answer = await ask(port, target);
      assert.equal(answer.status, 400, target);
      const body = jsonOf<{ error: string }>(answer);
      assert.equal(typeof body.error, "string");
      assert.ok(body.error.length > 0 && body.error.length < 500, body.error);
    }
  });

  it("answers unknown paths 404 and other methods 405 with Allow, in JSON", async function () {
    for (const target of ["/nope", "/api/presence", "/api/other/x", "//evil.example/healthz", "/healthz/"]) {
      const answer = await ask(port, target);
      assert.equal(answer.status, 404, target);
      assert.equal(typeof jsonOf<{ error: string }>(answer).error, "string");
    }
    for (const [method, target] of [
      ["POST", "/healthz"],
      ["DELETE", "/api/presence/alice%40example.org"],
      ["PUT", "/"],
      ["OPTIONS", "/metrics"],
    ] as const) {
      const answer = await ask(port, target, method);
      assert.equal(answer.status, 405, `${method} ${target}`);
      assert.equal(answer.headers.allow, "GET, HEAD");
      assert.equal(typeof jsonOf<{ error: string }>(answer).error, "string");
    }
  });

  it("shows a status page that escapes everything it did not write itself", async function () {
    readiness = { ready: false, reasons: ["redis <b>unreachable</b>"] };
    try {
      const page = await ask(port, "/");
      assert.equal(page.status, 200);
      assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
      assert.match(String(page.headers["content-security-policy"]), /default-src 'none'/);
      assert.match(page.body, /1\.2\.3-test/);
      assert.match(page.body, /redis &lt;b&gt;unreachable&lt;\/b&gt;/);
      assert.doesNotMatch(page.body, /<b>/);
    } finally {
      readiness = { ready: true, reasons: [] };
    }
    const alice = await ask(port, "/?address=alice%40example.org");
    assert.equal(alice.status, 200);
    assert.match(alice.body, /Lunch &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; co/);
    assert.doesNotMatch(alice.body, /<script/i);
    assert.match(alice.body, /<td>sip-publish<\/td><td>e1<\/td><td>away<\/td>/);
    assert.match(alice.body, /<td>pbx-device<\/td><td><\/td><td>idle<\/td>/);

    const hostile = await ask(port, `/?address=${encodeURIComponent('"><script>alert(1)</script>')}`);
    assert.equal(hostile.status, 400);
    assert.doesNotMatch(hostile.body, /<script/i);
    assert.match(hostile.body, /value="&quot;&gt;&lt;script&gt;/);
  });

  it("answers malformed HTTP with 400 and oversized headers with 431, and goes on serving", async function () {
    assert.match(await raw(port, "NOT HTTP AT ALL\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(await raw(port, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"), /^HTTP\/1\.1 400 /);
    const huge = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`;
    assert.match(await raw(port, huge), /^HTTP\/1\.1 431 /);
    assert.equal((await ask(port, "/healthz")).status, 200);
  });

  it("answers 503 when the store does not answer in time, and 500 when it fails", async function () {
    const stuck: PresenceReader = { snapshot: () => new Promise(() => undefined), now: () => NOW };
    const broken: PresenceReader = { snapshot: () => Promise.reject(new Error("boom")), now: () => NOW };
    for (const [reader, status] of [
      [stuck, 503],
      [broken, 500],
    ] as const) {
      const lines = memoryLogger();
      const other = await startHttpServer({
        listen: "127.0.0.1:0",
        presence: reader,
        domains,
        ready: () => ({ ready: true, reasons: [] }),
        version: "test",
        log: lines,
        handlerTimeoutMs: 200,
      });
      try {
        const answer = await ask(other.port, "/api/presence/alice%40example.org");
        assert.equal(answer.status, status);
        assert.equal(typeof jsonOf<{ error: string }>(answer).error, "string");
        assert.equal((await ask(other.port, "/healthz")).status, 200);
      } finally {
        await other.close();
        await other.close();
      }
      if (status === 500)
        assert.ok(lines.lines.some((l) => l.level === "error" && /boom/.test(String(l.fields.err))));
    }
  });

  it("refuses to start on a port another process holds, naming http.listen", async function () {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const taken = (holder.address() as AddressInfo).port;
    try {
      await assert.rejects(
        startHttpServer({
          listen: `127.0.0.1:${taken}`,
          presence,
          domains,
          ready: () => readiness,
          version: "test",
          log: memoryLogger(),
        }),
        (err: Error) => {
          assert.equal(err.name, "SwitchboardError");
          assert.match(err.message, /^http\.listen: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE$/);
          return true;
        },
      );
    } finally {
      holder.close();
    }
  });
});
