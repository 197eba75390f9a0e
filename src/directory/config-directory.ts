// A directory listed in the config file (`directory.users`): for sites without LDAP. Numbers match
// ignoring visual separators, so "+44 20 7123 4567" is found as +442071234567.
import type { Directory, DirectoryEntry } from "../ports/directory.js";

const digits = (number: string): string => number.replace(/[\s().-]/g, "");

export class ConfigDirectory implements Directory {
  constructor(
    private readonly users: readonly DirectoryEntry[],
    private readonly homeDomain: string,
  ) {}

  findPerson(person: string): Promise<DirectoryEntry | null> {
    const home = `@${this.homeDomain}`;
    const found = person.endsWith(home)
      ? this.users.find((u) => u.uid === person.slice(0, -home.length))
      : this.users.find((u) => u.extension === person || u.numbers.some((n) => digits(n) === person));
    return Promise.resolve(found ?? null);
  }

  entries(): Promise<DirectoryEntry[]> {
    return Promise.resolve([...this.users]);
  }
}
