// Presence on the XMPP side with a real Prosody (mod_privilege) and independent slixmpp clients:
// XEP-0356 presence intake, subscriptions to gateway contacts, probes, refusals and re-announcing.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { XmppGateway } from "../../components/xmpp/xmpp-gateway.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { startGateway, type StartedGateway } from "../harness/gateway.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { SlixmppClient, type XmppEvent } from "../harness/xmpp-client.js";

/** Polls `check` until it returns a value, for at most `timeoutMs` (a bounded functional deadline). */
async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(25);
  }
}

describe("XMPP presence (Prosody with mod_privilege + slixmpp)", function () {
  let prosody: Prosody;
  let grant: ComponentGrant;
  let gateway: XmppGateway;
  let service: PresenceService;
  let log: StartedGateway["log"];
  const clients: SlixmppClient[] = [];
  let contact: string; // Alice's gateway contact ("Alice's phone")

  async function login(user: string, domain = "example.org"): Promise<SlixmppClient> {
    const client = await SlixmppClient.connect(
      `${user}@${domain}`,
      `${user}-pw`,
      "127.0.0.1",
      prosody.c2sPort,
    );
    clients.push(client);
    return client;
  }

  const from =
    (jid: string, extra: (e: XmppEvent) => boolean = () => true) =>
    (e: XmppEvent): boolean =>
      e.event === "presence" && e.from === jid && extra(e);

  before(async function () {
    prosody = await Prosody.start();
    grant = prosody.takeComponent();
    contact = `alice@${grant.jid}`;
    for (const user of ["alice", "bob", "carol"]) await prosody.register(user, `${user}-pw`);
    await prosody.register("mallory", "mallory-pw", "example.net");
    ({ gateway, service, log } = await startGateway(prosody, grant));
  });
  after(async function () {
    for (const client of clients) await client.close();
    await gateway?.stop();
    await prosody?.stop();
  });

  it("logs that XEP-0356 managed_entity presence is in use", async function () {
    const line = await eventually(
      () => log.lines.find((l) => l.fields.mode !== undefined),
      5_000,
      "a log line naming the presence mode",
    );
    assert.equal(line.fields.mode, "privileged");
    assert.equal(line.fields.presencePermission, "managed_entity");
    // Still privileged once the wait for an advertisement is over (it came with the handshake).
    await sleep(400);
    assert.equal(gateway.presence.mode, "privileged");
    assert.ok(!log.lines.some((l) => l.fields.mode === "subscription"));
  });

  it("holds alice's XMPP resource as a presence source within 1 s, and drops it when she logs out", async function () {
    const alice = await login("alice");
    alice.send({ op: "presence", show: "away", status: "Lunch" });
    const record = await eventually(
      async () => {
        const { records } = await service.snapshot("alice@example.org");
        return records.find((r) => r.source.kind === "xmpp" && "state" in r && r.state === "away");
      },
      1_000,
      "alice away in the presence model",
    );
    const bound = alice.events.find((e) => e.event === "ready")?.jid ?? "";
    assert.deepEqual(record.source, { kind: "xmpp", resource: bound.slice(bound.indexOf("/") + 1) });
    assert.equal("note" in record ? record.note : undefined, "Lunch");
    assert.deepEqual((await service.current("alice@example.org")).state, "away");

    await alice.close();
    await eventually(
      async () => ((await service.snapshot("alice@example.org")).records.length === 0 ? true : undefined),
      1_000,
      "alice's source dropped after logout",
    );
    assert.equal((await service.current("alice@example.org")).state, "unavailable");
  });

  it("approves a home user's subscription to a gateway contact and pushes every change", async function () {
    const bob = await login("bob");
    bob.send({ op: "presence", to: contact, type: "subscribe" });
    await bob.waitFor(from(contact, (e) => e.type === "subscribed"));
    const first = await bob.waitFor(from(contact, (e) => e.type === "unavailable"));
    assert.equal(first.to?.split("/")[0], "bob@example.org");
    assert.deepEqual(await service.store.xmppSubscribers(contact), ["bob@example.org"]);

    const alice = await login("alice");
    await bob.waitFor(from(contact, (e) => e.type === "available" && !e.show));
    alice.send({ op: "presence", show: "dnd", status: "In a meeting" });
    const dnd = await bob.waitFor(
      from(contact, (e) => e.show === "dnd"),
      2_000,
    );
    assert.equal(dnd.status, "In a meeting");
  });

  it("answers a probe with current presence to a subscriber and unsubscribed to anyone else", async function () {
    const bob = clients.find((c) => c.jid === "bob@example.org");
    assert.ok(bob);
    const before = bob.events.length;
    bob.send({ op: "presence", to: contact, type: "probe" });
    await bob.waitFor(
      (e) => bob.events.indexOf(e) >= before && from(contact, (p) => p.show === "dnd")(e),
      2_000,
    );

    // Carol is not subscribed: the component answers `unsubscribed` (RFC 6121 §4.3.2), which her
    // server drops because she has no roster item for the contact — so watch the component's output.
    const sent: string[] = [];
    const send = gateway.connection.send.bind(gateway.connection);
    gateway.connection.send = (stanza) => {
      sent.push(stanza.toString());
      return send(stanza);
    };
    try {
      const carol = await login("carol");
      const seen = carol.events.length;
      carol.send({ op: "presence", to: contact, type: "probe" });
      await eventually(
        () => sent.find((s) => s.includes('type="unsubscribed"') && s.includes('to="carol@example.org"')),
        2_000,
        "unsubscribed sent to carol",
      );
      await sleep(200);
      assert.ok(!carol.events.slice(seen).some(from(contact, (e) => e.type === "available" || !!e.show)));
    } finally {
      gateway.connection.send = send;
    }
  });

  it("re-announces presence to subscribers when the component reconnects", async function () {
    const bob = clients.find((c) => c.jid === "bob@example.org");
    assert.ok(bob);
    await gateway.stop();
    const before = bob.events.length;
    gateway.start();
    await bob.waitFor(
      (e) => bob.events.indexOf(e) >= before && from(contact, (p) => p.show === "dnd")(e),
      10_000,
    );
    // And changes after the restart still reach him.
    const alice = clients.findLast((c) => c.jid === "alice@example.org");
    assert.ok(alice);
    alice.send({ op: "presence", show: "xa", status: "Gone home" });
    const xa = await bob.waitFor(
      from(contact, (p) => p.show === "xa"),
      2_000,
    );
    assert.equal(xa.status, "Gone home");
    alice.send({ op: "presence", show: "dnd", status: "In a meeting" }); // as the next tests expect
    await bob.waitFor(
      (e) => bob.events.indexOf(e) > bob.events.indexOf(xa) && from(contact, (p) => p.show === "dnd")(e),
      2_000,
    );
  });

  it("refuses a subscription from another domain unless it is allowed", async function () {
    const mallory = await login("mallory", "example.net");
    mallory.send({ op: "presence", to: contact, type: "subscribe" });
    await mallory.waitFor(
      from(contact, (e) => e.type === "unsubscribed"),
      2_000,
    );
    assert.ok(!(await service.store.xmppSubscribers(contact)).includes("mallory@example.net"));
    assert.ok(
      log.lines.some(
        (l) => l.message.startsWith("subscription refused") && l.fields.domain === "example.net",
      ),
    );
  });

  it("answers a subscription to an address that is no gateway contact with an error", async function () {
    const carol = clients.find((c) => c.jid === "carol@example.org");
    assert.ok(carol);
    const alias = `bob\\40example.org@${grant.jid}`;
    carol.send({ op: "presence", to: alias, type: "subscribe" });
    const error = await carol.waitFor((e) => e.event === "presence" && e.type === "error", 2_000);
    assert.match(error.xml ?? "", /jid-malformed/);
  });

  it("ends a subscription on unsubscribe and sends nothing more", async function () {
    const bob = clients.find((c) => c.jid === "bob@example.org");
    const alice = clients.findLast((c) => c.jid === "alice@example.org"); // the second login, still online
    assert.ok(bob && alice);
    bob.send({ op: "presence", to: contact, type: "unsubscribe" });
    await eventually(
      async () => ((await service.store.xmppSubscribers(contact)).length === 0 ? true : undefined),
      2_000,
      "bob's subscription removed",
    );
    const before = bob.events.length;
    alice.send({ op: "presence", show: "chat" });
    await eventually(
      async () => ((await service.current("alice@example.org")).state === "chat" ? true : undefined),
      1_000,
      "alice chat",
    );
    await sleep(300);
    assert.ok(!bob.events.slice(before).some(from(contact, (e) => e.show === "chat")));
  });
  it("is back after Prosody restarts: subscribers get presence again within 10 s", async function () {
    const carol = clients.find((c) => c.jid === "carol@example.org");
    assert.ok(carol);
    carol.send({ op: "presence", to: contact, type: "subscribe" });
    await carol.waitFor(
      from(contact, (e) => e.type === "subscribed"),
      2_000,
    );
    await prosody.halt();
    await prosody.resume();
    // The component comes back on its own (backoff capped at 1 s here).
    await eventually(
      () => (gateway.connection.state === "online" ? true : undefined),
      10_000,
      "component back",
    );
    // Alice is back on chat; Carol's client logs in again, her server probes her contacts
    // (RFC 6121 §4.3) and the bridge answers with the current presence of Alice's phone.
    const alice = await login("alice");
    alice.send({ op: "presence", show: "away", status: "Back soon" });
    await eventually(
      async () => ((await service.current("alice@example.org")).state === "away" ? true : undefined),
      2_000,
      "alice away in the model",
    );
    const again = await login("carol");
    const seen = await again.waitFor(
      from(contact, (e) => e.show === "away"),
      10_000,
    );
    assert.equal(seen.status, "Back soon");
  });

  it("drops the presence of a user who went offline while the component was away, keeps the others", async function () {
    const alice = clients.findLast((c) => c.jid === "alice@example.org");
    assert.ok(alice);
    await eventually(
      async () => ((await service.snapshot("alice@example.org")).records.length > 0 ? true : undefined),
      2_000,
      "alice held",
    );
    await gateway.stop();
    await alice.close(); // her unavailable presence has nowhere to go
    gateway.start();
    await eventually(
      async () => ((await service.snapshot("alice@example.org")).records.length === 0 ? true : undefined),
      3_000,
      "alice's stale source dropped",
    );
    // Carol is still online (she logged in again after the restart): mod_privilege re-sent her
    // presence when the component connected, so she stays.
    assert.equal((await service.current("carol@example.org")).state, "available");
  });
});

