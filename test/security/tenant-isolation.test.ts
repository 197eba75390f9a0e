// Two tenants in one `switchboard start` process (docs/tenants.md): tenant A (the top level,
// example.org, Alice) and tenant B (example.net, Bob), one SIP listener, one Redis with a prefix per
// tenant, one Prosody hosting both domains and both components. A user of A can neither message Bob
// nor see his presence through any address form, over SIP or XMPP; within each tenant messages and
// presence still work (the positive controls, without which the refusals would prove nothing).
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BridgeProcess } from "../harness/bridge-process.js";
import { freePort, tempDir, type TempDir } from "../harness/net.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { RedisServer } from "../harness/redis.js";
import {
  buildRequest,
  header,
  sendSipMessage,
  subscribePresence,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";
import { SlixmppClient, type XmppEvent } from "../harness/xmpp-client.js";
import { digestAnswer } from "../harness/digest.js";

const A = "example.org";
const B = "example.net";

describe("tenants: two companies in one process are isolated", function () {
  this.timeout(120_000);
  let prosody: Prosody;
  let redis: RedisServer;
  let dir: TempDir;
  let bridge: BridgeProcess;
  let gwA: ComponentGrant;
  let gwB: ComponentGrant;
  let sipPort: number;
  /** The outbound proxy of both tenants: every MESSAGE the bridge sends arrives here. */
  let proxy: UdpSipSocket;
  /** A desk phone of tenant A (Carol's), sending through the trusted proxy address. */
  let phoneA: UdpSipSocket;
  /** A desk phone of tenant B (Dave's). */
  let phoneB: UdpSipSocket;
  let watcherA: UdpSipSocket;
  let watcherB: UdpSipSocket;
  let alice: SlixmppClient;
  let bob: SlixmppClient;
  let prefix: string;
  let httpPort: number;

  before(async function () {
    prosody = await Prosody.start({ domain: A, otherDomain: B, components: 2, otherComponents: 1 });
    await prosody.register("alice", "alice-pw", A);
    await prosody.register("bob", "bob-pw", B);
    gwA = prosody.takeComponent();
    gwB = prosody.takeComponent({ domain: B });
    redis = await RedisServer.start();
    prefix = RedisServer.newPrefix("tenants");
    dir = tempDir("tenants");
    proxy = await UdpSipSocket.open();
    proxy.autoAnswer(["MESSAGE"]);
    [phoneA, phoneB, watcherA, watcherB] = await Promise.all([
      UdpSipSocket.open(),
      UdpSipSocket.open(),
      UdpSipSocket.open(),
      UdpSipSocket.open(),
    ]);
    watcherA.autoAnswer(["NOTIFY"]);
    watcherB.autoAnswer(["NOTIFY"]);
    sipPort = await freePort({ udp: true });
    const component = (g: ComponentGrant) => ({ jid: g.jid, host: g.host, port: g.port, secret: g.secret });
    bridge = BridgeProcess.start(dir.file("switchboard.yaml"), {
      domain: A,
      xmpp: { component: component(gwA) },
      sip: {
        listen: [`udp:127.0.0.1:${sipPort}`],
        outboundProxy: `sip:127.0.0.1:${proxy.port};lr`,
        users: [{ username: "carol", password: "carol-pw" }],
      },
      http: { listen: `127.0.0.1:${(httpPort = await freePort())}` },
      store: { url: redis.url, prefix: `${prefix}a:` },
      directory: {
        users: [{ uid: "alice", displayName: "Alice A", extension: "8001", numbers: ["+441134960001"] }],
      },
      tenants: [
        {
          domain: B,
          xmpp: { component: component(gwB), allowedDomains: ["partner.example"] },
          sip: { users: [{ username: "dave", password: "dave-pw" }] },
          store: { prefix: `${prefix}b:` },
          directory: {
            users: [{ uid: "bob", displayName: "Bob B", extension: "8002", numbers: ["+441134960002"] }],
          },
        },
      ],
    });
    await bridge.lines.waitFor((l) => l.msg === "xmpp component online" && l.tenant === A, 20_000);
    await bridge.lines.waitFor((l) => l.msg === "xmpp component online" && l.tenant === B, 20_000);
    alice = await SlixmppClient.connect(`alice@${A}`, "alice-pw", "127.0.0.1", prosody.c2sPort);
    bob = await SlixmppClient.connect(`bob@${B}`, "bob-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "presence", status: "Alice here" });
    bob.send({ op: "presence", show: "dnd", status: "Bob secret meeting" });
  });

  after(async function () {
    await alice?.close();
    await bob?.close();
    for (const socket of [phoneA, phoneB, watcherA, watcherB, proxy]) await socket?.close();
    if (bridge?.running) await bridge.stop();
    await redis?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  const bodiesTo = (client: SlixmppClient, marker: string): XmppEvent[] =>
    client.events.filter((e) => e.event === "message" && (e.body ?? "").includes(marker));

  it("relays messages and presence within each tenant (the positive controls)", async function () {
    // SIP → XMPP in each tenant.
    const toAlice = await sendSipMessage(phoneA, sipPort, {
      from: `sip:carol@${A}`,
      to: `sip:alice@${A}`,
      body: "control A",
    });
    assert.equal(toAlice.status, 200);
    const received = await alice.waitFor((e) => e.event === "message" && e.body === "control A");
    assert.equal(received.from, `carol@${gwA.jid}`);
    const toBob = await sendSipMessage(phoneB, sipPort, {
      from: `sip:dave@${B}`,
      to: `sip:bob@${B}`,
      body: "control B",
    });
    assert.equal(toBob.status, 200);
    assert.equal(
      (await bob.waitFor((e) => e.event === "message" && e.body === "control B")).from,
      `dave@${gwB.jid}`,
    );
    // XMPP → SIP in each tenant, through the shared outbound proxy.
    alice.send({ op: "message", to: `carol@${gwA.jid}`, body: "reply A" });
    const outA = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === "reply A");
    assert.equal(ruri(outA), `sip:carol@${A}`);
    bob.send({ op: "message", to: `dave@${gwB.jid}`, body: "reply B" });
    const outB = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === "reply B");
    assert.equal(ruri(outB), `sip:dave@${B}`);
    assert.match(header(outB, "from") ?? "", new RegExp(`sip:bob@${B.replace(".", "\\.")}`));
    // Presence: a watcher of each tenant sees its own colleague.
    const subA = await subscribePresence(watcherA, sipPort, {
      uri: `sip:alice@${A}`,
      from: `sip:carol@${A}`,
    });
    assert.equal(subA.status, 200);
    await watcherA.waitFor((m) => m.method === "NOTIFY" && m.body.includes("Alice here"), 5_000);
    const subB = await subscribePresence(watcherB, sipPort, { uri: `sip:bob@${B}`, from: `sip:dave@${B}` });
    assert.equal(subB.status, 200);
    await watcherB.waitFor((m) => m.method === "NOTIFY" && m.body.includes("Bob secret meeting"), 5_000);
    // One HTTP server: each address is read in its own tenant, and both tenants are ready.
    const note = async (address: string): Promise<unknown> => {
      const response = await fetch(
        `http://127.0.0.1:${httpPort}/api/presence/${encodeURIComponent(address)}`,
      );
      return ((await response.json()) as { aggregate: { note: unknown } }).aggregate.note;
    };
    assert.equal(await note(`bob@${B}`), "Bob secret meeting");
    assert.equal(await note(`bob@${gwB.jid}`), "Bob secret meeting");
    assert.equal(await note(`alice@${A}`), "Alice here");
    assert.equal(await note(`bob@${A}`), null, "A has no Bob");
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
  });

  it("refuses a SIP MESSAGE from tenant A to every address form of Bob, and none reaches him", async function () {
    const forms: [uri: string, status: number][] = [
      [`sip:bob@${B}`, 403],
      [`sip:BOB@EXAMPLE.NET`, 403],
      [`sip:%62ob@${B}`, 403],
      [`sip:bob@${B}.`, 403],
      [`sip:bob@${B};transport=udp`, 403],
      [`sip:bob@${gwB.jid}`, 403],
      [`sip:8002@${B}`, 403],
      [`sip:+441134960002@${B}`, 403],
      [`sip:+441134960002@${B};user=phone`, 403],
      // A's own domains: tenant A's namespace, where Bob's numbers and gateway forms name nobody.
      [`sip:8002@${A}`, 404],
      [`sip:+441134960002@${A}`, 404],
      [`sip:bob@${gwA.jid}`, 404],
      [`sip:bob%40${B}@${gwA.jid}`, 404],
    ];
    const answers: string[] = [];
    for (const [i, [uri]] of forms.entries()) {
      const answer = await sendSipMessage(phoneA, sipPort, {
        from: `sip:carol@${A}`,
        to: uri,
        body: `leak ${i}`,
      });
      answers.push(`${uri} ${answer.status}`);
    }
    assert.deepEqual(
      answers,
      forms.map(([uri, status]) => `${uri} ${status}`),
    );
    // A tel: URI has no domain: it is read in the sender's tenant, whose directory has no such number.
    const tel = await sendSipMessage(phoneA, sipPort, {
      from: `sip:carol@${A}`,
      to: "tel:+441134960002",
      body: "leak tel",
    });
    assert.ok((tel.status ?? 0) >= 400, `tel: answered ${String(tel.status)}`);
    // A Request-URI naming no tenant (the bridge's address): the To names B, the From A.
    const byAddress = await sendSipMessage(phoneA, sipPort, {
      uri: `sip:127.0.0.1:${sipPort}`,
      from: `sip:carol@${A}`,
      to: `sip:bob@${B}`,
      body: "leak by address",
    });
    assert.equal(byAddress.status, 403);
    // A spoofed From of tenant B sent to A's user is refused the same way, in the other direction.
    const intoA = await sendSipMessage(phoneB, sipPort, {
      from: `sip:dave@${B}`,
      to: `sip:alice@${A}`,
      body: "leak into A",
    });
    assert.equal(intoA.status, 403);
    await sleep(1_000);
    assert.deepEqual(bodiesTo(bob, "leak"), []);
    assert.deepEqual(bodiesTo(alice, "leak"), []);
    assert.ok(
      bridge.lines.entries.some(
        (l) => l.security === "RequestNotAllowed" && l.reason === "MESSAGE across tenants",
      ),
      "the refusal is logged as a security event",
    );
  });

  it("refuses an XMPP message from tenant A to B's gateway contacts and to B through A's gateway", async function () {
    const refused = [
      `dave@${gwB.jid}`, // B's phone contact, on B's gateway
      `bob@${gwB.jid}`,
      `+441134960002@${gwB.jid}`,
      `8002@${gwB.jid}`,
      `bob\\40${B}@${gwA.jid}`, // sip:bob@example.net through A's gateway
      `bob\\40${gwB.jid}@${gwA.jid}`, // sip:bob@<B's gateway> through A's gateway
    ];
    for (const [i, to] of refused.entries()) {
      alice.send({ op: "message", to, body: `xleak ${i}`, id: `xleak-${i}` });
      const error = await alice.waitFor(
        (e) => e.event === "message" && e.type === "error" && e.id === `xleak-${i}`,
      );
      assert.match(error.xml ?? "", /<forbidden /, `${to}: ${error.xml}`);
    }
    // An extension B has but A has not: nobody in A.
    alice.send({ op: "message", to: `8002@${gwA.jid}`, body: "xleak ext", id: "xleak-ext" });
    const ext = await alice.waitFor(
      (e) => e.event === "message" && e.type === "error" && e.id === "xleak-ext",
    );
    assert.match(ext.xml ?? "", /<item-not-found /);
    // Bob's number through A's gateway is an outside number for A: dialled on A's own route (its
    // home domain, user=phone), never towards B's domains.
    alice.send({ op: "message", to: `+441134960002@${gwA.jid}`, body: "xleak number" });
    const dialled = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === "xleak number");
    assert.equal(ruri(dialled), `sip:+441134960002@${A};user=phone`);
    await sleep(1_000);
    const towardsB = proxy.received.filter(
      (m) => m.method === "MESSAGE" && m.body.startsWith("xleak") && ruri(m).includes(B),
    );
    assert.deepEqual(towardsB, []);
    assert.deepEqual(bodiesTo(bob, "xleak"), []);
  });

  it("refuses tenant A's SIP watchers of Bob, and no NOTIFY ever carries his state", async function () {
    const mark = watcherA.received.length;
    for (const uri of [`sip:bob@${B}`, `sip:Bob@${gwB.jid}`, `sip:+441134960002@${B}`]) {
      const answer = await subscribePresence(watcherA, sipPort, { uri, from: `sip:carol@${A}` });
      assert.equal(answer.status, 403, uri);
    }
    // Bob's numbers and names on A's domain are A's namespace: whatever A answers, never Bob's state.
    for (const uri of [`sip:bob@${A}`, `sip:+441134960002@${A}`, `sip:8002@${A}`])
      await subscribePresence(watcherA, sipPort, { uri, from: `sip:carol@${A}` });
    bob.send({ op: "presence", show: "away", status: "Bob second secret" });
    // B's own watcher sees the change: it happened.
    await watcherB.waitFor((m) => m.method === "NOTIFY" && m.body.includes("Bob second secret"), 5_000);
    await sleep(1_000);
    const leaked = watcherA.received
      .slice(mark)
      .filter((m: RawSipMessage) => m.method === "NOTIFY" && /Bob|bob@example\.net/.test(m.body));
    assert.deepEqual(leaked, []);
  });

  it("refuses tenant A's XMPP presence subscriptions and probes to B's contacts; Alice never sees Bob", async function () {
    alice.send({ op: "presence", to: `bob@${gwB.jid}`, type: "subscribe" });
    const error = await alice.waitFor(
      (e) => e.event === "presence" && e.type === "error" && e.from === `bob@${gwB.jid}`,
    );
    assert.match(error.xml ?? "", /<forbidden /);
    alice.send({ op: "presence", to: `dave@${gwB.jid}`, type: "probe" });
    await alice.waitFor((e) => e.event === "presence" && e.type === "error" && e.from === `dave@${gwB.jid}`);
    // Through A's gateway, B's user is a SIP party of a domain A never reaches.
    alice.send({ op: "presence", to: `bob\\40${B}@${gwA.jid}`, type: "subscribe" });
    bob.send({ op: "presence", show: "xa", status: "Bob third secret" });
    await watcherB.waitFor((m) => m.method === "NOTIFY" && m.body.includes("Bob third secret"), 5_000);
    await sleep(1_000);
    const seen = alice.events.filter(
      (e) =>
        e.event === "presence" &&
        e.type !== "error" &&
        ((e.status ?? "").includes("Bob") || (e.from ?? "").includes(gwB.jid)),
    );
    assert.deepEqual(seen, []);
    assert.ok(bridge.lines.entries.some((l) => l.msg === "stanza across tenants refused"));
  });

  it("routes an in-dialog request sent to the bridge's Contact to the dialog's tenant (by its To)", async function () {
    // A partner of B's (xmpp.allowedDomains): its From names no tenant, so only the To can choose.
    const dialog = await subscribePresence(watcherB, sipPort, {
      uri: `sip:bob@${B}`,
      from: "sip:pat@partner.example",
    });
    assert.equal(dialog.status, 200);
    const contact = /<([^>]+)>/.exec(header(dialog, "contact") ?? "")?.[1] ?? assert.fail("no Contact");
    assert.doesNotMatch(contact, new RegExp(B), "the Contact names no tenant: the To must choose");
    const callId = header(dialog, "call-id") ?? "";
    await watcherB.send(
      [
        `SUBSCRIBE ${contact} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${watcherB.port};branch=z9hG4bK${Math.random().toString(36).slice(2)};rport`,
        "Max-Forwards: 70",
        `From: ${header(dialog, "from") ?? ""}`,
        `To: ${header(dialog, "to") ?? ""}`,
        `Call-ID: ${callId}`,
        "CSeq: 2 SUBSCRIBE",
        "Event: presence",
        "Expires: 0",
        `Contact: <sip:pat@127.0.0.1:${watcherB.port}>`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      sipPort,
    );
    const ended = await watcherB.waitFor(
      (m) => m.status !== undefined && header(m, "call-id") === callId && /^2 /.test(header(m, "cseq") ?? ""),
    );
    assert.equal(ended.status, 200, "B knows its dialog (A would answer 481)");
  });

  it("authenticates a phone of each tenant against its own digest users and realm", async function () {
    // From 127.0.0.2, which is not a trusted peer: every request is challenged.
    const phone = await UdpSipSocket.open(0, "127.0.0.2");
    try {
      const send = async (
        message: { from: string; to: string; body: string },
        credentials: { username: string; password: string },
      ): Promise<{ realm: string; status: number }> => {
        const callId = `${Math.random().toString(36).slice(2)}@127.0.0.2`;
        const request = (cseq: number, headers: Record<string, string> = {}): string =>
          buildRequest({
            method: "MESSAGE",
            uri: message.to,
            via: `UDP 127.0.0.2:${phone.port}`,
            from: `<${message.from}>`,
            to: `<${message.to}>`,
            callId,
            cseq,
            headers: { "Content-Type": "text/plain;charset=UTF-8", ...headers },
            body: message.body,
          });
        const final = (cseq: number) => (m: RawSipMessage) =>
          m.status !== undefined &&
          m.status >= 200 &&
          header(m, "call-id") === callId &&
          (header(m, "cseq") ?? "").startsWith(`${cseq} `);
        await phone.send(request(1), sipPort);
        const challenged = await phone.waitFor(final(1));
        assert.equal(challenged.status, 401);
        const challenge = challenged.headers.get("www-authenticate")?.find((c) => /MD5/.test(c)) ?? "";
        const realm = /realm="([^"]*)"/.exec(challenge)?.[1] ?? "";
        const authorization = digestAnswer(challenge, {
          ...credentials,
          method: "MESSAGE",
          uri: message.to,
          nc: "00000001",
          cnonce: "c0ffee",
        });
        await phone.send(request(2, { Authorization: authorization }), sipPort);
        return { realm, status: (await phone.waitFor(final(2))).status ?? 0 };
      };
      // Dave, a user of B, in B's realm: delivered to Bob.
      const dave = await send(
        { from: `sip:dave@${B}`, to: `sip:bob@${B}`, body: "digest B" },
        { username: "dave", password: "dave-pw" },
      );
      assert.deepEqual(dave, { realm: B, status: 200 });
      await bob.waitFor((e) => e.event === "message" && e.body === "digest B");
      // Carol, a user of A with her right password, writing to Bob: B does not know her.
      const carol = await send(
        { from: `sip:carol@${A}`, to: `sip:bob@${B}`, body: "digest leak" },
        { username: "carol", password: "carol-pw" },
      );
      assert.equal(carol.realm, B);
      assert.ok(carol.status >= 400, `answered ${carol.status}`);
      // And in her own tenant she is who she says.
      const home = await send(
        { from: `sip:carol@${A}`, to: `sip:alice@${A}`, body: "digest A" },
        { username: "carol", password: "carol-pw" },
      );
      assert.deepEqual(home, { realm: A, status: 200 });
      await alice.waitFor((e) => e.event === "message" && e.body === "digest A");
      await sleep(500);
      assert.deepEqual(bodiesTo(bob, "digest leak"), []);
    } finally {
      await phone.close();
    }
  });
});

/** The Request-URI of a request as received. */
function ruri(request: RawSipMessage): string {
  return request.startLine.split(" ")[1] ?? "";
}
