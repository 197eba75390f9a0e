// Three bridge instances on one Redis behind a real Kamailio running the example config
// (config/kamailio/switchboard-routing.cfg, addresses and paths changed): phones register and
// authenticate with Kamailio, its dispatcher hands chat traffic to the instances in turn, one
// instance holds the XMPP component and the others hand it their XMPP-bound work, and killing the
// holder moves the component to another instance within 5 s without losing an accepted message.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { buildPidf } from "../../components/sip/pidf.js";
import { BridgeProcess } from "../harness/bridge-process.js";
import { FaultScene } from "../harness/fault-scene.js";
import { Kamailio, ProxiedPhone, type SubscriptionDialog } from "../harness/kamailio.js";
import { freePort } from "../harness/net.js";
import { parsePrometheus, sampleValue } from "../harness/prometheus.js";
import { buildResponse, header } from "../harness/sip-socket.js";
import { receivedAtSip, receivedByChatUser, startTraffic } from "../harness/traffic.js";

interface Instance {
  name: string;
  address: string;
  sipPort: number;
  httpPort: number;
  process: BridgeProcess;
}

describe("three instances behind Kamailio's dispatcher", function () {
  this.timeout(120_000);
  let scene: FaultScene;
  let kamailio: Kamailio;
  let bob: ProxiedPhone;
  let carol: ProxiedPhone;
  const instances: Instance[] = [];
  /** Carol's subscriptions to Alice still in force after the presence test. */
  let liveDialogs: SubscriptionDialog[] = [];

  const metric = async (instance: Instance, name: string, labels: Record<string, string> = {}) => {
    const response = await fetch(`http://127.0.0.1:${instance.httpPort}/metrics`);
    return sampleValue(await parsePrometheus(await response.text()), name, labels);
  };
  const holder = (): Instance =>
    instances.find(
      (i) => i.process.running && i.process.lines.entries.some((l) => l.msg === "xmpp component online"),
    ) ?? assert.fail("no instance holds the component");

  before(async function () {
    scene = await FaultScene.start({ label: "kam", redis: true });
    // Each instance on an address of its own (Kamailio tells the bridge's requests by address).
    for (const [i, name] of ["A", "B", "C"].entries())
      instances.push({
        name,
        address: `127.0.0.${11 + i}`,
        sipPort: await freePort({ udp: true }),
        httpPort: await freePort(),
        process: undefined as unknown as BridgeProcess,
      });
    kamailio = await Kamailio.start({
      domain: "example.org",
      bridges: instances.map((i) => `sip:${i.address}:${i.sipPort};transport=udp`),
      users: { bob: "bob-pw", carol: "carol-pw" },
    });
    const base = scene.config();
    for (const instance of instances) {
      instance.process = BridgeProcess.start(scene.dir.file(`${instance.name}.yaml`), {
        ...base,
        sip: {
          ...(base.sip as object),
          listen: [`udp:${instance.address}:${instance.sipPort}`],
          outboundProxy: kamailio.uri,
          // Subscription dialogs' Contact: the proxy, which hands in-dialog requests to any instance.
          dialogContact: `sip:switchboard@127.0.0.1:${kamailio.port}`,
        },
        http: { listen: `127.0.0.1:${instance.httpPort}` },
      });
      // A first, so that it holds the component.
      if (instance.name === "A") await instance.process.online();
    }
    for (const instance of instances)
      await instance.process.lines.waitFor((l) => l.msg === "switchboard started", 15_000);
    bob = await ProxiedPhone.open("bob", "bob-pw", "example.org", kamailio.port);
    carol = await ProxiedPhone.open("carol", "carol-pw", "example.org", kamailio.port);
    // Bob's phone takes the MESSAGEs the bridge sends it; Carol's takes NOTIFYs.
    bob.socket.onMessage((m) => {
      if (m.method === "MESSAGE")
        void bob.socket.send(buildResponse(m, 200, "OK"), m.from.port, m.from.address);
    });
    carol.socket.onMessage((m) => {
      if (m.method === "NOTIFY")
        void carol.socket.send(buildResponse(m, 200, "OK"), m.from.port, m.from.address);
    });
    assert.equal((await bob.register()).status, 200);
    assert.equal((await carol.register()).status, 200);
  });

  after(async function () {
    await bob?.close();
    await carol?.close();
    for (const instance of instances) if (instance.process?.running) await instance.process.stop();
    await kamailio?.stop();
    await scene?.stop();
  });

  it("spreads desk phones' MESSAGEs over all three and delivers every one to the chat user", async function () {
    const alice = await scene.signIn();
    const bodies = Array.from({ length: 30 }, (_, i) => `spread ${i}`);
    for (const body of bodies) assert.equal((await bob.message("sip:alice@example.org", body)).status, 200);
    for (const body of bodies) await alice.waitFor((e) => e.event === "message" && e.body === body, 5_000);
    const counts = await Promise.all(
      instances.map((i) =>
        metric(i, "switchboard_messages_total", { direction: "sip-to-xmpp", outcome: "accepted" }),
      ),
    );
    console.log(
      `      accepted per instance: ${instances.map((i, n) => `${i.name} ${counts[n]}`).join(", ")}`,
    );
    for (const [n, count] of counts.entries())
      assert.ok(count >= 5, `instance ${instances[n]?.name} took ${count} of 30`);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      30,
    );
    // The other way: Alice's message reaches Bob's registered phone through the proxy.
    alice.send({ op: "message", to: `bob@${scene.grant.jid}`, body: "hello bob", id: "hello-bob" });
    const got = await bob.socket.waitFor(
      (m) => m.method === "MESSAGE" && m.body.includes("hello bob"),
      5_000,
    );
    assert.equal(got.from.address, "127.0.0.1", "through Kamailio");
  });

  it("carries presence both ways through every instance; a subscription lives in Redis, not in one instance", async function () {
    const alice = scene.clients[0] ?? (await scene.signIn());
    const subscribed = async () =>
      Promise.all(
        instances.map((i) =>
          metric(i, "switchboard_sip_requests_answered_total", { method: "SUBSCRIBE", code: "200" }),
        ),
      );
    const before = await subscribed();
    // Six subscriptions of Carol's to Alice's presence, made through the instances in turn.
    const dialogs: SubscriptionDialog[] = [];
    for (let n = 0; n < 6; n++) {
      const { answer, dialog } = await carol.subscribe("sip:alice@example.org");
      assert.equal(answer.status, 200);
      dialogs.push(dialog ?? assert.fail("no dialog"));
    }
    const after = await subscribed();
    for (const [n, count] of after.entries())
      assert.ok(count - (before[n] ?? 0) >= 1, `instance ${instances[n]?.name} answered no SUBSCRIBE`);
    const [first, second, third] = dialogs;
    assert.ok(first && second && third);
    assert.equal(
      first.target,
      `sip:switchboard@127.0.0.1:${kamailio.port}`,
      "the dialog's Contact is the proxy's",
    );
    // Refreshes go to whichever instance the proxy picks: each knows the dialog from Redis.
    for (let n = 0; n < 3; n++) assert.equal((await carol.refresh(first, 600)).status, 200, `refresh ${n}`);
    // One subscription ends (in-dialog, through any instance): final NOTIFY, and no more after it.
    assert.equal((await carol.refresh(second, 0)).status, 200);
    await carol.socket.waitFor(
      (m) =>
        m.method === "NOTIFY" &&
        header(m, "call-id") === second.callId &&
        (header(m, "subscription-state") ?? "").startsWith("terminated"),
      5_000,
    );
    // A dialog the bridge never made is not one: 481, whichever instance answers.
    const stranger = { ...third, callId: `stranger-${third.callId}` };
    assert.equal((await carol.refresh(stranger, 600)).status, 481);

    // Alice's change reaches every live dialog once, with CSeqs going up whoever sent them.
    const mark = carol.socket.received.length;
    alice.send({ op: "presence", show: "dnd", status: "Busy in three places" });
    const live = dialogs.filter((d) => d !== second);
    for (const dialog of live)
      await carol.socket.waitFor(
        (m) =>
          m.method === "NOTIFY" &&
          header(m, "call-id") === dialog.callId &&
          m.body.includes("Busy in three places"),
        5_000,
      );
    await sleep(500);
    const later = carol.socket.received.slice(mark).filter((m) => m.method === "NOTIFY");
    for (const dialog of live)
      assert.equal(
        later.filter((m) => header(m, "call-id") === dialog.callId).length,
        1,
        "one NOTIFY per dialog",
      );
    assert.equal(
      later.filter((m) => header(m, "call-id") === second.callId).length,
      0,
      "NOTIFY after the end",
    );
    // In-dialog CSeqs only go up, whichever instance sent, the final NOTIFY's too. A retransmission
    // (the same transaction: the same branch in the top Via) repeats its CSeq; nothing else may.
    for (const dialog of dialogs) {
      const byBranch = new Map<string, number>();
      for (const m of carol.socket.received) {
        if (m.method !== "NOTIFY" || header(m, "call-id") !== dialog.callId) continue;
        const branch = /;branch=([^;,\s]+)/.exec(header(m, "via") ?? "")?.[1] ?? "";
        if (!byBranch.has(branch)) byBranch.set(branch, Number((header(m, "cseq") ?? "").split(" ")[0]));
      }
      const cseqs = [...byBranch.values()];
      for (let i = 1; i < cseqs.length; i++)
        assert.ok((cseqs[i] ?? 0) > (cseqs[i - 1] ?? 0), `CSeqs not going up: ${cseqs.join(" ")}`);
    }
    liveDialogs = live;
    // Bob's phone publishes through each instance in turn; Alice sees each state.
    for (const [n, note] of ["Call one", "Call two", "Call three"].entries()) {
      const answer = await bob.request("PUBLISH", "sip:bob@example.org", {
        to: "<sip:bob@example.org>",
        headers: { Event: "presence", "Content-Type": "application/pidf+xml", Expires: "600" },
        body: buildPidf("sip:bob@example.org", n === 1 ? "away" : "on-the-phone", note),
      });
      assert.equal(answer.status, 200, `PUBLISH ${note}`);
      const view = (await (
        await fetch(`http://127.0.0.1:${instances[n]?.httpPort}/api/presence/sip:bob@example.org`)
      ).json()) as { aggregate: { note: string | null } };
      assert.equal(view.aggregate.note, note);
    }
  });

  it("moves the component within 5 s when its holder is killed, losing no accepted message", async function () {
    const alice = scene.clients[0] ?? (await scene.signIn());
    const first = holder();
    const traffic = startTraffic({
      phone: bob.socket,
      sipPort: kamailio.port,
      from: bob.aor,
      to: "sip:alice@example.org",
      chatUser: () => alice,
      toContact: `bob@${scene.grant.jid}`,
      send: (body) =>
        bob.message("sip:alice@example.org", body).then(
          (answer) => answer.status ?? 0,
          () => "none" as const,
        ),
    });
    await sleep(2_000);
    const killedAt = Date.now();
    await first.process.stop("SIGKILL");
    const next = await Promise.any(
      instances
        .filter((i) => i !== first)
        .map((i) =>
          i.process.lines
            .waitFor((l) => l.msg === "xmpp component online", 10_000)
            .then((line) => ({ instance: i, at: Number(line.time) })),
        ),
    );
    const tookMs = next.at - killedAt;
    console.log(
      `      ${next.instance.name} holds the component ${tookMs} ms after ${first.name} was killed`,
    );
    assert.ok(tookMs <= 5_000, `took ${tookMs} ms`);
    await sleep(3_000);
    const { sipOutcomes, sentAt, toSip } = await traffic.stop();
    await sleep(2_000); // the last deliveries

    const received = receivedByChatUser(scene.clients, `bob@${scene.grant.jid}`);
    const accepted = [...sipOutcomes].filter(([, s]) => s === 200).map(([b]) => b);
    const lost = accepted.filter((b) => !received.has(b));
    const refused = [...sipOutcomes].filter(([, s]) => s !== 200);
    const duplicates = [...received].filter(([, count]) => count > 1).map(([b]) => b);
    const atSip = new Set(receivedAtSip(bob.socket.received));
    console.log(
      `      SIP → XMPP: ${sipOutcomes.size} sent, ${accepted.length} accepted, ${refused.length} refused ` +
        `(${[...new Set(refused.map(([, s]) => s))].join(", ")}), ${lost.length} lost, ${duplicates.length} twice; ` +
        `XMPP → SIP: ${toSip.length} sent, ${toSip.filter((b) => atSip.has(b)).length} delivered`,
    );
    assert.deepEqual(lost, [], "accepted (200) but never delivered");
    assert.ok(
      accepted.some((b) => (sentAt.get(b) ?? 0) > next.at),
      "no MESSAGE accepted after the takeover",
    );
    for (const b of duplicates) assert.ok((sentAt.get(b) ?? 0) < next.at, `${b} delivered twice`);
    // Alice's messages: each reached Bob's phone or came back to her as an error (the component was
    // away), except those the killed instance had taken and not yet sent on.
    const errored = new Set(
      scene.clients.flatMap((c) =>
        c.events.filter((e) => e.event === "message" && e.type === "error").map((e) => String(e.id)),
      ),
    );
    const silent = toSip.filter((b) => !atSip.has(b) && !errored.has(b));
    console.log(
      `      XMPP → SIP: ${errored.size} errors to Alice, ${silent.length} neither: ${silent.join(" ")}`,
    );
    // Those the killed instance had read from its socket and not yet sent on are gone with it (only a
    // receipt, XEP-0184, would tell Alice): at most the few in flight at the kill (one every 40 ms).
    assert.ok(silent.length <= 3, `neither delivered nor refused: ${silent.join(" ")}`);
    // Alice's messages: delivered before the kill, and again once another instance holds the component.
    const last = toSip.at(-1) ?? assert.fail("no XMPP → SIP traffic");
    assert.ok(atSip.has("x-1"), "XMPP → SIP before the kill");
    await bob.socket.waitFor((m) => m.method === "MESSAGE" && m.body.trim() === last, 5_000);

    // The subscriptions go on under the new holder: Alice's next change reaches each of them.
    assert.ok(liveDialogs.length > 0, "the presence test left no subscription");
    alice.send({ op: "presence", show: "away", status: "After the takeover" });
    for (const dialog of liveDialogs)
      await carol.socket.waitFor(
        (m) =>
          m.method === "NOTIFY" &&
          header(m, "call-id") === dialog.callId &&
          m.body.includes("After the takeover"),
        5_000,
      );
  });
});
