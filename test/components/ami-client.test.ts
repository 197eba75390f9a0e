// The AMI client against Asterisk 22.10.1's Manager Interface as recorded (test/fakes/ami-fake.ts
// replays ../shared/fixtures/asterisk-22.10.1/ami-actions.txt and the event logs, refusing anything
// unrecorded): login, replies with repeated keys, error replies, a refused login retried, events,
// list actions, losing the connection and getting it back, keepalive. Peers that break the protocol
// (garbage, oversize blocks, silence) are plain sockets in this file: they are hostile peers, not
// Asterisk, and say so.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { AmiBlock, AmiClient, type AmiClientOptions } from "../../components/asterisk/ami-client.js";
import { SwitchboardError, type Condition } from "../../src/domain/errors.js";
import { AmiFake, wireOf } from "../fakes/ami-fake.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { LOOPBACK } from "../harness/net.js";

/** Waits for `name` on the client, failing after `ms`. */
async function next(
  client: AmiClient,
  name: "connected" | "disconnected" | "event",
  ms = 5000,
): Promise<unknown[]> {
  return once(client, name, { signal: AbortSignal.timeout(ms) });
}

async function until(what: string, predicate: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

async function rejectsWith(
  promise: Promise<unknown>,
  condition: Condition,
  text: string | RegExp,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SwitchboardError, `expected SwitchboardError, got ${String(err)}`);
    assert.equal(err.condition, condition);
    if (typeof text === "string")
      assert.ok(err.message.includes(text), `'${err.message}' should say '${text}'`);
    else assert.match(err.message, text);
    return true;
  });
}

