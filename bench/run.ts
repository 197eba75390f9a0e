// `npm run bench`: throughput, latency and cost of the bridge against the real servers of the test
// harness, on loopback. Every figure comes from 3 runs or more (min / median / max) and, for
// messages, with the ceiling measured in the same run: a bare XEP-0114 component pushing the same
// messages into the same Prosody. Writes bench/results/<time>.json and docs/benchmarks.md.
//
// Environment: BENCH_RUNS (default 3), BENCH_COUNT (messages per run, default 20000), BENCH_RATES
// (offered message rates, default 500,2000,5000,max),
// BENCH_SCALE_USERS (default 100000), BENCH_SOAK_MINUTES (default 0: no soak), BENCH_ONLY
// (comma-separated scenario names: sip-to-xmpp, xmpp-to-sip, fanout, presence, store, scale, soak).
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { stringify } from "yaml";
import { RedisPresenceStore } from "../components/redis/redis-presence-store.js";
import { silentLogger } from "../src/ports/logger.js";
import { PresenceService } from "../src/presence/presence-service.js";
import { freePort, tempDir } from "../test/harness/net.js";
import { Prosody, type ComponentGrant } from "../test/harness/prosody.js";
import { RedisServer } from "../test/harness/redis.js";
import { quantile, runLoad, type LoadResult } from "./lib/load.js";
import { BenchBridge, cpuSeconds, memory, openFds } from "./lib/proc.js";
import { buildRequest } from "../test/harness/sip-socket.js";
import { SipLoadSocket, sipMessage, sipPublish } from "./lib/sip.js";
import { RawComponent, RawXmppClient } from "./lib/xmpp-raw.js";
import { ComponentTap } from "./lib/tap.js";
import { writeReport } from "./report.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const COUNT = Number(process.env.BENCH_COUNT ?? 20_000);
const SCALE_USERS = Number(process.env.BENCH_SCALE_USERS ?? 100_000);
const SOAK_MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 0);
const ONLY = new Set((process.env.BENCH_ONLY ?? "").split(",").filter(Boolean));
const wanted = (name: string): boolean => ONLY.size === 0 || ONLY.has(name);
const RATES = (process.env.BENCH_RATES ?? "500,2000,5000,max")
  .split(",")
  .map((r) => (r === "max" ? Infinity : Number(r)));
/** Saturation: how many requests a SIP load generator keeps open at once (a proxy's window). */
const MAX_IN_FLIGHT = 500;
const DOMAIN = "example.org";

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const rateName = (rate: number): string => (rate === Infinity ? "saturation" : `${rate}/s`);

export interface MessageRun {
  rate: string;
  offered: number;
  delivered: number;
  lost: number;
  deliveredPerSecond: number;
  /** SIP response latency (ms) at the sender; absent where there is no response (ceiling, XMPP). */
  responseP50?: number;
  responseP99?: number;
  endToEndP50: number;
  endToEndP99: number;
  bridgeCpuPer1000?: number;
  prosodyCpuPer1000: number;
  /** SIP final answers other than 200, by status. */
  refused?: Record<number, number>;
  /** Requests that got no final answer before the deadline. */
  unanswered?: number;
  /** Arrivals that belonged to an earlier series (retransmissions), not counted. */
  strays?: number;
}

/** Messages received by the measuring peer: distinct sequence numbers and end-to-end latencies. */
class Deliveries {
  private readonly seen = new Set<number>();
  readonly latencies: number[] = [];
  first = 0;
  last = 0;

  /** Arrivals that belong to another series (a late one from the run before). */
  strays = 0;

  constructor(private readonly expected: number) {}

  add(seq: number, sentAt: number, at: number): boolean {
    if (!(seq >= 0 && seq < this.expected)) {
      this.strays++;
      return false;
    }
    if (this.seen.has(seq)) return false;
    this.seen.add(seq);
    if (this.first === 0) this.first = at;
    this.last = at;
    this.latencies.push(at - sentAt);
    return true;
  }

  get count(): number {
    return this.seen.size;
  }

  /** Waits until `count` arrived or nothing new came for `quietMs`. */
  async settle(count: number, quietMs = 2_000): Promise<void> {
    let before = -1;
    while (this.count < count && this.count !== before) {
      before = this.count;
      await sleep(quietMs);
    }
  }
}

