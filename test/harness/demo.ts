// `npm run demo`: the whole bridge on one machine, on loopback. It checks that the programs it runs
// are installed (and otherwise names the Debian packages, starting nothing), starts the servers a
// deployment talks to (Prosody with mod_privilege, Redis, OpenLDAP, a DNS server with ENUM records),
// runs the real bridge (`switchboard start`) on a generated config, and plays a short scene between a
// desk phone (baresip) and a chat client (slixmpp): messages both ways, presence both ways, and
// numbers resolved through LDAP and ENUM. Then it prints what a person needs to join in with their
// own XMPP client or softphone and keeps running until Ctrl-C (or SIGTERM), when it stops everything
// it started and exits 0. A failed step stops everything and exits 1.
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { buildPidf } from "../../components/sip/pidf.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { BridgeProcess } from "./bridge-process.js";
import { switchboard } from "./cli.js";
import { enumDomain, exampleEnumRecords, type NaptrRecord } from "./dns.js";
import { freePort, LOOPBACK } from "./net.js";
import { Scene } from "./scene.js";
import { Baresip } from "./sip-clients.js";
import { buildRequest, header, UdpSipSocket } from "./sip-socket.js";
import { SlixmppClient, SYSTEM_PYTHON } from "./xmpp-client.js";

// ---------------------------------------------------------------------------------------------
// Output. A closed terminal (SIGHUP) or a reader gone early must not crash the clean-up.
process.stdout.on("error", () => undefined);
process.stderr.on("error", () => undefined);
/** Terminals without UTF-8 (or colours) still read everything, the CLI's arrows included. */
const ascii = (text: string): string =>
  text
    // eslint-disable-next-line no-control-regex -- ESC starts the colour codes baresip puts around states
    .replace(/\x1b\[[0-9;]*m/g, "")
    .replace(/→/g, "->")
    .replace(/[^\t\n -~]/g, "?");
const say = (line = ""): void => void process.stdout.write(`${ascii(line)}\n`);
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const stopwatch = (): (() => number) => {
  const start = performance.now();
  return () => Math.round(performance.now() - start);
};

// ---------------------------------------------------------------------------------------------
// Prerequisites: nothing is installed behind the user's back. Programs are looked up on PATH, as the
// harness spawns them by name; Debian keeps slapd and slapadd in /usr/sbin, which a non-root PATH
// may lack, and that gets its own hint instead of an install line.
interface Missing {
  what: string;
  pkg: string;
  /** Installed but not usable as it is (e.g. not on PATH): the fix is this, not apt-get. */
  hint?: string;
}

function onPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return join(dir, program);
    } catch {
      // not in this directory
    }
  }
  return null;
}

async function missingPrerequisites(): Promise<Missing[]> {
  const missing: Missing[] = [];
  const programs: [string, string][] = [
    ["prosody", "prosody"],
    ["prosodyctl", "prosody"],
    ["redis-server", "redis-server"],
    ["slapd", "slapd"],
    ["slapadd", "slapd"],
    // dnsmasq-base: the program alone; the dnsmasq package would also start a resolver on port 53.
    ["dnsmasq", "dnsmasq-base"],
    ["baresip", "baresip-core"],
  ];
  for (const [program, pkg] of programs) {
    if (onPath(program)) continue;
    const elsewhere = ["/usr/sbin", "/sbin", "/usr/local/sbin"]
      .map((dir) => join(dir, program))
      .find((file) => existsSync(file));
    missing.push({
      what: program,
      pkg,
      hint: elsewhere ? `${elsewhere} is installed, but its directory is not on PATH` : undefined,
    });
  }
  // The harness points Prosody's plugin_paths at prosody-modules' directory (XEP-0356 privileges).
  const modules = "/usr/lib/prosody/modules";
  if (![`${modules}/mod_privilege.lua`, `${modules}/mod_privilege/mod_privilege.lua`].some(existsSync)) {
    missing.push({ what: `mod_privilege (Prosody module, in ${modules})`, pkg: "prosody-modules" });
  }
  // Debian's python3 sees python3-slixmpp; a python3 earlier on PATH (pyenv, venv) may not.
  if (!existsSync(SYSTEM_PYTHON)) {
    missing.push({ what: SYSTEM_PYTHON, pkg: "python3" });
    missing.push({ what: "slixmpp (Python XMPP library)", pkg: "python3-slixmpp" });
  } else {
    // Asynchronously: a blocked event loop would not hear a Ctrl-C in time.
    const imports = await promisify(execFile)(SYSTEM_PYTHON, ["-c", "import slixmpp"], {
      timeout: 15_000,
    }).then(
      () => true,
      () => false,
    );
    if (!imports) {
      missing.push({ what: `slixmpp (${SYSTEM_PYTHON} -c "import slixmpp" fails)`, pkg: "python3-slixmpp" });
    }
  }
  return missing;
}

