// The message handler at the port: stanzas Prosody would never pass from a client (characters XML
// forbids, decoded from character references by the component's parser) and the refusals.
import assert from "node:assert/strict";
import { xml, type Element } from "@xmpp/component";
import { XmppMessageHandler } from "../../components/xmpp/message-handler.js";
import { silentLogger } from "../../src/ports/logger.js";
import type { ChatMessage, MessageSink } from "../../src/ports/message-port.js";

const domains = { homeDomain: "example.org", gatewayDomain: "sip.example.org" };

const delivered: MessageSink = { deliver: () => Promise.resolve("delivered") };

/** `sink` null: the SIP side is not connected. */
function setup(sink: MessageSink | null = delivered) {
  const sent: Element[] = [];
  const handler = new XmppMessageHandler({
    domains,
    sink: sink ?? undefined,
    send: (stanza) => {
      sent.push(stanza);
      return Promise.resolve();
    },
    log: silentLogger,
  });
  return { handler, sent };
}

function chat(body: string, attrs: Record<string, string> = {}): Element {
  return xml(
    "message",
    { from: "alice@example.org/laptop", to: "bob@sip.example.org", type: "chat", id: "x1", ...attrs },
    xml("body", {}, body),
  );
}

const condition = (stanza: Element | undefined): string | undefined =>
  stanza?.getChild("error")?.getChildElements()[0]?.name;

describe("XMPP message handler", function () {
  it("removes characters XML forbids before the message goes on", async function () {
    const got: ChatMessage[] = [];
    const { handler, sent } = setup({
      deliver: (m) => {
        got.push(m);
        return Promise.resolve("accepted");
      },
    });
    await handler.onMessage(chat("a\u0000b\u0007c\u001fd\uFFFFe"));
    assert.equal(got[0]?.body, "abcde");
    assert.equal(sent.length, 0);
  });

  it("refuses a 1 MB body with policy-violation and passes nothing on", async function () {
    const got: ChatMessage[] = [];
    const { handler, sent } = setup({
      deliver: (m) => {
        got.push(m);
        return Promise.resolve("delivered");
      },
    });
    await handler.onMessage(chat("x".repeat(1024 * 1024)));
    assert.equal(got.length, 0);
    assert.equal(sent[0]?.attrs.type, "error");
    assert.equal(sent[0]?.attrs.to, "alice@example.org/laptop");
    assert.equal(condition(sent[0]), "policy-violation");
  });

  const refusals: [string, Element, MessageSink | null, string][] = [
    ["a groupchat message", chat("hi", { type: "groupchat" }), delivered, "service-unavailable"],
    ["a message while the SIP side is not connected", chat("hi"), null, "service-unavailable"],
    [
      "a message to the gateway itself",
      chat("hi", { to: "sip.example.org" }),
      delivered,
      "service-unavailable",
    ],
    [
      "a message to a non-canonical contact",
      chat("hi", { to: "bob\\40example.org@sip.example.org" }),
      delivered,
      "jid-malformed",
    ],
    [
      "a failure without a condition",
      chat("hi"),
      { deliver: () => Promise.reject(new Error("boom")) },
      "internal-server-error",
    ],
  ];
  for (const [what, stanza, sink, expected] of refusals) {
    it(`answers ${what} with ${expected}`, async function () {
      const { handler, sent } = setup(sink);
      await handler.onMessage(stanza);
      assert.equal(condition(sent[0]), expected);
    });
  }

  it("ignores headlines (RFC 6121 §8.5.2.1)", async function () {
    const got: ChatMessage[] = [];
    const { handler, sent } = setup({
      deliver: (m) => {
        got.push(m);
        return Promise.resolve("delivered");
      },
    });
    await handler.onMessage(chat("news", { type: "headline" }));
    assert.deepEqual([got.length, sent.length], [0, 0]);
  });

  it("refuses a message from SIP to the gateway domain (a loop) and to no JID", async function () {
    const { handler, sent } = setup();
    await assert.rejects(
      handler.deliver({ id: "1", from: "bob@example.org", to: "carol@sip.example.org", body: "hi" }),
      {
        condition: "loop-detected",
      },
    );
    await assert.rejects(
      handler.deliver({ id: "2", from: "bob@example.org", to: "not a jid@", body: "hi" }),
      {
        condition: "malformed-address",
      },
    );
    assert.equal(sent.length, 0);
  });

  it("ignores message errors and messages with nothing to relay", async function () {
    const { handler, sent } = setup();
    await handler.onMessage(
      xml("message", { from: "alice@example.org/l", to: "bob@sip.example.org", type: "error" }),
    );
    await handler.onMessage(
      xml("message", { from: "alice@example.org/l", to: "bob@sip.example.org", type: "chat" }),
    );
    assert.equal(sent.length, 0);
  });

  it("refuses a message from SIP without body or chat state", async function () {
    const { handler } = setup();
    await assert.rejects(handler.deliver({ id: "1", from: "bob@example.org", to: "alice@example.org" }), {
      condition: "bad-request",
    });
  });
});
