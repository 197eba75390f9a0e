// RFC 3680 registration information (application/reginfo+xml): the RFC's examples, what registrars
// send in practice, and hostile or malformed documents (refused with null, never thrown).
import assert from "node:assert/strict";
import { NS_REGINFO, parseReginfo, type Reginfo } from "../../components/sip/reginfo.js";

// The RFC 3680 examples. The RFC text itself could not be fetched here (no network; the search
// corpora hold only its first page), so these are the documents as quoted by two independent
// copies: imsdroid's reginfo tests (§5.3 and §6's second NOTIFY) and a walkthrough of §6's call
// flow (§6's first and second NOTIFY); they agree on every element and attribute.

/** RFC 3680 §5.3: one AOR, one active contact and one that expired. */
const RFC3680_5_3 = `<?xml version="1.0"?>
    <reginfo xmlns="urn:ietf:params:xml:ns:reginfo"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                 version="0" state="full">
      <registration aor="sip:user@example.com" id="as9"
                    state="active">
        <contact id="76" state="active" event="registered"
                 duration-registered="7322"
                 q="0.8">
                 <uri>sip:user@pc887.example.com</uri>
        </contact>
        <contact id="77" state="terminated" event="expired"
                 duration-registered="3600"
                 q="0.5">
                 <uri>sip:user@university.edu</uri>
        </contact>
      </registration>
    </reginfo>`;

/** RFC 3680 §6, the NOTIFY after the SUBSCRIBE: joe has not registered yet. */
const RFC3680_6_INIT = `<?xml version="1.0"?>
    <reginfo xmlns="urn:ietf:params:xml:ns:reginfo"
             version="0" state="full">
      <registration aor="sip:joe@example.com" id="a7" state="init" />
    </reginfo>`;

/** RFC 3680 §6, the NOTIFY after joe's REGISTER: a partial document with the new contact. */
const RFC3680_6_REGISTERED = `<?xml version="1.0"?>
    <reginfo xmlns="urn:ietf:params:xml:ns:reginfo"
             version="1" state="partial">
      <registration aor="sip:joe@example.com" id="a7" state="active">
        <contact id="76" state="active" event="registered"
                 duration-registered="0">
          <uri>sip:joe@pc34.example.com</uri>
        </contact>
      </registration>
    </reginfo>`;

/** A minimal document around `inner` (one registration of bob), for the malformed cases. */
const doc = (inner: string, attrs = `version="3" state="partial"`): string =>
  `<?xml version="1.0"?><reginfo xmlns="${NS_REGINFO}" ${attrs}>${inner}</reginfo>`;
const registration = (contacts: string, attrs = `aor="sip:bob@example.org" id="r1" state="active"`): string =>
  `<registration ${attrs}>${contacts}</registration>`;
const contact = (
  uri = "<uri>sip:bob@192.0.2.10:5060</uri>",
  attrs = `id="c1" state="active" event="registered"`,
) => `<contact ${attrs}>${uri}</contact>`;

const bob = (
  contacts: Reginfo["registrations"][number]["contacts"],
  version = 3,
  state: Reginfo["state"] = "partial",
): Reginfo => ({
  version,
  state,
  registrations: [{ aor: "sip:bob@example.org", id: "r1", state: "active", contacts }],
});
const bobActive = [
  { id: "c1", uri: "sip:bob@192.0.2.10:5060", state: "active", event: "registered" },
] as const;

