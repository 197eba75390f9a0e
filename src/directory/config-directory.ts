// A directory listed in the config file (`directory.users`): for sites without LDAP. Numbers match
// as E.164 (with the default region), so "+44 20 7123 4567" and "020 7123 4567" are +442071234567;
// otherwise ignoring visual separators.
import { toE164 } from "../domain/phone-number.js";
import type { Directory, DirectoryEntry } from "../ports/directory.js";

const digits = (number: string): string => number.replace(/[\s().-]/g, "");

export class ConfigDirectory implements Directory {
  constructor(
    private users: readonly DirectoryEntry[],
    private readonly homeDomain: string,
    private readonly defaultRegion = "GB",
  ) {}

  /** The config file was read again (SIGHUP): lookups from now on see the new list. */
  replace(users: readonly DirectoryEntry[]): void {
    this.users = users;
  }

  private sameNumber(written: string, person: string): boolean {
    if (digits(written) === person) return true;
    const e164 = toE164(written, this.defaultRegion);
    return e164 !== null && e164 === (toE164(person, this.defaultRegion) ?? person);
  }

  findPerson(person: string): Promise<DirectoryEntry | null> {
    const home = `@${this.homeDomain}`;
    const found = person.endsWith(home)
      ? this.users.find((u) => u.uid === person.slice(0, -home.length))
      : this.users.find((u) => u.extension === person || u.numbers.some((n) => this.sameNumber(n, person)));
    return Promise.resolve(found ?? null);
  }

  entries(): Promise<DirectoryEntry[]> {
    return Promise.resolve([...this.users]);
  }
}
