// Independent SIP user agents for tests: sipsak (one request, from a template file, since Debian's
// `sipsak -M` segfaults) and baresip (a full UA, controlled over its ctrl_tcp netstring socket).
import { execFile } from "node:child_process";
import { createSocket, type Socket as DgramSocket } from "node:dgram";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { promisify } from "node:util";
import { freePort, LOOPBACK, tempDir, type TempDir } from "./net.js";
import { EventLog } from "./event-log.js";
import { HarnessError, ManagedProcess } from "./process.js";
import { buildRequest, parseRawSip, UdpSipSocket, type RawSipMessage } from "./sip-socket.js";

const run = promisify(execFile);

export interface SipsakResult {
  exitCode: number;
  output: string;
  /** The final response sipsak printed with -vv, parsed. */
  response?: RawSipMessage;
}

/**
 * Sends one request with sipsak from a template file (`-f`): the text is sent as written, except
 * that sipsak fills in its own Via. Exit code 0 means a 2xx came back (sipsak's convention).
 */
export async function sipsak(options: {
  target: string;
  request: string;
  timeoutMs?: number;
  /** Digest credentials sipsak answers a 401/407 with (`-u`, `-a`). */
  auth?: { username: string; password: string };
}): Promise<SipsakResult> {
  const dir = tempDir("sipsak");
  try {
    const file = dir.file("request.sip");
    writeFileSync(file, options.request);
    const args = ["-f", file, "-s", options.target, "-H", LOOPBACK, "-vv"];
    if (options.auth) args.push("-u", options.auth.username, "-a", options.auth.password);
    let exitCode = 0;
    let output: string;
    try {
      const { stdout, stderr } = await run("sipsak", args, { timeout: options.timeoutMs ?? 10_000 });
      output = stdout + stderr;
    } catch (err) {
      const failure = err as { code?: number; stdout?: string; stderr?: string };
      exitCode = typeof failure.code === "number" ? failure.code : -1;
      output = `${failure.stdout ?? ""}${failure.stderr ?? ""}`;
    }
    const start = output.lastIndexOf("SIP/2.0 ");
    const response = start >= 0 ? parseRawSip(output.slice(start).replace(/\r?\n/g, "\r\n")) : undefined;
    return { exitCode, output, response };
  } finally {
    dir.remove();
  }
}

export interface BaresipOptions {
  /** The user part of the UA's address, e.g. `bob` → `sip:bob@127.0.0.1:<port>`. */
  user: string;
  /** Contacts (SIP URIs); the first is the "current contact" that `message()` sends to. */
  contacts?: string[];
  /** Contacts whose presence baresip watches (`;presence=p2p`: it SUBSCRIBEs to each). */
  watch?: string[];
  /** A fixed SIP port (e.g. the same phone coming back); default a free one. */
  sipPort?: number;
  /** The account's domain (default 127.0.0.1), e.g. the home domain for a colleague's phone. */
  domain?: string;
  /** Send every request through this proxy (account parameter `outbound`), e.g. the bridge. */
  outbound?: string;
}

/** baresip 1.0 (Debian baresip-core) on loopback: UDP/TCP listener, no registration, no audio devices. */
export class Baresip {
  private control?: Socket;
  private controlBuffer = Buffer.alloc(0);
  private readonly responses = new EventLog<{ ok: boolean; data: string; token?: string }>(
    "baresip ctrl_tcp",
    (r) => `${r.token}: ${r.ok ? "ok" : "failed"}`,
  );
  private token = 0;

  /** What baresip's console (the cons module, over UDP) showed: incoming messages among it. */
  private consoleText = "";
  private console?: DgramSocket;

  private constructor(
    readonly sipPort: number,
    readonly controlPort: number,
    readonly consolePort: number,
    readonly aor: string,
    private readonly dir: TempDir,
    readonly process: ManagedProcess,
  ) {}

