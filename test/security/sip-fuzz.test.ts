// Fuzz acceptance of the SIP side: mutated SIP messages and PIDF bodies (XML bombs, external
// entities, deep nesting included) against the parsers and the live endpoint over UDP, TCP and
// WebSocket. Nothing may crash or hang; afterwards the heap has grown by less than 20 MB and RSS by
// less than 50 MB (100 MB at the full count), and valid requests still get their 200. Cases are
// pure functions of a seed (test/harness/fuzz.ts): a failure prints the seed
// (`sipCase(corpus, seed)` / `pidfCase(seeds, seed)` rebuild that one case), and
// `SIP_FUZZ_SEED=<base>` runs the whole file from another base seed. `SIP_FUZZ_FULL=1` runs ten
// times as many cases (over 100,000 to the live endpoint: 100,000 datagrams, 3,000 TCP streams,
// 3,000 WebSocket connections); `npm test` runs the reduced count.
import assert from "node:assert/strict";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect } from "node:net";
import { WebSocket } from "ws";
import { setImmediate as tick, setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { frameDatagram, FramingError, StreamFramer } from "../../components/sip/framing.js";
import { parsePidf, pidfState } from "../../components/sip/pidf.js";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { buildResponse, isRequest, missingHeaders, parseSip } from "../../components/sip/sip-message.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import type { Logger } from "../../src/ports/logger.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import {
  caseSeed,
  chunk,
  confineToLoopback,
  fixturePidfBodies,
  fixtureSipMessages,
  HOSTILE_PIDF,
  PIDF_SEEDS,
  pidfCase,
  Rng,
  sipCase,
  sipSeeds,
} from "../harness/fuzz.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import { buildRequest, header, TcpSipSocket, UdpSipSocket } from "../harness/sip-socket.js";

// Counts and bounds: the reduced run takes about 30 s on two cores.
const BASE_SEED = Number(process.env.SIP_FUZZ_SEED ?? 0x5eed5) >>> 0;
const SCALE = process.env.SIP_FUZZ_FULL === "1" ? 10 : 1;
const PARSER_CASES = 10_000 * SCALE; // datagrams through frameDatagram + parseSip
const STREAM_MESSAGES = 10_000 * SCALE; // messages fed to StreamFramers, in streams of 1–5
const PIDF_CASES = 10_000 * SCALE; // PIDF documents through parsePidf + pidfState
const UDP_CASES = 10_000 * SCALE; // datagrams to the live endpoint
const WARMUP_CASES = 2_000; // datagrams before the RSS baseline (see the live test's before())
const UDP_BATCH = 20; // sent before waiting for the endpoint to read them
const TCP_STREAMS = 300 * SCALE; // connections to the live endpoint
const TCP_PARALLEL = 10;
const WS_CONNECTIONS = 300 * SCALE; // WebSocket connections to the live endpoint, 1–4 messages each
const HANG_MS = 1_000; // one parse taking longer is a hang (a guard, not a performance target)
const PHASE_BUDGET_MS = 25_000 * SCALE; // every live loop stops here at the latest (and then fails its count)
// What the fuzz may leave behind: the JS heap (where a leak of requests, transactions or dialogs
// would show) by 20 MB, the whole process by 50 MB (100 MB at the full count: off-heap buffers and
// the allocators' arenas keep their high-water mark after 100,000 datagrams and 6,000 connections,
// while the heap stays flat; measured 59 MB RSS, 2.5 MB heap).
const RSS_LIMIT = (SCALE === 1 ? 50 : 100) * 1024 * 1024;
const HEAP_LIMIT = 20 * 1024 * 1024;

/**
 * A logger that keeps only error lines: the live fuzz logs a warning for most of its 10,000–100,000
 * cases, and keeping those would be the test's own memory growth, not the endpoint's.
 */
function errorsOnly(lines: LogLine[]): Logger {
  const all = memoryLogger(lines);
  const quiet = (): void => undefined;
  const wrap = (log: Logger): Logger => ({
    debug: quiet,
    info: quiet,
    warn: quiet,
    error: (fields, message) => log.error(fields, message),
    child: (fields) => wrap(log.child(fields)),
  });
  return wrap(all);
}

/** Seed → case → bytes is deterministic; this says how to get the case back. */
const replay = (kind: string, seed: number, extra = ""): string =>
  `${kind} case seed ${seed} (run SIP_FUZZ_SEED=${BASE_SEED})${extra ? `: ${extra}` : ""}`;

/** A full collection when the test runs with --expose-gc, else one made available through V8 flags. */
function collectGarbage(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
  gc();
}

/**
 * Waits until `count()` reaches `target`, or stops growing for `quietMs` (what the kernel dropped
 * never comes), or `timeoutMs` is over.
 */
async function waitForCount(
  count: () => number,
  target: number,
  quietMs: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = count();
  let changed = Date.now();
  while (count() < target && Date.now() < deadline && Date.now() - changed < quietMs) {
    await sleep(1);
    if (count() !== last) {
      last = count();
      changed = Date.now();
    }
  }
}

/** The corpus: our seeds plus the recorded Asterisk traffic. */
function corpus(contactPort?: number): Buffer[] {
  return [...sipSeeds(contactPort).map((s) => Buffer.from(s)), ...fixtureSipMessages()];
}

/** Runs `fn`, failing the case when it takes longer than HANG_MS. */
function bounded<T>(what: string, fn: () => T): T {
  const started = performance.now();
  const result = fn();
  const took = performance.now() - started;
  assert.ok(took < HANG_MS, `${what} took ${Math.round(took)} ms`);
  return result;
}

/** Uses a parsed message the way the endpoint does: the accessors and a response built from it. */
function exercise(message: ReturnType<typeof parseSip>): void {
  if (!message) return;
  if (!isRequest(message)) {
    void [message.viaBranch, message.method, message.statusCode, message.reasonPhrase];
    return;
  }
  const missing = missingHeaders(message);
  void [message.getHeader("User-Agent"), message.getHeaders("via"), message.ruri?.toString()];
  if (missing.length === 0 || message.getHeader("Via")) {
    buildResponse(message, missing.length === 0 ? 200 : 400, {
      toTag: "fuzz",
      source: { address: "127.0.0.1", port: 5060 },
      reason: missing.length === 0 ? undefined : `Missing ${missing.join(", ")}`,
    });
  }
}

describe("SIP fuzz: parsers", function () {
  const messages = corpus();

  it(`frames and parses ${PARSER_CASES} mutated datagrams without a throw or a hang`, function () {
    assert.ok(messages.length > 8, "seed corpus");
    let parsed = 0;
    for (let i = 0; i < PARSER_CASES; i++) {
      const c = sipCase(messages, caseSeed(BASE_SEED, i));
      try {
        bounded("frameDatagram + parseSip", () => {
          const text = frameDatagram(c.bytes);
          const message = text === null ? undefined : parseSip(text);
          if (message) parsed++;
          exercise(message);
        });
      } catch (err) {
        assert.fail(replay("datagram", c.seed, `${c.applied.join(", ")}: ${String(err)}`));
      }
    }
    // The mutations must leave many messages parseable, or the deeper paths go untested.
    assert.ok(parsed > PARSER_CASES * 0.3, `only ${parsed} of ${PARSER_CASES} parsed`);
  });

  it(`frames ${STREAM_MESSAGES} mutated messages in streams cut at random places, as when sent whole`, function () {
    let fed = 0;
    let framed = 0;
    for (let s = 0; fed < STREAM_MESSAGES; s++) {
      const seed = caseSeed(BASE_SEED ^ 0x57, s);
      const rng = new Rng(seed);
      const parts: Buffer[] = [];
      for (let n = rng.between(1, 5); n > 0; n--, fed++) {
        if (rng.chance(0.2)) parts.push(Buffer.from("\r\n\r\n"));
        parts.push(sipCase(messages, rng.int(2 ** 32)).bytes);
      }
      const stream = Buffer.concat(parts);
      // The same bytes pushed whole and in chunks must frame alike. (Keepalive counts are not
      // compared: a CRLFCRLF ping split across two chunks is not counted, a known gap.)
      const run = (chunks: Buffer[]): { messages: string[]; error: string | null } => {
        const framer = new StreamFramer();
        const out: string[] = [];
        for (const piece of chunks) {
          try {
            out.push(...bounded("StreamFramer.push", () => framer.push(piece)).messages);
          } catch (err) {
            if (!(err instanceof FramingError)) throw err;
            return { messages: out, error: err.message };
          }
        }
        return { messages: out, error: null };
      };
      try {
        const whole = run([stream]);
        const chunked = run(chunk(stream, rng));
        // Where a push fails, the messages it had already framed are lost with the throw (the
        // connection is closed anyway): pushed whole, that is all of them; in chunks, only those
        // of the failing chunk. So the whole run's messages are a prefix of the chunked run's.
        assert.equal(chunked.error, whole.error, "chunked framing fails differently");
        assert.deepEqual(chunked.messages.slice(0, whole.messages.length), whole.messages);
        if (whole.error === null) assert.equal(chunked.messages.length, whole.messages.length);
        for (const text of chunked.messages) {
          // Every tenth through the grammar too: the datagram test above already parses 10,000.
          if (framed++ % 10 === 0) bounded("parseSip", () => exercise(parseSip(text)));
        }
      } catch (err) {
        assert.fail(replay("stream", seed, String(err)));
      }
    }
    assert.ok(framed > STREAM_MESSAGES * 0.2, `only ${framed} of ${fed} framed`);
  });

  it(`parses ${PIDF_CASES} mutated and hostile PIDF documents: bad-request at worst, never an expansion`, function () {
    const seeds = [...PIDF_SEEDS, ...fixturePidfBodies(messages)];
    let accepted = 0;
    for (let i = 0; i < PIDF_CASES; i++) {
      const c = pidfCase(seeds, caseSeed(BASE_SEED ^ 0x91df, i));
      for (const parse of [parsePidf, pidfState]) {
        try {
          const result = bounded(parse.name, () => parse(c.xml));
          accepted++;
          assert.doesNotMatch(JSON.stringify(result), c.expansion, "an entity was expanded");
          assert.doesNotMatch(c.xml, /<!DOCTYPE/i, "a DOCTYPE was accepted");
        } catch (err) {
          if (err instanceof SwitchboardError && err.condition === "bad-request") continue;
          assert.fail(replay("pidf", c.seed, `${c.name} (${parse.name}): ${String(err)}`));
        }
      }
    }
    assert.ok(accepted > 0, "no document accepted: the mutations are too coarse");
  });

  it("refuses every hostile document with a DTD, and expands nothing in the others", function () {
    for (const hostile of HOSTILE_PIDF) {
      let result: unknown;
      try {
        result = bounded(hostile.name, () => parsePidf(hostile.xml));
      } catch (err) {
        assert.ok(err instanceof SwitchboardError && err.condition === "bad-request", hostile.name);
        continue;
      }
      assert.doesNotMatch(hostile.xml, /<!DOCTYPE/i, `${hostile.name} was accepted`);
      assert.doesNotMatch(JSON.stringify(result), hostile.expansion, hostile.name);
    }
  });
});

describe("SIP fuzz: the live endpoint over UDP, TCP and WebSocket", function () {
  let endpoint: SipEndpoint;
  let udpPort: number;
  let tcpPort: number;
  let wsPort: number;
  let fuzzer: UdpSocket;
  const lines: LogLine[] = [];
  const uncaught: string[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(`uncaughtException: ${String(err)}`);
  const onRejection = (err: unknown): void => void uncaught.push(`unhandledRejection: ${String(err)}`);
  const presence = new PresenceService(new MemoryPresenceStore());
  let rssBefore = 0;
  let heapBefore = 0;
  let udpSeen = 0;
  let responses = 0;

  before(async function () {
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onRejection);
    ({ endpoint } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "ws:127.0.0.1:0"],
      presence,
      log: errorsOnly(lines),
    }));
    const addresses = endpoint.transports.addresses();
    udpPort = addresses.find((a) => a.transport === "udp")?.port ?? 0;
    tcpPort = addresses.find((a) => a.transport === "tcp")?.port ?? 0;
    wsPort = addresses.find((a) => a.transport === "ws")?.port ?? 0;
    // Every datagram ends as exactly one of these two: how we know the kernel dropped none.
    endpoint.transports.on("message", (_text, flow) => void (flow.transport === "udp" && udpSeen++));
    endpoint.transports.on("problem", (reason) => void (reason.includes("datagram") && udpSeen++));
    fuzzer = createSocket("udp4");
    fuzzer.on("message", () => void responses++); // counted, not kept: RSS is measured in-process
    await new Promise<void>((resolve) => fuzzer.bind(0, "127.0.0.1", () => resolve()));
    // A first round brings V8's heap and malloc's arenas to their working size (measured: RSS
    // grows by 20–45 MB within the first 2,000 datagrams and then stays flat), so that the growth
    // measured afterwards is what the fuzz leaves behind, not the allocators' high-water mark.
    await fuzzDatagrams(WARMUP_CASES, 0x3a3);
    collectGarbage();
    ({ rss: rssBefore, heapUsed: heapBefore } = process.memoryUsage());
  });

  after(async function () {
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onRejection);
    await new Promise<void>((resolve) => (fuzzer ? fuzzer.close(() => resolve()) : resolve()));
    await endpoint?.stop();
  });

  const send = (bytes: Buffer): Promise<void> =>
    new Promise((resolve, reject) =>
      fuzzer.send(bytes, udpPort, "127.0.0.1", (err) => (err ? reject(err) : resolve())),
    );

  /** Sends `count` mutated datagrams in paced batches; how many went out and how many arrived. */
  async function fuzzDatagrams(count: number, salt: number): Promise<{ sent: number; seen: number }> {
    const messages = corpus(fuzzer.address().port);
    const deadline = Date.now() + PHASE_BUDGET_MS;
    const seenBefore = udpSeen;
    let sent = 0;
    let sendErrors = 0;
    for (let i = 0; i < count && Date.now() < deadline; i += UDP_BATCH) {
      const size = Math.min(UDP_BATCH, count - i);
      const target = udpSeen + size;
      const batch = Array.from({ length: size }, (_, k) =>
        // 1,300 bytes is the UDP guideline (RFC 3261 §18.1.1), but peers send more: up to 60 kB here.
        sipCase(messages, caseSeed(BASE_SEED ^ salt, i + k), 60_000),
      );
      await Promise.all(
        batch.map((c) =>
          send(confineToLoopback(c.bytes)).then(
            () => void sent++,
            () => void sendErrors++,
          ),
        ),
      );
      // Let the endpoint read what was sent before the next batch, so the socket buffer never overflows.
      await waitForCount(() => udpSeen, target, 20, 500);
    }
    assert.equal(sent + sendErrors, count, `only ${sent + sendErrors} sent within the time budget`);
    return { sent, seen: udpSeen - seenBefore };
  }

  it(`survives ${UDP_CASES} mutated datagrams`, async function () {
    const { sent, seen } = await fuzzDatagrams(UDP_CASES, 0x0d9);
    assert.ok(seen >= sent * 0.98, `the endpoint saw ${seen} of ${sent} datagrams`);
    assert.ok(responses > UDP_CASES * 0.1, `only ${responses} responses`);
    assert.deepEqual(uncaught, []);
  });

  it(`survives ${TCP_STREAMS} mutated TCP streams cut at random places`, async function () {
    const messages = corpus(fuzzer.address().port);
    const deadline = Date.now() + PHASE_BUDGET_MS;
    let done = 0;
    let stalled = 0;
    const stream = async (index: number): Promise<void> => {
      const rng = new Rng(caseSeed(BASE_SEED ^ 0x7c9, index));
      const parts: Buffer[] = [];
      for (let n = rng.between(1, 4); n > 0; n--) {
        if (rng.chance(0.2)) parts.push(Buffer.from("\r\n\r\n"));
        parts.push(confineToLoopback(sipCase(messages, rng.int(2 ** 32)).bytes));
      }
      const socket = connect({ port: tcpPort, host: "127.0.0.1" });
      socket.on("data", () => undefined);
      socket.on("error", () => undefined); // the endpoint closes streams it cannot frame
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      await Promise.race([new Promise((resolve) => socket.once("connect", resolve)), closed]);
      for (const piece of chunk(Buffer.concat(parts), rng)) {
        if (socket.destroyed) break;
        socket.write(piece);
        await tick();
      }
      if (rng.chance(0.1)) socket.destroy();
      else {
        await sleep(rng.int(20));
        socket.end();
      }
      const ended = await Promise.race([closed.then(() => true), sleep(2_000).then(() => false)]);
      if (!ended) stalled++;
      socket.destroy();
      done++;
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: TCP_PARALLEL }, async () => {
        while (next < TCP_STREAMS && Date.now() < deadline) await stream(next++);
      }),
    );
    assert.equal(done, TCP_STREAMS, `only ${done} streams within the time budget`);
    assert.equal(stalled, 0, "streams the endpoint did not close after our FIN");
    assert.deepEqual(uncaught, []);
  });

  it(`survives ${WS_CONNECTIONS} WebSocket connections of mutated messages, text and binary frames`, async function () {
    const messages = corpus(fuzzer.address().port);
    const deadline = Date.now() + PHASE_BUDGET_MS;
    let done = 0;
    let stalled = 0;
    let answered = 0;
    const connection = async (index: number): Promise<void> => {
      const rng = new Rng(caseSeed(BASE_SEED ^ 0x3e5, index));
      const ws = new WebSocket(`ws://127.0.0.1:${wsPort}`, "sip");
      ws.on("message", () => void answered++);
      ws.on("error", () => undefined); // the endpoint may close a connection it cannot use
      const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
      await Promise.race([new Promise((resolve) => ws.once("open", resolve)), closed]);
      for (let n = rng.between(1, 4); n > 0 && ws.readyState === WebSocket.OPEN; n--) {
        const bytes = confineToLoopback(sipCase(messages, rng.int(2 ** 32), 60_000).bytes);
        // RFC 7118 §5.4 says text frames for UTF-8 messages; peers send binary ones too.
        ws.send(rng.chance(0.5) ? bytes : bytes.toString("utf8"), { binary: rng.chance(0.5) });
        await tick();
      }
      await sleep(rng.int(20));
      ws.close();
      const ended = await Promise.race([closed.then(() => true), sleep(2_000).then(() => false)]);
      if (!ended) stalled++;
      ws.terminate();
      done++;
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: TCP_PARALLEL }, async () => {
        while (next < WS_CONNECTIONS && Date.now() < deadline) await connection(next++);
      }),
    );
    assert.equal(done, WS_CONNECTIONS, `only ${done} connections within the time budget`);
    assert.equal(stalled, 0, "connections the endpoint did not close after our close frame");
    assert.ok(answered > WS_CONNECTIONS * 0.1, `only ${answered} answers`);
    assert.deepEqual(uncaught, []);
  });

  it("answers every hostile PIDF in a PUBLISH with 400, or 200 without expanding anything", async function () {
    const tcp = await TcpSipSocket.connect(tcpPort);
    try {
      for (const [i, hostile] of HOSTILE_PIDF.entries()) {
        if (Buffer.byteLength(hostile.xml) > 60_000) continue; // past the framing limit: the stream is closed
        const callId = `hostile-${i}@127.0.0.1`;
        await tcp.send(
          buildRequest({
            method: "PUBLISH",
            uri: "sip:alice@example.org",
            via: `TCP 127.0.0.1:${tcp.localPort}`,
            from: "<sip:alice@example.org>",
            to: "<sip:alice@example.org>",
            callId,
            headers: { Event: "presence", Expires: "60", "Content-Type": "application/pidf+xml" },
            body: hostile.xml,
          }),
        );
        const answer = await tcp.waitFor(
          (m) => m.status !== undefined && header(m, "call-id") === callId,
          2_000,
        );
        assert.ok(answer.status === 400 || answer.status === 200, `${hostile.name}: ${answer.status}`);
        if (/<!DOCTYPE/i.test(hostile.xml)) assert.equal(answer.status, 400, hostile.name);
        const current = await presence.current("alice@example.org");
        assert.doesNotMatch(JSON.stringify(current), hostile.expansion, hostile.name);
      }
    } finally {
      tcp.close();
    }
  });

  it("still answers a valid OPTIONS and MESSAGE with 200 within 2 s, over UDP and TCP", async function () {
    const udp = await UdpSipSocket.open();
    const tcp = await TcpSipSocket.connect(tcpPort);
    try {
      for (const [transport, method] of [
        ["udp", "OPTIONS"],
        ["udp", "MESSAGE"],
        ["tcp", "OPTIONS"],
        ["tcp", "MESSAGE"],
      ] as const) {
        const callId = `after-fuzz-${transport}-${method}@127.0.0.1`;
        const text = buildRequest({
          method,
          uri: "sip:alice@example.org",
          via: transport === "udp" ? `UDP 127.0.0.1:${udp.port}` : `TCP 127.0.0.1:${tcp.localPort}`,
          from: "<sip:bob@example.org>",
          to: "<sip:alice@example.org>",
          callId,
          headers: method === "MESSAGE" ? { "Content-Type": "text/plain;charset=UTF-8" } : {},
          body: method === "MESSAGE" ? "still there?" : "",
        });
        const socket = transport === "udp" ? udp : tcp;
        await (transport === "udp" ? udp.send(text, udpPort) : tcp.send(text));
        const answer = await socket.waitFor(
          (m) => m.status !== undefined && m.status >= 200 && header(m, "call-id") === callId,
          2_000,
        );
        assert.equal(answer.status, 200, `${method} over ${transport}`);
      }
    } finally {
      tcp.close();
      await udp.close();
    }
  });

  it(`has grown within bounds (heap 20 MB, RSS ${RSS_LIMIT / 1024 / 1024} MB), logged no error and let no exception escape`, async function () {
    // Let the last transactions and NOTIFY retransmissions (Timer F, 64·T1) run out first.
    await sleep(3_500);
    collectGarbage();
    const { rss, heapUsed } = process.memoryUsage();
    // (heapUsed is printed for context.)
    const growth = rss - rssBefore;
    const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
    console.log(
      `      RSS growth ${mb(growth)} (heap ${mb(heapUsed - heapBefore)}), ${responses} UDP responses`,
    );
    assert.ok(growth < RSS_LIMIT, `RSS grew by ${(growth / 1024 / 1024).toFixed(1)} MB`);
    assert.ok(heapUsed - heapBefore < HEAP_LIMIT, `the heap grew by ${mb(heapUsed - heapBefore)}`);
    // Every error line is an unexpected exception path.
    assert.deepEqual(
      lines.filter((l) => l.level === "error").map((l) => `${l.message} ${JSON.stringify(l.fields)}`),
      [],
      "error lines mean an unexpected exception path",
    );
    assert.deepEqual(uncaught, []);
  });
});

