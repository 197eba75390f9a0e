// The Asterisk side against the recorded-traffic fakes of ARI and AMI (test/fakes/, replaying
// ../shared/fixtures/asterisk-22.10.1/) and a real Prosody with slixmpp as Alice: device state to
// "on the phone", CustomPresence both ways without an echo, voicemail to one chat notice, and the
// resync after ARI comes back.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { AmiClient } from "../../components/asterisk/ami-client.js";
import { AriClient } from "../../components/asterisk/ari-client.js";
import { AsteriskAdapter } from "../../components/asterisk/asterisk-adapter.js";
import type { XmppGateway } from "../../components/xmpp/xmpp-gateway.js";
import { voicemailText } from "../../src/ports/voicemail-port.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { AmiFake } from "../fakes/ami-fake.js";
import { AriFake, like as ariLike, recordedEvent as ariRecordedEvent } from "../fakes/ari-fake.js";
import { startGateway } from "../harness/gateway.js";
import { memoryLogger } from "../harness/memory-logger.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

const CUSTOM_PRESENCE_ALICE = "/ari/asterisk/variable";

describe("Asterisk: device state, CustomPresence both ways, voicemail (recorded ARI and AMI)", function () {
  let prosody: Prosody;
  let grant: ComponentGrant;
  let gateway: XmppGateway;
  let alice: SlixmppClient;
  let ari: AriFake;
  let ami: AmiFake;
  let adapter: AsteriskAdapter;
  const presence = new PresenceService(new MemoryPresenceStore());
  const online: string[] = [];

  before(async function () {
    prosody = await Prosody.start();
    await prosody.register("alice", "alice-pw");
    grant = prosody.takeComponent({ privileged: true });
    ({ gateway } = await startGateway(prosody, grant, { presence }));
    ari = await AriFake.start();
    ami = await AmiFake.start();
    // Alice's mailbox is empty at start (the recorded MailboxCount said 2 new; only values change).
    const count = ami.recordedReply("MailboxCount", { Mailbox: "alice@default" });
    ami.answer(
      "MailboxCount",
      { Mailbox: "alice@default" },
      ami.like(count, { NewMessages: "0", OldMessages: "0" }),
    );
    const log = memoryLogger();
    adapter = new AsteriskAdapter({
      ari: new AriClient({ url: ari.url, username: "bridge", password: "secret", app: "switchboard", log }),
      ami: new AmiClient({ host: ami.host, port: ami.port, username: "bridge", password: "secret", log }),
      users: [
        {
          person: "alice@example.org",
          devices: ["PJSIP/alice"],
          presence: "alice",
          mailbox: "alice@default",
        },
        {
          person: "bob@example.org",
          devices: ["PJSIP/bob"],
          presence: "bob",
          mailbox: "bob@default",
          endpoint: "PJSIP/bob",
        },
      ],
      presence,
      direction: "both",
      homeDomain: "example.org",
      toXmpp: { deliver: (message) => gateway.deliverToXmpp(message).then(() => "accepted" as const) },
      voicemail: { mailboxChanged: (change) => gateway.notify(change.person, voicemailText(change.counts)) },
      onPhoneOnline: (person) => online.push(person),
      log,
    });
    adapter.start();
    await ari.waitForConnections(1);
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "presence" });
    alice.send({ op: "presence", to: `bob@${grant.jid}`, type: "subscribe" });
    await alice.waitFor(
      (e) => e.event === "presence" && e.from === `bob@${grant.jid}` && e.type === "subscribed",
    );
  });
  after(async function () {
    await alice?.close();
    await adapter?.stop();
    await gateway?.stop();
    await ari?.stop();
    await ami?.stop();
    await prosody?.stop();
  });

  const bobSeen =
    (show: string, status: string) => (e: { event: string; from?: string; show?: string; status?: string }) =>
      e.event === "presence" &&
      e.from === `bob@${grant.jid}` &&
      (e.show ?? "") === show &&
      (e.status ?? "") === status;

  it("shows Bob on the phone within 500 ms of INUSE, and his state before after NOT_INUSE", async function () {
    const deviceEvent = ariRecordedEvent((e) => e.type === "DeviceStateChanged");
    ari.emit(ariLike(deviceEvent, { device_state: { name: "PJSIP/bob", state: "NOT_INUSE" } }));
    await alice.waitFor(bobSeen("", ""), 2_000);
    const mark = alice.events.length;
    ari.emit(ariLike(deviceEvent, { device_state: { name: "PJSIP/bob", state: "INUSE" } }));
    await alice.waitFor((e) => alice.events.indexOf(e) >= mark && bobSeen("dnd", "On the phone")(e), 500);
    const back = alice.events.length;
    ari.emit(ariLike(deviceEvent, { device_state: { name: "PJSIP/bob", state: "NOT_INUSE" } }));
    await alice.waitFor((e) => alice.events.indexOf(e) >= back && bobSeen("", "")(e), 500);
  });

  it("writes Alice's chat presence to CustomPresence:alice once, not again for its echo", async function () {
    const writes = (): number =>
      ari.requests.filter((r) => r.method === "POST" && r.path === CUSTOM_PRESENCE_ALICE).length;
    const before = writes();
    alice.send({ op: "presence", show: "away", status: "Lunch" });
    for (let i = 0; i < 50 && writes() === before; i++) await sleep(20);
    const write = ari.requests.filter((r) => r.method === "POST" && r.path === CUSTOM_PRESENCE_ALICE).at(-1);
    assert.ok(write, "no CustomPresence write");
    assert.match(write.query, /variable=PRESENCE_STATE\(CustomPresence:alice\)&value=away,,Lunch$/);
    assert.equal(write.status, 204);
    // Asterisk's PresenceStateChange for that write (recorded) comes back: no second write.
    const change = ami.recordedEvent(
      (b) =>
        b.get("Event") === "PresenceStateChange" &&
        b.get("Status") === "away" &&
        b.get("Message") === "Lunch",
    );
    ami.emit(change);
    await sleep(300);
    assert.equal(writes(), before + 1);
    assert.equal((await presence.current("alice@example.org")).state, "away");
  });

  it("takes a late echo of an earlier write as ours, not as a change at the PBX", async function () {
    alice.send({ op: "presence", show: "xa", status: "Gone fishing" });
    alice.send({ op: "presence", show: "away", status: "Lunch" });
    alice.send({ op: "presence", show: "dnd", status: "Meeting" });
    for (let i = 0; i < 100 && (await presence.current("alice@example.org")).note !== "Meeting"; i++)
      await sleep(20);
    // The echo of the away,,Lunch write arrives after Alice moved on: it changes nothing.
    ami.emit(
      ami.recordedEvent(
        (b) =>
          b.get("Event") === "PresenceStateChange" &&
          b.get("Status") === "away" &&
          b.get("Message") === "Lunch",
      ),
    );
    await sleep(300);
    const now = await presence.current("alice@example.org");
    assert.deepEqual([now.state, now.note, now.winner?.kind], ["dnd", "Meeting", "xmpp"]);
  });

  it("takes the CustomPresence read at an AMI reconnection as old news: a newer chat state still wins", async function () {
    const logins = ami.logins;
    ami.dropConnections();
    for (let i = 0; i < 100 && ami.logins === logins; i++) await sleep(50);
    assert.ok(ami.logins > logins, "AMI logged in again");
    // The recorded PresenceState of alice says away "Lunch, back at 2": it is stored, but dated old.
    let custom;
    for (let i = 0; i < 50 && !custom; i++) {
      await sleep(20);
      custom = (await presence.snapshot("alice@example.org")).records.find(
        (r) => r.source.kind === "pbx-custom",
      );
    }
    assert.ok(custom && "state" in custom);
    assert.deepEqual([custom.state, custom.note, custom.updatedAt], ["away", "Lunch, back at 2", 0]);
    const now = await presence.current("alice@example.org");
    assert.deepEqual([now.state, now.note, now.winner?.kind], ["dnd", "Meeting", "xmpp"]);
  });

  it("shows Bob's CustomPresence dnd within 500 ms", async function () {
    const recorded = ami.recordedEvent(
      (b) => b.get("Event") === "PresenceStateChange" && b.get("Status") === "dnd",
    );
    const mark = alice.events.length;
    ami.emit(
      ami.like(recorded, { Presentity: "CustomPresence:bob", Status: "dnd", Message: "In a meeting" }),
    );
    await alice.waitFor((e) => alice.events.indexOf(e) >= mark && bobSeen("dnd", "In a meeting")(e), 500);
  });

  it("tells Alice once about a new voicemail, not again for the same counts", async function () {
    const recorded = ami.recordedEvent(
      (b) => b.get("Event") === "MessageWaiting" && (b.get("Mailbox") ?? "").startsWith("alice"),
    );
    const notices = (): number =>
      alice.events.filter(
        (e) => e.event === "message" && e.from === grant.jid && /voicemail/i.test(e.body ?? ""),
      ).length;
    const before = notices();
    ami.emit(ami.like(recorded, { Mailbox: "alice@default", Waiting: "1", New: "2", Old: "0" }));
    const notice = await alice.waitFor(
      (e) => e.event === "message" && e.from === grant.jid && e.body === "New voicemail: 2 new, 0 old",
      2_000,
    );
    assert.ok(notice);
    ami.emit(ami.like(recorded, { Mailbox: "alice@default", Waiting: "1", New: "2", Old: "0" }));
    await sleep(500);
    assert.equal(notices(), before + 1);
  });

  it("says when a mapped phone registers (ContactStatusChange), for its waiting messages", async function () {
    const registered = ariRecordedEvent(
      (e) =>
        e.type === "ContactStatusChange" &&
        (e as { contact_info?: { contact_status?: string } }).contact_info?.contact_status === "NonQualified",
    );
    ari.emit(registered); // recorded: alice's phone registering
    for (let i = 0; i < 50 && !online.includes("alice@example.org"); i++) await sleep(20);
    assert.deepEqual(online, ["alice@example.org"]);
    const removed = ariRecordedEvent(
      (e) =>
        e.type === "ContactStatusChange" &&
        (e as { contact_info?: { contact_status?: string } }).contact_info?.contact_status === "Removed",
    );
    ari.emit(removed);
    await sleep(200);
    assert.deepEqual(online, ["alice@example.org"]);
  });

  it("hands a phone's MESSAGE on Asterisk (TextMessageReceived) to the chat user, from the phone's user", async function () {
    const recorded = ariRecordedEvent((e) => e.type === "TextMessageReceived");
    ari.emit(
      ariLike(recorded, {
        endpoint: { resource: "bob" },
        message: { to: "pjsip:alice@127.0.0.1", body: "call me back ☎" },
      }),
    );
    const got = await alice.waitFor((e) => e.event === "message" && e.body === "call me back ☎", 2_000);
    assert.equal(got.from, `bob@${grant.jid}`);
  });

  it("sends a chat message to a phone on Asterisk through ARI sendMessage, in the recorded form", async function () {
    // Only one sendMessage was recorded (to the bridge's own endpoint): this one is answered 501
    // by the fake, which the adapter must report as a failure, not as delivered.
    await assert.rejects(
      adapter.sendMessage({
        id: "a1",
        from: "alice@example.org",
        to: "bob@example.org",
        body: "On my way, Bob",
      }),
      { condition: "service-unavailable" },
    );
    const request = ari.requests.at(-1);
    assert.equal(request?.method, "PUT");
    assert.equal(request?.path, "/ari/endpoints/sendMessage");
    assert.equal(request?.query, "to=pjsip:bob&from=sip:alice@example.org&body=On%20my%20way,%20Bob");
    assert.equal(adapter.handles("bob@example.org"), true);
    assert.equal(adapter.handles("alice@example.org"), false);
  });

  it("reads every mapped phone again when ARI comes back, and corrects the presence", async function () {
    const recorded = ari.recordedReply<{ name: string; state: string }>(
      "GET",
      "/ari/deviceStates/PJSIP%2Falice",
    );
    ari.answer("GET", "/ari/deviceStates/PJSIP%2Falice", { ...recorded, state: "INUSE" });
    ari.dropEvents();
    const deadline = Date.now() + 5_000;
    while ((await presence.current("alice@example.org")).state !== "on-the-phone" && Date.now() < deadline)
      await sleep(50);
    assert.equal((await presence.current("alice@example.org")).state, "on-the-phone");
  });

  // The recordings hold Alice's readings and three CustomPresence writes (away,,Lunch and two with
  // commas); Bob's readings and Alice's other states (available at login) are real requests the
  // recording lacks, so the fake answered them 501 and the adapter logged it.
  it("stops and starts again (the component moved away and back): one connection, each event once", async function () {
    await adapter.stop();
    for (let i = 0; i < 100 && ari.connections > 0; i++) await sleep(20);
    assert.equal(ari.connections, 0, "ARI still connected after stop");
    const before = online.length;
    adapter.start();
    await ari.waitForConnections(1);
    assert.equal(ari.connections, 1);
    const registered = ariRecordedEvent(
      (e) =>
        e.type === "ContactStatusChange" &&
        (e as { contact_info?: { contact_status?: string } }).contact_info?.contact_status === "NonQualified",
    );
    ari.emit(registered);
    for (let i = 0; i < 50 && online.length === before; i++) await sleep(20);
    await sleep(200);
    assert.deepEqual(online.slice(before), ["alice@example.org"], "handled once, not once per start");
  });

  it("asks the PBX nothing else the recordings lack", function () {
    const expected = (line: string): boolean =>
      line.startsWith("PUT /ari/endpoints/sendMessage?to=pjsip:bob&") ||
      /bob/i.test(line) ||
      /^POST \/ari\/asterisk\/variable\?variable=PRESENCE_STATE\(CustomPresence:alice\)/.test(line);
    assert.deepEqual(
      ari.unrecorded.filter((line) => !expected(line)),
      [],
    );
    assert.deepEqual(
      ami.unrecorded.filter((line) => !expected(line)),
      [],
    );
  });
});
