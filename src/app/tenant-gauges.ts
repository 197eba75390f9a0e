// The process's metrics are one set for every tenant (docs/tenants.md): the gauges read from the
// parts are summed over the tenants, and a connection counts as up only when it is up for all.
import type { MetricLevels } from "../../components/http/prom-metrics.js";

/** Levels over `tenants` (read when scraped, so tenants added later count too). */
export function sumOfGauges(tenants: readonly MetricLevels[]): MetricLevels {
  return {
    sipSubscriptions: () => tenants.reduce((sum, t) => sum + (t.sipSubscriptions?.() ?? 0), 0),
    xmppSubscriptions: async () =>
      (await Promise.all(tenants.map((t) => t.xmppSubscriptions?.() ?? Promise.resolve(0)))).reduce(
        (a, b) => a + b,
        0,
      ),
    queue: async () => {
      const queues = await Promise.all(tenants.map((t) => t.queue?.() ?? Promise.resolve(undefined)));
      const oldest = queues.flatMap((q) => (q?.oldestQueuedAt === undefined ? [] : [q.oldestQueuedAt]));
      return {
        depth: queues.reduce((sum, q) => sum + (q?.depth ?? 0), 0),
        oldestQueuedAt: oldest.length > 0 ? Math.min(...oldest) : undefined,
      };
    },
    connections: () => {
      const all: Record<string, boolean> = {};
      for (const tenant of tenants)
        for (const [name, up] of Object.entries(tenant.connections?.() ?? {}))
          all[name] = (all[name] ?? true) && up;
      return all;
    },
  };
}
