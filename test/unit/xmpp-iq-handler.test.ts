// The IQ answers at the port, compared structurally. Framing (one reply per query, addresses
// swapped, bad-request for a query without exactly one payload) is the library's IQ callee, tested
// end to end against Prosody in test/components/xmpp-basics.test.ts.
import assert from "node:assert/strict";
import { xml, type Element } from "@xmpp/component";
import { answerIq, promptToJid, type IqAnswer } from "../../components/xmpp/iq-handler.js";

const identity = {
  gatewayDomain: "sip.example.org",
  homeDomain: "example.org",
  name: "Switchboard",
  version: "1.2.3",
};

function ask(type: string, payload: Element, to = "sip.example.org"): IqAnswer {
  const iq = xml("iq", { type, id: "q1", from: "alice@example.org/phone", to }, payload);
  return answerIq(iq, payload, identity);
}

function condition(answer: IqAnswer): string | undefined {
  return typeof answer === "object" && answer.is("error") ? answer.getChildElements()[0]?.name : undefined;
}

describe("XMPP IQ answers", function () {
  it("answers ping with an empty result", function () {
    assert.equal(ask("get", xml("ping", { xmlns: "urn:xmpp:ping" })), true);
  });

  it("answers item-not-found for a disco node it does not have", function () {
    const answer = ask("get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info", node: "x" }));
    assert.equal(condition(answer), "item-not-found");
  });

  it("leaves a set in a get-only namespace, and version or gateway on a contact, unanswered (service-unavailable)", function () {
    assert.equal(ask("set", xml("query", { xmlns: "jabber:iq:version" })), undefined);
    assert.equal(ask("get", xml("query", { xmlns: "jabber:iq:version" }), "bob@sip.example.org"), undefined);
    assert.equal(ask("get", xml("query", { xmlns: "jabber:iq:gateway" }), "bob@sip.example.org"), undefined);
    assert.equal(ask("get", xml("query", { xmlns: "urn:example:unknown" })), undefined);
  });

  it("answers jid-malformed for a contact address that is not canonical", function () {
    const answer = ask(
      "get",
      xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
      "bob\\40example.org@sip.example.org",
    );
    assert.equal(condition(answer), "jid-malformed");
  });

  it("refuses a gateway set without a prompt with bad-request", function () {
    assert.equal(condition(ask("set", xml("query", { xmlns: "jabber:iq:gateway" }))), "bad-request");
  });

  it("answers the version with name and version", function () {
    const answer = ask("get", xml("query", { xmlns: "jabber:iq:version" }));
    assert.ok(typeof answer === "object");
    assert.equal(answer.getChildText("name"), "Switchboard");
    assert.equal(answer.getChildText("version"), "1.2.3");
  });

  const prompts: [string, string][] = [
    ["+44 (20) 7123 4567", "+442071234567@sip.example.org"],
    ["8001", "8001@sip.example.org"],
    ["020 7123 4567", "+442071234567@sip.example.org"],
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

  it("refuses a sips: prompt (TLS end to end cannot be promised)", function () {
    assert.equal(
      condition(
        ask("set", xml("query", { xmlns: "jabber:iq:gateway" }, xml("prompt", {}, "sips:bob@example.org"))),
      ),
      "jid-malformed",
    );
  });
});
