// RFC 3862 message/cpim bodies: the three parts, CRLF or LF, and the refusals (null, never a throw).
import assert from "node:assert/strict";
import { parseCpim, type CpimMessage } from "../../components/sip/cpim.js";
import { parseIsComposing } from "../../components/sip/is-composing.js";

const crlf = (...lines: string[]): string => lines.join("\r\n");
const lf = (...lines: string[]): string => lines.join("\n");

// RFC 3862's example message (the one it shows with m:/s:/h:/e: labels), without the outer
// `Content-type: Message/CPIM` MIME header, which in SIP is the request's Content-Type header. The
// RFC text could not be fetched here (no network; the search corpora hold only its first pages), so
// this is reconstructed from the copies quoted by CPIM implementations (linphone's cpim tester, an
// MSRP test suite), which agree line for line.
const RFC3862_LINES = [
  "From: MR SANDERS <im:piglet@100akerwood.com>",
  "To: Depressed Donkey <im:eeyore@100akerwood.com>",
  "DateTime: 2000-12-13T13:40:00-08:00",
  "Subject: the weather will be fine today",
  "Subject:;lang=fr beau temps prevu pour aujourd'hui",
  "NS: MyFeatures <mid:MessageFeatures@id.foo.com>",
  "Require: MyFeatures.VitalMessageOption",
  "MyFeatures.VitalMessageOption: Confirmation-requested",
  "MyFeatures.WackyMessageOption: Use-silly-font",
  "",
  "Content-type: text/xml; charset=utf-8",
  "Content-ID: <1234567890@foo.com>",
  "",
  "<body>",
  "Here is the text of my message.",
  "</body>",
];

const RFC3862_RESULT = (eol: string): CpimMessage => ({
  from: "im:piglet@100akerwood.com",
  to: "im:eeyore@100akerwood.com",
  dateTime: "2000-12-13T13:40:00-08:00",
  contentType: "text/xml",
  charset: "utf-8",
  text: ["<body>", "Here is the text of my message.", "</body>"].join(eol),
});

const ISCOMPOSING = `<?xml version="1.0" encoding="UTF-8"?>\r\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><refresh>60</refresh></isComposing>`;

