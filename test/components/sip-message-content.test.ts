// What a MESSAGE may carry (RFC 3428 §7): text/plain in the charset it names, message/cpim (RFC 3862),
// and RFC 3994 isComposing, both ways to and from XEP-0085 chat states.
import assert from "node:assert/strict";
import { parseIsComposing } from "../../components/sip/is-composing.js";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { XmppSideRecorder } from "../harness/message-recorder.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import {
  buildRequest,
  header,
  TcpSipSocket,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";

const COMPOSING = (state: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>${state}</state><contenttype>text/plain</contenttype>${state === "active" ? "<refresh>60</refresh>" : ""}</isComposing>`;

describe("SIP MESSAGE content: charsets, CPIM, isComposing", function () {
  let endpoint: SipEndpoint;
  let port: number;
  let peer: UdpSipSocket;
  const xmpp = new XmppSideRecorder();

  before(async function () {
    peer = await UdpSipSocket.open();
    ({ endpoint, port } = await startSipEndpoint({
      listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
      toXmpp: xmpp,
      outboundProxy: `sip:127.0.0.1:${peer.port};lr`,
    }));
  });
  after(async function () {
    await peer?.close();
    await endpoint?.stop();
  });

  let n = 0;
  /** Sends a MESSAGE whose body is exactly `body` (bytes), returns the answer. */
  async function send(
    contentType: string,
    body: Buffer | string,
  ): Promise<{ answer: RawSipMessage; callId: string }> {
    const callId = `content-${++n}@test`;
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const head = buildRequest({
      method: "MESSAGE",
      uri: "sip:alice@example.org",
      via: `UDP 127.0.0.1:${peer.port}`,
      from: "<sip:bob@example.org>",
      to: "<sip:alice@example.org>",
      callId,
      cseq: 1,
      headers: { "Content-Type": contentType },
      body: "",
    }).replace(/Content-Length: 0\r\n\r\n$/, `Content-Length: ${bytes.length}\r\n\r\n`);
    // Exactly these bytes: the body may not be UTF-8.
    await peer.send(Buffer.concat([Buffer.from(head, "utf8"), bytes]), port);
    const answer = await peer.waitFor((m) => m.status !== undefined && header(m, "call-id") === callId);
    return { answer, callId };
  }
  const delivered = (callId: string) => xmpp.received.find((m) => m.id === callId);

  it("decodes text/plain in the charset it names, UTF-8 by default", async function () {
    const latin1 = await send("text/plain; charset=ISO-8859-1", Buffer.from("Grüße, café", "latin1"));
    assert.equal(latin1.answer.status, 200);
    assert.equal(delivered(latin1.callId)?.body, "Grüße, café");
    const quoted = await send('text/plain;charset="windows-1252"', Buffer.from([0x80, 0x20, 0x35]));
    assert.equal(delivered(quoted.callId)?.body, "€ 5");
    const utf8 = await send("text/plain", "naïve ✓");
    assert.equal(delivered(utf8.callId)?.body, "naïve ✓");
  });

  it("decodes the charset over TCP too, where the stream is framed in bytes", async function () {
    const tcp = await TcpSipSocket.connect(
      endpoint.transports.addresses().find((a) => a.transport === "tcp")?.port ?? 0,
    );
    try {
      const body = Buffer.from("Grüße über TCP", "latin1");
      const head = buildRequest({
        method: "MESSAGE",
        uri: "sip:alice@example.org",
        via: `TCP 127.0.0.1:${tcp.localPort}`,
        from: "<sip:bob@example.org>",
        to: "<sip:alice@example.org>",
        callId: "latin1-tcp@test",
        cseq: 1,
        headers: { "Content-Type": "text/plain; charset=iso-8859-1" },
        body: "",
      }).replace(/Content-Length: 0\r\n\r\n$/, `Content-Length: ${body.length}\r\n\r\n`);
      await tcp.sendBytes(Buffer.concat([Buffer.from(head), body]));
      const answer = await tcp.waitFor(
        (m) => m.status !== undefined && header(m, "call-id") === "latin1-tcp@test",
      );
      assert.equal(answer.status, 200);
      assert.equal(delivered("latin1-tcp@test")?.body, "Grüße über TCP");
    } finally {
      tcp.close();
    }
  });

  it("answers 415 for an unknown charset and 400 for bytes that are not what the charset says", async function () {
    const unknown = await send("text/plain; charset=x-klingon", "qapla'");
    assert.equal(unknown.answer.status, 415);
    assert.equal(
      header(unknown.answer, "accept"),
      "text/plain, message/cpim, application/im-iscomposing+xml",
    );
    const invalid = await send("text/plain; charset=UTF-8", Buffer.from([0x68, 0xc3, 0x28]));
    assert.equal(invalid.answer.status, 400);
    assert.equal(delivered(unknown.callId), undefined);
    assert.equal(delivered(invalid.callId), undefined);
  });

  it("unwraps message/cpim: text, and an isComposing inside", async function () {
    const cpim = (contentType: string, content: string): string =>
      [
        "From: Bob <sip:bob@example.org>",
        "To: Alice <sip:alice@example.org>",
        "DateTime: 2026-11-29T10:00:00Z",
        "",
        `Content-Type: ${contentType}`,
        "",
        content,
      ].join("\r\n");
    const text = await send("message/cpim", cpim("text/plain; charset=utf-8", "wrapped ✓"));
    assert.equal(text.answer.status, 200);
    assert.equal(delivered(text.callId)?.body, "wrapped ✓");
    const composing = await send("message/cpim", cpim("application/im-iscomposing+xml", COMPOSING("active")));
    assert.equal(composing.answer.status, 200);
    assert.deepEqual(delivered(composing.callId), {
      id: composing.callId,
      from: "bob@example.org",
      to: "alice@example.org",
      chatState: "composing",
    });
    const latin1 = await send(
      "message/cpim",
      Buffer.concat([
        Buffer.from(
          "From: <sip:bob@example.org>\r\n\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\n",
        ),
        Buffer.from("café crème", "latin1"),
      ]),
    );
    assert.equal(latin1.answer.status, 200);
    assert.equal(delivered(latin1.callId)?.body, "café crème");
    const image = await send("message/cpim", cpim("image/png", "PNG"));
    assert.equal(image.answer.status, 415);
    const broken = await send("message/cpim", "no headers at all");
    assert.equal(broken.answer.status, 400);
  });

  it("maps isComposing to chat states: active is composing, idle is paused", async function () {
    const active = await send("application/im-iscomposing+xml", COMPOSING("active"));
    assert.equal(active.answer.status, 200);
    assert.equal(delivered(active.callId)?.chatState, "composing");
    assert.equal(delivered(active.callId)?.body, undefined);
    const idle = await send("application/im-iscomposing+xml", COMPOSING("idle"));
    assert.equal(delivered(idle.callId)?.chatState, "paused");
    const hostile = await send(
      "application/im-iscomposing+xml",
      '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>&e;</state></isComposing>',
    );
    assert.equal(hostile.answer.status, 400);
  });

  it("sends chat states as isComposing: composing is active with a refresh, then paused is idle; idle only after active", async function () {
    peer.autoAnswer(["MESSAGE"], 200, "OK");
    for (const [chatState, expected] of [
      ["composing", { state: "active", refresh: 60 }],
      ["paused", { state: "idle" }],
    ] as const) {
      const id = `state-${chatState}`;
      const count = peer.received.length;
      assert.equal(
        await endpoint.sendMessage({ id, from: "alice@example.org", to: "bob@example.org", chatState }),
        "delivered",
      );
      const request = peer.received
        .slice(count)
        .find(
          (m) => m.method === "MESSAGE" && header(m, "content-type") === "application/im-iscomposing+xml",
        );
      assert.ok(request, `no isComposing MESSAGE for ${chatState}`);
      const parsed = parseIsComposing(request.body);
      assert.equal(parsed?.state, expected.state);
      assert.equal(parsed?.refresh, "refresh" in expected ? expected.refresh : undefined);
    }
    // Nothing was being composed any more: a bare <active/> or <gone/> sends nothing.
    const count = peer.received.length;
    for (const chatState of ["active", "gone"] as const) {
      assert.equal(
        await endpoint.sendMessage({
          id: `state-${chatState}`,
          from: "alice@example.org",
          to: "bob@example.org",
          chatState,
        }),
        "accepted",
      );
    }
    assert.equal(peer.received.slice(count).filter((m) => m.method === "MESSAGE").length, 0);
  });
});
