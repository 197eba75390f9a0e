// Several directories asked in turn (LDAP first, then the config file): the first that knows a
// person answers; `entries()` is everyone, the first directory's entry winning for a uid.
import type { Directory, DirectoryEntry } from "../ports/directory.js";

export class ChainDirectory implements Directory {
  constructor(private readonly directories: readonly Directory[]) {}

  /** The first that knows the person; one that fails is skipped, and only if all fail is it an error. */
  async findPerson(person: string): Promise<DirectoryEntry | null> {
    let failure: Error | undefined;
    let answered = false;
    for (const directory of this.directories) {
      try {
        const entry = await directory.findPerson(person);
        answered = true;
        if (entry) return entry;
      } catch (err) {
        failure ??= err instanceof Error ? err : new Error(String(err));
      }
    }
    if (!answered && failure !== undefined) throw failure;
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