describe("RFC 3862 message/cpim", function () {
  const good: ReadonlyArray<[string, string, CpimMessage]> = [
    ["the RFC 3862 example (CRLF)", crlf(...RFC3862_LINES), RFC3862_RESULT("\r\n")],
    ["the RFC 3862 example with LF line ends", lf(...RFC3862_LINES), RFC3862_RESULT("\n")],
    [
      "the RFC 3862 example with the outer Content-type header in the body",
      crlf("Content-type: Message/CPIM", "", ...RFC3862_LINES),
      RFC3862_RESULT("\r\n"),
    ],
    [
      "a SIP client's plain text",
      crlf(
        "From: Alice <im:alice@example.com>",
        "To: <sip:bob@example.org>",
        "DateTime: 2026-11-24T14:31:00Z",
        "",
        "Content-Type: text/plain; charset=UTF-8",
        "",
        "Hello ✓ — à demain",
      ),
      {
        from: "im:alice@example.com",
        to: "sip:bob@example.org",
        dateTime: "2026-11-24T14:31:00Z",
        contentType: "text/plain",
        charset: "utf-8",
        text: "Hello ✓ — à demain",
      },
    ],
    [
      "an isComposing indication",
      crlf(
        "From: <sip:alice@example.com>",
        "",
        "Content-Type: application/im-iscomposing+xml",
        "",
        ISCOMPOSING,
      ),
      { from: "sip:alice@example.com", contentType: "application/im-iscomposing+xml", text: ISCOMPOSING },
    ],
    [
      "a quoted display name holding angle brackets",
      crlf(`From: "Alice <boss>" <im:alice@example.com>`, "", "Content-Type: text/plain", "", "hi"),
      { from: "im:alice@example.com", contentType: "text/plain", text: "hi" },
    ],
    [
      "an address without angle brackets",
      crlf("From: im:alice@example.com", "", "Content-Type: text/plain", "", "hi"),
      { from: "im:alice@example.com", contentType: "text/plain", text: "hi" },
    ],
    [
      "no CPIM headers at all",
      crlf("", "Content-Type: text/plain", "", "hi"),
      { contentType: "text/plain", text: "hi" },
    ],
    [
      "MIME header names in any case, a quoted charset, a folded header",
      crlf("From: <im:a@example.com>", "", `content-TYPE: Text/Plain;`, ` charset="ISO-8859-1"`, "", "hi"),
      { from: "im:a@example.com", contentType: "text/plain", charset: "iso-8859-1", text: "hi" },
    ],
    [
      "an identity transfer encoding",
      crlf(
        "From: <im:a@example.com>",
        "",
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: 8bit",
        "",
        "hi",
      ),
      { from: "im:a@example.com", contentType: "text/plain", text: "hi" },
    ],
    [
      "empty content",
      crlf("From: <im:a@example.com>", "", "Content-Type: text/plain", "", ""),
      { from: "im:a@example.com", contentType: "text/plain", text: "" },
    ],
    [
      "content holding blank lines and a second part (kept as it is)",
      crlf(
        "From: <im:a@example.com>",
        "",
        "Content-Type: text/plain",
        "",
        "one",
        "",
        "Content-Type: x/y",
        "",
        "two",
      ),
      {
        from: "im:a@example.com",
        contentType: "text/plain",
        text: crlf("one", "", "Content-Type: x/y", "", "two"),
      },
    ],
  ];
  for (const [title, body, expected] of good) {
    it(`reads ${title}`, function () {
      assert.deepEqual(parseCpim(body), expected);
    });
  }

  const bad: ReadonlyArray<[string, string]> = [
    ["an empty body", ""],
    ["plain text", "Hello Bob"],
    ["garbage over several lines", "hello\r\nworld\r\n\r\nfoo\r\n\r\nbar"],
    [
      "CPIM headers not ended by a blank line (truncated)",
      crlf("From: <im:a@example.com>", "To: <im:b@example.com>"),
    ],
    [
      "MIME headers not ended by a blank line (truncated)",
      crlf("From: <im:a@example.com>", "", "Content-Type: text/plain"),
    ],
    ["the RFC example cut inside its MIME headers", crlf(...RFC3862_LINES.slice(0, 11))],
    ["no MIME headers", crlf("From: <im:a@example.com>", "", "", "hi")],
    ["no Content-Type", crlf("From: <im:a@example.com>", "", "Content-ID: <1@example.com>", "", "hi")],
    [
      "a Content-Type that is no media type",
      crlf("From: <im:a@example.com>", "", "Content-Type: text", "", "hi"),
    ],
    [
      "a CPIM line that is not a header",
      crlf("From <im:a@example.com>", "", "Content-Type: text/plain", "", "hi"),
    ],
    ["a header name with a space", crlf("Bad Header: x", "", "Content-Type: text/plain", "", "hi")],
    [
      "a body starting with a continuation line",
      crlf(" From: <im:a@example.com>", "", "Content-Type: text/plain", "", "hi"),
    ],
    [
      "a base64 transfer encoding",
      crlf(
        "From: <im:a@example.com>",
        "",
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: base64",
        "",
        "aGk=",
      ),
    ],
    [
      "only the outer Content-type header",
      crlf("Content-type: Message/CPIM", "", "From: <im:a@example.com>"),
    ],
  ];
  for (const [title, body] of bad) {
    it(`refuses ${title} (null, no throw)`, function () {
      assert.equal(parseCpim(body), null);
    });
  }

  it("never throws on odd input", function () {
    for (const input of [
      "\r\n",
      "\n\n",
      "\r\n\r\n\r\n",
      ":",
      ":\n\n:\n\n",
      "\uD800\n\nContent-Type: a/b\n\n",
      "\u0000",
    ]) {
      assert.doesNotThrow(() => parseCpim(input));
    }
  });

  it("hands an inner isComposing document to its own parser", function () {
    const cpim = parseCpim(
      crlf(
        "From: <sip:alice@example.com>",
        "",
        "Content-Type: application/im-iscomposing+xml",
        "",
        ISCOMPOSING,
      ),
    );
    assert.ok(cpim);
    assert.deepEqual(parseIsComposing(cpim.text), { state: "active", refresh: 60 });
  });
});