describe("XMPP presence without XEP-0356 (subscription fallback)", function () {
  let prosody: Prosody;
  let grant: ComponentGrant;
  let gateway: XmppGateway;
  let service: PresenceService;
  let log: StartedGateway["log"];
  const clients: SlixmppClient[] = [];

  before(async function () {
    prosody = await Prosody.start();
    grant = prosody.takeComponent({ privileged: false });
    for (const user of ["alice", "bob"]) await prosody.register(user, `${user}-pw`);
    ({ gateway, service, log } = await startGateway(prosody, grant));
  });
  after(async function () {
    for (const client of clients) await client.close();
    await gateway?.stop();
    await prosody?.stop();
  });

  it("logs subscription mode, asks a subscribing user once for their presence, and uses it once approved", async function () {
    const line = await eventually(
      () => log.lines.find((l) => l.fields.mode !== undefined),
      5_000,
      "a log line naming the presence mode",
    );
    assert.equal(line.fields.mode, "subscription");

    const bob = await SlixmppClient.connect("bob@example.org", "bob-pw", "127.0.0.1", prosody.c2sPort);
    clients.push(bob);
    bob.send({ op: "presence", show: "away", status: "Coffee" });
    bob.send({ op: "presence", to: `alice@${grant.jid}`, type: "subscribe" });
    await bob.waitFor(
      (e) => e.event === "presence" && e.from === `alice@${grant.jid}` && e.type === "subscribed",
    );
    // The gateway domain asks bob to share his presence (XEP-0100 style); bob approves once.
    await bob.waitFor((e) => e.event === "presence" && e.from === grant.jid && e.type === "subscribe");
    assert.equal(
      (await service.snapshot("bob@example.org")).records.length,
      0,
      "nothing before bob approves",
    );
    bob.send({ op: "presence", to: grant.jid, type: "subscribed" });
    const record = await eventually(
      async () => (await service.snapshot("bob@example.org")).records[0],
      2_000,
      "bob's presence in the model after approval",
    );
    assert.equal("state" in record ? record.state : undefined, "away");
    assert.equal("note" in record ? record.note : undefined, "Coffee");

    // A second subscription does not ask again.
    bob.send({ op: "presence", to: `carol@${grant.jid}`, type: "subscribe" });
    await bob.waitFor(
      (e) => e.event === "presence" && e.from === `carol@${grant.jid}` && e.type === "subscribed",
    );
    await sleep(200);
    assert.equal(bob.events.filter((e) => e.from === grant.jid && e.type === "subscribe").length, 1);

    // Bob revokes the gateway's subscription: what the bridge held from his client is dropped.
    bob.send({ op: "presence", to: grant.jid, type: "unsubscribed" });
    await eventually(
      async () => ((await service.snapshot("bob@example.org")).records.length === 0 ? true : undefined),
      2_000,
      "bob's XMPP source dropped after he revoked the subscription",
    );
  });

  it("probes the users it holds after reconnecting: keeps those online, drops those gone", async function () {
    const alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    clients.push(alice);
    alice.send({ op: "presence", to: `bob@${grant.jid}`, type: "subscribe" });
    await alice.waitFor((e) => e.event === "presence" && e.from === grant.jid && e.type === "subscribe");
    alice.send({ op: "presence", to: grant.jid, type: "subscribed" });
    alice.send({ op: "presence", show: "chat" });
    await eventually(
      async () => ((await service.current("alice@example.org")).state === "chat" ? true : undefined),
      2_000,
      "alice held",
    );

    await gateway.stop();
    gateway.start();
    await sleep(1_000); // more than twice the privilege wait: probe answered, stale ones dropped
    assert.equal((await service.current("alice@example.org")).state, "chat", "still online: kept");

    await gateway.stop();
    await alice.close();
    gateway.start();
    await eventually(
      async () => ((await service.snapshot("alice@example.org")).records.length === 0 ? true : undefined),
      3_000,
      "alice dropped after she went offline unseen",
    );
  });
});
