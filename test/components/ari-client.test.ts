// The ARI client against the recorded Asterisk 22.10.1 (test/fakes/ari-fake.ts): every request it
// makes must be one a real Asterisk answered, byte for byte; events are recorded ones.
import assert from "node:assert/strict";
import { once, type EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import {
  AriClient,
  isDeviceStateChanged,
  type AriClientOptions,
  type AriEvent,
  type DeviceStateChanged,
} from "../../components/asterisk/ari-client.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { formatPresenceState } from "../../src/domain/mapping/asterisk-presence.js";
import { silentLogger } from "../../src/ports/logger.js";
import {
  ARI_PASSWORD,
  ARI_REST_FIXTURE,
  ARI_USERNAME,
  AriFake,
  like,
  parseAriRecording,
  recordedEvent,
  type RecordedExchange,
} from "../fakes/ari-fake.js";
import { LOOPBACK, freePort } from "../harness/net.js";

const WAIT_MS = 3_000;

/** The next `name` event of `emitter`, or a rejection after `ms`. */
async function next<T extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  name: string,
  ms = WAIT_MS,
): Promise<T> {
  return (await once(emitter, name, { signal: AbortSignal.timeout(ms) })) as T;
}

async function rejectsWith(promise: Promise<unknown>, condition: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SwitchboardError, `not a SwitchboardError: ${String(err)}`);
    assert.equal(err.condition, condition);
    assert.match(err.message, message);
    return true;
  });
}

/** The recorded REST exchange whose title (e.g. "9. write presence away,,Lunch") matches. */
function exchange(fake: AriFake, title: RegExp): RecordedExchange {
  const found = fake.recorded.find((e) => title.test(e.title));
  assert.ok(found, `no recorded exchange ${String(title)}`);
  return found;
}

