// Stanzas can only act for their sender. Another component on the same Prosody (a rogue service)
// tries to change Alice's presence and to message a desk phone as Alice: Prosody refuses a `from`
// outside the component's own domain (and closes its stream), so the bridge never sees those; what
// the rogue sends in its own name is taken as its own (not a home user: no presence source; a
// message from it to a phone carries its address, never Alice's). A user of another domain cannot
// act as a home user either.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { xml } from "@xmpp/component";
import { ComponentConnection } from "../../components/xmpp/component-connection.js";
import type { ChatMessage } from "../../src/ports/message-port.js";
import { startGateway, type StartedGateway } from "../harness/gateway.js";
import { Prosody, type ComponentGrant } from "../harness/prosody.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

describe("XMPP: nobody acts for a home user but that user", function () {
  this.timeout(60_000);
  let prosody: Prosody;
  let grant: ComponentGrant;
  let rogueGrant: ComponentGrant;
  let started: StartedGateway;
  let rogue: ComponentConnection;
  let alice: SlixmppClient;
  let mallory: SlixmppClient;
  const toSip: ChatMessage[] = [];

  before(async function () {
    prosody = await Prosody.start({ otherDomain: "example.net" });
    await prosody.register("alice", "alice-pw");
    await prosody.register("mallory", "mallory-pw", "example.net");
    grant = prosody.takeComponent({ privileged: true });
    rogueGrant = prosody.takeComponent({ privileged: true });
    started = await startGateway(prosody, grant, {
      messages: {
        deliver: (message) => {
          toSip.push(message);
          return Promise.resolve("delivered");
        },
      },
    });
    rogue = new ComponentConnection({ ...rogueGrant, backoff: { baseMs: 100, capMs: 1_000 } });
    rogue.start();
    const deadline = Date.now() + 10_000;
    while (rogue.state !== "online" && Date.now() < deadline) await sleep(25);
    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "presence" });
    mallory = await SlixmppClient.connect("mallory@example.net", "mallory-pw", "127.0.0.1", prosody.c2sPort);
    mallory.send({ op: "presence" });
  });

  after(async function () {
    await alice?.close();
    await mallory?.close();
    await rogue?.stop();
    await started?.gateway.stop();
    await prosody?.stop();
  });

  it("keeps Alice's presence and name out of reach of another component and another domain", async function () {
    const { service } = started;
    const deadline = Date.now() + 5_000;
    while ((await service.current("alice@example.org")).state !== "available" && Date.now() < deadline)
      await sleep(50);
    assert.equal((await service.current("alice@example.org")).state, "available");

    // In their own names first: the rogue component (a JID that is no home user) and a user of
    // another domain; both messages reach the phone side, with their real senders.
    await rogue.send(
      xml("presence", { from: `mallory@${rogueGrant.jid}/x`, to: grant.jid }, xml("show", {}, "dnd")),
    );
    await rogue.send(
      xml(
        "message",
        { from: `mallory@${rogueGrant.jid}`, to: `bob@${grant.jid}`, type: "chat", id: "own-1" },
        xml("body", {}, "from the rogue"),
      ),
    );
    mallory.send({ op: "presence", to: grant.jid, show: "dnd", status: "I am Alice" });
    mallory.send({ op: "message", to: `bob@${grant.jid}`, body: "from mallory", id: "mallory-1" });
    const until = Date.now() + 5_000;
    while (toSip.length < 2 && Date.now() < until) await sleep(50);

    // Then the rogue as Alice: Prosody refuses a `from` outside the component's domain, and closes
    // the rogue's stream for it (so these go last).
    const closed = new Promise<string>((resolve) => rogue.once("offline", resolve));
    await rogue.send(
      xml("presence", { from: "alice@example.org/evil", to: grant.jid }, xml("show", {}, "dnd")),
    );
    await rogue
      .send(
        xml(
          "message",
          { from: "alice@example.org/evil", to: `bob@${grant.jid}`, type: "chat", id: "spoof-1" },
          xml("body", {}, "I am Alice"),
        ),
      )
      .catch(() => undefined); // the stream may be gone already
    const reason = await Promise.race([closed, sleep(5_000).then(() => "still open")]);
    assert.notEqual(reason, "still open", "Prosody kept the stream of a component that spoofed a home user");
    await sleep(300);

    assert.equal((await service.current("alice@example.org")).state, "available", "Alice's presence changed");
    assert.equal((await service.current("alice@example.org")).note, null);
    // Each message to the phone carries its real sender; none is Alice's (order is Prosody's).
    assert.deepEqual(toSip.map((m) => [m.body, m.from]).sort(), [
      ["from mallory", "mallory@example.net"],
      ["from the rogue", `mallory@${rogueGrant.jid}`],
    ]);
    // Neither the rogue's nor mallory's presence became a presence source of anyone here.
    for (const kind of ["xmpp"] as const) {
      const persons = await service.store.personsWithSource(kind);
      assert.deepEqual(persons, ["alice@example.org"]);
    }
  });
});