describe("AMI client against recorded Asterisk 22.10.1", function () {
  let fake: AmiFake;
  let lines: LogLine[];
  let clients: AmiClient[];
  /** What a test expects the fake not to have recorded (most expect nothing). */
  let expectedUnrecorded: string[];

  const client = (options: Partial<AmiClientOptions> = {}): AmiClient => {
    const created = new AmiClient({
      host: fake.host,
      port: fake.port,
      username: "bridge",
      password: "secret",
      log: memoryLogger(lines),
      actionTimeoutMs: 3000,
      keepaliveMs: 60_000,
      reconnect: { minMs: 50, maxMs: 300 },
      ...options,
    });
    clients.push(created);
    return created;
  };

  const started = async (options: Partial<AmiClientOptions> = {}): Promise<AmiClient> => {
    const created = client(options);
    const connected = next(created, "connected");
    created.start();
    await connected;
    return created;
  };

  beforeEach(async function () {
    fake = await AmiFake.start();
    lines = [];
    clients = [];
    expectedUnrecorded = [];
  });

  afterEach(async function () {
    await Promise.all(clients.map((c) => c.stop()));
    await fake.stop();
    assert.deepEqual(fake.unrecorded, expectedUnrecorded, "actions the recording does not cover");
  });

  it("logs in with events on and answers Ping as recorded", async function () {
    const ami = client();
    const events: AmiBlock[] = [];
    ami.on("event", (block) => events.push(block));
    const connected = next(ami, "connected");
    ami.start();
    await connected;
    assert.equal(ami.connected, true);
    const login = fake.received[0];
    assert.equal(login?.get("Action"), "Login");
    assert.equal(login?.get("Username"), "bridge");
    assert.equal(login?.get("Events"), "on");
    assert.ok(login?.get("ActionID"), "Login carries an ActionID");

    const pong = await ami.action("Ping");
    assert.equal(pong.get("Response"), "Success");
    assert.equal(pong.get("Ping"), "Pong");
    assert.equal(pong.get("ActionID"), fake.received.at(-1)?.get("ActionID"));
    // What Asterisk sends a session with events on right after login.
    await until("FullyBooted", () => events.some((e) => e.get("Event") === "FullyBooted"));
    assert.ok(lines.some((l) => l.message === "AMI logged in"));
    assert.ok(!JSON.stringify(lines).includes('"secret"'), "the secret is never logged");
  });

  it("logs in with events off exactly as recorded, and then gets no events", async function () {
    const ami = await started({ events: false });
    assert.equal(fake.received[0]?.get("Events"), "off");
    const change = fake.recordedEvent((e) => e.get("Event") === "PresenceStateChange");
    assert.equal(fake.emit(change), 0);
    assert.equal((await ami.action("Ping")).get("Ping"), "Pong");
  });

  it("reads PresenceState with both of its Message lines, and Getvar of PRESENCE_STATE", async function () {
    const ami = await started();
    const reply = await ami.action("PresenceState", { Provider: "CustomPresence:alice" });
    assert.deepEqual(reply.all("Message"), ["Presence State", "Lunch, back at 2"]);
    assert.equal(reply.get("message"), "Presence State");
    assert.equal(reply.get("State"), "away");
    assert.equal(reply.get("PresenceMessage"), "Lunch, back at 2");
    const value = await ami.action("Getvar", { Variable: "PRESENCE_STATE(CustomPresence:alice,message)" });
    assert.equal(value.get("Value"), "Lunch, back at 2");
  });

  it("reads MailboxCount as recorded, and counts a test sets in the recorded shape", async function () {
    const ami = await started();
    const recorded = await ami.action("MailboxCount", { Mailbox: "alice@default" });
    assert.deepEqual(
      [recorded.get("Mailbox"), recorded.get("NewMessages"), recorded.get("OldMessages")],
      ["alice@default", "2", "0"],
    );

    const template = fake.recordedReply("MailboxCount", { Mailbox: "alice@default" });
    fake.answer(
      "MailboxCount",
      { Mailbox: "bob@default" },
      fake.like(template, { Mailbox: "bob@default", NewMessages: "5" }),
    );
    const bob = await ami.action("MailboxCount", { Mailbox: "bob@default" });
    assert.deepEqual(bob.keys(), recorded.keys());
    assert.equal(bob.get("NewMessages"), "5");

    // The shape is the recording's: no new keys, no dropped keys, no other Response.
    assert.throws(() => fake.like(template, { Unread: "1" }), /not in the recorded block/);
    assert.throws(() => fake.like(template, { Response: "Error" }), /cannot be changed/);
    const ping = fake.recordedReply("Ping");
    assert.throws(() => fake.answer("MailboxCount", { Mailbox: "bob@default" }, ping), /recorded shape/);
    assert.throws(
      () => fake.answer("MailboxCount", { Folder: "INBOX" }, template),
      /no recorded MailboxCount/,
    );
    assert.throws(
      () => fake.answer("MailboxCount", { Mailbox: "x" }, new AmiBlock(template.lines)),
      /like\(\)/,
    );
  });

  it("rejects an Error reply with Asterisk's Message and a fitting condition", async function () {
    const ami = await started();
    await rejectsWith(ami.action("PresenceState"), "bad-request", "No provider specified");
    await rejectsWith(
      ami.action("NoSuchAction"),
      "feature-not-implemented",
      "Invalid/unknown command: NoSuchAction",
    );
    assert.equal(ami.connected, true, "an error reply is an answer, not a broken connection");
  });

  it("a wrong secret is refused (as recorded), logged, and retried at the longest delay", async function () {
    this.timeout(15_000);
    const ami = client({ password: "wrong", reconnect: { minMs: 10, maxMs: 400 } });
    let connected = 0;
    ami.on("connected", () => connected++);
    const began = Date.now();
    ami.start();
    await until(
      "a second login attempt",
      () => fake.received.filter((b) => b.get("Action") === "Login").length >= 2,
    );
    // Asterisk answers a wrong secret after 1 s and closes; the retry waits maxMs, not minMs.
    assert.ok(Date.now() - began >= 1000 + 400 - 20, `retried after ${Date.now() - began} ms`);
    assert.equal(connected, 0);
    assert.equal(ami.connected, false);
    assert.equal(fake.logins, 0);
    const refused = lines.find((l) => l.level === "error" && l.message.startsWith("AMI login refused"));
    assert.ok(refused, "the refused login is logged as an error");
    assert.equal(refused.fields.reason, "AMI Login: Authentication failed");
    await rejectsWith(ami.action("Ping"), "service-unavailable", "not connected");
  });

  it("passes an unsolicited event from the recording as `event`, in the recorded shape", async function () {
    const ami = await started();
    const events: AmiBlock[] = [];
    ami.on("event", (block) => events.push(block));
    await sleep(50); // FullyBooted and SuccessfulAuth of the login, before ours

    const recorded = fake.recordedEvent(
      (e) => e.get("Event") === "PresenceStateChange" && e.get("Status") === "dnd",
    );
    const bob = fake.like(recorded, {
      Presentity: "CustomPresence:bob",
      Status: "away",
      Message: "Lunch, back at 2",
    });
    assert.equal(fake.emit(bob), 1);
    const waiting = fake.like(
      fake.recordedEvent((e) => e.get("Event") === "MessageWaiting"),
      { Mailbox: "bob@default", New: "2" },
    );
    fake.emit(waiting);
    await until(
      "two events",
      () =>
        events.filter((e) => /PresenceStateChange|MessageWaiting/.test(e.get("Event") ?? "")).length === 2,
    );
    const [presence, mwi] = events.filter((e) =>
      /PresenceStateChange|MessageWaiting/.test(e.get("Event") ?? ""),
    );
    assert.deepEqual(presence?.lines, bob.lines);
    assert.equal(presence?.get("Message"), "Lunch, back at 2");
    assert.equal(mwi?.get("Mailbox"), "bob@default");
    assert.equal(mwi?.get("New"), "2");
    assert.equal(mwi?.get("Waiting"), "1");

    // Only recorded events, only recorded keys.
    assert.throws(() => fake.like(recorded, { Note: "x" }), /not in the recorded block/);
    assert.throws(
      () => fake.emit(new AmiBlock([["Event", "PresenceStateChange"]])),
      /only events from the event recordings/,
    );
    assert.throws(() => fake.emit(fake.recordedReply("Ping")), /only events from the event recordings/);
  });

  it("collects the events of list actions up to the closing …Complete", async function () {
    const ami = await started();
    const devices = await ami.actionList("DeviceStateList");
    assert.equal(devices.response.get("EventList"), "start");
    assert.deepEqual(
      devices.events.map((e) => `${e.get("Device")}=${e.get("State")}`),
      [
        "MWI:alice@default=INUSE",
        "MWI:bob@default=INUSE",
        "PJSIP/alice=UNAVAILABLE",
        "Custom:foo=INUSE",
        "PJSIP/bridge=NOT_INUSE",
        "PJSIP/bob=UNAVAILABLE",
      ],
    );
    assert.equal(devices.complete?.get("Event"), "DeviceStateListComplete");
    assert.equal(devices.complete?.get("ListItems"), "6");

    const extensions = await ami.actionList("ExtensionStateList");
    assert.deepEqual(
      extensions.events.map((e) => [e.get("Exten"), e.get("Hint"), e.get("StatusText")]),
      [
        ["bob", "PJSIP/bob,CustomPresence:bob", "Unavailable"],
        ["alice", "PJSIP/alice,CustomPresence:alice", "Unavailable"],
      ],
    );
    const presence = await ami.actionList("PresenceStateList");
    assert.deepEqual(
      presence.events.map((e) => [e.get("Presentity"), e.get("Status"), e.get("Message")]),
      [["CustomPresence:alice", "away", "Lunch, back at 2"]],
    );
  });

  it("a list answer a test sets keeps the recorded shapes", async function () {
    const ami = await started();
    const [response, item, complete] = fake.recordedReplies("PresenceStateList");
    assert.ok(response && item && complete);
    fake.answer("PresenceStateList", {}, [
      fake.like(response, {}),
      fake.like(item, { Status: "available", Message: "" }),
      fake.like(item, { Presentity: "CustomPresence:bob", Status: "dnd", Message: "On the phone" }),
      fake.like(complete, { ListItems: "2" }),
    ]);
    const list = await ami.actionList("PresenceStateList");
    assert.deepEqual(
      list.events.map((e) => `${e.get("Presentity")}=${e.get("Status")}`),
      ["CustomPresence:alice=available", "CustomPresence:bob=dnd"],
    );
    assert.equal(list.complete?.get("ListItems"), "2");
    const device = fake.recordedReplies("DeviceStateList")[1];
    assert.ok(device);
    assert.throws(() => fake.answer("PresenceStateList", {}, [response, device, complete]), /recorded shape/);
    assert.throws(() => fake.answer("PresenceStateList", {}, [response, item]), /recorded shape/);
    // No presentity at all is a value (ListItems: 0), not a new shape.
    fake.answer("PresenceStateList", {}, [response, fake.like(complete, { ListItems: "0" })]);
    assert.deepEqual((await ami.actionList("PresenceStateList")).events, []);
  });

  it("a dropped connection gives `disconnected`, rejects what was pending, then reconnects", async function () {
    const ami = await started();
    const disconnected = next(ami, "disconnected");
    const pending = ami.action("Ping");
    fake.dropConnections();
    const [reason] = await disconnected;
    assert.equal(typeof reason, "string");
    await rejectsWith(pending, "service-unavailable", "connection lost");
    assert.equal(ami.connected, false);
    await rejectsWith(ami.action("Ping"), "service-unavailable", "not connected");

    await next(ami, "connected", 5000);
    assert.equal(fake.logins, 2);
    assert.equal((await ami.action("Ping")).get("Ping"), "Pong");
  });

  it("reconnects when Asterisk restarts on the same port", async function () {
    const ami = await started();
    const port = fake.port;
    const disconnected = next(ami, "disconnected");
    await fake.stop();
    await disconnected;
    await sleep(400); // refused attempts meanwhile, at most maxMs apart
    fake = await AmiFake.start({ port });
    await next(ami, "connected", 5000);
    assert.equal((await ami.action("Ping")).get("Ping"), "Pong");
  });

  it("an action while not logged in rejects at once", async function () {
    const ami = client();
    for (const attempt of [() => ami.action("Ping"), () => ami.actionList("DeviceStateList")]) {
      const began = Date.now();
      await rejectsWith(attempt(), "service-unavailable", "not connected");
      assert.ok(Date.now() - began < 100);
    }
    const connected = next(ami, "connected");
    ami.start();
    await rejectsWith(ami.action("Ping"), "service-unavailable", "not connected"); // still logging in
    await connected;
    await ami.stop();
    await rejectsWith(ami.action("Ping"), "service-unavailable", "not connected");
  });

  it("stop() logs off as recorded and does not reconnect", async function () {
    const ami = await started();
    const disconnected = next(ami, "disconnected");
    await ami.stop();
    assert.deepEqual(await disconnected, ["stopped"]);
    assert.equal(fake.received.at(-1)?.get("Action"), "Logoff");
    await sleep(400);
    assert.equal(fake.connections, 1);
    assert.equal(ami.state, "stopped");
  });

  it("refuses field names and values that would smuggle in lines", async function () {
    const ami = await started();
    const before = fake.received.length;
    await rejectsWith(ami.action("Getvar", { Variable: "x\r\nAction: Logoff" }), "bad-request", "line break");
    await rejectsWith(
      ami.action("Getvar", { "Variable\r\nAction": "Logoff" }),
      "bad-request",
      "not a header name",
    );
    await rejectsWith(ami.action("Ping", { ActionID: "7" }), "bad-request", "set by the client");
    await sleep(50);
    assert.equal(fake.received.length, before, "nothing was sent");
  });

  it("keeps the connection with Pings while Asterisk answers them", async function () {
    const ami = await started({ keepaliveMs: 50 });
    await until(
      "three keepalive Pings",
      () => fake.received.filter((b) => b.get("Action") === "Ping").length >= 3,
    );
    assert.equal(ami.connected, true);
    assert.equal(fake.connections, 1);
  });

  it("the fake refuses what it did not record, and the client reports that as an error", async function () {
    expectedUnrecorded = ["MailboxCount Mailbox=carol@default (logged in)"];
    const ami = await started();
    await rejectsWith(
      ami.action("MailboxCount", { Mailbox: "carol@default" }),
      "service-unavailable",
      "not recorded by the fake",
    );
  });
});

