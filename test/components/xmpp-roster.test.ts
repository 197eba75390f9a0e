// Colleagues' phones in rosters: written with the XEP-0356 roster permission, offered with XEP-0144
// without it. Real Prosody, slixmpp clients.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { XmppGateway } from "../../components/xmpp/xmpp-gateway.js";
import { startGateway } from "../harness/gateway.js";
import { ConfigDirectory } from "../../src/directory/config-directory.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import { Prosody } from "../harness/prosody.js";
import { SlixmppClient } from "../harness/xmpp-client.js";

const people = [
  { uid: "alice", displayName: "Alice Archer", extension: "8001", numbers: [] },
  { uid: "bob", displayName: "Bob Baker", extension: "8002", numbers: [] },
];

describe("colleagues' phones in rosters (xmpp.rosterPhones)", function () {
  let prosody: Prosody;
  const gateways: XmppGateway[] = [];
  const clients: SlixmppClient[] = [];

  async function gatewayOn(
    privileged: boolean,
    enabled = true,
  ): Promise<{ gateway: XmppGateway; jid: string; service: PresenceService }> {
    const grant = prosody.takeComponent({ privileged });
    const { gateway, service } = await startGateway(prosody, grant, {
      directory: new ConfigDirectory(people, prosody.domain),
      rosterPhones: { enabled, group: "Phones" },
    });
    gateways.push(gateway);
    await sleep(400); // the privilege advertisement (or its absence) is known
    return { gateway, jid: grant.jid, service };
  }

  async function login(user: string): Promise<SlixmppClient> {
    const client = await SlixmppClient.connect(
      `${user}@example.org`,
      `${user}-pw`,
      "127.0.0.1",
      prosody.c2sPort,
    );
    clients.push(client);
    return client;
  }

  before(async function () {
    prosody = await Prosody.start({ components: 2, plainComponents: 2 });
    for (const user of ["alice", "bob", "carol"]) await prosody.register(user, `${user}-pw`);
  });
  after(async function () {
    for (const client of clients) await client.close();
    for (const gateway of gateways) await gateway.stop();
    await prosody?.stop();
  });

  it("writes the other colleagues' phones into a user's roster where XEP-0356 allows it, with their presence", async function () {
    const { jid, service } = await gatewayOn(true);
    const alice = await login("alice");
    const bobPhone = `bob@${jid}`;
    await alice.waitFor((e) => e.event === "presence" && e.from === bobPhone, 5_000);
    const { items } = await alice.query({ op: "roster" });
    assert.deepEqual(items?.[bobPhone], { name: "Bob Baker", subscription: "to", groups: ["Phones"] });
    assert.equal(items?.[`alice@${jid}`], undefined, "not her own phone");
    assert.deepEqual(await service.store.xmppSubscribers(bobPhone), ["alice@example.org"]);
  });

  it("offers them with XEP-0144 roster item exchange where the server grants no roster permission", async function () {
    const { jid } = await gatewayOn(false);
    const bob = await login("bob");
    // Without XEP-0356 the gateway learns of bob when he subscribes to it (XEP-0100 §4.1.1).
    bob.send({ op: "presence", to: jid, type: "subscribe" });
    const offer = await bob.waitFor((e) => e.event === "message" && e.from === jid, 5_000);
    assert.match(offer.xml ?? "", /<x xmlns="http:\/\/jabber.org\/protocol\/rosterx">/);
    assert.match(offer.xml ?? "", new RegExp(`<item [^>]*jid="alice@${jid.replaceAll(".", "\\.")}"`));
    assert.match(offer.xml ?? "", /name="Alice Archer"/);
    assert.doesNotMatch(offer.xml ?? "", new RegExp(`jid="bob@`));
  });

  it("does nothing when it is off (the default)", async function () {
    const { jid } = await gatewayOn(false, false);
    const carol = await login("carol");
    carol.send({ op: "presence", to: jid, type: "subscribe" });
    await carol.waitFor((e) => e.event === "presence" && e.from === jid && e.type === "subscribed");
    await sleep(500);
    assert.ok(!carol.events.some((e) => e.event === "message" && e.from === jid), "no roster offer");
    assert.deepEqual((await carol.query({ op: "roster" })).items?.[`alice@${jid}`], undefined);
  });
});
