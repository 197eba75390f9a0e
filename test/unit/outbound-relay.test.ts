// The outbound relay with the in-memory queue and a clock the test moves: offline recipients get
// the message queued, retried with a growing delay, delivered once with a late receipt, or failed
// with recipient-unavailable when the time runs out.
import assert from "node:assert/strict";
import { SwitchboardError, type Condition } from "../../src/domain/errors.js";
import { MemoryMessageQueue } from "../../src/messages/memory-queue.js";
import { OutboundRelay } from "../../src/messages/outbound-relay.js";
import type { ChatMessage, DeliveryReports } from "../../src/ports/message-port.js";
import { memoryLogger } from "../harness/memory-logger.js";

function setup(answers: string[]) {
  let now = 1_000_000;
  const sent: ChatMessage[] = [];
  const reports: { delivered: [string, string][]; failed: [string, Condition, string][] } = {
    delivered: [],
    failed: [],
  };
  const sink: DeliveryReports = {
    delivered: (m, outcome) => {
      reports.delivered.push([m.id, outcome]);
      return Promise.resolve();
    },
    failed: (m, condition, text) => {
      reports.failed.push([m.id, condition, text]);
      return Promise.resolve();
    },
  };
  const queue = new MemoryMessageQueue();
  const relay = new OutboundRelay({
    send: (message) => {
      sent.push(message);
      const answer = answers.shift() ?? "delivered";
      if (answer === "delivered" || answer === "accepted") return Promise.resolve(answer);
      return Promise.reject(new SwitchboardError(answer as Condition, `SIP says ${answer}`));
    },
    queue,
    reports: sink,
    log: memoryLogger(),
    ttlMs: 60_000,
    retryMinMs: 1_000,
    retryMaxMs: 4_000,
    clock: () => now,
  });
  return { relay, queue, sent, reports, advance: (ms: number) => (now += ms) };
}

const message = (id: string, extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id,
  from: "alice@example.org",
  to: "bob@example.org",
  body: `hello ${id}`,
  receipt: true,
  ...extra,
});

describe("outbound relay and its queue", function () {
  it("passes a delivered message through and queues nothing", async function () {
    const { relay, queue } = setup(["delivered"]);
    assert.equal(await relay.deliver(message("m1")), "delivered");
    assert.equal(await queue.size(), 0);
  });

  for (const condition of [
    "recipient-unavailable",
    "remote-server-timeout",
    "service-unavailable",
  ] as const) {
    it(`queues a message the phone cannot take now (${condition}) and delivers it later, once`, async function () {
      const { relay, queue, sent, reports, advance } = setup([
        condition,
        "recipient-unavailable",
        "delivered",
      ]);
      assert.equal(await relay.deliver(message("m1")), "queued");
      assert.equal(await queue.size(), 1);
      await relay.retryDue(); // not due yet
      assert.equal(sent.length, 1);
      advance(1_000);
      await relay.retryDue(); // second attempt: still offline, next in 2 s
      assert.equal(sent.length, 2);
      advance(1_000);
      await relay.retryDue();
      assert.equal(sent.length, 2);
      advance(1_000);
      await relay.retryDue();
      assert.equal(sent.length, 3);
      assert.deepEqual(reports.delivered, [["m1", "delivered"]]);
      assert.equal(await queue.size(), 0);
      advance(10_000);
      await relay.retryDue();
      assert.equal(sent.length, 3);
    });
  }

  it("queues a message once however often it is offered (key: sender and id)", async function () {
    const { relay, queue } = setup(["recipient-unavailable", "recipient-unavailable"]);
    await relay.deliver(message("same"));
    await relay.deliver(message("same"));
    assert.equal(await queue.size(), 1);
  });

  it("fails a message with recipient-unavailable when the time runs out", async function () {
    const { relay, queue, reports, advance } = setup(Array<string>(50).fill("recipient-unavailable"));
    await relay.deliver(message("late"));
    for (let i = 0; i < 20; i++) {
      advance(4_000);
      await relay.retryDue();
    }
    assert.equal(await queue.size(), 0);
    assert.equal(reports.failed.length, 1);
    assert.equal(reports.failed[0]?.[1], "recipient-unavailable");
    assert.match(reports.failed[0]?.[2] ?? "", /offline/);
  });

  it("reports a refusal on retry (not an offline one) as the error it is", async function () {
    const { relay, reports, advance } = setup(["recipient-unavailable", "item-not-found"]);
    await relay.deliver(message("gone"));
    advance(1_000);
    await relay.retryDue();
    assert.deepEqual(
      reports.failed.map(([id, condition]) => [id, condition]),
      [["gone", "item-not-found"]],
    );
  });

  it("throws other refusals at once, and never queues chat states", async function () {
    const { relay, queue } = setup(["forbidden", "recipient-unavailable"]);
    await assert.rejects(relay.deliver(message("no")), { condition: "forbidden" });
    await assert.rejects(
      relay.deliver({ id: "s", from: "alice@example.org", to: "bob@example.org", chatState: "composing" }),
      { condition: "recipient-unavailable" },
    );
    assert.equal(await queue.size(), 0);
  });

  it("says when a recipient starts waiting and when their last message left the queue", async function () {
    const events: string[] = [];
    let now = 0;
    const queue = new MemoryMessageQueue();
    const answers = ["recipient-unavailable", "recipient-unavailable", "delivered", "delivered"];
    const relay = new OutboundRelay({
      send: () => {
        const answer = answers.shift() ?? "delivered";
        return answer === "delivered"
          ? Promise.resolve("delivered")
          : Promise.reject(new SwitchboardError("recipient-unavailable", "offline"));
      },
      queue,
      reports: { delivered: () => Promise.resolve(), failed: () => Promise.resolve() },
      log: memoryLogger(),
      retryMinMs: 1_000,
      clock: () => now,
      recipients: {
        waiting: (person) => events.push(`waiting ${person}`),
        done: (person) => events.push(`done ${person}`),
      },
    });
    await relay.deliver(message("one"));
    await relay.deliver(message("two"));
    now += 1_000;
    await relay.retryDue();
    assert.deepEqual(events, ["waiting bob@example.org", "waiting bob@example.org", "done bob@example.org"]);
  });

  it("sends a message once when a retry round and the phone-is-back signal meet", async function () {
    const { relay, sent, advance } = setup(["recipient-unavailable"]);
    await relay.deliver(message("once"));
    advance(1_000);
    await Promise.all([relay.retryDue(), relay.recipientOnline("bob@example.org"), relay.retryDue()]);
    assert.deepEqual(
      sent.map((m) => m.id),
      ["once", "once"],
    );
  });

  it("tries a recipient's messages at once when they come back, oldest first", async function () {
    const { relay, sent } = setup([
      "recipient-unavailable",
      "recipient-unavailable",
      "delivered",
      "delivered",
    ]);
    await relay.deliver(message("first"));
    await relay.deliver(message("second"));
    await relay.recipientOnline("bob@example.org");
    assert.deepEqual(
      sent.map((m) => m.id),
      ["first", "second", "first", "second"],
    );
  });
});