// What the fuzz found in the endpoint, each as a minimal reproducer.
describe("SIP fuzz findings (regressions)", function () {
  let endpoint: SipEndpoint;
  let udpPort: number;
  let tcpPort: number;
  const lines: LogLine[] = [];

  before(async function () {
    ({ endpoint } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
      log: memoryLogger(lines),
    }));
    udpPort = endpoint.transports.addresses().find((a) => a.transport === "udp")?.port ?? 0;
    tcpPort = endpoint.transports.addresses().find((a) => a.transport === "tcp")?.port ?? 0;
  });
  after(async function () {
    await endpoint?.stop();
  });

  // A control character in the decoded user part can be no JID: once this left no final response
  // (the peer retransmitted until Timer F) and an error line.
  it("answers a MESSAGE to sip:%00@example.org with a final 4xx", async function () {
    const socket = await UdpSipSocket.open();
    const mark = lines.length;
    try {
      const text = [
        "MESSAGE sip:%00@example.org SIP/2.0",
        `Via: SIP/2.0/UDP 127.0.0.1:${socket.port};branch=z9hG4bKnul1;rport`,
        "Max-Forwards: 70",
        "From: <sip:bob@example.org>;tag=1",
        "To: <sip:%00@example.org>",
        "Call-ID: nul-user@127.0.0.1",
        "CSeq: 1 MESSAGE",
        "Content-Type: text/plain",
        "Content-Length: 2",
        "",
        "hi",
      ].join("\r\n");
      await socket.send(text, udpPort);
      const answer = await socket.waitFor((m) => m.status !== undefined && m.status >= 200, 2_000);
      assert.ok(answer.status !== undefined && answer.status >= 400 && answer.status < 500);
      assert.deepEqual(
        lines.slice(mark).filter((l) => l.level === "error"),
        [],
      );
    } finally {
      await socket.close();
    }
  });

  // A TCP peer that sends two requests in one segment and resets the connection makes the second
  // response's write fail with EPIPE: a peer going away is ordinary, not an error line.
  it("logs no error when a TCP peer resets before its responses", async function () {
    const mark = lines.length;
    for (let i = 0; i < 5; i++) {
      const socket = connect({ port: tcpPort, host: "127.0.0.1" });
      socket.on("error", () => undefined);
      await new Promise((resolve) => socket.once("connect", resolve));
      const request = (n: number): string =>
        buildRequest({
          method: "OPTIONS",
          uri: "sip:example.org",
          via: `TCP 127.0.0.1:${socket.localPort}`,
          from: "<sip:bob@example.org>",
          to: "<sip:example.org>",
          callId: `reset-${i}-${n}@127.0.0.1`,
        });
      socket.write(request(1) + request(2));
      socket.destroy();
    }
    await sleep(500);
    assert.deepEqual(
      lines.slice(mark).filter((l) => l.level === "error"),
      [],
    );
  });
});
