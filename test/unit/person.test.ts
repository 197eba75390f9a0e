import assert from "node:assert/strict";
import { parseJid } from "../../src/domain/jid.js";
import { contactForPerson, personForContact, personForHomeJid } from "../../src/presence/person.js";

const domains = { homeDomain: "example.org", gatewayDomain: "sip.example.org" };

describe("person keys", function () {
  const rows: [contact: string, person: string][] = [
    ["bob@sip.example.org", "bob@example.org"],
    ["o\\27brien@sip.example.org", "o'brien@example.org"],
    ["carol\\40example.com@sip.example.org", "sip:carol@example.com"],
    ["+442071234567@sip.example.org", "+442071234567"],
    ["8001@sip.example.org", "8001"],
  ];
  for (const [contact, person] of rows) {
    it(`${contact} is ${person}, and back`, function () {
      assert.equal(personForContact(parseJid(contact), domains), person);
      assert.equal(contactForPerson(person, domains), contact);
    });
  }

  it("gives a home XMPP user the same key as their gateway contact, escaped or not", function () {
    assert.equal(personForHomeJid(parseJid("Bob@example.org"), domains), "bob@example.org");
    assert.equal(personForHomeJid(parseJid("o\\27brien@example.org"), domains), "o'brien@example.org");
    assert.equal(
      personForHomeJid(parseJid("o\\27brien@example.org"), domains),
      personForContact(parseJid("o\\27brien@sip.example.org"), domains),
    );
  });

  it("has no home person for other domains", function () {
    assert.equal(personForHomeJid(parseJid("mallory@example.net"), domains), null);
    assert.equal(personForHomeJid(parseJid("example.org"), domains), null);
  });

  it("refuses a non-canonical contact", function () {
    assert.throws(() => personForContact(parseJid("bob\\40example.org@sip.example.org"), domains), {
      name: "AddressError",
    });
  });
});
