// `check` probe for the Redis store: connect, PING, read the server version and persistence mode.
import { createClient } from "redis";
import type { Probe } from "../../src/check/probe.js";

export function redisProbe(url: string): Probe {
  return {
    component: "redis",
    keyPath: "store.url",
    hint: "is redis-server running and reachable at store.url? (redis-cli -u URL ping)",
    async run(signal) {
      const client = createClient({ url, socket: { connectTimeout: 3_000, reconnectStrategy: false } });
      client.on("error", () => undefined); // the rejected connect() below carries the reason
      // A peer that accepts TCP but never answers: the timeout aborts, and this closes the socket.
      signal.addEventListener("abort", () => client.destroy(), { once: true });
      await client.connect();
      try {
        const pong = await client.ping();
        const info = await client.info("server");
        const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown version";
        const aof = await client.configGet("appendonly").catch(() => ({ appendonly: "unknown" }));
        const persistence =
          aof.appendonly === "yes"
            ? "append-only on"
            : "append-only OFF: queued messages are lost on a restart";
        return `${pong}, Redis ${version}, ${persistence}`;
      } finally {
        client.destroy();
      }
    },
  };
}
