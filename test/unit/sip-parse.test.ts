// The SIP message parser: what it reads, and what it refuses as a whole.
import assert from "node:assert/strict";
import {
  parseNameAddr,
  parseSipMessage,
  parseVia,
  SipRequest,
  SipResponse,
  splitValues,
} from "../../components/sip/sip-parse.js";

const request = (...headers: string[]): string =>
  ["MESSAGE sip:alice@example.org SIP/2.0", ...headers, "", "body"].join("\r\n");

const BASE = [
  "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport",
  'From: "Bob, the builder" <sip:bob@example.org>;tag=a1',
  "To: sip:alice@example.org",
  "Call-ID: c1@192.0.2.1",
  "CSeq: 7 MESSAGE",
  "Content-Length: 4",
];

describe("SIP message parser", function () {
  it("reads the start line, the core headers and the body", function () {
    const message = parseSipMessage(request(...BASE));
    assert.ok(message instanceof SipRequest);
    assert.equal(message.method, "MESSAGE");
    assert.equal(message.ruri.toString(), "sip:alice@example.org");
    assert.deepEqual(message.via, { transport: "UDP", host: "192.0.2.1", port: 5060, branch: "z9hG4bK776" });
    assert.equal(message.viaBranch, "z9hG4bK776");
    assert.equal(message.from?.displayName, "Bob, the builder");
    assert.equal(message.from?.uri.toString(), "sip:bob@example.org");
    assert.equal(message.fromTag, "a1");
    assert.equal(message.to?.uri.toString(), "sip:alice@example.org");
    assert.equal(message.toTag, undefined);
    assert.equal(message.callId, "c1@192.0.2.1");
    assert.equal(message.cseq, 7);
    assert.equal(message.body, "body");
  });

  it("expands compact forms, joins folded lines and keeps header names case-insensitive", function () {
    const message = parseSipMessage(
      request(
        "v: SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKx",
        "f: <sip:bob@example.org>;tag=1",
        "t: <sip:alice@example.org>",
        "i: c2",
        "CSeq: 1",
        "  MESSAGE",
        "o: presence",
        "Subject: one,",
        "\ttwo",
        "l: 4",
      ),
    );
    assert.ok(message);
    assert.equal(message.via?.host, "[2001:db8::1]");
    assert.equal(message.getHeader("Event"), "presence");
    assert.equal(message.getHeader("SUBJECT"), "one, two");
    assert.equal(message.cseq, 1);
    assert.equal(message.callId, "c2");
  });

  it("splits Contact, Route and Record-Route lists, not Via lines", function () {
    const message = parseSipMessage(
      request(
        ...BASE,
        'Contact: "A, B" <sip:a@192.0.2.2;transport=tcp>;expires=60, <sip:b@192.0.2.3>',
        "Record-Route: <sip:p1.example.org;lr>, <sip:p2.example.org;lr>",
        "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.8;branch=z9hG4bK2",
      ),
    );
    assert.ok(message);
    assert.equal(message.getHeaders("contact").length, 2);
    assert.equal(message.parseHeader("contact")?.uri.toString(), "sip:a@192.0.2.2;transport=tcp");
    assert.equal(message.parseHeader("contact")?.getParam("expires"), "60");
    assert.equal(message.parseHeader("contact", 1)?.uri.toString(), "sip:b@192.0.2.3");
    assert.deepEqual(message.getHeaders("record-route"), [
      "<sip:p1.example.org;lr>",
      "<sip:p2.example.org;lr>",
    ]);
    assert.equal(message.getHeaders("via").length, 2);
    assert.equal(message.viaBranch, "z9hG4bK776", "the top Via is the first line's first value");
  });

  it("reads a response's status, reason and method (from CSeq)", function () {
    const message = parseSipMessage(
      ["SIP/2.0 407 Proxy Authentication Required", ...BASE.slice(0, 4), "CSeq: 2 SUBSCRIBE", "", ""].join(
        "\r\n",
      ),
    );
    assert.ok(message instanceof SipResponse);
    assert.equal(message.statusCode, 407);
    assert.equal(message.reasonPhrase, "Proxy Authentication Required");
    assert.equal(message.method, "SUBSCRIBE");
  });

  it("cuts the body at Content-Length", function () {
    const message = parseSipMessage(request(...BASE.slice(0, -1), "Content-Length: 2"));
    assert.equal(message?.body, "bo");
  });

  it("refuses a message whose core header does not parse, or that has no end of headers", function () {
    const refused: [string, string][] = [
      ["a From without a URI", 'From: "Bob" <>'],
      ["a From with an unclosed <", "From: <sip:bob@example.org"],
      ["a To that is not a URI", "To: alice"],
      ["a CSeq without a method", "CSeq: 7"],
      ["a CSeq that is not a number", "CSeq: x MESSAGE"],
      ["a Via that is not SIP/2.0", "Via: SIP/3.0/UDP 192.0.2.1"],
      ["a Via port over 65535", "Via: SIP/2.0/UDP 192.0.2.1:70000"],
      ["a Call-ID with a space", "Call-ID: a b"],
      ["a Content-Length that is not a number", "Content-Length: -1"],
      ["a Contact that is not an address", "Contact: <sip:a@b>, junk junk"],
      ["a header name with a space", "Bad Name: x"],
    ];
    for (const [what, line] of refused) {
      const name = line.slice(0, line.indexOf(":"));
      const headers = [...BASE.filter((h) => !h.toLowerCase().startsWith(`${name.toLowerCase()}:`)), line];
      assert.equal(parseSipMessage(request(...headers)), undefined, what);
    }
    assert.equal(
      parseSipMessage("MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"),
      undefined,
      "no blank line",
    );
    assert.equal(
      parseSipMessage("MESSAGE alice SIP/2.0\r\n\r\n"),
      undefined,
      "a Request-URI without a scheme",
    );
    assert.equal(parseSipMessage("SIP/2.0 99 Low\r\n\r\n"), undefined, "a status under 100");
    assert.equal(parseSipMessage(" continuation first\r\n\r\n"), undefined);
  });

  it("refuses control characters anywhere in the start line and the headers, never echoing them", function () {
    for (const line of [
      'To: "q\nX-Evil: 1" <sip:alice@example.org>',
      'From: <sip:bob@example.org>;tag=1;x="a\nB: c"',
      "CSeq: 1\nMESSAGE",
      'From: "a\rb" <sip:bob@example.org>;tag=a1',
      'From: "a\u0000b" <sip:bob@example.org>;tag=a1',
      "Call-ID: a\u0001",
      "Subject: ok,\r\n \u0007bell",
    ]) {
      const name = line.slice(0, line.indexOf(":"));
      const headers = [...BASE.filter((h) => !h.toLowerCase().startsWith(`${name.toLowerCase()}:`)), line];
      assert.equal(parseSipMessage(request(...headers)), undefined, JSON.stringify(line));
    }
    assert.equal(
      parseSipMessage(request(...BASE).replace("sip:alice@example.org SIP", "sip:al\u0000ice@x SIP")),
      undefined,
    );
  });

  it("checks each Record-Route and Route value, and takes an empty tag as none", function () {
    assert.equal(parseSipMessage(request(...BASE, "Record-Route: garbage")), undefined);
    assert.equal(parseSipMessage(request(...BASE, "Route: <sip:p1;lr>, junk junk")), undefined);
    const quoted = parseSipMessage(request(...BASE, 'Record-Route: "x, <y" <sip:p.example.org;lr>'));
    assert.deepEqual(quoted?.getHeaders("record-route"), ['"x, <y" <sip:p.example.org;lr>']);
    const untagged = parseSipMessage(
      request(...BASE.filter((h) => !h.startsWith("To:")), "To: <sip:alice@example.org>;tag"),
    );
    assert.equal(untagged?.toTag, undefined);
  });

  it("reads name-addr parameters, quoted or not, and splits lists outside quotes and brackets", function () {
    const value = parseNameAddr('<sip:a@b>;tag=x;expires="60";lr');
    assert.equal(value?.getParam("tag"), "x");
    assert.equal(value?.getParam("expires"), "60");
    assert.equal(value?.getParam("lr"), "");
    assert.equal(value?.getParam("nothing"), undefined);
    assert.equal(
      parseNameAddr("sip:a@b;tag=1")?.uri.toString(),
      "sip:a@b",
      "addr-spec: parameters are the header's",
    );
    assert.deepEqual(splitValues('"x, y" <sip:a@b>, <sip:c@d;p=1,2>'), [
      '"x, y" <sip:a@b>',
      "<sip:c@d;p=1,2>",
    ]);
    assert.equal(parseVia("SIP / 2.0 / UDP host.example.org ; branch=z9hG4bKz")?.branch, "z9hG4bKz");
  });
});
