// AMI framing and parsing, pure: blocks end at an empty line (CRLF, LF tolerated), keys repeat and
// compare case-insensitively, values keep everything after the first ": ", garbage lines are skipped
// and counted, an action is written so that no field can smuggle in another. Examples are quoted
// from ../shared/fixtures/asterisk-22.10.1/ami-actions.txt.
import assert from "node:assert/strict";
import {
  AmiBlock,
  amiErrorCondition,
  formatAmiAction,
  formatAmiBlock,
  isAmiGreeting,
  parseAmiBlocks,
  parseAmiLine,
  splitGreeting,
} from "../../components/asterisk/ami-client.js";
import type { Condition } from "../../src/domain/errors.js";
import { assertSwitchboardError } from "./assert-error.js";

const PRESENCE_STATE_REPLY =
  "Response: Success\r\nActionID: 3\r\nMessage: Presence State\r\nState: away\r\n" +
  "Message: Lunch, back at 2\r\nPresenceMessage: Lunch, back at 2\r\n\r\n";
const PING_REPLY = "Response: Success\r\nActionID: 2\r\nPing: Pong\r\nTimestamp: 1795530704.278867\r\n\r\n";

const pairs = (buffer: string | Buffer): [string, string][][] =>
  parseAmiBlocks(Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer)).blocks.map((b) =>
    b.lines.map(([k, v]): [string, string] => [k, v]),
  );