function summarize(
  rate: number,
  load: LoadResult,
  deliveries: Deliveries,
  startedAt: number,
  cpu: { bridge?: number; prosody: number },
  withResponses: boolean,
): MessageRun {
  const delivered = deliveries.count;
  const seconds = Math.max(1e-6, (deliveries.last - startedAt) / 1000);
  return {
    rate: rateName(rate),
    offered: load.started,
    delivered,
    lost: load.started - delivered,
    deliveredPerSecond: delivered / seconds,
    ...(withResponses
      ? { responseP50: quantile(load.latencies, 0.5), responseP99: quantile(load.latencies, 0.99) }
      : {}),
    endToEndP50: quantile(deliveries.latencies, 0.5),
    endToEndP99: quantile(deliveries.latencies, 0.99),
    ...(cpu.bridge !== undefined ? { bridgeCpuPer1000: (cpu.bridge / Math.max(1, delivered)) * 1000 } : {}),
    prosodyCpuPer1000: (cpu.prosody / Math.max(1, delivered)) * 1000,
  };
}

interface Stack {
  prosody: Prosody;
  redis: RedisServer;
  prosodyPid: number;
  dir: ReturnType<typeof tempDir>;
}

async function startStack(): Promise<Stack> {
  const prosody = await Prosody.start({ logLevel: "warn", components: 10 });
  const redis = await RedisServer.start();
  const prosodyPid = prosody.process.pid;
  if (prosodyPid === undefined) throw new Error("no Prosody pid");
  for (const user of ["alice", "bob", "carol"]) await prosody.register(user, `${user}-pw`);
  return { prosody, redis, prosodyPid, dir: tempDir("bench") };
}

/** A chat user logged in with the raw c2s client (the counting peer). */
function chatUser(stack: Stack, user: string): Promise<RawXmppClient> {
  return RawXmppClient.connect({
    host: "127.0.0.1",
    port: stack.prosody.c2sPort,
    domain: DOMAIN,
    user,
    password: `${user}-pw`,
  });
}

interface RunningBridge {
  bridge: BenchBridge;
  grant: ComponentGrant;
  sipPort: number;
  http: string;
  prefix: string;
  readyMs: number;
}

