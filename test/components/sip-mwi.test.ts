// The MWI subscriber (RFC 3842) against Asterisk's SIP side as recorded from a real Asterisk 22.10.1
// (test/harness/asterisk-mwi.ts replays ../shared/fixtures/asterisk-22.10.1/sip-mwi.log and refuses
// anything unrecorded): subscribe per mailbox, counts from in-dialog NOTIFYs to the voicemail port,
// unchanged polls ignored, unsolicited NOTIFYs only when attributable to one mailbox, unsubscribe.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import type { VoicemailChange, VoicemailSink } from "../../src/ports/voicemail-port.js";
import { RecordedAsteriskMwi } from "../harness/asterisk-mwi.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import { buildRequest, header, type RawSipMessage } from "../harness/sip-socket.js";

class VoicemailRecorder implements VoicemailSink {
  readonly changes: VoicemailChange[] = [];
  mailboxChanged(change: VoicemailChange): Promise<void> {
    this.changes.push(change);
    return Promise.resolve();
  }
  async waitFor(count: number, timeoutMs = 3_000): Promise<VoicemailChange> {
    const deadline = Date.now() + timeoutMs;
    while (this.changes.length < count && Date.now() < deadline) await sleep(20);
    const change = this.changes[count - 1];
    assert.ok(change, `expected ${count} voicemail changes, got ${this.changes.length}`);
    return change;
  }
}

const answersTo =
  (method: string) =>
  (m: RawSipMessage): boolean =>
    m.status !== undefined && (header(m, "cseq") ?? "").endsWith(method);

describe("SIP MWI subscriber (RFC 3842) against recorded Asterisk", function () {
  let pbx: RecordedAsteriskMwi;
  let endpoint: SipEndpoint;
  let port: number;
  const voicemail = new VoicemailRecorder();

  before(async function () {
    pbx = await RecordedAsteriskMwi.start();
    ({ endpoint, port } = await startSipEndpoint({
      mwi: {
        mailboxes: [{ person: "alice@example.org", uri: `sip:alice@127.0.0.1:${pbx.port}` }],
        sink: voicemail,
      },
    }));
  });
  after(async function () {
    await endpoint?.stop();
    await pbx?.close();
  });

  it("subscribes to the mailbox and reports the counts of the first NOTIFY", async function () {
    const subscribe = await pbx.socket.waitFor((m) => m.method === "SUBSCRIBE");
    assert.equal(subscribe.startLine, `SUBSCRIBE sip:alice@127.0.0.1:${pbx.port} SIP/2.0`);
    assert.equal(header(subscribe, "event"), "message-summary");
    assert.equal(header(subscribe, "accept"), "application/simple-message-summary");
    assert.equal(header(subscribe, "expires"), "3600");
    const first = await voicemail.waitFor(1);
    assert.deepEqual(first, {
      person: "alice@example.org",
      mailbox: `sip:alice@127.0.0.1:${pbx.port}`,
      counts: { waiting: true, newMessages: 3, oldMessages: 0, urgentNew: 0, urgentOld: 0 },
    });
    const ok = await pbx.socket.waitFor(answersTo("NOTIFY"));
    assert.equal(ok.status, 200);
  });

  it("ignores a poll that repeats the counts, and reports a change with the counts before", async function () {
    const answered = pbx.received.filter(answersTo("NOTIFY")).length;
    await pbx.notify(1); // the recorded poll repeating 3/0
    await pbx.socket.waitFor(
      (m) => answersTo("NOTIFY")(m) && pbx.received.filter(answersTo("NOTIFY")).length > answered,
    );
    assert.equal(voicemail.changes.length, 1);
    await pbx.notify(2); // a new voicemail for alice: 4/0
    const change = await voicemail.waitFor(2);
    assert.equal(change.counts.newMessages, 4);
    assert.equal(change.previous?.newMessages, 3);
  });

  it("refuses Asterisk's unsolicited NOTIFY (the sum of the endpoint's mailboxes) with 481", async function () {
    const callId = await pbx.sendUnsolicited(0, port);
    const answer = await pbx.socket.waitFor((m) => m.status !== undefined && header(m, "call-id") === callId);
    assert.equal(answer.status, 481);
    assert.equal(voicemail.changes.length, 2);
  });

  it("answers a NOTIFY of another event package 489", async function () {
    const text = buildRequest({
      method: "NOTIFY",
      uri: `sip:switchboard@127.0.0.1:${port}`,
      via: `UDP 127.0.0.1:${pbx.port}`,
      from: "<sip:alice@127.0.0.1>",
      to: "<sip:switchboard@sip.example.org>",
      callId: "other-event@test",
      cseq: 1,
      headers: { Event: "presence", "Subscription-State": "terminated" },
    });
    await pbx.socket.send(text, port);
    const answer = await pbx.socket.waitFor(
      (m) => m.status !== undefined && header(m, "call-id") === "other-event@test",
    );
    assert.equal(answer.status, 489);
  });

  it("unsubscribes with Expires: 0 on stop, and said nothing the recording does not cover", async function () {
    await endpoint.stop();
    const unsubscribe = pbx.received.find((m) => m.method === "SUBSCRIBE" && header(m, "expires") === "0");
    assert.ok(unsubscribe, "no unsubscribe");
    assert.match(header(unsubscribe, "to") ?? "", /;tag=/);
    assert.deepEqual(
      pbx.unrecorded.map((m) => m.startLine),
      [],
    );
  });
});

describe("SIP MWI: unsolicited NOTIFYs attributable to one mailbox", function () {
  it("takes an unsolicited NOTIFY whose To is the one mailbox's account, and refuses an ambiguous one", async function () {
    const pbx = await RecordedAsteriskMwi.start();
    const voicemail = new VoicemailRecorder();
    // Subscriptions that fail (the fake refuses a second dialog) retry later; the test does not need them.
    const one = await startSipEndpoint({
      mwi: {
        mailboxes: [
          {
            person: "bob@example.org",
            uri: `sip:bob@127.0.0.1:${pbx.port}`,
            account: "sip:bridge@127.0.0.1",
          },
        ],
        sink: voicemail,
        retryMs: 60_000,
      },
    });
    const two = await startSipEndpoint({
      mwi: {
        mailboxes: [
          {
            person: "bob@example.org",
            uri: `sip:bob@127.0.0.1:${pbx.port}`,
            account: "sip:bridge@127.0.0.1",
          },
          {
            person: "carol@example.org",
            uri: `sip:carol@127.0.0.1:${pbx.port}`,
            account: "sip:bridge@127.0.0.1",
          },
        ],
        sink: voicemail,
        retryMs: 60_000,
      },
    });
    try {
      const before = voicemail.changes.length;
      const attributed = await pbx.sendUnsolicited(0, one.port);
      const ok = await pbx.socket.waitFor(
        (m) => m.status !== undefined && header(m, "call-id") === attributed,
      );
      assert.equal(ok.status, 200);
      const change = await voicemail.waitFor(before + 1);
      assert.equal(change.person, "bob@example.org");
      assert.equal(change.counts.newMessages, 3);

      const ambiguous = await pbx.sendUnsolicited(0, two.port);
      const refused = await pbx.socket.waitFor(
        (m) => m.status !== undefined && header(m, "call-id") === ambiguous,
      );
      assert.equal(refused.status, 481);
    } finally {
      await one.endpoint.stop();
      await two.endpoint.stop();
      await pbx.close();
    }
  });
});