function reportMissing(missing: Missing[]): void {
  say("The demo needs programs that are not ready to run:");
  const width = Math.max(...missing.map((m) => m.what.length));
  for (const m of missing) {
    say(`  ${m.what.padEnd(width)}  ${m.hint ?? "not installed"} (Debian package ${m.pkg})`);
  }
  const toInstall = [...new Set(missing.filter((m) => !m.hint).map((m) => m.pkg))];
  if (toInstall.length > 0) {
    say("Install them with:");
    say(`  sudo apt-get install -y ${toInstall.join(" ")}`);
  }
  const notOnPath = [...new Set(missing.filter((m) => m.hint).map((m) => m.what))];
  if (notOnPath.length > 0) {
    say(`Put the directory of ${notOnPath.join(", ")} on PATH, e.g.:`);
    say('  PATH="$PATH:/usr/sbin:/sbin" npm run demo');
  }
  say("Nothing was started.");
}

// ---------------------------------------------------------------------------------------------
// Stopping: Ctrl-C, SIGTERM or a closed terminal at any moment stops what has been started so far.
// A terminal's Ctrl-C reaches the whole process group (npm, this process and the servers), and npm
// forwards it again: every repeat must find a listener here, or node would die of it and
// leave the clean-up undone.
/** The signals that stop the demo, with their numbers (a shell reports 128 + the number). */
const STOP_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

class Interrupted extends Error {
  constructor(readonly signal: StopSignal) {
    super(`interrupted by ${signal}`);
  }
}

let interruptedBy: StopSignal | null = null;
let onInterrupt: (signal: StopSignal) => void = () => undefined;
const interruption = new Promise<StopSignal>((resolve) => (onInterrupt = resolve));
for (const signal of Object.keys(STOP_SIGNALS) as StopSignal[]) {
  process.on(signal, () => {
    if (interruptedBy !== null) return;
    interruptedBy = signal;
    say();
    say(`${signal} received: stopping everything the demo started.`);
    onInterrupt(signal);
  });
}

/** `work`, unless a signal comes first (then it rejects with Interrupted; `work` goes on unobserved). */
function interruptible<T>(work: Promise<T>): Promise<T> {
  return Promise.race([
    work,
    interruption.then((signal) => {
      throw new Interrupted(signal);
    }),
  ]);
}

/** What has been started, stopped in reverse order; starts still under way are waited for first. */
class Teardown {
  private readonly started: { name: string; stop: () => Promise<unknown> }[] = [];
  private readonly pending = new Set<Promise<unknown>>();

  /** Registers `stop` for a resource that exists now. */
  add(name: string, stop: () => Promise<unknown>): void {
    this.started.push({ name, stop });
  }

  /** Awaits a start (interruptibly); whatever it yields, even after an interruption, gets stopped. */
  start<T>(name: string, starting: Promise<T>, stop: (value: T) => Promise<unknown>): Promise<T> {
    return this.wait(
      starting.then((value) => {
        this.add(name, () => stop(value));
        return value;
      }),
    );
  }

  /**
   * Awaits work that runs a process of its own (prosodyctl, `switchboard lookup`) interruptibly;
   * the stop waits for it to end, so no such process outlives the demo.
   */
  wait<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
    return interruptible(work);
  }

  /** Stops everything; returns the names of what failed to stop. */
  async run(): Promise<string[]> {
    await Promise.all(this.pending);
    const failed: string[] = [];
    for (const { name, stop } of this.started.reverse()) {
      try {
        await stop();
        say(`  stopped ${name}`);
      } catch (err) {
        failed.push(name);
        say(`  could not stop ${name}: ${errorText(err)}`);
      }
    }
    return failed;
  }
}