/**
 * A peer that breaks the AMI protocol. It quotes the recorded greeting and login reply where it needs
 * the client to get that far; everything else it sends is deliberately not Asterisk.
 */
class HostilePeer {
  readonly sockets: Socket[] = [];
  private readonly server: Server;
  port = 0;

  private constructor(onConnection: (socket: Socket) => void) {
    this.server = createServer((socket) => {
      socket.on("error", () => undefined);
      this.sockets.push(socket);
      onConnection(socket);
    });
  }

  static async start(onConnection: (socket: Socket) => void): Promise<HostilePeer> {
    const peer = new HostilePeer(onConnection);
    await new Promise<void>((resolve) => peer.server.listen(0, LOOPBACK, resolve));
    const address = peer.server.address();
    peer.port = typeof address === "object" && address ? address.port : 0;
    return peer;
  }

  /** Answers the client's Login with the recorded success reply, then calls `then`. */
  static acceptLogin(fake: AmiFake, socket: Socket, then: () => void): void {
    const login = fake.recordedReply("Login", { Username: "bridge", Secret: "secret" });
    socket.write(fake.greeting);
    let text = "";
    const onData = (chunk: Buffer): void => {
      text += chunk.toString("utf8");
      const actionId = /^ActionID: (.*)\r$/m.exec(text)?.[1];
      if (!/\r\n\r\n/.test(text) || actionId === undefined) return;
      socket.off("data", onData);
      socket.write(wireOf(new AmiBlock(login.lines.map(([k, v]) => [k, k === "ActionID" ? actionId : v]))));
      then();
    };
    socket.on("data", onData);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe("AMI client against peers that break the protocol", function () {
  let fake: AmiFake; // only to quote recorded blocks
  let peer: HostilePeer | undefined;
  let ami: AmiClient | undefined;
  let lines: LogLine[];

  const clientFor = (port: number, options: Partial<AmiClientOptions> = {}): AmiClient => {
    ami = new AmiClient({
      host: LOOPBACK,
      port,
      username: "bridge",
      password: "secret",
      log: memoryLogger(lines),
      actionTimeoutMs: 500,
      keepaliveMs: 60_000,
      reconnect: { minMs: 20, maxMs: 100 },
      ...options,
    });
    return ami;
  };

  beforeEach(async function () {
    fake = await AmiFake.start();
    lines = [];
  });
  afterEach(async function () {
    await ami?.stop();
    await peer?.stop();
    await fake.stop();
    ami = undefined;
    peer = undefined;
  });

  it("something that is not an AMI greeting is dropped and tried again later", async function () {
    peer = await HostilePeer.start((socket) =>
      socket.write(Buffer.from([0xff, 0x00, 0xfe, 0x0a, 0x0d, 0x0a])),
    );
    const client = clientFor(peer.port);
    client.start();
    await until("a retry", () => (peer?.sockets.length ?? 0) >= 3);
    assert.equal(client.connected, false);
    assert.ok(lines.some((l) => String(l.fields.reason).startsWith("not an AMI greeting")));
  });

  it("a greeting line that never ends is cut off at 64 KiB", async function () {
    peer = await HostilePeer.start((socket) => socket.write(Buffer.alloc(70 * 1024, "A")));
    const client = clientFor(peer.port);
    client.start();
    await until("a retry", () => (peer?.sockets.length ?? 0) >= 2);
    assert.ok(lines.some((l) => l.fields.reason === "AMI greeting line too long"));
  });

  it("garbage after login is logged and ignored; an endless block drops the connection", async function () {
    let round = 0;
    peer = await HostilePeer.start((socket) => {
      round++;
      HostilePeer.acceptLogin(fake, socket, () => {
        if (round > 1) return;
        socket.write("no colon here\r\n\u0000\u00ff binary\r\n\r\n"); // lines without a colon
        socket.write("Response: Success\r\nActionID: 999\r\n\r\n"); // a reply to nothing we sent
        socket.write("Foo: bar\r\n\r\n"); // neither Response nor Event
        socket.write("\r\n\r\n\n\n"); // stray line ends
        socket.write("Event: Made-up\r\nKey: value\r\n\r\n"); // well-formed, so passed on
        setTimeout(() => socket.write(`Event: Endless\r\n${"X: y\r\n".repeat(12_000)}`), 50);
      });
    });
    const client = clientFor(peer.port);
    const events: AmiBlock[] = [];
    client.on("event", (block) => events.push(block));
    const connected = next(client, "connected");
    client.start();
    await connected;
    const [reason] = await next(client, "disconnected");
    assert.match(String(reason), /over 65536 bytes/);
    await next(client, "connected");
    assert.deepEqual(
      events.map((e) => e.get("Event")),
      ["Made-up"],
    );
    assert.ok(lines.some((l) => l.message === "AMI: lines without a colon ignored"));
    assert.ok(lines.some((l) => l.message.startsWith("AMI block with neither Response nor Event")));
  });

  it("an event listener that throws costs neither the connection nor the process", async function () {
    peer = await HostilePeer.start((socket) =>
      HostilePeer.acceptLogin(fake, socket, () => {
        socket.write("Event: One\r\n\r\nEvent: Two\r\n\r\n");
      }),
    );
    const client = clientFor(peer.port);
    const seen: string[] = [];
    client.on("event", (block) => {
      seen.push(block.get("Event") ?? "");
      throw new Error("listener bug");
    });
    client.start();
    await until("both events", () => seen.length === 2);
    assert.equal(client.connected, true);
    assert.ok(lines.some((l) => l.message === "AMI listener threw"));
  });

  it("an unanswered action times out, and an unanswered keepalive Ping reconnects", async function () {
    peer = await HostilePeer.start((socket) => HostilePeer.acceptLogin(fake, socket, () => undefined));
    const client = clientFor(peer.port, { keepaliveMs: 200 });
    const connected = next(client, "connected");
    client.start();
    await connected;
    const began = Date.now();
    await rejectsWith(client.action("Ping"), "remote-server-timeout", "unanswered within 500 ms");
    assert.ok(Date.now() - began >= 450);
    const [reason] = await next(client, "disconnected");
    assert.equal(reason, "keepalive Ping unanswered");
    await next(client, "connected");
  });

  it("a server that accepts TCP but never greets is left after actionTimeoutMs", async function () {
    peer = await HostilePeer.start(() => undefined);
    const client = clientFor(peer.port);
    client.start();
    await until("a retry", () => (peer?.sockets.length ?? 0) >= 2);
    assert.ok(lines.some((l) => l.fields.reason === "no AMI greeting within 500 ms"));
  });
});