async function startBridge(
  stack: Stack,
  name: string,
  extra: (sipPort: number) => Record<string, unknown> = () => ({}),
  grant: ComponentGrant = stack.prosody.takeComponent(),
  prefix = RedisServer.newPrefix("bench"),
  componentPort = grant.port,
): Promise<RunningBridge> {
  const sipPort = await freePort({ udp: true });
  const httpPort = await freePort();
  const file = stack.dir.file(`${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      domain: DOMAIN,
      xmpp: { component: { jid: grant.jid, host: grant.host, port: componentPort, secret: grant.secret } },
      sip: { listen: [`udp:127.0.0.1:${sipPort}`] },
      store: { url: stack.redis.url, prefix },
      http: { listen: `127.0.0.1:${httpPort}` },
      log: { level: "info" },
      ...extra(sipPort),
    }),
  );
  const since = performance.now();
  const bridge = BenchBridge.start(file, stack.dir.file(`${name}.log`));
  const http = `http://127.0.0.1:${httpPort}`;
  const readyMs = await bridge.ready(http, since);
  return { bridge, grant, sipPort, http, prefix, readyMs };
}

// -----------------------------------------------------------------------------------------------
// 1–2. SIP → XMPP messages, and the ceiling

async function sipToXmpp(stack: Stack): Promise<{ bridge: MessageRun[][]; ceiling: MessageRun[] }> {
  const { prosody } = stack;
  const running = await startBridge(stack, "sip-to-xmpp");
  const ceilingGrant = prosody.takeComponent();
  const ceiling = await RawComponent.connect({ ...ceilingGrant, host: "127.0.0.1" });
  const alice = await chatUser(stack, "alice");
  const phone = await SipLoadSocket.open();
  const bridgeRuns: MessageRun[][] = [];
  const ceilingRuns: MessageRun[] = [];
  let series = 0;
  try {
    await sleep(500);
    for (let run = 1; run <= RUNS; run++) {
      // Ceiling: the same messages from a bare component, as fast as the socket takes them.
      {
        const tag = ++series * 10_000_000;
        const deliveries = new Deliveries(COUNT);
        alice.onMessage((m) => deliveries.add(m.seq - tag, m.sentAt, m.receivedAt));
        const cpu0 = cpuSeconds(stack.prosodyPid);
        const t0 = performance.now();
        const load = runLoad({
          count: COUNT,
          rate: Infinity,
          maxInFlight: MAX_IN_FLIGHT,
          deadlineMs: 120_000,
          start: (i) => {
            void ceiling
              .write(
                `<message from='bob@${ceilingGrant.jid}' to='alice@${DOMAIN}' type='chat' id='c${i}'><body>${tag + i} ${performance.now().toFixed(3)}</body></message>`,
              )
              .then(() => load.complete(i));
          },
        });
        const result = await load.done;
        await deliveries.settle(COUNT);
        const summary = summarize(
          Infinity,
          result,
          deliveries,
          t0,
          { prosody: cpuSeconds(stack.prosodyPid) - cpu0 },
          false,
        );
        ceilingRuns.push(summary);
        say(`  run ${run} ceiling: ${summary.deliveredPerSecond.toFixed(0)} msg/s, lost ${summary.lost}`);
      }
      const perRate: MessageRun[] = [];
      for (const rate of RATES) {
        const tag = ++series * 10_000_000;
        const deliveries = new Deliveries(COUNT);
        alice.onMessage((m) => deliveries.add(m.seq - tag, m.sentAt, m.receivedAt));
        const bridgeCpu0 = cpuSeconds(running.bridge.pid);
        const prosodyCpu0 = cpuSeconds(stack.prosodyPid);
        const t0 = performance.now();
        const load = runLoad({
          count: COUNT,
          rate,
          maxInFlight: MAX_IN_FLIGHT,
          deadlineMs: Math.max(60_000, (COUNT / Math.min(rate, 5_000)) * 1000 * 3),
          start: (i) =>
            phone.send(
              sipMessage(`sip:bob@${DOMAIN}`, `sip:alice@${DOMAIN}`, tag + i, `s${tag}x${i}`, phone.port),
              running.sipPort,
            ),
        });
        const refused = new Map<number, number>();
        phone.onSeen((seen) => {
          if (seen.status !== undefined && seen.status >= 200) {
            if (seen.status !== 200) refused.set(seen.status, (refused.get(seen.status) ?? 0) + 1);
            const i = Number(seen.callId.slice(seen.callId.indexOf("x") + 1));
            load.complete(i);
          }
        });
        const result = await load.done;
        await deliveries.settle(COUNT);
        const summary = summarize(
          rate,
          result,
          deliveries,
          t0,
          {
            bridge: cpuSeconds(running.bridge.pid) - bridgeCpu0,
            prosody: cpuSeconds(stack.prosodyPid) - prosodyCpu0,
          },
          true,
        );
        summary.refused = Object.fromEntries(refused);
        summary.unanswered = result.started - result.completed;
        perRate.push(summary);
        say(
          `  run ${run} bridge ${summary.rate}: ${summary.deliveredPerSecond.toFixed(0)} msg/s, lost ${summary.lost}, ` +
            `p99 e2e ${summary.endToEndP99.toFixed(1)} ms, SIP p99 ${summary.responseP99?.toFixed(1)} ms` +
            (summary.unanswered ? `, ${summary.unanswered} unanswered` : "") +
            (refused.size > 0 ? `, refused ${JSON.stringify(summary.refused)}` : ""),
        );
        await sleep(1_000);
      }
      bridgeRuns.push(perRate);
    }
  } finally {
    alice.close();
    ceiling.close();
    await phone.close();
    await running.bridge.stop();
  }
  return { bridge: bridgeRuns, ceiling: ceilingRuns };
}

// -----------------------------------------------------------------------------------------------
// 3. XMPP → SIP messages

async function xmppToSip(stack: Stack): Promise<MessageRun[][]> {
  const receiver = await SipLoadSocket.open();
  const running = await startBridge(stack, "xmpp-to-sip", (sipPort) => ({
    sip: { listen: [`udp:127.0.0.1:${sipPort}`], outboundProxy: `sip:127.0.0.1:${receiver.port};lr` },
  }));
  const alice = await chatUser(stack, "alice");
  const runs: MessageRun[][] = [];
  let series = 0;
  let lastSeen = 0;
  try {
    await sleep(500);
    for (let run = 1; run <= RUNS; run++) {
      const perRate: MessageRun[] = [];
      for (const rate of RATES) {
        // Past saturation the bridge loses some 200s (its socket's queue overflows while it is
        // busy) and retransmits those MESSAGEs (Timer E): let that end before the next series.
        const quietSince = performance.now() + 40_000;
        while (performance.now() - lastSeen < 2_000 && performance.now() < quietSince) await sleep(200);
        const tag = ++series * 10_000_000;
        const deliveries = new Deliveries(COUNT);
        const bridgeCpu0 = cpuSeconds(running.bridge.pid);
        const prosodyCpu0 = cpuSeconds(stack.prosodyPid);
        const t0 = performance.now();
        const load = runLoad({
          count: COUNT,
          rate,
          maxInFlight: MAX_IN_FLIGHT,
          deadlineMs: Math.max(60_000, (COUNT / Math.min(rate, 5_000)) * 1000 * 3),
          start: (i) =>
            void alice.write(
              `<message to='bob@${running.grant.jid}' type='chat' id='x${i}'><body>${tag + i} ${performance.now().toFixed(3)}</body></message>`,
            ),
        });
        receiver.onSeen((seen) => {
          lastSeen = performance.now();
          if (seen.method !== "MESSAGE") return;
          const [seq, sentAt] = seen.body.split(" ");
          const i = Number(seq) - tag;
          if (deliveries.add(i, Number(sentAt), seen.at)) load.complete(i);
        });
        const result = await load.done;
        await deliveries.settle(COUNT);
        const summary = summarize(
          rate,
          result,
          deliveries,
          t0,
          {
            bridge: cpuSeconds(running.bridge.pid) - bridgeCpu0,
            prosody: cpuSeconds(stack.prosodyPid) - prosodyCpu0,
          },
          false,
        );
        summary.strays = deliveries.strays;
        perRate.push(summary);
        say(
          `  run ${run} ${summary.rate}: ${summary.deliveredPerSecond.toFixed(0)} msg/s, lost ${summary.lost}, p99 e2e ${summary.endToEndP99.toFixed(1)} ms` +
            (deliveries.strays ? `, ${deliveries.strays} retransmissions of earlier series` : ""),
        );
        await sleep(1_000);
      }
      runs.push(perRate);
    }
  } finally {
    alice.close();
    await receiver.close();
    await running.bridge.stop();
  }
  return runs;
}

// -----------------------------------------------------------------------------------------------
// 4. Presence fan-out, and sustained presence updates through Redis

export interface FanoutRun {
  sipWatchers: number;
  xmppSubscribers: number;
  /** From sending the PUBLISH to the last watcher's NOTIFY, ms. */
  lastNotifyMs: number;
  /** From sending the PUBLISH to the last presence stanza written to the component socket, ms. */
  lastStanzaMs: number;
  notifiesSeen: number;
  stanzasSeen: number;
}

async function fanout(stack: Stack, watchers = 5_000, subscribers = 5_000): Promise<FanoutRun[]> {
  const grant = stack.prosody.takeComponent();
  const prefix = RedisServer.newPrefix("fanout");
  // The XMPP subscribers of Bob's phone contact, as the bridge keeps them.
  const store = await RedisPresenceStore.connect({ target: stack.redis.url, prefix, log: silentLogger });
  const contact = `bob@${grant.jid}`;
  for (let i = 0; i < subscribers; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, subscribers - i) }, (_, k) =>
        store.addXmppSubscriber(contact, `fan${i + k}@${DOMAIN}`),
      ),
    );
  }
  await store.close();
  // Between the bridge and Prosody: timestamps every presence stanza the bridge writes.
  const tap = await ComponentTap.start(grant.port);
  const running = await startBridge(stack, "fanout", () => ({}), grant, prefix, tap.port);
  const watcher = await SipLoadSocket.open();
  const phone = await SipLoadSocket.open();
  const runs: FanoutRun[] = [];
  try {
    // 5,000 SIP watchers of Bob (one socket, one dialog each), each answered 200 with a NOTIFY.
    let subscribed = 0;
    const load = runLoad({
      count: watchers,
      rate: Infinity,
      maxInFlight: 200,
      deadlineMs: 120_000,
      start: (i) =>
        watcher.send(
          buildRequest({
            method: "SUBSCRIBE",
            uri: `sip:bob@${DOMAIN}`,
            via: `UDP 127.0.0.1:${watcher.port}`,
            from: `<sip:w${i}@${DOMAIN}>`,
            to: `<sip:bob@${DOMAIN}>`,
            callId: `w${i}`,
            headers: { Event: "presence", Expires: "3600", Contact: `<sip:w${i}@127.0.0.1:${watcher.port}>` },
          }),
          running.sipPort,
        ),
    });
    watcher.onSeen((seen) => {
      if (seen.status !== undefined && seen.status >= 200 && seen.callId.startsWith("w")) {
        if (seen.status === 200) subscribed++;
        load.complete(Number(seen.callId.slice(1)));
      }
    });
    await load.done;
    if (subscribed < watchers) say(`  only ${subscribed} of ${watchers} SUBSCRIBEs were accepted`);
    await sleep(3_000); // the initial NOTIFYs
    const states = ["on-the-phone", "available"] as const;
    for (let run = 1; run <= RUNS; run++) {
      const state = states[(run - 1) % 2] ?? "available";
      // Each stanza once: "available" has no <show>, and may be written as <presence .../>.
      const marker = state === "on-the-phone" ? "<show>dnd</show>" : "<presence ";
      let notifies = 0;
      let lastNotify = 0;
      watcher.onSeen((seen) => {
        if (
          seen.method === "NOTIFY" &&
          seen.body.includes(state === "on-the-phone" ? "on-the-phone" : "<basic>open</basic>")
        ) {
          notifies++;
          lastNotify = seen.at;
        }
      });
      tap.reset(marker);
      const t0 = performance.now();
      phone.send(sipPublish(`sip:bob@${DOMAIN}`, state, `p${run}`, phone.port, 3600), running.sipPort);
      const deadline = performance.now() + 30_000;
      while ((notifies < subscribed || tap.count < subscribers) && performance.now() < deadline)
        await sleep(50);
      await sleep(500);
      const result: FanoutRun = {
        sipWatchers: subscribed,
        xmppSubscribers: subscribers,
        lastNotifyMs: lastNotify - t0,
        lastStanzaMs: tap.last - t0,
        notifiesSeen: notifies,
        stanzasSeen: tap.count,
      };
      runs.push(result);
      say(
        `  run ${run} (${state}): last NOTIFY after ${result.lastNotifyMs.toFixed(0)} ms (${notifies}/${subscribed}), ` +
          `last presence stanza after ${result.lastStanzaMs.toFixed(0)} ms (${tap.count}/${subscribers})`,
      );
      await sleep(2_000);
    }
  } finally {
    await watcher.close();
    await phone.close();
    await running.bridge.stop();
    await tap.close();
  }
  return runs;
}