const teardown = new Teardown();

// ---------------------------------------------------------------------------------------------
// The scene's cast and data.
const ALICE = { user: "alice", password: "alice-demo-pw" };
/** An account for the person trying the demo with their own XMPP client (Carol is in the LDIF too). */
const CAROL = { user: "carol", password: "carol-demo-pw" };
/** A number only ENUM knows (Ofcom's drama range), to show the DNS step of the chain. */
const ENUM_ONLY_NUMBER = "+44 20 7946 0123";

function demoEnumRecords(): NaptrRecord[] {
  const name = enumDomain(ENUM_ONLY_NUMBER);
  return [
    ...exampleEnumRecords(),
    {
      name,
      order: 100,
      preference: 10,
      flags: "u",
      service: "E2U+sip",
      regexp: "!^.*$!sip:frontdesk@example.com!",
    },
    {
      name,
      order: 100,
      preference: 20,
      flags: "u",
      service: "E2U+xmpp",
      regexp: "!^.*$!xmpp:frontdesk@example.com!",
    },
  ];
}

class StepFailed extends Error {}

let stepCount = 0;
let stepsOk = 0;

/** Prints a numbered step, runs it (bounded by its own waits), and prints its outcome. */
async function step(title: string, run: () => Promise<string>): Promise<void> {
  stepCount++;
  say(`${stepCount}. ${title}`);
  let outcome: string;
  try {
    outcome = await interruptible(run());
  } catch (err) {
    // A terminal's Ctrl-C also reaches the clients and servers: what fails then is no finding.
    if (err instanceof Interrupted) throw err;
    if (interruptedBy !== null) throw new Interrupted(interruptedBy);
    say(`   FAILED: ${errorText(err)}`);
    throw new StepFailed(`step ${stepCount} failed`);
  }
  stepsOk++;
  say(`   ok: ${outcome}`);
}

/** Polls baresip's contact list until `pattern` shows (presence arrives by NOTIFY, asynchronously). */
async function waitForContactLine(phone: Baresip, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let listing = "";
  while (Date.now() < deadline) {
    listing = await phone.command("contacts");
    const line = ascii(listing)
      .split("\n")
      .find((l) => pattern.test(l));
    // "> " marks baresip's current contact.
    if (line !== undefined) return line.replace(/^\s*>/, "").replace(/\s+/g, " ").trim();
    await sleep(50);
  }
  throw new Error(`baresip's contact list never showed ${String(pattern)}; last: ${listing.trim()}`);
}

/**
 * From now on, the bridge's log (info and up) as one short line per event, so a person trying their
 * own client sees what the bridge made of it.
 */
function echoBridgeLog(bridge: BridgeProcess): void {
  let next = bridge.lines.entries.length;
  const timer = setInterval(() => {
    if (interruptedBy !== null) return clearInterval(timer);
    for (; next < bridge.lines.entries.length; next++) {
      const line = bridge.lines.entries[next];
      if (line === undefined || (typeof line.level === "number" && line.level < 30)) continue;
      const fields = ["jid", "contact", "sip", "status", "outcome", "state"]
        .filter((key) => line[key] !== undefined)
        .map((key) => `${key} ${typeof line[key] === "string" ? line[key] : JSON.stringify(line[key])}`);
      say(`  bridge: ${line.msg}${fields.length > 0 ? ` (${fields.join(", ")})` : ""}`);
    }
  }, 200);
  timer.unref();
}

