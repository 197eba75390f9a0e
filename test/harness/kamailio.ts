// Kamailio for tests: the example config (config/kamailio/switchboard-routing.cfg) as shipped, with
// only its addresses and paths changed, in front of bridge instances on loopback. Phones register
// and authenticate with it (db_text users, HA1), chat traffic goes to the instances in turn
// (dispatcher), and the instances' own MESSAGEs come back through it to registered phones.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { freePort, LOOPBACK, tempDir, type TempDir } from "./net.js";
import { HarnessError, ManagedProcess } from "./process.js";
import { buildRequest, UdpSipSocket, header, type RawSipMessage } from "./sip-socket.js";
import { digestAnswer } from "./digest.js";
import assert from "node:assert/strict";

/** A subscription dialog as the subscriber keeps it. */
export interface SubscriptionDialog {
  callId: string;
  fromTag: string;
  /** The To header of the 200, with the bridge's tag. */
  to: string;
  /** The bridge's Contact: where in-dialog requests go. */
  target: string;
  routes: string[];
  cseq: number;
}

const EXAMPLE = new URL("../../config/kamailio/switchboard-routing.cfg", import.meta.url);
const DBTEXT = "/usr/share/kamailio/dbtext/kamailio";

export interface KamailioOptions {
  /** The home domain (the example's HOME_DOMAIN is example.org; the tests use that too). */
  domain: string;
  /** The bridge instances' SIP URIs, e.g. sip:127.0.0.11:5060;transport=udp. */
  bridges: readonly string[];
  /** Phones that may register and send: user → password. */
  users: Readonly<Record<string, string>>;
}

export class Kamailio {
  private constructor(
    readonly port: number,
    readonly process: ManagedProcess,
    private readonly dir: TempDir,
  ) {}

  /** The proxy's URI, for sip.outboundProxy. */
  get uri(): string {
    return `sip:${LOOPBACK}:${this.port};lr`;
  }

  static async start(options: KamailioOptions): Promise<Kamailio> {
    const dir = tempDir("kamailio");
    const port = await freePort({ udp: true });
    const pbxPort = await freePort({ udp: true });
    // Users: the db_text subscriber table, HA1 = MD5(user:realm:password), the realm the domain.
    const db = dir.file("dbtext");
    mkdirSync(db);
    copyFileSync(`${DBTEXT}/version`, `${db}/version`);
    copyFileSync(`${DBTEXT}/subscriber`, `${db}/subscriber`);
    let id = 1;
    for (const [user, password] of Object.entries(options.users)) {
      const ha1 = createHash("md5").update(`${user}:${options.domain}:${password}`).digest("hex");
      appendFileSync(`${db}/subscriber`, `${id++}:${user}:${options.domain}:*:${ha1}:*\n`);
    }
    writeFileSync(
      dir.file("dispatcher.list"),
      options.bridges.map((uri, i) => `1 ${uri} 0 0 duid=switchboard-${i + 1}\n`).join(""),
    );
    const config = configFor(readFileSync(EXAMPLE, "utf8"), {
      domain: options.domain,
      listen: `${LOOPBACK}:${port}`,
      pbx: `sip:${LOOPBACK}:${pbxPort}`,
      dir,
    });
    writeFileSync(dir.file("kamailio.cfg"), config);
    const proc = new ManagedProcess({
      name: "kamailio",
      command: "kamailio",
      args: ["-DD", "-E", "-f", dir.file("kamailio.cfg"), "-Y", dir.path, "-P", dir.file("kamailio.pid")],
      logFile: dir.file("kamailio.log"),
    });
    const server = new Kamailio(port, proc, dir);
    const probe = await UdpSipSocket.open();
    try {
      await proc.waitReady(async () => {
        const callId = `probe-${Math.random().toString(36).slice(2)}`;
        await probe.send(
          buildRequest({
            method: "OPTIONS",
            uri: `sip:${LOOPBACK}:${port}`,
            via: `UDP ${LOOPBACK}:${probe.port}`,
            from: `<sip:probe@${options.domain}>`,
            to: `<sip:${LOOPBACK}:${port}>`,
            callId,
          }),
          port,
        );
        const answer = await probe.waitFor((m) => header(m, "call-id") === callId, 500);
        return answer.status === 200;
      });
    } finally {
      await probe.close();
    }
    return server;
  }

  async stop(): Promise<void> {
    await this.process.stop();
    this.dir.remove();
  }
}

/** The example config with its addresses and paths replaced, each exactly where it stands. */
function configFor(
  example: string,
  at: { domain: string; listen: string; pbx: string; dir: TempDir },
): string {
  let config = example;
  const replace = (from: string, to: string): void => {
    if (config.split(from).length !== 2)
      throw new HarnessError(`kamailio: the example config no longer has exactly one '${from}'`);
    config = config.replace(from, to);
  };
  replace(`#!define HOME_DOMAIN "example.org"`, `#!define HOME_DOMAIN "${at.domain}"`);
  replace(`listen=udp:192.0.2.5:5060`, `listen=udp:${at.listen}`);
  replace(`listen=tcp:192.0.2.5:5060`, `listen=tcp:${at.listen}`);
  replace(`#!define PBX "sip:192.0.2.20:5060"`, `#!define PBX "${at.pbx}"`);
  replace(`#!define DBURL "text:///etc/kamailio/dbtext"`, `#!define DBURL "text://${at.dir.file("dbtext")}"`);
  replace(`"/etc/kamailio/dispatcher.list"`, `"${at.dir.file("dispatcher.list")}"`);
  replace(`log_stderror=no`, `log_stderror=yes`);
  // The control socket in the test's directory rather than /run/kamailio.
  replace(
    `loadmodule "ctl.so"`,
    `loadmodule "ctl.so"\nmodparam("ctl", "binrpc", "unix:${at.dir.file("ctl")}")`,
  );
  return config;
}

