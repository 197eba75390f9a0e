// PUBLISH (RFC 3903) lifecycle against raw UDP: initial, refresh, modify, remove, the refusals, and
// hostile PIDF bodies (XML bombs, external entities) — each answered, none taking the process down.
import assert from "node:assert/strict";
import { SwitchboardError } from "../../src/domain/errors.js";
import { buildPidf, parsePidf } from "../../components/sip/pidf.js";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { buildRequest, header, UdpSipSocket, type RawSipMessage } from "../harness/sip-socket.js";

describe("SIP PUBLISH (raw sockets)", function () {
  let endpoint: SipEndpoint;
  let port: number;
  let socket: UdpSipSocket;
  const presence = new PresenceService(new MemoryPresenceStore());

  before(async function () {
    ({ endpoint, port } = await startSipEndpoint({ presence }));
    socket = await UdpSipSocket.open();
  });
  after(async function () {
    await socket?.close();
    await endpoint?.stop();
  });

  let n = 0;
  async function publish(headers: Record<string, string>, body?: string): Promise<RawSipMessage> {
    const callId = `pub-${++n}@127.0.0.1`;
    await socket.send(
      buildRequest({
        method: "PUBLISH",
        uri: "sip:alice@example.org",
        via: `UDP 127.0.0.1:${socket.port}`,
        from: "<sip:alice@example.org>",
        to: "<sip:alice@example.org>",
        callId,
        headers: {
          Event: "presence",
          ...(body ? { "Content-Type": "application/pidf+xml" } : {}),
          ...headers,
        },
        body,
      }),
      port,
    );
    return socket.waitFor((m) => m.status !== undefined && header(m, "call-id") === callId);
  }
  const state = async (): Promise<string> => (await presence.current("alice@example.org")).state;

  it("creates, refreshes, modifies and removes a publication, each a presence source with its expiry", async function () {
    const created = await publish({ Expires: "120" }, buildPidf("sip:alice@example.org", "away", "Lunch"));
    assert.equal(created.status, 200);
    const etag1 = header(created, "sip-etag");
    assert.ok(etag1);
    assert.equal(header(created, "expires"), "120");
    assert.equal(await state(), "away");
    const [record] = (await presence.snapshot("alice@example.org")).records;
    assert.equal(record?.source.kind, "sip-publish");
    assert.ok(record && record.expiresAt !== null && record.expiresAt - Date.now() > 100_000);

    const refreshed = await publish({ Expires: "3600", "SIP-If-Match": etag1 });
    assert.equal(refreshed.status, 200);
    const etag2 = header(refreshed, "sip-etag");
    assert.ok(etag2 && etag2 !== etag1, "a new entity tag on refresh");
    assert.equal(await state(), "away");

    assert.equal((await publish({ "SIP-If-Match": etag1 })).status, 412, "the old tag is gone");

    const modified = await publish(
      { "SIP-If-Match": etag2 ?? "" },
      buildPidf("sip:alice@example.org", "on-the-phone", null),
    );
    assert.equal(modified.status, 200);
    assert.equal(await state(), "on-the-phone");
    assert.equal((await presence.snapshot("alice@example.org")).records.length, 1, "still one source");

    const removed = await publish({ Expires: "0", "SIP-If-Match": header(modified, "sip-etag") ?? "" });
    assert.equal(removed.status, 200);
    assert.equal(await state(), "unavailable");
  });

  it("answers 489 for another event, 423 with Min-Expires for too short, 412 for an unknown tag, 415 for other bodies", async function () {
    assert.equal((await publish({ Event: "dialog" }, buildPidf("x", "away", null))).status, 489);
    const brief = await publish({ Expires: "10" }, buildPidf("sip:alice@example.org", "away", null));
    assert.equal(brief.status, 423);
    assert.equal(header(brief, "min-expires"), "60");
    assert.equal((await publish({ "SIP-If-Match": "nonsense" })).status, 412);
    assert.equal((await publish({ "Content-Type": "text/plain" }, "away")).status, 415);
  });

  it("refuses hostile or broken PIDF with 400 and keeps serving", async function () {
    const bombs = [
      `<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><presence xmlns="urn:ietf:params:xml:ns:pidf">&b;</presence>`,
      `<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><presence xmlns="urn:ietf:params:xml:ns:pidf">&xxe;</presence>`,
      `<presence xmlns="urn:ietf:params:xml:ns:pidf">&undefined;</presence>`,
      `<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"><status><basic>open</basic>`,
      `<html/>`,
    ];
    for (const body of bombs) {
      const answer = await publish({}, body);
      assert.equal(answer.status, 400, body.slice(0, 60));
    }
    assert.equal(
      (await publish({ Expires: "60" }, buildPidf("sip:alice@example.org", "dnd", "Busy"))).status,
      200,
    );
    assert.equal(await state(), "dnd");
  });

  it("builds PIDF that reads back the same, with the conventional prefixes", function () {
    const doc = buildPidf("sip:alice@example.org", "dnd", "In a <meeting> & more");
    assert.match(doc, /<rpid:busy\/>/);
    assert.match(doc, /<dm:note>/);
    assert.deepEqual(parsePidf(doc), {
      entity: "sip:alice@example.org",
      basic: "open",
      activities: ["busy"],
      note: "In a <meeting> & more",
    });
  });

  it("answers 503 when the store cannot take the publication, and the tag stays usable", async function () {
    const store = new MemoryPresenceStore();
    const flaky = new PresenceService(store);
    const failing = await startSipEndpoint({ presence: flaky });
    const peer = await UdpSipSocket.open();
    try {
      const send = async (
        headers: Record<string, string>,
        body: string | undefined,
      ): Promise<RawSipMessage> => {
        const callId = `flaky-${++n}@127.0.0.1`;
        await peer.send(
          buildRequest({
            method: "PUBLISH",
            uri: "sip:alice@example.org",
            via: `UDP 127.0.0.1:${peer.port}`,
            from: "<sip:alice@example.org>",
            to: "<sip:alice@example.org>",
            callId,
            headers: {
              Event: "presence",
              ...(body ? { "Content-Type": "application/pidf+xml" } : {}),
              ...headers,
            },
            ...(body ? { body } : {}),
          }),
          failing.port,
        );
        return peer.waitFor((m) => m.status !== undefined && header(m, "call-id") === callId);
      };
      const first = await send({ Expires: "600" }, buildPidf("sip:alice@example.org", "away", null));
      assert.equal(first.status, 200);
      const etag = header(first, "sip-etag") ?? "";
      const put = store.putRecord.bind(store);
      store.putRecord = () => Promise.reject(new SwitchboardError("service-unavailable", "store away"));
      const refused = await send(
        { Expires: "600", "SIP-If-Match": etag },
        buildPidf("sip:alice@example.org", "dnd", null),
      );
      assert.equal(refused.status, 503);
      store.putRecord = put;
      const again = await send(
        { Expires: "600", "SIP-If-Match": etag },
        buildPidf("sip:alice@example.org", "dnd", null),
      );
      assert.equal(again.status, 200, "the tag survived the failed write");
      assert.equal((await flaky.current("alice@example.org")).state, "dnd");
    } finally {
      await peer.close();
      await failing.endpoint.stop();
    }
  });
});
