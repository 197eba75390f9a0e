// `npm run demo` exactly as a person runs it (npm, its `exec node --import tsx`, the demo, the real servers, the
// bridge, baresip and slixmpp): the scene runs end to end, and Ctrl-C stops everything with exit 0.
// Ctrl-C from a terminal is SIGINT to the whole foreground process group; `kill -INT` of npm alone
// and SIGTERM are the other ways it gets stopped. "Nothing left behind" is checked three ways: every
// process seen in the demo's tree or process group while it ran is gone afterwards (same PID and
// start time), no process anywhere carries the demo's private TMPDIR in its environment or command
// line, and no harness temp directory is left in it.
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { childEnv } from "../harness/cli.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** npm from this process's PATH: the missing-programs test gives the demo a PATH without it. */
const NPM =
  (process.env.PATH ?? "")
    .split(delimiter)
    .map((dir) => join(dir, "npm"))
    .find((file) => existsSync(file)) ?? "npm";
const READY_LINE = /^Waiting for Ctrl-C \(SIGINT\) or SIGTERM to stop everything\./m;

interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  /** Clock ticks since boot (/proc/PID/stat field 22): tells a reused PID from the original. */
  startTime: string;
  state: string;
}

/** /proc/PID/stat, split after the command name (which may hold spaces and parentheses). */
function readStat(pid: number): ProcessInfo | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 of proc(5): state, ppid, pgrp, ..., starttime is field 22.
  return {
    pid,
    state: fields[0] ?? "",
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    startTime: fields[19] ?? "",
  };
}

function allPids(): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

function readProcText(pid: number, file: "cmdline" | "environ"): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** Alive and not a zombie, with the start time it had when seen. */
function stillRunning(seen: ProcessInfo): boolean {
  const now = readStat(seen.pid);
  return now !== null && now.startTime === seen.startTime && now.state !== "Z";
}

interface DemoRun {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every process seen in the demo's tree or process group, by PID. */
  seen: Map<number, ProcessInfo & { cmdline: string }>;
  tmp: string;
  stopWatching: () => void;
}

/** `npm run demo` in its own process group (as a shell with job control starts it). */
function startDemo(env: NodeJS.ProcessEnv = {}): DemoRun {
  const tmp = mkdtempSync(join(tmpdir(), "switchboard-demo-test-"));
  const child = spawn(NPM, ["run", "demo"], {
    cwd: ROOT,
    detached: true,
    stdio: "pipe",
    // A private TMPDIR: every temp dir the harness makes lands in it, and every process the demo
    // starts inherits it, which is how leftovers are recognised afterwards.
    env: { ...childEnv(), TMPDIR: tmp, ...env },
  });
  child.stdin.end();
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const seen = new Map<number, ProcessInfo & { cmdline: string }>();
  const root = child.pid ?? -1;
  const scan = (): void => {
    const table = allPids()
      .map(readStat)
      .filter((p): p is ProcessInfo => p !== null);
    const inTree = new Set<number>([root]);
    // Parents come and go between reads; iterate to a fixed point over this snapshot.
    for (let grown = true; grown;) {
      grown = false;
      for (const p of table) {
        if (!inTree.has(p.pid) && (inTree.has(p.ppid) || p.pgid === root)) {
          inTree.add(p.pid);
          grown = true;
        }
      }
    }
    for (const p of table) {
      if (!inTree.has(p.pid)) continue;
      // A child seen between fork and exec still shows its parent's command line: keep the latest.
      const cmdline = readProcText(p.pid, "cmdline") || (seen.get(p.pid)?.cmdline ?? "");
      const known = seen.get(p.pid);
      if (!known || known.startTime === p.startTime) seen.set(p.pid, { ...(known ?? p), cmdline });
    }
  };
  scan();
  const timer = setInterval(scan, 50);
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    seen,
    tmp,
    stopWatching: () => clearInterval(timer),
  };
}

