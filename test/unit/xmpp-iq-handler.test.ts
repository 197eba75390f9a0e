// The IQ handler at the port: what Prosody would not let a client send (several payloads) and the
// answers' structure, compared structurally.
import assert from "node:assert/strict";
import { xml, type Element } from "@xmpp/component";
import { handleIq, promptToJid } from "../../components/xmpp/iq-handler.js";

const identity = {
  gatewayDomain: "sip.example.org",
  homeDomain: "example.org",
  name: "Switchboard",
  version: "1.2.3",
};

function iq(type: string, ...children: Element[]): Element {
  return xml("iq", { type, id: "q1", from: "alice@example.org/phone", to: "sip.example.org" }, ...children);
}

function condition(reply: Element | null): string | undefined {
  return reply?.getChild("error")?.getChildElements()[0]?.name;
}

describe("XMPP IQ handler", function () {
  it("answers bad-request to a get with no payload or two payloads", function () {
    assert.equal(condition(handleIq(iq("get"), identity)), "bad-request");
    const two = iq("get", xml("ping", { xmlns: "urn:xmpp:ping" }), xml("ping", { xmlns: "urn:xmpp:ping" }));
    const reply = handleIq(two, identity);
    assert.equal(reply?.attrs.type, "error");
    assert.equal(reply?.getChild("error")?.attrs.type, "modify");
    assert.equal(condition(reply), "bad-request");
  });

  it("does not answer result or error IQs", function () {
    assert.equal(handleIq(iq("result"), identity), null);
    assert.equal(handleIq(iq("error"), identity), null);
  });

  it("swaps the addresses and keeps the id", function () {
    const reply = handleIq(iq("get", xml("ping", { xmlns: "urn:xmpp:ping" })), identity);
    assert.deepEqual(reply?.attrs, {
      type: "result",
      id: "q1",
      from: "sip.example.org",
      to: "alice@example.org/phone",
    });
  });

  it("answers item-not-found for a disco node it does not have", function () {
    const reply = handleIq(
      iq("get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info", node: "x" })),
      identity,
    );
    assert.equal(condition(reply), "item-not-found");
  });

  it("answers service-unavailable for a set in a get-only namespace", function () {
    const reply = handleIq(iq("set", xml("query", { xmlns: "jabber:iq:version" })), identity);
    assert.equal(condition(reply), "service-unavailable");
  });

  const prompts: [string, string][] = [
    ["+44 (20) 7123 4567", "+442071234567@sip.example.org"],
    ["8001", "8001@sip.example.org"],
    ["alice@example.org", "alice@sip.example.org"],
    ["sip:carol@example.com", "carol\\40example.com@sip.example.org"],
  ];
  for (const [prompt, jid] of prompts) {
    it(`maps the prompt '${prompt}' to ${jid}`, function () {
      assert.equal(promptToJid(prompt, identity), jid);
    });
  }

  it("refuses a number that is too long with not-acceptable", function () {
    assert.throws(() => promptToJid("+1234567890123456", identity), { condition: "not-acceptable" });
  });
});
