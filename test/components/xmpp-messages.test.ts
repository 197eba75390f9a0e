// Messages on the XMPP side with a real Prosody and a slixmpp client. The SIP side is not built
// yet, so the message sink is a recorder of our own port that answers as the SIP side would
// (200 → delivered, 202 → accepted, failures as conditions).
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { XmppGateway } from "../../components/xmpp/xmpp-gateway.js";
import { startGateway } from "../harness/gateway.js";
import { SwitchboardError, type Condition } from "../../src/domain/errors.js";
import type { ChatMessage, DeliveryOutcome, MessageSink } from "../../src/ports/message-port.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { SlixmppClient, type XmppEvent } from "../harness/xmpp-client.js";

class RecordingSink implements MessageSink {
  readonly received: ChatMessage[] = [];
  /** What the SIP side answers, by recipient person key; `delivered` when not set. */
  readonly answers = new Map<string, DeliveryOutcome | Condition>();

  deliver(message: ChatMessage): Promise<DeliveryOutcome> {
    this.received.push(message);
    const answer = this.answers.get(message.to) ?? "delivered";
    if (answer === "delivered" || answer === "accepted" || answer === "queued")
      return Promise.resolve(answer);
    return Promise.reject(new SwitchboardError(answer, `SIP side answered ${answer}`));
  }
}

