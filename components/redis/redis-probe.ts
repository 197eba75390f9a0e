// `check` probe for the Redis store: connect (to the server, the primary the sentinels name, or the
// cluster), PING, read the server version, persistence mode and, for Sentinel and Cluster, the shape.
import type { Probe } from "../../src/check/probe.js";
import { createRedisClient, type RedisTarget } from "./redis-connection.js";

/** The config key path that names the target, for the probe's report. */
function keyPath(target: RedisTarget | string): string {
  if (typeof target === "string" || "url" in target) return "store.url";
  return "sentinel" in target ? "store.sentinel" : "store.cluster";
}

export function redisProbe(target: RedisTarget | string): Probe {
  const path = keyPath(target);
  return {
    component: "redis",
    keyPath: path,
    hint:
      path === "store.url"
        ? "is redis-server running and reachable at store.url? (redis-cli -u URL ping)"
        : path === "store.sentinel"
          ? "are the sentinels reachable, and do they monitor store.sentinel.masterName? (redis-cli -p PORT sentinel get-master-addr-by-name NAME)"
          : "are the cluster nodes reachable and the cluster formed? (redis-cli -p PORT cluster info)",
    async run(signal) {
      const client = createRedisClient(target, { connectTimeoutMs: 3_000, reconnect: false });
      client.on("error", () => undefined); // the rejected connect() below carries the reason
      // A peer that accepts TCP but never answers: the timeout aborts, and this closes the socket.
      signal.addEventListener("abort", () => client.destroy(), { once: true });
      await client.connect();
      try {
        const pong = await client.commands.ping();
        const info = await client.commands.info("server");
        const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown version";
        const aof = await client.commands.configGet("appendonly").catch(() => ({ appendonly: "unknown" }));
        const persistence =
          aof.appendonly === "yes"
            ? "append-only on"
            : "append-only OFF: queued messages are lost on a restart";
        const shape = client.kind === "single" ? "" : `, ${client.kind} (${client.description})`;
        return `${pong}, Redis ${version}, ${persistence}${shape}`;
      } finally {
        client.destroy();
      }
    },
  };
}