/** What every presence-updates run (4b, 4c) reports. */
export interface UpdatesRun {
  updates: number;
  perSecond: number;
  p50: number;
  p99: number;
  redisCpuPer1000: number;
}

export interface PresenceRun extends UpdatesRun {
  bridgeCpuPer1000: number;
}

/** A run's common figures, and `per1000` for its own CPU figure; prints the run's line. */
function updatesSummary(
  run: number,
  result: LoadResult,
  redisCpuSeconds: number,
): { summary: UpdatesRun; per1000: (cpuSeconds: number) => number } {
  const per1000 = (cpuSeconds: number): number => (cpuSeconds / Math.max(1, result.completed)) * 1000;
  const summary: UpdatesRun = {
    updates: result.completed,
    perSecond: result.completed / (result.elapsedMs / 1000),
    p50: quantile(result.latencies, 0.5),
    p99: quantile(result.latencies, 0.99),
    redisCpuPer1000: per1000(redisCpuSeconds),
  };
  say(
    `  run ${run}: ${summary.perSecond.toFixed(0)} updates/s (${summary.updates}/${COUNT}), p99 ${summary.p99.toFixed(1)} ms`,
  );
  return { summary, per1000 };
}

async function presenceUpdates(stack: Stack): Promise<PresenceRun[]> {
  const running = await startBridge(stack, "presence");
  const phone = await SipLoadSocket.open();
  const redisPid = stack.redis.process.pid ?? 0;
  const runs: PresenceRun[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      const bridgeCpu0 = cpuSeconds(running.bridge.pid);
      const redisCpu0 = cpuSeconds(redisPid);
      const load = runLoad({
        count: COUNT,
        rate: Infinity,
        maxInFlight: MAX_IN_FLIGHT,
        deadlineMs: 180_000,
        start: (i) =>
          phone.send(
            sipPublish(
              `sip:u${i}@${DOMAIN}`,
              run % 2 === 0 ? "away" : "on-the-phone",
              `r${run}x${i}`,
              phone.port,
              600,
            ),
            running.sipPort,
          ),
      });
      phone.onSeen((seen) => {
        if (seen.status !== undefined && seen.status >= 200)
          load.complete(Number(seen.callId.slice(seen.callId.indexOf("x") + 1)));
      });
      const result = await load.done;
      const { summary, per1000 } = updatesSummary(run, result, cpuSeconds(redisPid) - redisCpu0);
      runs.push({ ...summary, bridgeCpuPer1000: per1000(cpuSeconds(running.bridge.pid) - bridgeCpu0) });
      await sleep(1_000);
    }
  } finally {
    await phone.close();
    await running.bridge.stop();
  }
  return runs;
}

