// Several directories asked in turn (LDAP first, then the config file): the first that knows a
// person answers; `entries()` is everyone, the first directory's entry winning for a uid.
import { DirectoryUnavailableError } from "../domain/errors.js";
import type { Directory, DirectoryEntry } from "../ports/directory.js";

export class ChainDirectory implements Directory {
  constructor(private readonly directories: readonly Directory[]) {}

  /**
   * The first that knows the person; one that fails is skipped. "Nobody" is an answer only when
   * every directory gave it: if one failed, the person may be in it, so that is an error
   * (service-unavailable), never a "no such user" (a desk phone would be told 404 for a colleague
   * whose directory is merely down).
   */
  async findPerson(person: string): Promise<DirectoryEntry | null> {
    let failure: Error | undefined;
    for (const directory of this.directories) {
      try {
        const entry = await directory.findPerson(person);
        if (entry) return entry;
      } catch (err) {
        failure ??= err instanceof Error ? err : new Error(String(err));
      }
    }
    if (failure !== undefined) {
      throw new DirectoryUnavailableError(`directory unavailable: ${failure.message}`, { cause: failure });
    }
    return null;
  }

  async entries(): Promise<DirectoryEntry[]> {
    const byUid = new Map<string, DirectoryEntry>();
    for (const directory of this.directories) {
      for (const entry of await directory.entries()) if (!byUid.has(entry.uid)) byUid.set(entry.uid, entry);
    }
    return [...byUid.values()];
  }
}
