// The relay of XMPP-bound work from instances without the component to the one holding it, on a
// real redis-server, a Redis Cluster and a Sentinel set: answers come back to the instance that
// asked, errors keep their condition, a job nobody took in time is refused and never done later,
// and a holder that dies with jobs read leaves them to the next holder.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { XmppRelay, type RelayJob } from "../../components/redis/xmpp-relay.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { silentLogger } from "../../src/ports/logger.js";
import { createRedisClient, type RedisTarget } from "../../components/redis/redis-connection.js";
import { RedisClusterSet, RedisSentinelSet, RedisServer } from "../harness/redis.js";

const job = (body: string): RelayJob => ({
  kind: "message",
  message: { id: body, from: "bob@example.org", to: "alice@example.org", body },
});

function relayTests(
  name: string,
  start: () => Promise<{ target: RedisTarget; stop: () => Promise<void> }>,
): void {
  describe(`XMPP relay between instances (Redis stream): ${name}`, function () {
    this.timeout(30_000);
    let redis: { target: RedisTarget; stop: () => Promise<void> };
    let prefix: string;
    const relays: XmppRelay[] = [];

    const relay = async (instance: string, waitMs = 2_000): Promise<XmppRelay> => {
      const made = new XmppRelay({
        target: redis.target,
        prefix,
        gateway: "sip.example.org",
        instance,
        log: silentLogger,
        waitMs,
      });
      await made.start();
      relays.push(made);
      return made;
    };

    before(async function () {
      redis = await start();
    });
    beforeEach(function () {
      prefix = RedisServer.newPrefix("relay");
    });
    afterEach(async function () {
      for (const r of relays.splice(0)) await r.close();
    });
    after(async function () {
      await redis?.stop();
    });

    it("does a standby's job on the holder and answers the standby", async function () {
      const holder = await relay("holder");
      const standby = await relay("standby");
      const done: string[] = [];
      holder.serve((j) => {
        if (j.kind === "message") done.push(j.message.body ?? "");
        return Promise.resolve();
      });
      await Promise.all(["one", "two", "three"].map((body) => standby.send(job(body))));
      assert.deepEqual(done.sort(), ["one", "three", "two"]);
    });

    it("answers with the holder's error, condition kept", async function () {
      const holder = await relay("holder");
      const standby = await relay("standby");
      holder.serve(() => Promise.reject(new SwitchboardError("item-not-found", "nobody of that name")));
      await assert.rejects(standby.send(job("x")), (err: unknown) => {
        assert.ok(err instanceof SwitchboardError);
        assert.equal(err.condition, "item-not-found");
        assert.match(err.message, /nobody of that name/);
        return true;
      });
    });

    it("refuses a job nobody took in time (503), and a holder that comes later never does it", async function () {
      const standby = await relay("standby", 300);
      await assert.rejects(standby.send(job("late")), (err: unknown) => {
        assert.ok(err instanceof SwitchboardError);
        assert.equal(err.condition, "service-unavailable");
        return true;
      });
      const holder = await relay("holder");
      const done: string[] = [];
      holder.serve((j) => {
        if (j.kind === "message") done.push(j.message.body ?? "");
        return Promise.resolve();
      });
      // A job in time after it is done, so the late one was looked at (and dropped) first.
      await standby.send(job("in time")).catch(() => undefined);
      const second = await relay("standby-2");
      await second.send(job("fresh"));
      assert.ok(done.includes("fresh"));
      assert.ok(!done.includes("late"), "a job refused with 503 was done later");
      // Every job done or dropped leaves the stream (its answer may go out just before).
      const look = createRedisClient(redis.target);
      await look.connect();
      try {
        const stream = `${prefix}xmpp-relay:{sip.example.org}`;
        for (let i = 0; i < 50 && (await look.commands.xLen(stream)) > 0; i++) await sleep(20);
        assert.equal(await look.commands.xLen(stream), 0, "jobs left in the stream");
      } finally {
        await look.close();
      }
    });

    it("leaves jobs a dying holder had read to the next holder", async function () {
      const first = await relay("first");
      const standby = await relay("standby", 5_000);
      let taken = 0;
      // The first holder reads the job and never finishes it (it dies with the job in hand).
      first.serve(() => {
        taken++;
        return new Promise<void>(() => undefined);
      });
      const answered = standby.send(job("orphan"));
      for (let i = 0; i < 50 && taken === 0; i++) await sleep(20);
      assert.equal(taken, 1);
      relays.splice(relays.indexOf(first), 1);
      first.destroy(); // dies: its connections are gone, the job stays pending in the group
      const next = await relay("next");
      const done: string[] = [];
      next.serve((j) => {
        if (j.kind === "message") done.push(j.message.body ?? "");
        return Promise.resolve();
      });
      await answered;
      assert.deepEqual(done, ["orphan"]);
    });
  });
}

relayTests("one redis-server", async () => {
  const server = await RedisServer.start();
  return { target: { url: server.url }, stop: () => server.stop() };
});
relayTests("Redis Cluster (three primaries)", async () => {
  const cluster = await RedisClusterSet.start();
  return { target: cluster.target, stop: () => cluster.stop() };
});
relayTests("Redis Sentinel (primary, replica, three sentinels)", async () => {
  const set = await RedisSentinelSet.start();
  return { target: set.target, stop: () => set.stop() };
});
