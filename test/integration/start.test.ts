// `switchboard start` as a real process against a real Prosody: the XMPP side comes up, survives
// Prosody restarting under it (the process never exits, subscribers get presence again), and stops
// cleanly on SIGTERM.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { BridgeProcess, type LogLine } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { Prosody } from "../harness/prosody.js";
import { buildPidf } from "../../components/sip/pidf.js";
import { buildRequest, buildResponse, UdpSipSocket } from "../harness/sip-socket.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

describe("switchboard start (real process, real Prosody)", function () {
  let prosody: Prosody;
  const dir = tempDir("start");
  const clients: SlixmppClient[] = [];
  const sockets: UdpSipSocket[] = [];

  before(async function () {
    prosody = await Prosody.start();
    for (const user of ["alice", "bob"]) await prosody.register(user, `${user}-pw`);
  });
  after(async function () {
    for (const client of clients) await client.close();
    for (const socket of sockets) await socket.close();
    await prosody?.stop();
    dir.remove();
  });

  it("keeps running through a Prosody restart and exits 0 on SIGTERM", async function () {
    const grant = prosody.takeComponent();
    const sipPort = await freePort({ udp: true });
    const proxy = await UdpSipSocket.open(); // plays the SIP proxy in front of Bob's phone
    sockets.push(proxy);
    const file = dir.file("switchboard.yaml");
    writeFileSync(
      file,
      stringify({
        domain: prosody.domain,
        xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
        sip: { listen: [`udp:127.0.0.1:${sipPort}`], outboundProxy: `sip:127.0.0.1:${proxy.port};lr` },
        http: { listen: `127.0.0.1:${await freePort()}` },
        directory: { users: [{ uid: "bob", displayName: "Bob Baker", numbers: ["+44 20 7123 4568"] }] },
      }),
    );
    const bridge = BridgeProcess.start(file);
    const lines = bridge.lines;
    try {
      await bridge.online();
      const alice = await SlixmppClient.connect(
        "alice@example.org",
        "alice-pw",
        "127.0.0.1",
        prosody.c2sPort,
      );
      clients.push(alice);
      alice.send({ op: "presence", to: `bob@${grant.jid}`, type: "subscribe" });
      await alice.waitFor(
        (e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.type === "subscribed",
      );

      await prosody.halt();
      await lines.waitFor((l) => l.msg === "xmpp component offline", 5_000);
      await prosody.resume();
      const onlineAgain = (l: LogLine): boolean =>
        l.msg === "xmpp component online" && lines.entries.filter((e) => e.msg === l.msg).length >= 2;
      await lines.waitFor(onlineAgain, 10_000);
      assert.ok(bridge.running, `the process is still running (stderr: ${bridge.stderr})`);

      // Bob logs in (chat) and sets away; Alice, back too, sees it on Bob's phone contact.
      const again = await SlixmppClient.connect(
        "alice@example.org",
        "alice-pw",
        "127.0.0.1",
        prosody.c2sPort,
      );
      clients.push(again);
      const bob = await SlixmppClient.connect("bob@example.org", "bob-pw", "127.0.0.1", prosody.c2sPort);
      clients.push(bob);
      bob.send({ op: "presence", show: "away", status: "Lunch" });
      const seen = await again.waitFor(
        (e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.show === "away",
        10_000,
      );
      assert.equal(seen.status, "Lunch");
      // A desk phone's MESSAGE reaches Alice's chat client from Bob's phone contact.
      const phone = await UdpSipSocket.open();
      try {
        await phone.send(
          buildRequest({
            method: "MESSAGE",
            uri: "sip:alice@example.org",
            via: `UDP 127.0.0.1:${phone.port}`,
            from: "<sip:bob@example.org>",
            to: "<sip:alice@example.org>",
            headers: { "Content-Type": "text/plain;charset=UTF-8" },
            body: "Call me back ☎",
          }),
          sipPort,
        );
        assert.equal((await phone.waitFor((m) => m.status !== undefined)).status, 200);
      } finally {
        await phone.close();
      }
      const chat = await again.waitFor((e) => e.event === "message" && e.body === "Call me back ☎");
      assert.equal(chat.from, `bob@${grant.jid}`);
      // Bob's desk phone PUBLISHes "on the phone": Alice sees it on Bob's phone contact.
      const deskPhone = await UdpSipSocket.open();
      sockets.push(deskPhone);
      await deskPhone.send(
        buildRequest({
          method: "PUBLISH",
          uri: "sip:bob@example.org",
          via: `UDP 127.0.0.1:${deskPhone.port}`,
          from: "<sip:bob@example.org>",
          to: "<sip:bob@example.org>",
          headers: { Event: "presence", Expires: "600", "Content-Type": "application/pidf+xml" },
          body: buildPidf("sip:bob@example.org", "on-the-phone", null),
        }),
        sipPort,
      );
      assert.equal((await deskPhone.waitFor((m) => m.status !== undefined)).status, 200);
      await again.waitFor(
        (e) =>
          e.event === "presence" &&
          e.from === `bob@${grant.jid}` &&
          e.show === "dnd" &&
          e.status === "On the phone",
        5_000,
      );

      // And back: Alice's chat message to Bob's phone goes out through the outbound proxy (the raw
      // socket plays it and answers 200), and Alice gets a receipt because the phone took it.
      again.send({
        op: "message",
        to: `bob@${grant.jid}`,
        body: "On my way",
        id: "to-phone-1",
        receipt: true,
      });
      const out = await proxy.waitFor((m) => m.method === "MESSAGE");
      assert.equal(out.startLine, "MESSAGE sip:bob@example.org SIP/2.0");
      assert.equal(out.body, "On my way");
      await proxy.send(buildResponse(out, 200, "OK"), out.from.port, out.from.address);
      const receipt = await again.waitFor(
        (e) =>
          e.event === "message" &&
          (e.xml ?? "").includes('id="to-phone-1"') &&
          (e.xml ?? "").includes("<received"),
      );
      assert.equal(receipt.from, `bob@${grant.jid}`);
      // vCard from the config-file directory, through the running process.
      const vcard = await again.query({
        op: "iq",
        to: `bob@${grant.jid}`,
        payload: "<vCard xmlns='vcard-temp'/>",
      });
      assert.match(vcard.xml ?? "", /<FN>Bob Baker<\/FN>/);
    } finally {
      assert.equal(await bridge.stop("SIGTERM"), 0, `exit code on SIGTERM (stderr: ${bridge.stderr})`);
    }
    assert.ok(lines.entries.some((l) => l.msg === "stopped"));
  });
});
