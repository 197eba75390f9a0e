// What a config reload (SIGHUP) may change in a running bridge, and what needs a restart. The
// running bridge applies the first kind at once, without dropping a connection; the second kind is
// reported by key path (never by value: a changed secret must not reach the log) and left as it was.
import type { Config } from "./schema.js";

/** Key paths a reload applies; a path matches itself and everything under it. */
export const RELOADABLE: readonly string[] = ["log.level", "directory", "xmpp.allowedDomains"];

/**
 * The key paths whose values differ between two configs, at the depth where they differ (objects
 * are compared key by key, arrays and scalars as a whole). Sorted.
 */
export function changedPaths(before: unknown, after: unknown, path = ""): string[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys]
      .flatMap((key) => changedPaths(before[key], after[key], path === "" ? key : `${path}.${key}`))
      .sort();
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [path];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function reloadable(path: string): boolean {
  return RELOADABLE.some((key) => path === key || path.startsWith(`${key}.`));
}

export interface ReloadPlan {
  /** Changed and applied by the reload. */
  apply: string[];
  /** Changed, but only a restart applies them; the running values stay. */
  restart: string[];
}

/**
 * `next` with the values at `paths` taken from `running`: the config a bridge runs with after a
 * reload that could not apply those paths (a path absent from `running` is removed).
 */
export function keepPaths<T>(next: T, running: T, paths: readonly string[]): T {
  const result = structuredClone(next) as Record<string, unknown>;
  for (const path of paths) {
    const keys = path.split(".");
    const last = keys.pop();
    if (last === undefined) continue;
    let into: Record<string, unknown> = result;
    let from: unknown = running;
    for (const key of keys) {
      from = isPlainObject(from) ? from[key] : undefined;
      const child = into[key];
      if (!isPlainObject(child)) {
        into[key] = {};
      }
      into = into[key] as Record<string, unknown>;
    }
    const value = isPlainObject(from) ? from[last] : undefined;
    if (value === undefined) delete into[last];
    else into[last] = structuredClone(value);
  }
  return result as T;
}

export function reloadPlan(before: Config, after: Config): ReloadPlan {
  const changed = changedPaths(before, after);
  return { apply: changed.filter(reloadable), restart: changed.filter((p) => !reloadable(p)) };
}
