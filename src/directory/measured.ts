// Lookups timed per step for the metrics port: a directory's findPerson and an ENUM resolve are
// wrapped, their answers passed through unchanged.
import type { Directory, DirectoryEntry } from "../ports/directory.js";
import type { EnumLookup, EnumTarget } from "../ports/enum-lookup.js";
import { secondsSince, type LookupStep, type Metrics } from "../ports/metrics.js";

export function measuredDirectory(directory: Directory, step: LookupStep, metrics: Metrics): Directory {
  return {
    async findPerson(person: string): Promise<DirectoryEntry | null> {
      const start = performance.now();
      try {
        const entry = await directory.findPerson(person);
        metrics.lookup(step, entry ? "found" : "not-found", secondsSince(start));
        return entry;
      } catch (err) {
        metrics.lookup(step, "error", secondsSince(start));
        throw err;
      }
    },
    entries: () => directory.entries(),
  };
}

export function measuredEnum(lookup: EnumLookup, metrics: Metrics): EnumLookup {
  return {
    async resolve(e164: string): Promise<{ targets: EnumTarget[] }> {
      const start = performance.now();
      try {
        const answer = await lookup.resolve(e164);
        metrics.lookup("enum", answer.targets.length > 0 ? "found" : "not-found", secondsSince(start));
        return answer;
      } catch (err) {
        metrics.lookup("enum", "error", secondsSince(start));
        throw err;
      }
    },
  };
}