async function scene(): Promise<void> {
  say("Switchboard demo: a desk phone and a chat client talking through the bridge, on loopback.");
  say();

  say("Starting the servers on free loopback ports ...");
  const elapsed = stopwatch();
  const servers = await teardown.start(
    "the servers (Prosody, Redis, OpenLDAP, dnsmasq)",
    Scene.start({ enumRecords: demoEnumRecords() }),
    (s) => s.stop(),
  );
  const { prosody, redis, slapd, dns } = servers;
  say(
    `  Prosody (XMPP)        c2s ${LOOPBACK}:${prosody.c2sPort}, components ${LOOPBACK}:${prosody.componentPort}, mod_privilege (XEP-0356)`,
  );
  say(`  Redis (store)         ${redis.url}, append-only`);
  say(`  OpenLDAP (directory)  ${slapd.url}, people from config/ldap/example.ldif`);
  say(`  dnsmasq (ENUM)        ${dns.address}, NAPTR records under e164.arpa`);
  say(`  all ready in ${elapsed()} ms`);
  const aliceJid = await teardown.wait(prosody.register(ALICE.user, ALICE.password));
  const carolJid = await teardown.wait(prosody.register(CAROL.user, CAROL.password));

  const phonePort = await interruptible(freePort({ udp: true, withNext: true }));
  const base = await interruptible(servers.config());
  const component = base.xmpp.component.jid;
  const domain = base.domain;
  const [sipListen] = base.sip?.listen ?? [];
  const sipPort = Number(/:(\d+)$/.exec(sipListen ?? "")?.[1]);
  const httpListen = base.http?.listen ?? "";
  const config: ConfigInput = {
    ...base,
    sip: {
      ...base.sip,
      // The demo has no SIP proxy: Bob's phone plays the proxy in front of itself, so the bridge's
      // requests for sip:bob@<domain> reach it (loose routing, RFC 3261 §16.12).
      outboundProxy: `sip:${LOOPBACK}:${phonePort};lr`,
    },
  };
  const configFile = servers.writeConfig(config, "switchboard.yaml");
  say(`Config written to ${configFile}`);

  say(`Starting the bridge: switchboard start --config ${configFile}`);
  const bridgeWatch = stopwatch();
  const bridge = BridgeProcess.start(configFile);
  teardown.add("the bridge (switchboard start)", async () => {
    if (bridge.running) await bridge.stop("SIGTERM");
  });
  try {
    await interruptible(bridge.online(20_000));
  } catch (err) {
    if (err instanceof Interrupted) throw err;
    const tail = bridge.lines.entries.slice(-10).map((l) => `    ${JSON.stringify(l)}`);
    throw new Error(
      `the bridge did not come online: ${errorText(err)}\n${tail.join("\n")}\n    ${bridge.stderr.trim()}`,
      { cause: err },
    );
  }
  say(
    `  online in ${bridgeWatch()} ms: XMPP component ${component}, SIP udp+tcp ${LOOPBACK}:${sipPort}, HTTP http://${httpListen}/`,
  );

  say(`Starting Alice's chat client (slixmpp) as ${aliceJid} ...`);
  const alice = await teardown.start(
    "Alice's chat client (slixmpp)",
    SlixmppClient.connect(aliceJid, ALICE.password, LOOPBACK, prosody.c2sPort),
    (c) => c.close(),
  );
  alice.send({ op: "presence" });
  say("  signed in, available");

  const aliceSip = `sip:${ALICE.user}@${domain}`;
  const bobSip = `sip:bob@${domain}`;
  const bobPhoneJid = `bob@${component}`;
  say(
    `Starting Bob's desk phone (baresip) as ${bobSip} on ${LOOPBACK}:${phonePort}, watching ${aliceSip} ...`,
  );
  const phone = await teardown.start(
    "Bob's desk phone (baresip)",
    Baresip.start({
      user: "bob",
      domain,
      sipPort: phonePort,
      // One contact, watched: it is also the one baresip's /message sends to.
      watch: [aliceSip],
      outbound: `sip:${LOOPBACK}:${sipPort};lr`,
    }),
    (p) => p.stop(),
  );
  say("  ready (no registration; the bridge is its outbound proxy)");

  say();
  say("The scene");

  await step(`Bob's desk phone (baresip) sends "Hi Alice, lunch at noon?" to ${aliceSip}`, async () => {
    const since = stopwatch();
    await phone.message("Hi Alice, lunch at noon?");
    const got = await alice.waitFor((e) => e.event === "message" && e.body === "Hi Alice, lunch at noon?");
    return `delivered to Alice's chat client (slixmpp) in ${since()} ms, from ${got.from ?? "?"}`;
  });

  await step(
    `Alice (slixmpp) replies "Yes, see you there" to ${bobPhoneJid} (Bob's desk phone)`,
    async () => {
      const before = phone.output().length;
      const since = stopwatch();
      alice.send({ op: "message", to: bobPhoneJid, body: "Yes, see you there" });
      const deadline = Date.now() + 5_000;
      while (!phone.output().slice(before).includes("Yes, see you there")) {
        if (Date.now() > deadline) throw new Error("baresip never showed the reply");
        await sleep(20);
      }
      const shown = phone
        .output()
        .slice(before)
        .split("\n")
        .find((l) => l.includes("Yes, see you there"));
      return `shown on Bob's phone in ${since()} ms: ${(shown ?? "").trim()}`;
    },
  );

  await step(`Alice sets her status to do-not-disturb, "In a meeting"`, async () => {
    const since = stopwatch();
    alice.send({ op: "presence", show: "dnd", status: "In a meeting" });
    const line = await waitForContactLine(phone, /busy.*alice@/i, 5_000);
    return `Bob's phone (watching ${aliceSip}) lists her as busy in ${since()} ms: ${line}`;
  });

  await step(`Alice is back at her desk: available, "Free now"`, async () => {
    const since = stopwatch();
    alice.send({ op: "presence", status: "Free now" });
    const line = await waitForContactLine(phone, /online.*alice@/i, 5_000);
    return `Bob's phone lists her as online again in ${since()} ms: ${line}`;
  });

  await step(`Alice adds Bob's desk phone (${bobPhoneJid}) to her contacts`, async () => {
    const since = stopwatch();
    alice.send({ op: "presence", to: bobPhoneJid, type: "subscribe" });
    await alice.waitFor((e) => e.event === "presence" && e.from === bobPhoneJid && e.type === "subscribed");
    return `the bridge approved the subscription in ${since()} ms`;
  });

  const publisher = await teardown.start(
    "Bob's phone's presence publisher (SIP socket)",
    UdpSipSocket.open(),
    (s) => s.close(),
  );
  await step(
    `Bob picks up a call: his phone PUBLISHes "on-the-phone" (PIDF + RPID) for ${bobSip}`,
    async () => {
      const mark = alice.events.length;
      const since = stopwatch();
      const callId = `demo-publish-${Date.now()}@${LOOPBACK}`;
      await publisher.send(
        buildRequest({
          method: "PUBLISH",
          uri: bobSip,
          via: `UDP ${LOOPBACK}:${publisher.port}`,
          from: `<${bobSip}>`,
          to: `<${bobSip}>`,
          callId,
          headers: { Event: "presence", Expires: "3600", "Content-Type": "application/pidf+xml" },
          body: buildPidf(bobSip, "on-the-phone", null),
        }),
        sipPort,
      );
      const answer = await publisher.waitFor(
        (m) => m.status !== undefined && header(m, "call-id") === callId && m.status >= 200,
      );
      if (answer.status !== 200) throw new Error(`the bridge answered the PUBLISH with ${answer.startLine}`);
      const seen = await alice.waitFor(
        (e) =>
          alice.events.indexOf(e) >= mark &&
          e.event === "presence" &&
          e.from?.split("/")[0] === bobPhoneJid &&
          e.show === "dnd",
      );
      return `Alice's chat client shows ${bobPhoneJid} as ${seen.show ?? "?"} "${seen.status ?? ""}" in ${since()} ms`;
    },
  );

  await step(`Alice writes to Bob's extension, 8002@${component}`, async () => {
    const before = phone.output().length;
    const mark = bridge.lines.entries.length;
    const since = stopwatch();
    alice.send({ op: "message", to: `8002@${component}`, body: "Found you by your extension" });
    // Bob's phone would show a MESSAGE for sip:8002@... as well (it is the outbound proxy): the
    // bridge's own log says where the message went.
    const sent = await bridge.lines.waitFor(
      (l) =>
        bridge.lines.entries.indexOf(l) >= mark && l.msg === "message to SIP" && typeof l.sip === "string",
    );
    if (sent.sip !== bobSip) throw new Error(`the bridge sent it to ${String(sent.sip)}, not ${bobSip}`);
    const deadline = Date.now() + 5_000;
    while (!phone.output().slice(before).includes("Found you by your extension")) {
      if (Date.now() > deadline) throw new Error("baresip never showed the message sent to extension 8002");
      await sleep(20);
    }
    return `LDAP says 8002 is ${bobSip}; shown on Bob's phone in ${since()} ms`;
  });

  const lookups: [string, string, RegExp][] = [
    ["8001", "Alice's extension, in LDAP", /directory +8001 → alice/],
    ["020 7123 4568", "Bob's number as people write it, in LDAP", /directory +\+442071234568 .*bob/],
    ["+44 20 7123 4567", "Alice's number: LDAP answers first, so ENUM is not asked", /directory .*alice/],
    [
      ENUM_ONLY_NUMBER,
      "a number only ENUM knows: NAPTR records on the demo's DNS server",
      /enum +\+442079460123 .*sip:/,
    ],
  ];
  for (const [input, why, expected] of lookups) {
    await step(`switchboard lookup "${input}" (${why})`, async () => {
      const since = stopwatch();
      const result = await teardown.wait(switchboard(["lookup", input, "--config", configFile]));
      for (const line of result.stdout.trimEnd().split("\n")) say(`     ${line}`);
      if (result.code !== 0) throw new Error(`exit ${result.code}: ${result.stderr.trim()}`);
      if (!expected.test(result.stdout)) throw new Error(`the chain does not show ${String(expected)}`);
      return `resolved in ${since()} ms (exit 0)`;
    });
  }

  say();
  say(`Scene finished: ${stepsOk} of ${stepCount} steps ok.`);
  say();
  say("Everything keeps running, so you can join in:");
  say("  With your own XMPP client (Gajim, Dino, Profanity, ...):");
  say(`    account   ${carolJid}, password ${CAROL.password}`);
  say(`              (or ${aliceJid}, password ${ALICE.password}, beside the scripted client)`);
  say(`    server    ${LOOPBACK}, port ${prosody.c2sPort}, no TLS: allow plain-text login in the account`);
  say(`    write to  ${bobPhoneJid} (Bob's desk phone: baresip shows it), 8002@${component} (his`);
  say(
    `              extension), ${aliceJid} (Alice's scripted client); add them as contacts to see presence`,
  );
  say("  With a softphone (Linphone, MicroSIP, baresip, ...):");
  say(`    identity        sip:<anyone>@${domain}, e.g. sip:dave@${domain} (no registration, no password:`);
  say(`                    the bridge trusts ${LOOPBACK})`);
  say(`    outbound proxy  sip:${LOOPBACK}:${sipPort} (UDP or TCP): the bridge`);
  say(
    `    write to        ${aliceSip} or sip:${CAROL.user}@${domain} (chat users); watch their presence too`,
  );
  say("    (the bridge sends its own requests through Bob's phone, as the demo has no SIP proxy or");
  say("    registrar: chat users reach Bob's phone, not yours)");
  say(`  Status page       http://${httpListen}/`);
  say(`  Presence          npx switchboard presence ${aliceJid} --config ${configFile}`);
  say(`  Lookups           npx switchboard lookup 8003 --config ${configFile}`);
  say();
  say("Waiting for Ctrl-C (SIGINT) or SIGTERM to stop everything. What the bridge does meanwhile:");
  echoBridgeLog(bridge);
  await interruption;
}

async function main(): Promise<number> {
  const missing = await missingPrerequisites();
  if (missing.length > 0) {
    reportMissing(missing);
    return 1;
  }
  let code: number;
  try {
    await scene();
    code = 0;
  } catch (err) {
    const signal = err instanceof Interrupted ? err.signal : interruptedBy;
    if (signal !== null) {
      say("Interrupted before the scene finished.");
      code = 128 + STOP_SIGNALS[signal];
    } else {
      // A step has printed its own failure already.
      if (!(err instanceof StepFailed)) say(`FAILED: ${errorText(err)}`);
      say("The demo failed; stopping everything it started.");
      code = 1;
    }
  }
  const failedToStop = await teardown.run();
  if (failedToStop.length > 0) {
    say(`Could not stop: ${failedToStop.join(", ")}`);
    code = code === 0 ? 1 : code;
  }
  say(code === 0 ? "Everything stopped. Bye." : `Everything stopped; exit ${code}.`);
  return code;
}

const code = await main();
// Exit once the output is flushed; a socket a server left half-open must not keep the process alive.
process.stdout.write("", () => process.exit(code));
