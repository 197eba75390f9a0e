// RFC 3842 message-summary bodies: the RFC's own, every one a real Asterisk 22.10.1 sent
// (../shared/fixtures/asterisk-22.10.1), the leniency decided for bad lines, and the chat text.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseMessageSummary, type MessageSummary } from "../../components/sip/message-summary.js";

const FIXTURES = new URL("../../../shared/fixtures/asterisk-22.10.1/", import.meta.url);

/** Every simple-message-summary body in a recorded log, cut at its Content-Length (in bytes). */
function recordedBodies(file: string): string[] {
  const log = readFileSync(fileURLToPath(new URL(file, FIXTURES)), "utf8");
  const bodies: string[] = [];
  for (const chunk of log.split(/^=== .*$/m)) {
    const end = chunk.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const head = chunk.slice(0, end);
    if (!/^Content-Type:\s*application\/simple-message-summary\s*$/im.test(head)) continue;
    const length = Number(/^Content-Length:\s*(\d+)\s*$/im.exec(head)?.[1]);
    const bytes = Buffer.from(chunk.slice(end + 4), "utf8");
    assert.ok(bytes.length >= length, `a whole body in ${file}`);
    bodies.push(bytes.subarray(0, length).toString("utf8"));
  }
  return bodies;
}

const crlf = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join("");

// RFC 3842's example body (§3.5, and NOTIFY A3 of its §4.1 flow). The RFC text could not be fetched
// here (no network; the search corpora hold only its first pages), so this is taken from the copies
// quoted by SIP stacks (resiprocate, linphone, siphon), which agree.
const RFC3842_EXAMPLE = crlf(
  "Messages-Waiting: yes",
  "Message-Account: sip:alice@vmail.example.com",
  "Voice-Message: 2/8 (0/2)",
);

// A later notification of that flow with the optional RFC 2822 headers of a new message after a
// blank line (§5.2 opt-msg-headers); written after the RFC's, not copied.
const RFC3842_WITH_MESSAGE_HEADERS =
  crlf("Messages-Waiting: yes", "Message-Account: sip:alice@vmail.example.com", "Voice-Message: 4/8 (1/2)") +
  crlf(
    "",
    "To: <alice@atlanta.example.com>",
    "From: <bob@biloxi.example.com>",
    "Subject: carpool tomorrow?",
    "Priority: normal",
    "Message-ID: 13784434989@vmail.example.com",
  );

// Verbatim from sip-mwi.log (14:36:26.051Z, in-dialog NOTIFY) and sip-peer-mwi-external.log.
const ASTERISK_WAITING = crlf(
  "Messages-Waiting: yes",
  "Message-Account: sip:vm@127.0.0.1:5062",
  "Voice-Message: 3/0 (0/0)",
);
const ASTERISK_EMPTY = crlf(
  "Messages-Waiting: no",
  "Message-Account: sip:vm@127.0.0.1:5062",
  "Voice-Message: 0/0 (0/0)",
);