describe("AMI blocks", function () {
  it("get() is the first value, case-insensitive; all() every value in order", function () {
    const [block] = parseAmiBlocks(Buffer.from(PRESENCE_STATE_REPLY)).blocks;
    assert.ok(block);
    assert.equal(block.get("Message"), "Presence State");
    assert.equal(block.get("MESSAGE"), "Presence State");
    assert.deepEqual(block.all("message"), ["Presence State", "Lunch, back at 2"]);
    assert.equal(block.get("Nothing"), undefined);
    assert.deepEqual(block.all("Nothing"), []);
    assert.deepEqual(block.keys(), [
      "Response",
      "ActionID",
      "Message",
      "State",
      "Message",
      "PresenceMessage",
    ]);
  });

  const lineCases: [string, [string, string] | undefined][] = [
    ["Message: Lunch, back at 2", ["Message", "Lunch, back at 2"]],
    ["Hint: PJSIP/alice,CustomPresence:alice", ["Hint", "PJSIP/alice,CustomPresence:alice"]],
    ["Presentity: CustomPresence:alice", ["Presentity", "CustomPresence:alice"]],
    ["Subtype: ", ["Subtype", ""]],
    ["Subtype:", ["Subtype", ""]],
    ["Key:value", ["Key", "value"]],
    ["Key:  two spaces", ["Key", " two spaces"]],
    [
      "Message: Invalid/unknown command: NoSuchAction. Use Action: ListCommands",
      ["Message", "Invalid/unknown command: NoSuchAction. Use Action: ListCommands"],
    ],
    ["Asterisk Call Manager/11.0.0", undefined],
    [": no key", undefined],
    ["no colon at all", undefined],
  ];
  for (const [line, expected] of lineCases) {
    it(`parses the line ${JSON.stringify(line)}`, function () {
      assert.deepEqual(parseAmiLine(line), expected);
    });
  }

  it("splits blocks at the empty line, CRLF or LF alone, and skips stray line ends", function () {
    const expected = [
      [
        ["Response", "Success"],
        ["ActionID", "2"],
        ["Ping", "Pong"],
        ["Timestamp", "1795530704.278867"],
      ],
      [
        ["Event", "DeviceStateChange"],
        ["Device", "Custom:foo"],
      ],
    ];
    const event = "Event: DeviceStateChange\r\nDevice: Custom:foo\r\n\r\n";
    assert.deepEqual(pairs(PING_REPLY + event), expected);
    assert.deepEqual(pairs((PING_REPLY + event).replaceAll("\r\n", "\n")), expected);
    assert.deepEqual(pairs(`\r\n\r\n${PING_REPLY}\n\r\n${event.replace("\r\n", "\n")}\r\n`), expected);
  });

  it("keeps an unfinished block as the rest, and gives the same blocks however the bytes are cut", function () {
    const stream = Buffer.from(
      PRESENCE_STATE_REPLY + "Event: PresenceStateChange\r\nMessage: Café ☕ déjà\r\n\r\n",
    );
    const whole = pairs(stream);
    assert.equal(whole.length, 2);
    for (let cut = 0; cut <= stream.length; cut++) {
      const first = parseAmiBlocks(stream.subarray(0, cut));
      const second = parseAmiBlocks(Buffer.concat([first.rest, stream.subarray(cut)]));
      assert.equal(second.rest.length, 0);
      assert.deepEqual(
        [...first.blocks, ...second.blocks].map((b) => b.lines),
        whole,
        `cut at byte ${cut}`,
      );
    }
    const unfinished = "Response: Success\r\nActionID: 1\r\n";
    assert.equal(parseAmiBlocks(Buffer.from(unfinished)).rest.toString(), unfinished);
  });

  it("skips and counts lines without a colon; a block of garbage alone yields nothing", function () {
    const frames = parseAmiBlocks(
      Buffer.from(
        "garbage\r\n\u0000\u00ff\r\n\r\nEvent: X\r\nnot a header\r\nKey: v\r\n\r\npending garbage\r\n",
      ),
    );
    assert.deepEqual(
      frames.blocks.map((b) => b.lines),
      [
        [
          ["Event", "X"],
          ["Key", "v"],
        ],
      ],
    );
    assert.equal(frames.skippedLines, 3, "only lines of finished blocks are counted");
    assert.equal(frames.rest.toString(), "pending garbage\r\n");
  });

  it("reads the greeting line, which has no empty line after it", function () {
    assert.equal(splitGreeting(Buffer.from("Asterisk Call")), undefined);
    const split = splitGreeting(Buffer.from("Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n"));
    assert.equal(split?.greeting, "Asterisk Call Manager/11.0.0");
    assert.equal(split?.rest.toString(), "Response: Success\r\n");
    assert.equal(
      splitGreeting(Buffer.from("Asterisk Call Manager/2.10.6\n"))?.greeting,
      "Asterisk Call Manager/2.10.6",
    );
  });

  const greetings: [string, boolean][] = [
    ["Asterisk Call Manager/11.0.0", true],
    ["Asterisk Call Manager/2.10.6", true],
    ["Asterisk Call Manager/", false],
    ["SSH-2.0-OpenSSH_9.2", false],
    ["HTTP/1.1 400 Bad Request", false],
    ["", false],
  ];
  for (const [line, ok] of greetings) {
    it(`${ok ? "accepts" : "refuses"} the greeting ${JSON.stringify(line)}`, function () {
      assert.equal(isAmiGreeting(line), ok);
    });
  }

  it("writes an action as recorded: Action, ActionID, the fields in order, CRLF, an empty line", function () {
    assert.equal(
      formatAmiAction("Login", "1", { Username: "bridge", Secret: "secret", Events: "off" }),
      "Action: Login\r\nActionID: 1\r\nUsername: bridge\r\nSecret: secret\r\nEvents: off\r\n\r\n",
    );
    assert.equal(formatAmiAction("Ping", "2"), "Action: Ping\r\nActionID: 2\r\n\r\n");
    assert.equal(formatAmiBlock(new AmiBlock([["Subtype", ""]]).lines), "Subtype: \r\n\r\n");
    const [parsed] = parseAmiBlocks(Buffer.from(PRESENCE_STATE_REPLY)).blocks;
    assert.equal(formatAmiBlock(parsed?.lines ?? []), PRESENCE_STATE_REPLY);
  });

  const refused: [string, Record<string, string>, string][] = [
    ["a CRLF in a value", { Variable: "x\r\nAction: Logoff" }, "line break"],
    ["a lone LF in a value", { Variable: "x\nAction: Logoff" }, "line break"],
    ["a lone CR in a value", { Variable: "x\rAction: Logoff" }, "line break"],
    ["a line break in a name", { "Variable\r\nAction": "Logoff" }, "not a header name"],
    ["a colon in a name", { "Vari:able": "x" }, "not a header name"],
    ["an empty name", { "": "x" }, "not a header name"],
    ["ActionID", { ActionID: "7" }, "set by the client"],
    ["Action", { action: "Logoff" }, "set by the client"],
  ];
  for (const [what, fields, problem] of refused) {
    it(`refuses an action field with ${what}`, function () {
      assertSwitchboardError(() => formatAmiAction("Getvar", "1", fields), "bad-request", problem);
    });
  }

  const errors: [string, Condition][] = [
    ["No provider specified", "bad-request"],
    ["Mailbox not specified", "bad-request"],
    [
      "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands.",
      "feature-not-implemented",
    ],
    ["Permission denied", "forbidden"],
    ["Authentication failed", "not-authorized"],
    ["not recorded by the fake", "service-unavailable"],
    ["", "service-unavailable"],
  ];
  for (const [message, condition] of errors) {
    it(`maps the error Message ${JSON.stringify(message)} to ${condition}`, function () {
      assert.equal(amiErrorCondition(message), condition);
    });
  }
});