describe("RFC 3680 reginfo: parsing", function () {
  const cases: { name: string; xml: string; expected: Reginfo }[] = [
    {
      name: "RFC 3680 §5.3: an active and an expired contact",
      xml: RFC3680_5_3,
      expected: {
        version: 0,
        state: "full",
        registrations: [
          {
            aor: "sip:user@example.com",
            id: "as9",
            state: "active",
            contacts: [
              { id: "76", uri: "sip:user@pc887.example.com", state: "active", event: "registered" },
              { id: "77", uri: "sip:user@university.edu", state: "terminated", event: "expired" },
            ],
          },
        ],
      },
    },
    {
      name: "RFC 3680 §6: full state, AOR not registered yet (init, no contacts)",
      xml: RFC3680_6_INIT,
      expected: {
        version: 0,
        state: "full",
        registrations: [{ aor: "sip:joe@example.com", id: "a7", state: "init", contacts: [] }],
      },
    },
    {
      name: "RFC 3680 §6: partial state, the new contact registered",
      xml: RFC3680_6_REGISTERED,
      expected: {
        version: 1,
        state: "partial",
        registrations: [
          {
            aor: "sip:joe@example.com",
            id: "a7",
            state: "active",
            contacts: [{ id: "76", uri: "sip:joe@pc34.example.com", state: "active", event: "registered" }],
          },
        ],
      },
    },
    {
      name: "no registration at all (a full document for an unknown AOR)",
      xml: doc("", `version="0" state="full"`),
      expected: { version: 0, state: "full", registrations: [] },
    },
    {
      name: "a Kamailio-style document: expires, callid, cseq, unknown-param and display-name ignored",
      xml: doc(
        registration(
          `<contact id="0x7f1c" state="active" event="registered" expires="3600" q="1.00" callid="a@b" cseq="2">` +
            `<uri>sip:bob@192.0.2.10:5060;transport=udp</uri><display-name>Bob</display-name>` +
            `<unknown-param name="+sip.instance">"&lt;urn:uuid:1&gt;"</unknown-param></contact>`,
        ),
        `version="12" state="full"`,
      ),
      expected: bob(
        [
          {
            id: "0x7f1c",
            uri: "sip:bob@192.0.2.10:5060;transport=udp",
            state: "active",
            event: "registered",
          },
        ],
        12,
        "full",
      ),
    },
    {
      name: "extension elements of other namespaces, anywhere, are skipped with their content",
      xml: doc(
        `<x:info xmlns:x="urn:example:ext"><registration aor="sip:eve@example.org" id="e" state="active"/></x:info>` +
          registration(
            `<x:note xmlns:x="urn:example:ext">hi</x:note>` +
              contact(
                `<uri>sip:bob@192.0.2.10:5060</uri><gr:pub-gruu xmlns:gr="urn:ietf:params:xml:ns:gruuinfo" uri="sip:g"/>`,
              ),
          ),
      ),
      expected: bob([...bobActive]),
    },
    {
      name: "a prefixed reginfo namespace, a CDATA URI with blanks around it, a BOM",
      xml: `\uFEFF<r:reginfo xmlns:r="${NS_REGINFO}" version="3" state="partial"><r:registration aor="sip:bob@example.org" id="r1" state="active"><r:contact id="c1" state="active" event="registered"><r:uri> <![CDATA[sip:bob@192.0.2.10:5060]]> </r:uri></r:contact></r:registration></r:reginfo>`,
      expected: bob([...bobActive]),
    },
    {
      name: "an event value outside RFC 3680's list is kept as sent",
      xml: doc(registration(contact(undefined, `id="c1" state="active" event="re-registered"`))),
      expected: bob([{ ...bobActive[0], event: "re-registered" }]),
    },
    {
      name: "character references in the URI are read",
      xml: doc(registration(contact("<uri>sip:bob@192.0.2.10:5060;x=a&amp;b</uri>"))),
      expected: bob([{ ...bobActive[0], uri: "sip:bob@192.0.2.10:5060;x=a&b" }]),
    },
  ];
  for (const { name, xml, expected } of cases) {
    it(name, function () {
      assert.deepEqual(parseReginfo(xml), expected);
    });
  }
});

