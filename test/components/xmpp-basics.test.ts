// The XMPP side against a real Prosody and an independent client (slixmpp): service discovery,
// ping, version, XEP-0100 gateway prompt, unknown IQs, and reconnecting after Prosody restarts.
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { xml } from "@xmpp/component";
import { XmppGateway } from "../../components/xmpp/xmpp-gateway.js";
import { ConfigDirectory } from "../../src/directory/config-directory.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { waitOnline } from "../harness/gateway.js";
import { memoryLogger } from "../harness/memory-logger.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

describe("XMPP component: discovery, ping, version, gateway prompt (Prosody + slixmpp)", function () {
  let prosody: Prosody;
  let grant: ComponentGrant;
  let gateway: XmppGateway;
  let alice: SlixmppClient;
  const log = memoryLogger();

  before(async function () {
    prosody = await Prosody.start();
    grant = prosody.takeComponent();
    await prosody.register("alice", "alice-pw");
    gateway = new XmppGateway({
      connection: { ...grant, backoff: { baseMs: 100, capMs: 1_000 } },
      homeDomain: prosody.domain,
      version: "0.1.0",
      presence: new PresenceService(new MemoryPresenceStore()),
      directory: new ConfigDirectory(
        [{ uid: "bob", displayName: "Bob Baker", extension: "8002", numbers: ["+44 20 7123 4568"] }],
        "example.org",
      ),
      log,
    });
    gateway.start();
    await waitOnline(gateway, 10_000);
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
  });
  after(async function () {
    await alice?.close();
    await gateway?.stop();
    await prosody?.stop();
  });

  it("answers disco#info on the gateway domain with identity gateway/sip and the implemented features", async function () {
    const answer = await alice.query({ op: "disco_info", to: grant.jid });
    assert.equal(answer.type, "result");
    assert.match(
      answer.xml ?? "",
      /<identity [^>]*category="gateway"[^>]*type="sip"|<identity [^>]*type="sip"[^>]*category="gateway"/,
    );
    for (const feature of [
      "http://jabber.org/protocol/disco#info",
      "urn:xmpp:ping",
      "jabber:iq:version",
      "jabber:iq:gateway",
    ]) {
      assert.ok(answer.xml?.includes(`var="${feature}"`), `feature ${feature} missing in ${answer.xml}`);
    }
  });

  it("answers disco#info on a gateway contact as a phone", async function () {
    const answer = await alice.query({ op: "disco_info", to: `bob@${grant.jid}` });
    assert.equal(answer.type, "result");
    assert.match(answer.xml ?? "", /category="client"/);
    assert.doesNotMatch(answer.xml ?? "", /jabber:iq:gateway/);
    for (const feature of ["urn:xmpp:receipts", "http://jabber.org/protocol/chatstates", "vcard-temp"]) {
      assert.ok(answer.xml?.includes(`var="${feature}"`), `feature ${feature} missing in ${answer.xml}`);
    }
  });

  it("answers a gateway contact's vCard (XEP-0054) from the directory, by name or by number", async function () {
    for (const contact of [`bob@${grant.jid}`, `+442071234568@${grant.jid}`, `8002@${grant.jid}`]) {
      const answer = await alice.query({ op: "iq", to: contact, payload: "<vCard xmlns='vcard-temp'/>" });
      assert.equal(answer.type, "result", `${contact}: ${answer.xml}`);
      assert.match(answer.xml ?? "", /<FN>Bob Baker<\/FN>/);
      assert.match(answer.xml ?? "", /<NUMBER>\+44 20 7123 4568<\/NUMBER>/);
      assert.match(answer.xml ?? "", /<NUMBER>8002<\/NUMBER>/);
      assert.match(answer.xml ?? "", /<JABBERID>bob@example.org<\/JABBERID>/);
    }
    const unknown = await alice.query({
      op: "iq",
      to: `nobody@${grant.jid}`,
      payload: "<vCard xmlns='vcard-temp'/>",
    });
    assert.equal(unknown.type, "error");
    assert.equal(unknown.condition, "item-not-found");
  });

  it("answers XEP-0199 ping and XEP-0092 version", async function () {
    assert.equal((await alice.query({ op: "ping", to: grant.jid })).type, "result");
    const version = await alice.query({ op: "version", to: grant.jid });
    assert.equal(version.type, "result");
    assert.match(version.xml ?? "", /<name>Switchboard<\/name>/);
    assert.match(version.xml ?? "", /<version>0\.1\.0<\/version>/);
  });

  it("turns a number or SIP address typed at the XEP-0100 prompt into the gateway JID", async function () {
    const form = await alice.query({
      op: "iq",
      to: grant.jid,
      payload: "<query xmlns='jabber:iq:gateway'/>",
    });
    assert.equal(form.type, "result");
    assert.match(form.xml ?? "", /<prompt>Phone number or SIP address<\/prompt>/);
    const cases: [string, string][] = [
      ["+44 20 7123-4567", `+442071234567@${grant.jid}`],
      ["sip:Bob@example.org", `bob@${grant.jid}`],
      ["carol@example.com", `carol\\40example.com@${grant.jid}`],
    ];
    for (const [prompt, jid] of cases) {
      const answer = await alice.query({
        op: "iq",
        to: grant.jid,
        type: "set",
        payload: `<query xmlns='jabber:iq:gateway'><prompt>${prompt}</prompt></query>`,
      });
      assert.equal(answer.type, "result", answer.xml);
      assert.ok(answer.xml?.includes(`<jid>${jid}</jid>`), `${prompt}: expected ${jid} in ${answer.xml}`);
    }
  });

  it("refuses a prompt that is no address with an error condition", async function () {
    const answer = await alice.query({
      op: "iq",
      to: grant.jid,
      type: "set",
      payload: "<query xmlns='jabber:iq:gateway'><prompt>sip:@@</prompt></query>",
    });
    assert.equal(answer.type, "error");
    assert.equal(answer.condition, "jid-malformed");
  });

  it("answers an IQ without a payload with bad-request, once", async function () {
    const answer = await alice.query({ op: "iq", to: grant.jid, payload: "" });
    assert.equal(answer.type, "error");
    assert.equal(answer.condition, "bad-request");
  });

  it("answers an IQ in an unknown namespace with service-unavailable", async function () {
    const answer = await alice.query({
      op: "iq",
      to: grant.jid,
      payload: "<query xmlns='urn:example:nothing'/>",
    });
    assert.equal(answer.type, "error");
    assert.equal(answer.condition, "service-unavailable");
    // Exactly one answer left the component (RFC 6120 §8.2.3), as Prosody's own log shows.
    const id = /id="([^"]+)"/.exec(answer.xml ?? "")?.[1];
    assert.ok(id);
    await sleep(200);
    const answers = prosody
      .log()
      .split("\n")
      .filter((l) => l.includes("Received[component]: <iq") && l.includes(`id='${id}'`));
    assert.equal(answers.length, 1, answers.join("\n"));
  });

  it("reconnects after Prosody restarts and sends what was buffered while offline", async function () {
    await prosody.halt();
    for (let i = 0; i < 50 && gateway.connection.state === "online"; i++) await sleep(100);
    assert.notEqual(gateway.connection.state, "online");
    // Addressed to another JID on the gateway domain, so Prosody routes it back to this component:
    // seeing it arrive proves it was sent after the reconnect.
    const echoed = new Promise<string | null>((resolve) =>
      gateway.connection.on("stanza", (s) => {
        if (s.is("message") && s.attrs.to === `echo@${grant.jid}`) resolve(s.getChildText("body"));
      }),
    );
    await gateway.connection.send(
      xml(
        "message",
        { to: `echo@${grant.jid}`, from: `bob@${grant.jid}`, type: "chat" },
        xml("body", {}, "sent while offline"),
      ),
    );
    assert.equal(gateway.connection.buffered, 1);
    await prosody.resume();
    await waitOnline(gateway, 10_000);
    assert.equal(await Promise.race([echoed, sleep(5_000).then(() => "timeout")]), "sent while offline");
    assert.equal(gateway.connection.buffered, 0);
    assert.ok(
      log.lines.some((l) => l.level === "warn" && l.message === "xmpp component problem"),
      "the refused connections were logged as problems, not thrown",
    );
  });

  it("refuses a stanza with resource-constraint when the offline buffer is full", async function () {
    const small = new XmppGateway({
      connection: {
        ...prosody.takeComponent(),
        port: 1,
        bufferLimit: 2,
        backoff: { baseMs: 1_000, capMs: 1_000 },
      },
      homeDomain: prosody.domain,
      version: "0.1.0",
      presence: new PresenceService(new MemoryPresenceStore()),
    });
    small.start();
    try {
      const stanza = (): ReturnType<typeof xml> =>
        xml("message", { to: "alice@example.org" }, xml("body", {}, "x"));
      await small.connection.send(stanza());
      await small.connection.send(stanza());
      await assert.rejects(small.connection.send(stanza()), { condition: "resource-constraint" });
      assert.equal(small.connection.buffered, 2);
    } finally {
      await small.stop();
    }
  });

  it("notices a server that stops answering (keepalive ping) and reconnects when it answers again", async function () {
    const log = memoryLogger();
    const watched = new XmppGateway({
      connection: {
        ...prosody.takeComponent(),
        backoff: { baseMs: 100, capMs: 500 },
        keepalive: { to: prosody.domain, intervalMs: 200, timeoutMs: 400 },
      },
      homeDomain: prosody.domain,
      version: "0.1.0",
      presence: new PresenceService(new MemoryPresenceStore()),
      log,
    });
    watched.start();
    try {
      await waitOnline(watched, 10_000);
      const offline = new Promise<string>((resolve) => watched.connection.once("offline", resolve));
      const pid = prosody.process.pid;
      assert.ok(pid);
      process.kill(pid, "SIGSTOP"); // the TCP connection stays open, nothing answers
      try {
        assert.equal(
          await Promise.race([offline, sleep(5_000).then(() => "still online")]),
          "keepalive ping unanswered",
        );
      } finally {
        process.kill(pid, "SIGCONT");
      }
      await waitOnline(watched, 10_000);
      assert.ok(log.lines.some((l) => String(l.fields.err).includes("keepalive ping unanswered")));
    } finally {
      await watched.stop();
    }
  });

  it("gives up on a connection attempt whose handshake never comes, and tries again", async function () {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const log = memoryLogger();
    const stuck = new XmppGateway({
      connection: {
        jid: "stuck.example.org",
        secret: "x",
        host: "127.0.0.1",
        port: (silent.address() as AddressInfo).port,
        attemptTimeoutMs: 300,
        backoff: { baseMs: 5_000, capMs: 5_000 },
      },
      homeDomain: prosody.domain,
      version: "0.1.0",
      presence: new PresenceService(new MemoryPresenceStore()),
      log,
    });
    stuck.start();
    try {
      for (let i = 0; i < 40 && stuck.connection.state !== "waiting"; i++) await sleep(50);
      assert.equal(stuck.connection.state, "waiting");
      assert.ok(log.lines.some((l) => String(l.fields.err).includes("no handshake within 300 ms")));
    } finally {
      await stuck.stop();
      silent.close();
    }
  });
});
