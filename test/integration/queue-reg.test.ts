// The "phone is back" signal end to end: `switchboard start` with a long retry delay queues Alice's
// message for Bob's unplugged phone, follows Bob's registration at the registrar (RFC 3680 reg
// event; a raw socket plays Kamailio's presence_reginfo), and sends the message as soon as the
// registrar says Bob's phone registered — long before the next scheduled retry.
import assert from "node:assert/strict";
import { BridgeProcess } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { Prosody } from "../harness/prosody.js";
import { buildResponse, header, UdpCable, UdpSipSocket } from "../harness/sip-socket.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

describe("switchboard start: queued messages go when the phone registers again (reg event)", function () {
  let prosody: Prosody;
  let bridge: BridgeProcess | undefined;
  let alice: SlixmppClient | undefined;
  const sockets: { close(): Promise<void> }[] = [];
  const dir = tempDir("queue-reg");

  before(async function () {
    prosody = await Prosody.start();
    await prosody.register("alice", "alice-pw");
  });
  after(async function () {
    await alice?.close();
    if (bridge?.running) await bridge.stop();
    for (const socket of sockets) await socket.close();
    await prosody?.stop();
    dir.remove();
  });

  it("subscribes to Bob's registration while a message waits, and delivers it on the NOTIFY", async function () {
    const grant = prosody.takeComponent({ privileged: true });
    const phone = await UdpSipSocket.open();
    phone.autoAnswer(["MESSAGE"]);
    const cable = await UdpCable.open(phone.port);
    cable.connected = false; // Bob's phone is unplugged
    const registrar = await UdpSipSocket.open();
    sockets.push(phone, cable, registrar);
    const sipPort = await freePort({ udp: true });
    bridge = BridgeProcess.start(dir.file("switchboard.yaml"), {
      domain: prosody.domain,
      xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
      sip: {
        listen: [`udp:127.0.0.1:${sipPort}`],
        outboundProxy: `sip:127.0.0.1:${cable.port};lr`,
        timers: { t1: 50, t2: 400, t4: 500 },
        regEvents: { registrar: `sip:127.0.0.1:${registrar.port}` },
      },
      // The next scheduled retry is an hour away: only the registration signal can deliver now.
      store: { queue: { ttlSeconds: 7200, retryMinSeconds: 3600, retryMaxSeconds: 3600 } },
      http: { listen: `127.0.0.1:${await freePort()}` },
    });
    await bridge.online();
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "presence" });
    alice.send({ op: "message", to: `bob@${grant.jid}`, body: "call me ☎", id: "wait-1", receipt: true });
    await bridge.lines.waitFor((l) => l.msg === "message queued: recipient offline", 10_000);

    // The bridge follows Bob's registration at the registrar.
    const subscribe = await registrar.waitFor((m) => m.method === "SUBSCRIBE", 5_000);
    assert.equal(subscribe.startLine, "SUBSCRIBE sip:bob@example.org SIP/2.0");
    assert.equal(header(subscribe, "event"), "reg");
    assert.match(header(subscribe, "accept") ?? "", /application\/reginfo\+xml/);
    await registrar.send(
      buildResponse(subscribe, 200, "OK", { Expires: "3600", Contact: `<sip:127.0.0.1:${registrar.port}>` }),
      subscribe.from.port,
    );
    const contact = /<([^>]+)>/.exec(header(subscribe, "contact") ?? "")?.[1] ?? "";
    const notify = (version: number, state: "active" | "terminated", event: string): string => {
      const body = [
        `<?xml version="1.0"?>`,
        `<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="${version}" state="full">`,
        `<registration aor="sip:bob@example.org" id="r1" state="${state === "active" ? "active" : "init"}">`,
        ...(state === "active"
          ? [`<contact id="c1" state="active" event="${event}"><uri>sip:bob@127.0.0.1:5090</uri></contact>`]
          : []),
        `</registration></reginfo>`,
      ].join("");
      return [
        `NOTIFY ${contact} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${registrar.port};branch=z9hG4bKreg${version};rport`,
        "Max-Forwards: 70",
        `From: <sip:bob@example.org>;tag=registrar`,
        `To: ${header(subscribe, "from") ?? ""}`,
        `Call-ID: ${header(subscribe, "call-id") ?? ""}`,
        `CSeq: ${version + 1} NOTIFY`,
        "Event: reg",
        "Subscription-State: active;expires=3600",
        "Content-Type: application/reginfo+xml",
        `Content-Length: ${Buffer.byteLength(body)}`,
        "",
        body,
      ].join("\r\n");
    };
    const answered = (cseq: number) => (m: { status?: number; headers: Map<string, string[]> }) =>
      m.status !== undefined && header(m as never, "cseq") === `${cseq} NOTIFY`;
    // Not registered yet: nothing to send.
    await registrar.send(notify(0, "terminated", ""), sipPort);
    assert.equal((await registrar.waitFor(answered(1))).status, 200);
    assert.equal(phone.received.filter((m) => m.method === "MESSAGE").length, 0);
    // Bob plugs his phone in and it registers: the registrar says so, and the message goes at once.
    cable.connected = true;
    await registrar.send(notify(1, "active", "registered"), sipPort);
    assert.equal((await registrar.waitFor(answered(2))).status, 200);
    const message = await phone.waitFor((m) => m.method === "MESSAGE", 5_000);
    assert.equal(message.body, "call me ☎");
    await alice.waitFor(
      (e) => e.event === "message" && (e.xml ?? "").includes("<received") && (e.xml ?? "").includes("wait-1"),
      5_000,
    );
    // Nothing waits any more: the bridge ends the reg subscription (Expires: 0).
    const unsubscribe = await registrar.waitFor(
      (m) => m.method === "SUBSCRIBE" && header(m, "expires") === "0",
    );
    assert.match(header(unsubscribe, "to") ?? "", /;tag=/);
  });
});