describe("XMPP messages (Prosody + slixmpp)", function () {
  let prosody: Prosody;
  let grant: ComponentGrant;
  let gateway: XmppGateway;
  let alice: SlixmppClient;
  const sink = new RecordingSink();

  const message = (id: string) => (e: XmppEvent) => e.event === "message" && e.id === id;

  before(async function () {
    prosody = await Prosody.start();
    grant = prosody.takeComponent();
    await prosody.register("alice", "alice-pw");
    ({ gateway } = await startGateway(prosody, grant, { messages: sink }));
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
  });
  after(async function () {
    await alice?.close();
    await gateway?.stop();
    await prosody?.stop();
  });

  it("hands a chat message to the message port with body, thread and id intact, and sends a receipt on delivery", async function () {
    alice.send({
      op: "raw",
      xml: `<message to='bob@${grant.jid}' type='chat' id='m1' xml:lang='en'><body>Hello Bob — ça va? 🎉</body><thread>t-42</thread><request xmlns='urn:xmpp:receipts'/></message>`,
    });
    const receipt = await alice.waitFor((e) => e.event === "message" && (e.xml ?? "").includes("<received"));
    assert.equal(receipt.from, `bob@${grant.jid}`);
    assert.match(receipt.xml ?? "", /<received xmlns="urn:xmpp:receipts" id="m1"/);
    const got = sink.received.find((m) => m.id === "m1");
    assert.deepEqual(got, {
      id: "m1",
      from: "alice@example.org",
      to: "bob@example.org",
      body: "Hello Bob — ça va? 🎉",
      receipt: true,
      replyTo: got?.replyTo,
      thread: "t-42",
      lang: "en",
    });
  });

  it("sends no receipt when only an intermediary accepted the message (202)", async function () {
    sink.answers.set("carol@example.org", "accepted");
    alice.send({ op: "message", to: `carol@${grant.jid}`, body: "via Asterisk", id: "m2", receipt: true });
    for (let i = 0; i < 50 && !sink.received.some((m) => m.id === "m2"); i++) await sleep(20);
    assert.ok(sink.received.some((m) => m.id === "m2"));
    await sleep(300);
    assert.ok(
      !alice.events.some((e) => (e.xml ?? "").includes('id="m2"') && (e.xml ?? "").includes("<received")),
    );
  });

  for (const condition of [
    "item-not-found",
    "recipient-unavailable",
    "remote-server-timeout",
    "service-unavailable",
  ] as const) {
    it(`answers a ${condition} from the SIP side with a message error of that condition`, async function () {
      const user = condition.replaceAll("-", "");
      sink.answers.set(`${user}@example.org`, condition);
      alice.send({ op: "message", to: `${user}@${grant.jid}`, body: "are you there?", id: `e-${user}` });
      const error = await alice.waitFor((e) => message(`e-${user}`)(e) && e.type === "error");
      assert.equal(error.from, `${user}@${grant.jid}`);
      assert.match(error.xml ?? "", new RegExp(`<${condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"`));
    });
  }

  it("says nothing yet for a queued message, then the receipt or the error when the queue reports", async function () {
    sink.answers.set("dave@example.org", "queued");
    alice.send({ op: "message", to: `dave@${grant.jid}`, body: "later", id: "q1", receipt: true });
    alice.send({ op: "message", to: `dave@${grant.jid}`, body: "never", id: "q2", receipt: true });
    for (let i = 0; i < 50 && sink.received.filter((m) => m.to === "dave@example.org").length < 2; i++)
      await sleep(20);
    const [later, never] = ["q1", "q2"].map((id) => sink.received.find((m) => m.id === id));
    assert.ok(later && never);
    await sleep(300);
    assert.ok(!alice.events.some((e) => /id="q[12]"/.test(e.xml ?? "")), "no receipt and no error yet");
    await gateway.reports.delivered(later, "delivered");
    const receipt = await alice.waitFor(
      (e) => e.event === "message" && /<received xmlns="urn:xmpp:receipts" id="q1"/.test(e.xml ?? ""),
    );
    assert.equal(receipt.from, `dave@${grant.jid}`);
    await gateway.reports.failed(never, "recipient-unavailable", "not delivered: the phone stayed offline");
    const error = await alice.waitFor((e) => message("q2")(e) && e.type === "error");
    assert.equal(error.from, `dave@${grant.jid}`);
    assert.match(error.xml ?? "", /<recipient-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/);
    assert.match(error.xml ?? "", /the phone stayed offline/);
  });

  it("sends a notice from the gateway itself (voicemail)", async function () {
    await gateway.notify("alice@example.org", "New voicemail: 2 new, 0 old");
    const notice = await alice.waitFor(
      (e) => e.event === "message" && e.body === "New voicemail: 2 new, 0 old",
    );
    assert.equal(notice.from, grant.jid);
  });

  it("passes chat states on to the message port", async function () {
    alice.send({
      op: "raw",
      xml: `<message to='bob@${grant.jid}' type='chat' id='cs1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
    });
    for (let i = 0; i < 50 && !sink.received.some((m) => m.id === "cs1"); i++) await sleep(20);
    assert.deepEqual(
      sink.received.find((m) => m.id === "cs1"),
      {
        id: "cs1",
        from: "alice@example.org",
        to: "bob@example.org",
        lang: "en", // Prosody stamps the stream's xml:lang on client stanzas
        chatState: "composing",
      },
    );
  });

  it("delivers a SIP party's message from its gateway contact, UTF-8 intact, with xml:lang", async function () {
    await gateway.deliverToXmpp({
      id: "s1",
      from: "bob@example.org",
      to: "alice@example.org",
      body: "Grüße aus Köln ✓ 🎉",
      lang: "de",
    });
    const got = await alice.waitFor(message("s1"));
    assert.equal(got.from, `bob@${grant.jid}`);
    assert.equal(got.type, "chat");
    assert.equal(got.body, "Grüße aus Köln ✓ 🎉");
    assert.match(got.xml ?? "", /xml:lang="de"/);

    await gateway.deliverToXmpp({
      id: "s2",
      from: "sip:carol@example.com",
      to: "alice@example.org",
      chatState: "composing",
    });
    const composing = await alice.waitFor(message("s2"));
    assert.equal(composing.from, `carol\\40example.com@${grant.jid}`);
    assert.match(composing.xml ?? "", /<composing xmlns="http:\/\/jabber.org\/protocol\/chatstates"/);
  });

  it("strips characters XML forbids and refuses a 1 MB body, and the component stays up", async function () {
    await gateway.deliverToXmpp({
      id: "c1",
      from: "bob@example.org",
      to: "alice@example.org",
      body: "a\u0001b\u001bc\uFFFEd",
    });
    assert.equal((await alice.waitFor(message("c1"))).body, "abcd");

    await assert.rejects(
      gateway.deliverToXmpp({
        id: "big",
        from: "bob@example.org",
        to: "alice@example.org",
        body: "x".repeat(1024 * 1024),
      }),
      { condition: "policy-violation" },
    );
    await sleep(200);
    assert.equal(gateway.connection.state, "online");
    await gateway.deliverToXmpp({
      id: "after",
      from: "bob@example.org",
      to: "alice@example.org",
      body: "still here",
    });
    assert.equal((await alice.waitFor(message("after"))).body, "still here");
  });
});