// -----------------------------------------------------------------------------------------------
// 4c. Presence updates through the store alone: the bridge's presence service and Redis store, in
// this process, fed device states as the PBX adapter feeds them (no SIP or XMPP parsing). Each
// update ends when its change comes back on the store's channel, as every instance hears it.

export interface StoreRun extends UpdatesRun {
  /** CPU of this process (presence service, store client, the load loop) per 1,000 updates. */
  writerCpuPer1000: number;
}

async function storeUpdates(stack: Stack): Promise<StoreRun[]> {
  const store = await RedisPresenceStore.connect({
    target: stack.redis.url,
    prefix: RedisServer.newPrefix("store"),
    log: silentLogger,
  });
  const service = new PresenceService(store);
  const redisPid = stack.redis.process.pid ?? 0;
  const runs: StoreRun[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      const cpu0 = process.cpuUsage();
      const redisCpu0 = cpuSeconds(redisPid);
      // Each run flips every user's phone, so every update is a change that is announced.
      const device = run % 2 === 0 ? "idle" : "inuse";
      const load = runLoad({
        count: COUNT,
        rate: Infinity,
        maxInFlight: MAX_IN_FLIGHT,
        deadlineMs: 180_000,
        start: (i) => {
          const now = Date.now();
          service
            .report(`u${i}@${DOMAIN}`, {
              source: { kind: "pbx-device" },
              device,
              updatedAt: now,
              expiresAt: null,
            })
            .catch((err: unknown) => say(`  update ${i} failed: ${String(err)}`));
        },
      });
      const heard = (person: string): void => load.complete(Number(person.slice(1, person.indexOf("@"))));
      service.on("change", heard);
      const result = await load.done;
      service.off("change", heard);
      const cpu = process.cpuUsage(cpu0);
      const { summary, per1000 } = updatesSummary(run, result, cpuSeconds(redisPid) - redisCpu0);
      runs.push({ ...summary, writerCpuPer1000: per1000((cpu.user + cpu.system) / 1e6) });
      await sleep(1_000);
    }
  } finally {
    service.close();
    await store.close();
  }
  return runs;
}

