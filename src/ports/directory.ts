// The directory port: who a person is (name, numbers, extension, addresses). The config-file
// directory serves small sites; the LDAP adapter comes with the addressing issue.

export interface DirectoryEntry {
  /** The home user name (`alice` for alice@example.org). */
  uid: string;
  displayName: string;
  /** Extension dialled on the PBX, if any. */
  extension?: string;
  /** Phone numbers, as written (E.164 preferred). */
  numbers: string[];
}

export interface Directory {
  /** The entry for a person key (`alice@example.org`, a number, an extension), or null. */
  findPerson(person: string): Promise<DirectoryEntry | null>;
  /** Every entry (for offering colleagues' phones as roster items). */
  entries(): Promise<DirectoryEntry[]>;
}
