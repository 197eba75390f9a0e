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
  /** SIP address of record when the directory states one (`sip:alice@example.org`). */
  sipUri?: string;
  /** Bare JID when the directory states one. */
  jid?: string;
  mail?: string;
  /**
   * SIP digest HA1 = MD5(user:realm:password), only when the directory lets the bridge read it.
   * As good as a password for SIP: the directory must protect it with an ACL.
   */
  ha1?: string;
}

export interface Directory {
  /** The entry for a person key (`alice@example.org`, a number, an extension), or null. */
  findPerson(person: string): Promise<DirectoryEntry | null>;
  /** Every entry (for offering colleagues' phones as roster items). */
  entries(): Promise<DirectoryEntry[]>;
}