// -----------------------------------------------------------------------------------------------
// 5. Scale: many users and subscriptions in Redis

export interface ScaleRun {
  users: number;
  subscriptions: number;
  redisUsedMemoryBytes: number;
  readyMs: number;
  bridgeRssAtReadyBytes: number;
  bridgePeakRssBytes: number;
  /** Presence stanzas the bridge sent when its component came up (re-announcing to subscribers). */
  reannounceMs: number;
}

async function scale(stack: Stack): Promise<ScaleRun[]> {
  const prefix = RedisServer.newPrefix("scale");
  const grant = stack.prosody.takeComponent();
  const store = await RedisPresenceStore.connect({ target: stack.redis.url, prefix, log: silentLogger });
  const seedStart = performance.now();
  const now = Date.now();
  const BATCH = 1_000;
  for (let i = 0; i < SCALE_USERS; i += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, SCALE_USERS - i) }, (_, k) => i + k);
    await Promise.all(
      ids.flatMap((id) => [
        store.putRecord(
          `user${id}@${DOMAIN}`,
          {
            source: { kind: "pbx-custom" },
            state: id % 3 === 0 ? "away" : "available",
            note: "",
            updatedAt: now,
            expiresAt: null,
          },
          now,
        ),
        store.addXmppSubscriber(`user${id}@${grant.jid}`, `user${(id + 1) % SCALE_USERS}@${DOMAIN}`),
        store.addXmppSubscriber(`user${id}@${grant.jid}`, `user${(id + 2) % SCALE_USERS}@${DOMAIN}`),
      ]),
    );
  }
  await store.close();
  say(
    `  seeded ${SCALE_USERS} users and ${SCALE_USERS * 2} subscriptions in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
  );
  const info = String(await stack.redis.command("INFO", "memory"));
  const redisUsed = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  const tap = await ComponentTap.start(grant.port);
  const runs: ScaleRun[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      tap.reset("<presence ");
      const running = await startBridge(stack, `scale-${run}`, () => ({}), grant, prefix, tap.port);
      const atReady = memory(running.bridge.pid).rss;
      // The re-announcement to every subscriber after the component came up: wait for it to end.
      const deadline = performance.now() + 120_000;
      let before = -1;
      while (tap.count !== before && performance.now() < deadline) {
        before = tap.count;
        await sleep(1_000);
      }
      const peak = memory(running.bridge.pid).peak;
      const result: ScaleRun = {
        users: SCALE_USERS,
        subscriptions: SCALE_USERS * 2,
        redisUsedMemoryBytes: redisUsed,
        readyMs: running.readyMs,
        bridgeRssAtReadyBytes: atReady,
        bridgePeakRssBytes: peak,
        reannounceMs: tap.last - tap.first,
      };
      runs.push(result);
      say(
        `  run ${run}: ready in ${result.readyMs.toFixed(0)} ms, RSS ${(atReady / 2 ** 20).toFixed(0)} MB at ready, peak ${(peak / 2 ** 20).toFixed(0)} MB, ` +
          `${tap.count} presence stanzas re-announced in ${result.reannounceMs.toFixed(0)} ms`,
      );
      await running.bridge.stop();
      await sleep(1_000);
    }
  } finally {
    await tap.close();
  }
  return runs;
}

// -----------------------------------------------------------------------------------------------
// Soak: messages at 1,000/s plus presence churn; RSS and descriptors sampled every 10 s

export interface SoakSample {
  atSeconds: number;
  rssBytes: number;
  openFds: number;
  delivered: number;
}

async function soak(
  stack: Stack,
): Promise<{ minutes: number; offered: number; delivered: number; samples: SoakSample[] }> {
  const running = await startBridge(stack, "soak");
  const alice = await chatUser(stack, "alice");
  const phone = await SipLoadSocket.open();
  const count = Math.round(SOAK_MINUTES * 60 * 1_000);
  const deliveries = new Deliveries(count);
  alice.onMessage((m) => deliveries.add(m.seq, m.sentAt, m.receivedAt));
  const samples: SoakSample[] = [];
  const t0 = performance.now();
  const sampler = setInterval(() => {
    samples.push({
      atSeconds: (performance.now() - t0) / 1000,
      rssBytes: memory(running.bridge.pid).rss,
      openFds: openFds(running.bridge.pid),
      delivered: deliveries.count,
    });
  }, 10_000);
  try {
    await sleep(500);
    const load = runLoad({
      count,
      rate: 1_000,
      maxInFlight: MAX_IN_FLIGHT,
      deadlineMs: SOAK_MINUTES * 60_000 * 1.5 + 30_000,
      start: (i) => {
        // Every 10th operation is presence churn: a PUBLISH for one of 1,000 users.
        if (i % 10 === 9) {
          phone.send(
            sipPublish(
              `sip:churn${i % 1000}@${DOMAIN}`,
              i % 20 === 9 ? "away" : "available",
              `k${i}`,
              phone.port,
              60,
            ),
            running.sipPort,
          );
          return;
        }
        phone.send(
          sipMessage(`sip:bob@${DOMAIN}`, `sip:alice@${DOMAIN}`, i, `k${i}`, phone.port),
          running.sipPort,
        );
      },
    });
    phone.onSeen((seen) => {
      if (seen.status !== undefined && seen.status >= 200) load.complete(Number(seen.callId.slice(1)));
    });
    await load.done;
    const messages = count - Math.floor((count + 0) / 10);
    await deliveries.settle(messages);
    return { minutes: SOAK_MINUTES, offered: messages, delivered: deliveries.count, samples };
  } finally {
    clearInterval(sampler);
    alice.close();
    await phone.close();
    await running.bridge.stop();
  }
}

// -----------------------------------------------------------------------------------------------

/** The installed Debian package's version (the servers have no reliable --version). */
function packageVersion(name: string): string {
  try {
    return execFileSync("dpkg-query", ["-W", "-f", "${Version}", name], {
      encoding: "utf8",
      timeout: 10_000,
    }).trim();
  } catch {
    return "?";
  }
}

async function main(): Promise<void> {
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    memoryBytes: totalmem(),
    node: process.version,
    prosody: packageVersion("prosody"),
    redis: packageVersion("redis-server"),
  };
  say(
    `machine: ${machine.cores} cores (${machine.cpu}), ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${machine.node}, Prosody ${machine.prosody}, Redis ${machine.redis}`,
  );
  say("starting Prosody and Redis ...");
  const stack = await startStack();
  say("started");
  const results: Record<string, unknown> = {
    machine,
    runs: RUNS,
    count: COUNT,
    startedAt: new Date().toISOString(),
  };
  try {
    if (wanted("sip-to-xmpp")) {
      say("SIP → XMPP messages, and the ceiling (a bare component into the same Prosody)");
      results.sipToXmpp = await sipToXmpp(stack);
    }
    if (wanted("xmpp-to-sip")) {
      say("XMPP → SIP messages");
      results.xmppToSip = await xmppToSip(stack);
    }
    if (wanted("fanout")) {
      say("Presence fan-out: one user, 5,000 SIP watchers and 5,000 XMPP subscribers");
      results.fanout = await fanout(stack);
    }
    if (wanted("presence")) {
      say("Sustained presence updates through Redis (PUBLISH, one per user)");
      results.presence = await presenceUpdates(stack);
    }
    if (wanted("store")) {
      say("Presence updates through the store alone (device states, one per user)");
      results.store = await storeUpdates(stack);
    }
    if (wanted("scale")) {
      say(`Scale: ${SCALE_USERS} users with presence and ${SCALE_USERS * 2} subscriptions in Redis`);
      results.scale = await scale(stack);
    }
    if (SOAK_MINUTES > 0 && wanted("soak")) {
      say(`Soak: ${SOAK_MINUTES} min at 1,000 operations/s (9 in 10 messages, 1 in 10 presence)`);
      results.soak = await soak(stack);
    }
  } finally {
    await stack.prosody.stop();
    await stack.redis.stop();
    // BENCH_KEEP=1 keeps the configs and the bridges' logs, to look at afterwards.
    if (process.env.BENCH_KEEP) say(`kept: ${stack.dir.path}`);
    else stack.dir.remove();
  }
  results.finishedAt = new Date().toISOString();
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/${String(results.startedAt).replace(/[:.]/g, "-")}.json`;
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  say(`results: ${file}`);
  if (ONLY.size === 0) {
    writeReport(results, file);
    say("report: docs/benchmarks.md");
  }
}

await main();