describe("RFC 3842 message-summary", function () {
  describe("parseMessageSummary", function () {
    const good: ReadonlyArray<[string, string, MessageSummary]> = [
      [
        "the RFC 3842 example",
        RFC3842_EXAMPLE,
        {
          waiting: true,
          account: "sip:alice@vmail.example.com",
          voice: { new: 2, old: 8, urgentNew: 0, urgentOld: 2 },
          classes: { voice: { new: 2, old: 8, urgentNew: 0, urgentOld: 2 } },
        },
      ],
      [
        "a body with message headers after the blank line (ignored)",
        RFC3842_WITH_MESSAGE_HEADERS,
        {
          waiting: true,
          account: "sip:alice@vmail.example.com",
          voice: { new: 4, old: 8, urgentNew: 1, urgentOld: 2 },
          classes: { voice: { new: 4, old: 8, urgentNew: 1, urgentOld: 2 } },
        },
      ],
      [
        "Asterisk's body with messages waiting",
        ASTERISK_WAITING,
        {
          waiting: true,
          account: "sip:vm@127.0.0.1:5062",
          voice: { new: 3, old: 0, urgentNew: 0, urgentOld: 0 },
          classes: { voice: { new: 3, old: 0, urgentNew: 0, urgentOld: 0 } },
        },
      ],
      [
        "Asterisk's body for an empty mailbox",
        ASTERISK_EMPTY,
        {
          waiting: false,
          account: "sip:vm@127.0.0.1:5062",
          voice: { new: 0, old: 0, urgentNew: 0, urgentOld: 0 },
          classes: { voice: { new: 0, old: 0, urgentNew: 0, urgentOld: 0 } },
        },
      ],
      ["the status line alone", crlf("Messages-Waiting: no"), { waiting: false, classes: {} }],
      [
        "names and values in any case, LF line ends, no urgent counts",
        "messages-waiting: YES\nvoice-MESSAGE: 1/0\n",
        { waiting: true, voice: { new: 1, old: 0 }, classes: { voice: { new: 1, old: 0 } } },
      ],
      [
        "white space around the colon, slash and parentheses",
        crlf("Messages-Waiting : yes", "Voice-Message :\t2 / 8 ( 0 / 2 )  "),
        {
          waiting: true,
          voice: { new: 2, old: 8, urgentNew: 0, urgentOld: 2 },
          classes: { voice: { new: 2, old: 8, urgentNew: 0, urgentOld: 2 } },
        },
      ],
      [
        "every message-context class (RFC 3458), unknown headers ignored",
        crlf(
          "Messages-Waiting: yes",
          "X-Vendor: 7/7",
          "Fax-Message: 1/3",
          "Pager-Message: 0/1",
          "Multimedia-Message: 2/0",
          "Text-Message: 5/5 (1/1)",
          "none: 4/4",
        ),
        {
          waiting: true,
          classes: {
            fax: { new: 1, old: 3 },
            pager: { new: 0, old: 1 },
            multimedia: { new: 2, old: 0 },
            text: { new: 5, old: 5, urgentNew: 1, urgentOld: 1 },
            none: { new: 4, old: 4 },
          },
        },
      ],
      [
        "leading blank lines and lines that are not headers (skipped)",
        crlf("", "Messages-Waiting: yes", "this is not a header", "Voice-Message: 1/2"),
        { waiting: true, voice: { new: 1, old: 2 }, classes: { voice: { new: 1, old: 2 } } },
      ],
      [
        "a class given twice (the first wins)",
        crlf("Messages-Waiting: yes", "Voice-Message: 1/0", "Voice-Message: 9/9"),
        { waiting: true, voice: { new: 1, old: 0 }, classes: { voice: { new: 1, old: 0 } } },
      ],
      [
        "a count line after the blank line (not read)",
        crlf("Messages-Waiting: yes", "", "Voice-Message: 9/9"),
        { waiting: true, classes: {} },
      ],
    ];
    for (const [title, body, expected] of good) {
      it(`reads ${title}`, function () {
        assert.deepEqual(parseMessageSummary(body), expected);
      });
    }

    // Decided: a count line that is malformed is skipped (the rest of the summary stands), so the
    // boolean indication survives a sender's mistake; only a missing status line refuses the body.
    const malformedCounts = ["lots", "1", "1/", "a/b", "-1/2", "1/2 (0", "1/2 (0/)", "1/2 x", "1234567890/0"];
    for (const counts of malformedCounts) {
      it(`skips the malformed count line "Voice-Message: ${counts}"`, function () {
        assert.deepEqual(
          parseMessageSummary(crlf("Messages-Waiting: yes", `Voice-Message: ${counts}`, "Fax-Message: 1/0")),
          {
            waiting: true,
            classes: { fax: { new: 1, old: 0 } },
          },
        );
      });
    }

    const bad: ReadonlyArray<[string, string]> = [
      ["an empty body", ""],
      ["garbage", "hello world\r\n\r\n"],
      ["a status other than yes/no", crlf("Messages-Waiting: maybe", "Voice-Message: 1/0")],
      ["no status line", crlf("Message-Account: sip:alice@example.org", "Voice-Message: 1/0")],
      ["a status line without a colon", crlf("Messages-Waiting yes")],
      ["a status line after the blank line", crlf("Voice-Message: 1/0", "", "Messages-Waiting: yes")],
      ["an XML summary", `<?xml version="1.0"?><message-summary/>`],
      ["a body over 64 KiB", crlf("Messages-Waiting: yes", `X-Pad: ${"x".repeat(65 * 1024)}`)],
    ];
    for (const [title, body] of bad) {
      it(`refuses ${title} (null, no throw)`, function () {
        assert.equal(parseMessageSummary(body), null);
      });
    }

    it("never throws on odd input", function () {
      for (const input of [
        "\r\n",
        ":",
        "Messages-Waiting:",
        "\uD800",
        "\u0000\n\n",
        " ".repeat(10_000) + "x",
      ])
        assert.doesNotThrow(() => parseMessageSummary(input));
    });

    for (const file of ["sip-mwi.log", "sip-peer-mwi-external.log", "sip-phone.log"]) {
      it(`reads every body Asterisk 22.10.1 sent in ${file}`, function () {
        const bodies = recordedBodies(file);
        const log = readFileSync(fileURLToPath(new URL(file, FIXTURES)), "utf8");
        const notifies = log.match(/^Content-Type: application\/simple-message-summary\r$/gm) ?? [];
        assert.ok(bodies.length > 0, `bodies in ${file}`);
        assert.equal(bodies.length, notifies.length, "one body per summary NOTIFY");
        for (const body of bodies) {
          const summary = parseMessageSummary(body);
          assert.ok(summary, body);
          assert.equal(summary.account, "sip:vm@127.0.0.1:5062");
          assert.ok(summary.voice, body);
          // app_voicemail says messages are waiting exactly when there are new ones.
          assert.equal(summary.waiting, summary.voice.new > 0, body);
          assert.deepEqual(Object.keys(summary.classes), ["voice"]);
        }
      });
    }

    it("finds the verbatim bodies above in the recordings", function () {
      assert.ok(recordedBodies("sip-mwi.log").includes(ASTERISK_WAITING));
      assert.ok(recordedBodies("sip-peer-mwi-external.log").includes(ASTERISK_EMPTY));
    });
  });
});