async function waitForOutput(run: DemoRun, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(run.stdout())) {
    const status = run.child.exitCode ?? run.child.signalCode;
    if (status !== null) {
      assert.fail(
        `the demo exited (${status}) before printing ${String(pattern)}:\n${run.stdout()}\n${run.stderr()}`,
      );
    }
    if (Date.now() > deadline) {
      assert.fail(`no ${String(pattern)} within ${timeoutMs} ms:\n${run.stdout()}\n${run.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function waitForExit(
  run: DemoRun,
  timeoutMs: number,
): Promise<{ code: number | null; signal: string | null }> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    run.exited,
    new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (result === null)
    assert.fail(`the demo did not exit within ${timeoutMs} ms:\n${run.stdout()}\n${run.stderr()}`);
  return result;
}

/** Processes of this run still alive: from the tree seen, or anywhere with its TMPDIR. */
function leftovers(run: DemoRun): string[] {
  const left = [...run.seen.values()].filter(stillRunning).map((p) => `${p.pid} ${p.cmdline}`);
  for (const pid of allPids()) {
    if (pid === process.pid || run.seen.has(pid)) continue;
    const cmdline = readProcText(pid, "cmdline");
    if (cmdline.includes(run.tmp) || readProcText(pid, "environ").includes(`TMPDIR=${run.tmp} `)) {
      left.push(`${pid} ${cmdline}`);
    }
  }
  return left;
}

/** Kills whatever a failed run left, so one failure does not spill into the next tests. */
function cleanUp(run: DemoRun | undefined): void {
  if (!run) return;
  run.stopWatching();
  for (const p of run.seen.values()) {
    if (stillRunning(p)) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(run.tmp, { recursive: true, force: true });
}

/** Every numbered step printed an `ok:` outcome, and the summary agrees. */
function assertSceneSucceeded(stdout: string): void {
  assert.doesNotMatch(stdout, /FAILED/);
  const lines = stdout.split("\n");
  const steps: number[] = [];
  let outcomes = 0;
  for (const line of lines) {
    const numbered = /^(\d+)\. \S/.exec(line);
    if (numbered) {
      steps.push(Number(numbered[1]));
    } else if (/^ {3}ok: \S/.test(line)) {
      outcomes++;
      assert.equal(outcomes, steps.length, `an ok: line without its own step: ${line}`);
    }
  }
  assert.ok(steps.length >= 8, `too few steps:\n${stdout}`);
  assert.deepEqual(
    steps,
    steps.map((_, i) => i + 1),
  );
  assert.equal(outcomes, steps.length, stdout);
  assert.match(stdout, new RegExp(`^Scene finished: ${steps.length} of ${steps.length} steps ok\\.$`, "m"));
  // What the scene is for: each direction observed by the independent client at the far end.
  assert.match(
    stdout,
    /ok: delivered to Alice's chat client \(slixmpp\) in \d+ ms, from bob@gw\d+\.example\.org/,
  );
  assert.match(stdout, /ok: shown on Bob's phone in \d+ ms: .*"Yes, see you there"/);
  assert.match(
    stdout,
    /ok: Bob's phone \(watching sip:alice@example\.org\) lists her as busy in \d+ ms: .*Busy/,
  );
  assert.match(stdout, /ok: Alice's chat client shows bob@gw\d+\.example\.org as dnd "On the phone"/);
  assert.match(stdout, /directory \+442071234567 -> alice/);
  assert.match(stdout, /enum +\+442079460123 -> sip:/);
  assert.match(stdout, /account +carol@example\.org, password \S+/);
  assert.match(stdout, /outbound proxy +sip:127\.0\.0\.1:\d+/);
  // Readable on any terminal.
  assert.match(stdout, /^[\t\n\r\x20-\x7e]*$/);
}

describe("npm run demo (the README's first command, end to end)", function () {
  let run: DemoRun | undefined;

  afterEach(function () {
    cleanUp(run);
    run = undefined;
  });

  const stops: [string, (r: DemoRun) => void][] = [
    [
      "Ctrl-C in a terminal (SIGINT to the process group)",
      (r) => {
        // A missing PID must not turn into kill(0): that is the test's own process group.
        if (r.child.pid === undefined) assert.fail("npm has no PID");
        process.kill(-r.child.pid, "SIGINT");
      },
    ],
    ["kill -INT of npm alone", (r) => r.child.kill("SIGINT")],
    ["SIGTERM to npm", (r) => r.child.kill("SIGTERM")],
  ];
  for (const [how, stop] of stops) {
    it(`plays the scene, then stops everything and exits 0 on ${how}`, async function () {
      this.timeout(150_000);
      run = startDemo();
      await waitForOutput(run, READY_LINE, 90_000);
      const stdout = run.stdout();
      assertSceneSucceeded(stdout);
      const demoProcesses = [...run.seen.values()].map((p) => p.cmdline);
      for (const server of [
        "prosody",
        "redis-server",
        "slapd",
        "dnsmasq",
        "baresip",
        "xmpp_client.py",
        "run.ts start",
      ]) {
        assert.ok(
          demoProcesses.some((cmd) => cmd.includes(server)),
          `${server} was never seen in the demo's process tree: ${demoProcesses.join(" | ")}`,
        );
      }
      stop(run);
      const { code, signal } = await waitForExit(run, 30_000);
      run.stopWatching();
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, `${run.stdout()}\n${run.stderr()}`);
      assert.match(run.stdout(), /Everything stopped\. Bye\.\n$/);
      // Children of a process that has exited may still be on their way out: a short bounded grace.
      let left = leftovers(run);
      for (let i = 0; i < 20 && left.length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        left = leftovers(run);
      }
      assert.deepEqual(left, [], `processes left behind:\n${left.join("\n")}`);
      const dirs = readdirSync(run.tmp).filter((name) => name.startsWith("switchboard-"));
      assert.deepEqual(dirs, [], "temp directories left behind");
    });
  }

  it("starts nothing and names the Debian packages when programs are missing", async function () {
    this.timeout(60_000);
    // A PATH with node and sh alone: the servers' programs are not found; those Debian keeps in /usr/sbin are
    // reported as "not on PATH", the others with the apt-get line.
    const bin = mkdtempSync(join(tmpdir(), "switchboard-demo-path-"));
    try {
      symlinkSync(process.execPath, join(bin, "node"));
      symlinkSync("/bin/sh", join(bin, "sh")); // npm runs scripts with sh from PATH
      run = startDemo({ PATH: bin });
      const { code } = await waitForExit(run, 45_000);
      run.stopWatching();
      const stdout = run.stdout();
      assert.equal(code, 1, `${stdout}\n${run.stderr()}`);
      assert.match(stdout, /The demo needs programs that are not ready to run:/);
      const install = /^ {2}sudo apt-get install -y (.+)$/m.exec(stdout);
      assert.ok(install, stdout);
      for (const pkg of ["prosody", "redis-server", "baresip-core"]) {
        assert.ok(install[1]?.split(" ").includes(pkg), `${pkg} missing from: ${install[0]}`);
      }
      assert.match(stdout, /Nothing was started\./);
      assert.doesNotMatch(stdout, /Starting/);
      assert.deepEqual(
        readdirSync(run.tmp).filter((name) => name.startsWith("switchboard-")),
        [],
      );
      assert.deepEqual(leftovers(run), []);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
