// `switchboard start` with `asterisk` configured, against the recorded-traffic fakes of ARI and AMI:
// the running bridge connects to both (ready), shows a colleague's call to a chat user and tells
// her about a new voicemail.
import assert from "node:assert/strict";
import { AmiFake } from "../fakes/ami-fake.js";
import { AriFake, like, recordedEvent } from "../fakes/ari-fake.js";
import { BridgeProcess } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { Prosody } from "../harness/prosody.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

describe("switchboard start with Asterisk (recorded ARI and AMI)", function () {
  let prosody: Prosody;
  let ari: AriFake;
  let ami: AmiFake;
  let bridge: BridgeProcess | undefined;
  let alice: SlixmppClient | undefined;
  const dir = tempDir("asterisk-start");

  before(async function () {
    prosody = await Prosody.start();
    await prosody.register("alice", "alice-pw");
    ari = await AriFake.start();
    ami = await AmiFake.start();
  });
  after(async function () {
    await alice?.close();
    if (bridge?.running) await bridge.stop();
    await ari?.stop();
    await ami?.stop();
    await prosody?.stop();
    dir.remove();
  });

  it("is ready with ARI and AMI, shows Bob's call to Alice and tells her about her voicemail", async function () {
    const grant = prosody.takeComponent({ privileged: true });
    const httpPort = await freePort();
    bridge = BridgeProcess.start(dir.file("switchboard.yaml"), {
      domain: prosody.domain,
      xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
      sip: { listen: [`udp:127.0.0.1:${await freePort({ udp: true })}`] },
      http: { listen: `127.0.0.1:${httpPort}` },
      asterisk: {
        url: ari.url,
        username: "bridge",
        password: "secret",
        ami: { host: ami.host, port: ami.port, username: "bridge", password: "secret" },
        users: [{ user: "alice" }, { user: "bob" }],
      },
    });
    await bridge.online();
    await ari.waitForConnections(1, 10_000);
    let ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    for (let i = 0; i < 50 && ready.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    }
    assert.equal(ready.status, 200, await ready.text());

    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "presence" });
    alice.send({ op: "presence", to: `bob@${grant.jid}`, type: "subscribe" });
    await alice.waitFor(
      (e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.type === "subscribed",
    );
    const device = recordedEvent((e) => e.type === "DeviceStateChanged");
    ari.emit(like(device, { device_state: { name: "PJSIP/bob", state: "INUSE" } }));
    await alice.waitFor(
      (e) =>
        e.event === "presence" &&
        e.from === `bob@${grant.jid}` &&
        e.show === "dnd" &&
        e.status === "On the phone",
      2_000,
    );

    const waiting = ami.recordedEvent((b) => b.get("Event") === "MessageWaiting");
    ami.emit(ami.like(waiting, { Mailbox: "alice@default", Waiting: "1", New: "4", Old: "1" }));
    const notice = await alice.waitFor((e) => e.event === "message" && e.from === grant.jid, 5_000);
    assert.equal(notice.body, "New voicemail: 4 new, 1 old");
  });

  it("gives a second tenant its own Stasis application and AMI login, and its devices to it alone", async function () {
    if (bridge?.running) await bridge.stop();
    const [gwA, gwB] = [prosody.takeComponent(), prosody.takeComponent()];
    const component = (g: typeof gwA) => ({ jid: g.jid, host: g.host, port: g.port, secret: g.secret });
    const httpPort = await freePort();
    const loginsBefore = ami.logins;
    bridge = BridgeProcess.start(dir.file("tenants.yaml"), {
      domain: prosody.domain,
      xmpp: { component: component(gwA) },
      sip: { listen: [`udp:127.0.0.1:${await freePort({ udp: true })}`] },
      http: { listen: `127.0.0.1:${httpPort}` },
      asterisk: {
        url: ari.url,
        username: "bridge",
        password: "secret",
        ami: { host: ami.host, port: ami.port, username: "bridge", password: "secret" },
        users: [{ user: "alice" }],
      },
      tenants: [
        {
          domain: "example.net",
          xmpp: { component: component(gwB) },
          asterisk: { app: "switchboard-b", users: [{ user: "dave", devices: ["PJSIP/b-dave"] }] },
        },
      ],
    });
    await ari.waitForConnections(2, 15_000);
    assert.deepEqual(ari.apps, ["switchboard", "switchboard-b"]);
    let ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
    for (let i = 0; i < 100 && ready?.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
    }
    assert.equal(ready?.status, 200, await ready?.text());
    assert.equal(ami.logins - loginsBefore, 2, "one AMI login per tenant");

    // Dave's phone is B's: its call shows in B's presence, and A knows no such device.
    const device = recordedEvent((e) => e.type === "DeviceStateChanged");
    ari.emit(like(device, { device_state: { name: "PJSIP/b-dave", state: "INUSE" } }));
    const sources = async (address: string): Promise<string[]> => {
      const response = await fetch(
        `http://127.0.0.1:${httpPort}/api/presence/${encodeURIComponent(address)}`,
      );
      return ((await response.json()) as { sources: { kind: string }[] }).sources.map((s) => s.kind);
    };
    let inB: string[] = [];
    for (let i = 0; i < 50 && !inB.includes("pbx-device"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      inB = await sources("dave@example.net");
    }
    assert.deepEqual(inB, ["pbx-device"]);
    assert.deepEqual(await sources(`dave@${prosody.domain}`), []);
  });
});