/**
 * A phone behind the proxy: a UDP socket that registers, and sends requests answering the proxy's
 * digest challenge (RFC 7616 qop=auth) once.
 */
export class ProxiedPhone {
  private nc = 0;

  private constructor(
    readonly socket: UdpSipSocket,
    readonly user: string,
    private readonly password: string,
    private readonly domain: string,
    private readonly proxyPort: number,
  ) {}

  static async open(
    user: string,
    password: string,
    domain: string,
    proxyPort: number,
  ): Promise<ProxiedPhone> {
    return new ProxiedPhone(await UdpSipSocket.open(), user, password, domain, proxyPort);
  }

  get aor(): string {
    return `sip:${this.user}@${this.domain}`;
  }

  /** REGISTERs the socket's address for `expires` seconds. */
  register(expires = 600): Promise<RawSipMessage> {
    return this.request("REGISTER", `sip:${this.domain}`, {
      to: `<${this.aor}>`,
      headers: { Contact: `<sip:${this.user}@${LOOPBACK}:${this.socket.port}>`, Expires: String(expires) },
    });
  }

  /** A MESSAGE to `to`; resolves with the final answer (after the challenge, if any). */
  message(to: string, body: string): Promise<RawSipMessage> {
    return this.request("MESSAGE", to, {
      to: `<${to}>`,
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body,
    });
  }

  /** A presence subscription to `uri` through the proxy: the final answer and, on 200, the dialog. */
  async subscribe(
    uri: string,
    expires = 600,
  ): Promise<{ answer: RawSipMessage; dialog?: SubscriptionDialog }> {
    const fromTag = Math.random().toString(36).slice(2, 10);
    const answer = await this.request("SUBSCRIBE", uri, {
      to: `<${uri}>`,
      fromTag,
      headers: this.subscribeHeaders(expires),
    });
    if (answer.status !== 200) return { answer };
    const contact =
      /<([^>]+)>/.exec(header(answer, "contact") ?? "")?.[1] ?? assert.fail("200 without Contact");
    return {
      answer,
      dialog: {
        callId: header(answer, "call-id") ?? "",
        fromTag,
        to: header(answer, "to") ?? "",
        target: contact,
        // As UAC, the route set is the Record-Route list reversed (RFC 3261 §12.1.2).
        routes: (answer.headers.get("record-route") ?? []).flatMap((v) => v.split(/,(?=\s*<)/)).reverse(),
        cseq: Number((header(answer, "cseq") ?? "1").split(" ")[0]),
      },
    };
  }

  /** A refresh (or, with 0, the end) of a subscription, in its dialog: to the proxy, by its route set. */
  refresh(dialog: SubscriptionDialog, expires: number): Promise<RawSipMessage> {
    dialog.cseq += 1;
    return this.request("SUBSCRIBE", dialog.target, {
      to: dialog.to,
      fromTag: dialog.fromTag,
      callId: dialog.callId,
      cseq: dialog.cseq,
      headers: {
        ...this.subscribeHeaders(expires),
        ...(dialog.routes.length ? { Route: dialog.routes.join(", ") } : {}),
      },
    });
  }

  private subscribeHeaders(expires: number): Record<string, string> {
    return {
      Event: "presence",
      Accept: "application/pidf+xml",
      Expires: String(expires),
      Contact: `<sip:${this.user}@${LOOPBACK}:${this.socket.port}>`,
    };
  }

  /** Sends `method` to `uri` through the proxy; answers one 401/407 challenge. */
  async request(
    method: string,
    uri: string,
    options: {
      to: string;
      headers?: Record<string, string>;
      body?: string;
      timeoutMs?: number;
      fromTag?: string;
      callId?: string;
      cseq?: number;
    },
  ): Promise<RawSipMessage> {
    const callId = options.callId ?? `${Math.random().toString(36).slice(2)}@${LOOPBACK}`;
    const firstCseq = options.cseq ?? 1;
    const send = async (cseq: number, auth?: [string, string]): Promise<RawSipMessage> => {
      await this.socket.send(
        buildRequest({
          method,
          uri,
          via: `UDP ${LOOPBACK}:${this.socket.port}`,
          from: `<${this.aor}>`,
          to: options.to,
          callId,
          cseq,
          ...(options.fromTag ? { fromTag: options.fromTag } : {}),
          headers: { ...options.headers, ...(auth ? { [auth[0]]: auth[1] } : {}) },
          ...(options.body !== undefined ? { body: options.body } : {}),
        }),
        this.proxyPort,
      );
      return this.socket.waitFor(
        (m) =>
          m.status !== undefined &&
          m.status >= 200 &&
          header(m, "call-id") === callId &&
          (header(m, "cseq") ?? "").startsWith(`${cseq} `),
        options.timeoutMs ?? 10_000,
      );
    };
    const first = await send(firstCseq);
    if (first.status !== 401 && first.status !== 407) return first;
    const challenge = header(first, first.status === 401 ? "www-authenticate" : "proxy-authenticate") ?? "";
    const answer = digestAnswer(challenge, {
      username: this.user,
      password: this.password,
      method,
      uri,
      nc: (++this.nc).toString(16).padStart(8, "0"),
      cnonce: Math.random().toString(36).slice(2),
    });
    return send(firstCseq + 1, [first.status === 401 ? "Authorization" : "Proxy-Authorization", answer]);
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}