  /**
   * Attaches to the cons module: it sends its output to the last address that sent it input, so an
   * empty datagram (no key pressed) makes us that address.
   */
  private async openConsole(): Promise<void> {
    const socket = createSocket("udp4");
    socket.on("message", (data) => (this.consoleText += data.toString("utf8")));
    await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, () => resolve()));
    this.console = socket;
    await new Promise<void>((resolve, reject) =>
      socket.send(Buffer.alloc(0), this.consolePort, LOOPBACK, (err) => (err ? reject(err) : resolve())),
    );
  }

  static async start(options: BaresipOptions): Promise<Baresip> {
    const dir = tempDir("baresip");
    // baresip binds TLS on port + 1
    const sipPort = options.sipPort ?? (await freePort({ udp: true, withNext: true }));
    const controlPort = await freePort();
    const consolePort = await freePort({ udp: true });
    const aor = `sip:${options.user}@${LOOPBACK}:${sipPort}`;
    // Facts learned with Debian's build: it needs net_interface and a dns_server even on loopback,
    // and the uuid file must not end with a newline. baresip also binds TLS on sip port + 1.
    writeFileSync(
      dir.file("config"),
      [
        `sip_listen ${LOOPBACK}:${sipPort}`,
        `net_interface ${LOOPBACK}`,
        `dns_server ${LOOPBACK}:53`,
        "module_path /usr/lib/baresip/modules",
        "module g711.so",
        "module ausine.so",
        "module_app account.so",
        "module_app contact.so",
        "module_app menu.so",
        "module_app presence.so",
        "module_app ctrl_tcp.so",
        "module cons.so",
        `cons_listen ${LOOPBACK}:${consolePort}`,
        `ctrl_tcp_listen ${LOOPBACK}:${controlPort}`,
        "audio_player ausine,",
        "audio_source ausine,",
        "",
      ].join("\n"),
    );
    const outbound = options.outbound ? `;outbound="${options.outbound}"` : "";
    writeFileSync(
      dir.file("accounts"),
      `<sip:${options.user}@${options.domain ?? LOOPBACK}>;regint=0${outbound}\n`,
    );
    writeFileSync(
      dir.file("contacts"),
      [
        ...(options.contacts ?? []).map((c) => `<${c}>\n`),
        ...(options.watch ?? []).map((c) => `<${c}>;presence=p2p\n`),
      ].join(""),
    );
    writeFileSync(dir.file("uuid"), "5a3c3c1e-8b59-4c1e-9a55-0c0ffee00001");
    const proc = new ManagedProcess({
      name: "baresip",
      command: "baresip",
      args: ["-f", dir.path],
      logFile: dir.file("baresip.log"),
    });
    const baresip = new Baresip(sipPort, controlPort, consolePort, aor, dir, proc);
    const probe = await UdpSipSocket.open();
    try {
      await proc.waitReady(async () => {
        const request = buildRequest({
          method: "OPTIONS",
          uri: aor,
          via: `UDP ${LOOPBACK}:${probe.port}`,
          from: `<sip:probe@${LOOPBACK}:${probe.port}>`,
          to: `<${aor}>`,
        });
        const callId = /Call-ID: (.*)\r\n/.exec(request)?.[1];
        await probe.send(request, sipPort);
        const answer = await probe
          .waitFor((m) => m.headers.get("call-id")?.[0] === callId, 500)
          .catch(() => null);
        return answer?.status === 200;
      });
      await baresip.openControl();
      await baresip.openConsole();
    } finally {
      await probe.close();
    }
    return baresip;
  }

  private openControl(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port: this.controlPort, host: LOOPBACK }, () => resolve());
      socket.on("error", (err) => reject(this.process.fail(`ctrl_tcp: ${err.message}`)));
      socket.on("data", (chunk: Buffer) => {
        this.controlBuffer = Buffer.concat([this.controlBuffer, chunk]);
        this.drainControl();
      });
      socket.once("close", () => this.responses.close("ctrl_tcp connection closed"));
      this.control = socket;
    });
  }

  /** ctrl_tcp frames JSON in netstrings: `<byte length>:<json>,`. */
  private drainControl(): void {
    for (;;) {
      const colon = this.controlBuffer.indexOf(":");
      if (colon < 0) return;
      const length = Number(this.controlBuffer.subarray(0, colon).toString("ascii"));
      const end = colon + 1 + length;
      if (this.controlBuffer.length < end + 1) return;
      const json = this.controlBuffer.subarray(colon + 1, end).toString("utf8");
      this.controlBuffer = this.controlBuffer.subarray(end + 1);
      try {
        const message = JSON.parse(json) as {
          response?: boolean;
          ok?: boolean;
          data?: string;
          token?: string;
        };
        if (message.response) {
          this.responses.push({ ok: message.ok === true, data: message.data ?? "", token: message.token });
        }
      } catch {
        this.responses.close(`ctrl_tcp sent a frame that is not JSON: ${json.slice(0, 200)}`);
      }
    }
  }

  /** Runs a baresip command (as typed after `/` on its console) and returns its output. */
  async command(command: string, params = "", timeoutMs = 5_000): Promise<string> {
    if (!this.control) throw new HarnessError("baresip: control socket not open");
    const token = String(++this.token);
    const json = JSON.stringify({ command, params, token });
    this.control.write(`${Buffer.byteLength(json)}:${json},`);
    const response = await this.responses.waitFor((r) => r.token === token, timeoutMs);
    if (!response.ok) throw this.process.fail(`command ${command} failed: ${response.data}`);
    return response.data;
  }

  /** What baresip showed on its console (incoming messages show as `<peer>: "<text>"`). */
  output(): string {
    return this.consoleText;
  }

  /** Waits (bounded) until baresip's output matches `pattern`; returns the output. */
  async waitForOutput(pattern: RegExp, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const output = this.output();
      if (pattern.test(output)) return output;
      if (Date.now() > deadline) throw this.process.fail(`no output matching ${String(pattern)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends a SIP MESSAGE with `text` to the current (first) contact. */
  async message(text: string): Promise<void> {
    await this.command("message", text);
  }

  async stop(): Promise<void> {
    this.control?.destroy();
    this.console?.close();
    await this.process.stop();
    this.dir.remove();
  }
}
