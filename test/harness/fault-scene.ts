// What every fault test sets up: Prosody with Alice's account (and Redis, or a Redis Sentinel set,
// when asked), a SIP far end
// the bridge sends through (answering MESSAGEs 200 unless the test answers itself), a desk phone's
// socket, free ports, and the real `switchboard start` on them; stopped together, in reverse.
import { BridgeProcess } from "./bridge-process.js";
import { freePort, tempDir, type TempDir } from "./net.js";
import { Prosody, type ComponentGrant, type ProsodyOptions } from "./prosody.js";
import { RedisSentinelSet, RedisServer } from "./redis.js";
import { UdpSipSocket } from "./sip-socket.js";
import { startTraffic } from "./traffic.js";
import { SlixmppClient } from "./xmpp-client.js";

export interface FaultSceneOptions {
  /** Names the temp directory and the store prefix. */
  label: string;
  prosody?: ProsodyOptions;
  /** Start a Redis for the store (and the queue). */
  redis?: boolean;
  /** Start a Redis Sentinel set (primary, replica, three sentinels) for the store instead. */
  sentinel?: boolean;
  /** The far end answers every MESSAGE 200 (default); false: the test answers (`farEnd.onMessage`). */
  autoAnswer?: boolean;
}

export class FaultScene {
  readonly clients: SlixmppClient[] = [];
  bridge: BridgeProcess | undefined;
  /** The store's key prefix: one per scene, so every bridge started from it shares the store. */
  readonly prefix: string;

  private constructor(
    readonly prosody: Prosody,
    public redis: RedisServer | undefined,
    readonly sentinel: RedisSentinelSet | undefined,
    readonly grant: ComponentGrant,
    readonly sipPort: number,
    readonly httpPort: number,
    /** The proxy the bridge sends its MESSAGEs through. */
    readonly farEnd: UdpSipSocket,
    /** A desk phone's socket. */
    readonly phone: UdpSipSocket,
    readonly dir: TempDir,
    label: string,
  ) {
    this.prefix = RedisServer.newPrefix(label);
  }

  static async start(options: FaultSceneOptions): Promise<FaultScene> {
    const prosody = await Prosody.start(options.prosody);
    await prosody.register("alice", "alice-pw");
    const redis = options.redis ? await RedisServer.start() : undefined;
    const sentinel = options.sentinel ? await RedisSentinelSet.start() : undefined;
    const farEnd = await UdpSipSocket.open();
    if (options.autoAnswer !== false) farEnd.autoAnswer(["MESSAGE"]);
    return new FaultScene(
      prosody,
      redis,
      sentinel,
      prosody.takeComponent({ privileged: true }),
      await freePort({ udp: true }),
      await freePort(),
      farEnd,
      await UdpSipSocket.open(),
      tempDir(`fault-${options.label}`),
      options.label,
    );
  }

  /** The bridge's config: the scene's ports, the store on its Redis (when there is one), and `extra`. */
  config(extra: { sip?: Record<string, unknown>; [section: string]: unknown } = {}): Record<string, unknown> {
    const where = this.redis ? { url: this.redis.url } : this.sentinel?.target;
    const store = where ? { store: { ...where, prefix: this.prefix, ...(extra.store ?? {}) } } : {};
    return faultConfig(
      this.prosody,
      this.grant,
      { sip: this.sipPort, proxy: this.farEnd.port, http: this.httpPort },
      { ...extra, ...store },
    );
  }

  /** Starts `switchboard start` with `config()` and waits until it is online. */
  async startBridge(extra: Parameters<FaultScene["config"]>[0] = {}): Promise<BridgeProcess> {
    this.bridge = BridgeProcess.start(this.dir.file("switchboard.yaml"), this.config(extra));
    await this.bridge.online();
    return this.bridge;
  }

  /**
   * Traffic both ways (traffic.ts) between the desk phone and the chat user: the phone writes as
   * `from` (default Bob) to `to` (default Alice), the chat user to the gateway contact `contact`
   * (default Bob's).
   */
  traffic(
    chatUser: () => SlixmppClient,
    parties: { from?: string; to?: string; contact?: string } = {},
  ): ReturnType<typeof startTraffic> {
    return startTraffic({
      phone: this.phone,
      sipPort: this.sipPort,
      from: parties.from ?? "sip:bob@example.org",
      to: parties.to ?? "sip:alice@example.org",
      chatUser,
      toContact: parties.contact ?? `bob@${this.grant.jid}`,
    });
  }

  /** Alice's chat client, signed in and available (closed by stop()). */
  async signIn(): Promise<SlixmppClient> {
    const client = await signInAlice(this.prosody);
    this.clients.push(client);
    return client;
  }

  async stop(): Promise<void> {
    for (const client of this.clients) await client.close();
    await this.phone.close();
    await this.farEnd.close();
    if (this.bridge?.running) await this.bridge.stop();
    await this.redis?.stop();
    await this.sentinel?.stop();
    await this.prosody.stop();
    this.dir.remove();
  }
}

/**
 * The bridge config the fault tests start from: its component on `prosody`, SIP on `ports.sip`
 * sending through the far end at `ports.proxy`, HTTP on `ports.http`; `extra` adds sections (and
 * `extra.sip` adds to the SIP one).
 */
function faultConfig(
  prosody: Prosody,
  grant: ComponentGrant,
  ports: { sip: number; proxy: number; http: number },
  extra: { sip?: Record<string, unknown>; [section: string]: unknown } = {},
): Record<string, unknown> {
  const { sip, ...sections } = extra;
  return {
    domain: prosody.domain,
    xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
    sip: { listen: [`udp:127.0.0.1:${ports.sip}`], outboundProxy: `sip:127.0.0.1:${ports.proxy};lr`, ...sip },
    http: { listen: `127.0.0.1:${ports.http}` },
    ...sections,
  };
}

/** Alice's chat client, signed in and available. */
async function signInAlice(prosody: Prosody): Promise<SlixmppClient> {
  const client = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
  client.send({ op: "presence" });
  return client;
}

/** A bridge's /readyz answer (status and body) at `port`. */
export async function readyz(port: number): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, body: await response.text() };
}

/** The aggregate state of `address` as a bridge's presence API at `port` says it. */
export async function presenceOf(port: number, address: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/api/presence/${encodeURIComponent(address)}`);
  return ((await response.json()) as { aggregate: { state: string } }).aggregate.state;
}