describe("ARI client (recorded Asterisk 22.10.1)", function () {
  let fake: AriFake;
  const clients: AriClient[] = [];

  function client(overrides: Partial<AriClientOptions> = {}): AriClient {
    const created = new AriClient({
      url: fake.url,
      username: ARI_USERNAME,
      password: ARI_PASSWORD,
      app: "switchboard",
      log: silentLogger,
      requestTimeoutMs: 2_000,
      reconnect: { minMs: 20, maxMs: 200 },
      ...overrides,
    });
    clients.push(created);
    return created;
  }

  before(async function () {
    fake = await AriFake.start();
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    fake.reset();
  });
  after(async function () {
    await fake?.stop();
  });

  describe("REST", function () {
    it("info: the version from GET /ari/asterisk/info", async function () {
      assert.deepEqual(await client().info(), { version: "22.10.1", entityId: "02:fc:00:00:00:01" });
      assert.deepEqual(fake.unrecorded, []);
    });

    it("endpoints and one endpoint", async function () {
      const ari = client();
      assert.deepEqual(
        (await ari.endpoints()).map((e) => `${e.technology}/${e.resource} ${e.state}`),
        ["PJSIP/alice offline", "PJSIP/bridge online", "PJSIP/bob offline"],
      );
      assert.deepEqual(await ari.endpoint("PJSIP", "alice"), {
        technology: "PJSIP",
        resource: "alice",
        state: "offline",
        channel_ids: [],
      });
      assert.deepEqual(fake.unrecorded, []);
    });

    it("deviceStates, and deviceState('PJSIP/alice') with the slash as %2F", async function () {
      const ari = client();
      assert.deepEqual(await ari.deviceStates(), []);
      assert.deepEqual(await ari.deviceState("PJSIP/alice"), { name: "PJSIP/alice", state: "UNAVAILABLE" });
      assert.deepEqual(
        fake.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
        ["GET /ari/deviceStates 200", "GET /ari/deviceStates/PJSIP%2Falice 200"],
      );
      assert.deepEqual(fake.unrecorded, []);
    });

    it("a recorded reply made to say another state (values only)", async function () {
      const one = fake.recordedReply<{ name: string; state: string }>(
        "GET",
        "/ari/deviceStates/PJSIP%2Falice",
      );
      fake.answer("GET", "/ari/deviceStates/PJSIP%2Falice", like(one, { state: "INUSE" }));
      fake.answer("GET", "/ari/deviceStates", [like(one, { state: "RINGING" })]);
      const ari = client();
      assert.deepEqual(await ari.deviceState("PJSIP/alice"), { name: "PJSIP/alice", state: "INUSE" });
      assert.deepEqual(await ari.deviceStates(), [{ name: "PJSIP/alice", state: "RINGING" }]);
      assert.throws(
        () => fake.answer("GET", "/ari/deviceStates/PJSIP%2Falice", { ...one, presence: "away" }),
        /\$\.presence is not in the recording/,
      );
      assert.throws(() => like(one, { state: 2 } as never), /\$\.state is a string in the recording/);
      assert.throws(() => fake.answer("GET", "/ari/deviceStates/PJSIP%2Fbob", one), /no recorded 2xx/);
      assert.deepEqual(fake.unrecorded, []);
    });

    it("setCustomPresence('alice', 'away,,Lunch') is recorded request #9 (204)", async function () {
      await client().setCustomPresence("alice", "away,,Lunch");
      const [request] = fake.requests;
      assert.deepEqual(
        request && [request.method, request.path, request.query, request.body, request.status],
        [
          "POST",
          "/ari/asterisk/variable",
          "variable=PRESENCE_STATE(CustomPresence:alice)&value=away,,Lunch",
          "",
          204,
        ],
      );
      assert.equal(request?.url, exchange(fake, /^9\./).url);
      assert.deepEqual(fake.unrecorded, []);
    });

    it("a message with a comma goes base64 with the 'e' option, as recorded #11", async function () {
      const value = formatPresenceState({ value: "away", subtype: "", message: "Lunch, back at 2" });
      await client().setCustomPresence("alice", value);
      assert.equal(fake.requests[0]?.url, exchange(fake, /^11\./).url);
      assert.equal(fake.requests[0]?.status, 204);
      assert.deepEqual(fake.unrecorded, []);
    });

    it("a raw comma in the message is refused before sending (Asterisk would answer 204 and ignore it, #10)", async function () {
      await rejectsWith(
        client().setCustomPresence("alice", "away,,Lunch, back at 2"),
        "bad-request",
        /base64/,
      );
      await rejectsWith(client().setCustomPresence("al)ice", "away,,Lunch"), "bad-request", /provider/);
      assert.deepEqual(fake.requests, []);
    });

    it("sendMessage is recorded request #13 (202)", async function () {
      await client().sendMessage(
        "pjsip:bridge/sip:alice@127.0.0.1:5070",
        "sip:bob@127.0.0.1",
        "Hello from ARI",
      );
      assert.equal(fake.requests[0]?.url, exchange(fake, /^13\./).url);
      assert.equal(fake.requests[0]?.status, 202);
      assert.deepEqual(fake.unrecorded, []);
    });

    it("404 is item-not-found with ARI's message", async function () {
      const ari = client();
      await rejectsWith(ari.endpoint("PJSIP", "nosuch"), "item-not-found", /404 Endpoint not found/);
      await rejectsWith(
        ari.sendMessage("xmpp:alice@example.org", "sip:bob@127.0.0.1", "x"),
        "item-not-found",
        /404 Endpoint not found/,
      );
      assert.deepEqual(fake.unrecorded, []);
    });

    it("401 (wrong password) is forbidden", async function () {
      await rejectsWith(client({ password: "wrong" }).info(), "forbidden", /401 Authentication required/);
      assert.deepEqual(fake.unrecorded, []);
    });

    it("an unrecorded request gets 501 (service-unavailable) and is listed", async function () {
      const ari = client();
      await rejectsWith(ari.deviceState("PJSIP/bob"), "service-unavailable", /501/);
      await rejectsWith(
        ari.sendMessage("pjsip:bridge/sip:alice@127.0.0.1:5070", "sip:bob@127.0.0.1", "Hello from ARI", {
          "X-Flow": "1",
        }),
        "service-unavailable",
        /501/,
      );
      assert.deepEqual(fake.unrecorded, [
        "GET /ari/deviceStates/PJSIP%2Fbob",
        "PUT /ari/endpoints/sendMessage?to=pjsip:bridge/sip:alice@127.0.0.1:5070&from=sip:bob@127.0.0.1&body=Hello%20from%20ARI",
      ]);
      assert.equal(fake.requests[1]?.body, '{"variables":{"X-Flow":"1"}}');
    });

    it("no answer within requestTimeoutMs, and a refused connection, are service-unavailable", async function () {
      const held: Socket[] = [];
      const silent: Server = createServer((socket) => held.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, LOOPBACK, resolve));
      const address = silent.address();
      const port = typeof address === "object" && address ? address.port : 0;
      try {
        const started = Date.now();
        await rejectsWith(
          client({ url: `http://${LOOPBACK}:${port}`, requestTimeoutMs: 150 }).info(),
          "service-unavailable",
          /no answer within 150 ms/,
        );
        assert.ok(Date.now() - started < 1_500);
      } finally {
        for (const socket of held) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
      const closed = await freePort();
      await rejectsWith(
        client({ url: `http://${LOOPBACK}:${closed}` }).info(),
        "service-unavailable",
        /unreachable.*ECONNREFUSED/,
      );
    });
  });

  describe("events WebSocket", function () {
    const aliceIdle = (): DeviceStateChanged =>
      recordedEvent(
        (e): e is DeviceStateChanged =>
          isDeviceStateChanged(e) &&
          e.device_state.name === "PJSIP/alice" &&
          e.device_state.state === "NOT_INUSE",
      );

    it("connects with Basic credentials as recorded (#24) and delivers a recorded DeviceStateChanged", async function () {
      const ari = client();
      const connected = next(ari, "connected");
      ari.start();
      await connected;
      assert.equal(ari.connected, true);
      assert.deepEqual(fake.upgrades, [
        {
          url: "/ari/events?app=switchboard&subscribeAll=true",
          authorization: exchange(fake, /^1\./).headers.get("authorization"),
          status: 101,
        },
      ]);
      await fake.waitForConnections(1, WAIT_MS);
      const arrived = next<[AriEvent]>(ari, "event");
      const bobBusy = like(aliceIdle(), { device_state: { name: "PJSIP/bob", state: "INUSE" } });
      assert.equal(fake.emit(bobBusy), 1);
      const [event] = await arrived;
      assert.ok(isDeviceStateChanged(event));
      assert.deepEqual(event.device_state, { name: "PJSIP/bob", state: "INUSE" });
      assert.equal(event.application, "switchboard");
      assert.equal(event.asterisk_id, "02:fc:00:00:00:01");
      assert.deepEqual(fake.unrecorded, []);
    });

    it("like() refuses a new key; emit() refuses invented events and ones subscribeAll never carried", function () {
      assert.throws(
        () => like(aliceIdle(), { device_state: { presence: "away" } } as never),
        /\$\.device_state\.presence is not in the recorded value/,
      );
      assert.throws(() => like(aliceIdle(), { state: "INUSE" }), /\$\.state is not in the recorded value/);
      assert.throws(
        () =>
          fake.emit({ type: "DeviceStateChanged", device_state: { name: "PJSIP/alice", state: "INUSE" } }),
        /only events taken from the recordings/,
      );
      const endpointChange = recordedEvent((e) => e.type === "EndpointStateChange");
      assert.throws(() => fake.emit(endpointChange), /recorded only without subscribeAll/);
      const mutated = aliceIdle();
      mutated.extra = 1;
      assert.throws(() => fake.emit(mutated), /\$\.extra is not in the recording/);
    });

    it("dropped: disconnected, then reconnected with backoff, then connected again", async function () {
      const ari = client();
      const first = next(ari, "connected");
      ari.start();
      await first;
      await fake.waitForConnections(1, WAIT_MS);
      const disconnected = next<[string]>(ari, "disconnected");
      const again = next(ari, "connected", WAIT_MS);
      assert.equal(fake.dropEvents(), 1);
      const [reason] = await disconnected;
      assert.match(reason, /1006/);
      await again;
      assert.equal(ari.connected, true);
      assert.deepEqual(
        fake.upgrades.map((u) => u.status),
        [101, 101],
      );
      await fake.waitForConnections(1, WAIT_MS);
      const arrived = next<[AriEvent]>(ari, "event");
      fake.emit(aliceIdle());
      assert.deepEqual((await arrived)[0].device_state, { name: "PJSIP/alice", state: "NOT_INUSE" });
    });

    it("reconnects when Asterisk comes back on its port after refusing connections", async function () {
      const own = await AriFake.start();
      const port = own.port;
      const ari = client({ url: own.url });
      let opened = 0;
      ari.on("connected", () => (opened += 1));
      const first = next(ari, "connected");
      ari.start();
      await first;
      const disconnected = next(ari, "disconnected");
      await own.stop();
      await disconnected;
      assert.equal(ari.connected, false);
      await new Promise((resolve) => setTimeout(resolve, 150)); // a few refused attempts
      const again = next(ari, "connected");
      const back = await AriFake.start({ port });
      try {
        await again;
        assert.equal(opened, 2);
        assert.deepEqual(back.unrecorded, []);
      } finally {
        await ari.stop();
        await back.stop();
      }
    });

    it("stop() closes the connection and stops reconnecting", async function () {
      const ari = client();
      const connected = next(ari, "connected");
      ari.start();
      await connected;
      await fake.waitForConnections(1, WAIT_MS);
      await ari.stop();
      assert.equal(ari.connected, false);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(fake.connections, 0);
      assert.equal(fake.upgrades.length, 1);
    });

    it("keeps the connection across pings (Asterisk answers them with pongs)", async function () {
      const ari = client({ pingIntervalMs: 30 });
      let dropped = 0;
      ari.on("disconnected", () => (dropped += 1));
      const connected = next(ari, "connected");
      ari.start();
      await connected;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(dropped, 0);
      assert.equal(ari.connected, true);
    });
  });

  describe("the fake's upgrade replies are the recorded bytes", function () {
    /** Sends a recorded request verbatim and returns the response with Date blanked. */
    async function replay(recorded: RecordedExchange): Promise<string> {
      const socket = connect(fake.port, LOOPBACK);
      await once(socket, "connect");
      const head = [...recorded.headers].map(([name, value]) => `${name}: ${value}\r\n`).join("");
      socket.write(`${recorded.method} ${recorded.url} HTTP/1.1\r\n${head}\r\n`);
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      await Promise.race([
        once(socket, "close"),
        new Promise((resolve) => setTimeout(resolve, 300)), // a 101 stays open
      ]);
      socket.destroy();
      return text.replace(/^Date: .*\r\n/gim, "Date: -\r\n");
    }

    function recordedText(recorded: RecordedExchange): string {
      return recorded.responses
        .map(
          (r) =>
            `HTTP/1.1 ${r.status} ${r.reason}\r\n${r.headers
              .map(([name, value]) => `${name}: ${/^date$/i.test(name) ? "-" : value}\r\n`)
              .join("")}\r\n${r.body}`,
        )
        .join("");
    }

    // The fake keeps the upgrade exchanges out of `recorded` (REST only); read them from the file.
    const upgrades = parseAriRecording(readFileSync(ARI_REST_FIXTURE, "utf8")).filter((e) =>
      e.headers.has("upgrade"),
    );

    it("an upgrade of another form (wrong password, api_key without subprotocol) gets 501 and is listed", async function () {
      const recorded = upgrades.find((e) => e.title.startsWith("24."));
      assert.ok(recorded);
      const wrong = new Map(recorded.headers).set("authorization", "Basic YnJpZGdlOndyb25n");
      assert.match(await replay({ ...recorded, headers: wrong }), /^HTTP\/1\.1 501 /);
      const noAuth = new Map([...recorded.headers].filter(([name]) => name !== "authorization"));
      const url = `${recorded.url}&api_key=bridge:secret`;
      assert.match(await replay({ ...recorded, url, headers: noAuth }), /^HTTP\/1\.1 501 /);
      assert.deepEqual(fake.unrecorded, [
        `GET ${recorded.url} (WebSocket upgrade)`,
        `GET ${url} (WebSocket upgrade)`,
      ]);
    });

    for (const number of ["24", "25", "26", "27"]) {
      it(`#${number}`, async function () {
        const recorded = upgrades.find((e) => e.title.startsWith(`${number}.`));
        assert.ok(recorded);
        const text = await replay(recorded);
        // Headers as recorded, in order; a 101 stays open for frames, the refusals end there.
        if (recorded.responses[0]?.status === 101) {
          assert.equal(text.slice(0, recordedText(recorded).length), recordedText(recorded));
        } else {
          assert.equal(text, recordedText(recorded));
        }
        assert.deepEqual(fake.unrecorded, []);
      });
    }
  });
});
