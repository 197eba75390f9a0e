// Several directories asked in turn (LDAP first, then the config file): the first that knows a
// person answers; `entries()` is everyone, the first directory's entry winning for a uid.
import type { Directory, DirectoryEntry } from "../ports/directory.js";

export class ChainDirectory implements Directory {
  constructor(private readonly directories: readonly Directory[]) {}

  async findPerson(person: string): Promise<DirectoryEntry | null> {
    for (const directory of this.directories) {
      const entry = await directory.findPerson(person);
      if (entry) return entry;
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
