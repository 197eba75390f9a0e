// Presence SUBSCRIBE/NOTIFY (RFC 6665, RFC 3856) against a raw UDP watcher: the dialog, the first
// NOTIFY with the current PIDF, a NOTIFY on every change, refresh, unsubscribe, and the refusals.
import assert from "node:assert/strict";
import { buildPidf, parsePidf } from "../../components/sip/pidf.js";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { setTimeout as sleep } from "node:timers/promises";
import { Baresip } from "../harness/sip-clients.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { buildRequest, header, UdpSipSocket, type RawSipMessage } from "../harness/sip-socket.js";

describe("SIP presence SUBSCRIBE/NOTIFY (raw sockets)", function () {
  let endpoint: SipEndpoint;
  let port: number;
  let watcher: UdpSipSocket;
  let phone: UdpSipSocket;
  const presence = new PresenceService(new MemoryPresenceStore());

  before(async function () {
    ({ endpoint, port } = await startSipEndpoint({ presence }));
    watcher = await UdpSipSocket.open();
    watcher.autoAnswer(["NOTIFY"], 200, "OK");
    phone = await UdpSipSocket.open();
  });
  after(async function () {
    await watcher?.close();
    await phone?.close();
    await endpoint?.stop();
  });

  const callId = "watch-1@127.0.0.1";
  let cseq = 0;
  function subscribe(
    options: { expires?: string; toTag?: string; from?: string; event?: string; callId?: string } = {},
  ): string {
    return buildRequest({
      method: "SUBSCRIBE",
      uri: "sip:alice@example.org",
      via: `UDP 127.0.0.1:${watcher.port}`,
      from: options.from ?? "<sip:bob@example.org>",
      to: `<sip:alice@example.org>${options.toTag ? `;tag=${options.toTag}` : ""}`,
      callId: options.callId ?? callId,
      cseq: ++cseq,
      headers: {
        Event: options.event ?? "presence",
        Expires: options.expires ?? "600",
        Contact: `<sip:bob@127.0.0.1:${watcher.port}>`,
        Accept: "application/pidf+xml",
      },
    }).replace(/;tag=[a-z0-9]+\r\n/, ";tag=watcher\r\n"); // a stable From tag for the dialog
  }
  const notifies = (): RawSipMessage[] => watcher.received.filter((m) => m.method === "NOTIFY");
  async function nextNotify(after: number): Promise<RawSipMessage> {
    return watcher.waitFor((m) => m.method === "NOTIFY" && notifies().indexOf(m) >= after, 3_000);
  }

  it("answers 200, then NOTIFYs the current PIDF and every change", async function () {
    await watcher.send(subscribe(), port);
    const ok = await watcher.waitFor(
      (m) => m.status !== undefined && header(m, "cseq") === `${cseq} SUBSCRIBE`,
    );
    assert.equal(ok.status, 200);
    assert.equal(header(ok, "expires"), "600");
    assert.ok(header(ok, "contact"));
    const first = await nextNotify(0);
    assert.match(header(first, "subscription-state") ?? "", /^active;expires=\d+/);
    assert.equal(header(first, "event"), "presence");
    assert.equal(header(first, "call-id"), callId);
    assert.deepEqual(parsePidf(first.body), {
      entity: "sip:alice@example.org",
      basic: "closed",
      activities: [],
      note: null,
    });

    const before = notifies().length;
    await phone.send(
      buildRequest({
        method: "PUBLISH",
        uri: "sip:alice@example.org",
        via: `UDP 127.0.0.1:${phone.port}`,
        from: "<sip:alice@example.org>",
        to: "<sip:alice@example.org>",
        headers: { Event: "presence", "Content-Type": "application/pidf+xml" },
        body: buildPidf("sip:alice@example.org", "dnd", "In a meeting"),
      }),
      port,
    );
    const change = await nextNotify(before);
    const pidf = parsePidf(change.body);
    assert.deepEqual([pidf.basic, pidf.activities, pidf.note], ["open", ["busy"], "In a meeting"]);
    assert.match(change.body, /<rpid:busy\/>/); // the literal prefix some phones look for
  });

  it("refreshes within the dialog and ends it with Expires: 0 and a terminated NOTIFY", async function () {
    const toTag = /;tag=([^;\s]+)/.exec(header(notifies()[0] as RawSipMessage, "from") ?? "")?.[1] ?? "";
    const before = notifies().length;
    await watcher.send(subscribe({ toTag, expires: "300" }), port);
    const refreshed = await watcher.waitFor(
      (m) => m.status !== undefined && header(m, "cseq") === `${cseq} SUBSCRIBE`,
    );
    assert.equal(refreshed.status, 200);
    assert.equal(header(refreshed, "expires"), "300");
    await nextNotify(before);

    const beforeEnd = notifies().length;
    await watcher.send(subscribe({ toTag, expires: "0" }), port);
    assert.equal(
      (await watcher.waitFor((m) => m.status !== undefined && header(m, "cseq") === `${cseq} SUBSCRIBE`))
        .status,
      200,
    );
    const last = await nextNotify(beforeEnd);
    assert.match(header(last, "subscription-state") ?? "", /^terminated/);
    assert.equal(endpoint.notifier?.size, 0);

    await watcher.send(subscribe({ toTag, expires: "300" }), port);
    assert.equal(
      (await watcher.waitFor((m) => m.status !== undefined && header(m, "cseq") === `${cseq} SUBSCRIBE`))
        .status,
      481,
    );
  });

  it("refuses another domain's watcher (403), another event package (489), too short an expiry (423)", async function () {
    const cases: [Parameters<typeof subscribe>[0], number][] = [
      [{ from: "<sip:eve@example.net>", callId: "w2" }, 403],
      [{ event: "message-summary", callId: "w3" }, 489],
      [{ expires: "5", callId: "w4" }, 423],
    ];
    for (const [options, status] of cases) {
      await watcher.send(subscribe(options), port);
      const answer = await watcher.waitFor(
        (m) => m.status !== undefined && header(m, "call-id") === options?.callId,
      );
      assert.equal(answer.status, status, JSON.stringify(options));
    }
  });

  it("serves BLF keys: Event: dialog NOTIFYs dialog-info, confirmed while busy", async function () {
    const before = notifies().length;
    await watcher.send(subscribe({ event: "dialog", callId: "blf-1" }), port);
    assert.equal(
      (await watcher.waitFor((m) => m.status !== undefined && header(m, "call-id") === "blf-1")).status,
      200,
    );
    const first = await watcher.waitFor(
      (m) => m.method === "NOTIFY" && header(m, "call-id") === "blf-1" && notifies().indexOf(m) >= before,
    );
    assert.equal(header(first, "event"), "dialog");
    assert.equal(header(first, "content-type"), "application/dialog-info+xml");
    // Alice published dnd above: her BLF key shows a confirmed dialog.
    assert.match(first.body, /<state>confirmed<\/state>/);
    const count = notifies().length;
    await presence.report("alice@example.org", {
      source: { kind: "pbx-custom" },
      state: "available",
      note: null,
      updatedAt: Date.now() + 1_000,
      expiresAt: null,
    });
    const idle = await watcher.waitFor(
      (m) => m.method === "NOTIFY" && header(m, "call-id") === "blf-1" && notifies().indexOf(m) >= count,
    );
    assert.match(idle.body, /<state>terminated<\/state>/);
  });

  it("keeps subscriptions in the store: a restarted endpoint goes on notifying in the same dialog", async function () {
    const kept = new PresenceService(new MemoryPresenceStore());
    const first = await startSipEndpoint({ presence: kept });
    const count = notifies().length;
    await watcher.send(subscribe({ callId: "restart-1" }), first.port);
    const before = await nextNotify(count);
    assert.equal(header(before, "call-id"), "restart-1");
    await first.endpoint.stop();

    const second = await startSipEndpoint({ presence: kept });
    try {
      const afterRestart = notifies().length;
      assert.equal(await second.endpoint.notifier?.restore(), 1);
      const resumed = await nextNotify(afterRestart);
      assert.equal(header(resumed, "call-id"), "restart-1");
      assert.equal(header(resumed, "from"), header(before, "from")); // the same dialog: our tag kept
      const cseqOf = (m: RawSipMessage): number => Number((header(m, "cseq") ?? "").split(" ")[0]);
      assert.equal(cseqOf(resumed), cseqOf(before) + 1);
      assert.match(header(resumed, "subscription-state") ?? "", /^active;expires=\d+/);

      const beforeChange = notifies().length;
      await kept.report("alice@example.org", {
        source: { kind: "xmpp", resource: "phone" },
        state: "away",
        note: "Back soon",
        updatedAt: Date.now(),
        expiresAt: null,
      });
      const change = await watcher.waitFor(
        (m) =>
          m.method === "NOTIFY" &&
          header(m, "call-id") === "restart-1" &&
          notifies().indexOf(m) >= beforeChange,
      );
      assert.equal(parsePidf(change.body).note, "Back soon");
      assert.equal(cseqOf(change), cseqOf(resumed) + 1);
    } finally {
      await second.endpoint.stop();
    }
  });

  it("baresip SUBSCRIBEs to a colleague and shows the state the bridge NOTIFYs", async function () {
    const phoneCall = new PresenceService(new MemoryPresenceStore());
    const bridge = await startSipEndpoint({ presence: phoneCall });
    await phoneCall.report("carol@example.org", {
      source: { kind: "pbx-device" },
      device: "inuse",
      updatedAt: Date.now(),
      expiresAt: null,
    });
    // baresip's presence module subscribes to contacts marked ;presence=p2p, through its outbound proxy.
    const baresip = await Baresip.start({
      user: "bob",
      domain: "example.org",
      watch: ["sip:carol@example.org"],
      outbound: `sip:127.0.0.1:${bridge.port};lr`,
    });
    const shown = async (expected: RegExp): Promise<string> => {
      let listing = "";
      for (let i = 0; i < 50 && !expected.test(listing); i++) {
        await sleep(100);
        listing = await baresip.command("contacts");
      }
      return listing;
    };
    try {
      // On the phone: PIDF open with <rpid:on-the-phone/>, which baresip shows as Busy.
      assert.match(await shown(/Busy.*carol@example\.org/), /Busy.*carol@example\.org/);
      await phoneCall.report("carol@example.org", {
        source: { kind: "pbx-device" },
        device: "idle",
        updatedAt: Date.now(),
        expiresAt: null,
      });
      await phoneCall.report("carol@example.org", {
        source: { kind: "xmpp", resource: "desk" },
        state: "available",
        note: null,
        updatedAt: Date.now(),
        expiresAt: null,
      });
      assert.match(await shown(/Online.*carol@example\.org/), /Online.*carol@example\.org/);
    } finally {
      await baresip.stop();
      await bridge.endpoint.stop();
    }
  });
});