describe("RFC 3680 reginfo: refused documents", function () {
  const laughs = [
    `<?xml version="1.0"?>`,
    `<!DOCTYPE reginfo [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">`,
    `<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>`,
    `<reginfo xmlns="${NS_REGINFO}" version="0" state="full">`,
    `<registration aor="sip:bob@example.org" id="r1" state="active">`,
    `<contact id="c1" state="active" event="registered"><uri>&d;</uri></contact></registration></reginfo>`,
  ].join("");
  const cases: { name: string; xml: string }[] = [
    { name: "a DOCTYPE with nested entities (billion laughs)", xml: laughs },
    {
      name: "an external entity (XXE)",
      xml: `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${doc(registration(contact("<uri>&x;</uri>")))}`,
    },
    { name: "a DOCTYPE in other case", xml: `<!doctype reginfo>${doc("")}` },
    { name: "an undefined entity reference", xml: doc(registration(contact("<uri>&bob;</uri>"))) },
    { name: "empty", xml: "" },
    { name: "not XML", xml: "Messages-Waiting: yes" },
    { name: "not well-formed (unclosed)", xml: doc(registration(contact())).replace("</reginfo>", "") },
    { name: "two roots", xml: doc("") + doc("") },
    { name: "another root (PIDF)", xml: `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:b@x"/>` },
    { name: "reginfo in no namespace", xml: `<reginfo version="0" state="full"/>` },
    { name: "reginfo in another namespace", xml: `<reginfo xmlns="urn:example" version="0" state="full"/>` },
    { name: "an unbound prefix", xml: doc(`<x:y/>`) },
    { name: "no version", xml: doc("", `state="full"`) },
    { name: "a negative version", xml: doc("", `version="-1" state="full"`) },
    { name: "a fractional version", xml: doc("", `version="1.5" state="full"`) },
    { name: "a version beyond exact numbers", xml: doc("", `version="12345678901234567890" state="full"`) },
    { name: "no state", xml: doc("", `version="0"`) },
    { name: "an unknown document state", xml: doc("", `version="0" state="complete"`) },
    { name: "a prefixed version attribute only", xml: doc("", `xmlns:x="urn:x" x:version="0" state="full"`) },
    { name: "a registration without aor", xml: doc(registration("", `id="r1" state="active"`)) },
    {
      name: "a registration without id",
      xml: doc(registration("", `aor="sip:bob@example.org" state="active"`)),
    },
    {
      name: "a registration in an unknown state",
      xml: doc(registration("", `aor="sip:bob@example.org" id="r1" state="online"`)),
    },
    { name: "a contact without uri", xml: doc(registration(contact(""))) },
    {
      name: "a contact with two uris",
      xml: doc(registration(contact("<uri>sip:a@192.0.2.1</uri><uri>sip:b@192.0.2.2</uri>"))),
    },
    { name: "an empty uri", xml: doc(registration(contact("<uri>  </uri>"))) },
    { name: "a uri with markup inside", xml: doc(registration(contact("<uri>sip:<b>bob</b>@x</uri>"))) },
    {
      name: "a contact in an unknown state",
      xml: doc(registration(contact(undefined, `id="c1" state="pending" event="registered"`))),
    },
    { name: "a contact without event", xml: doc(registration(contact(undefined, `id="c1" state="active"`))) },
    {
      name: "a contact without id",
      xml: doc(registration(contact(undefined, `state="active" event="registered"`))),
    },
    { name: "larger than 64 KB", xml: doc(registration(contact().repeat(1_200))) },
    {
      name: "deeper than 16 elements",
      xml: doc(`${"<x:a xmlns:x='urn:x'>".repeat(20)}${"</x:a>".repeat(20)}`),
    },
    { name: "more than 2000 elements", xml: doc(`<x:a xmlns:x='urn:x'/>`.repeat(2_100)) },
  ];
  for (const { name, xml } of cases) {
    it(`refuses ${name}`, function () {
      assert.equal(parseReginfo(xml), null);
    });
  }

  it("refuses 64 KB of nested elements quickly", function () {
    const start = process.hrtime.bigint();
    const xml = doc("<a>".repeat(16_000));
    assert.equal(parseReginfo(xml), null);
    assert.ok(process.hrtime.bigint() - start < 500_000_000n, "took over 0.5 s");
  });
});
