// The voicemail port: a change in a user's mailbox (from SIP message-summary, RFC 3842, or from the
// PBX's own events) in protocol-neutral terms. The XMPP side turns it into a chat message to the
// user ("New voicemail: 2 new, 5 old", DESIGN.md "Messages").

export interface VoicemailCounts {
  /** Messages waiting (the mailbox's own flag; true with new messages). */
  waiting: boolean;
  newMessages: number;
  oldMessages: number;
  urgentNew: number;
  urgentOld: number;
}

export interface VoicemailChange {
  /** The home user whose mailbox it is (person key, e.g. alice@example.org). */
  person: string;
  /** The mailbox as the PBX names it (e.g. sip:alice@pbx.example.org, alice@default). */
  mailbox: string;
  counts: VoicemailCounts;
  /** The counts before, when known (the first report after start-up has none). */
  previous?: VoicemailCounts;
}

export interface VoicemailSink {
  mailboxChanged(change: VoicemailChange): Promise<void>;
}

/**
 * The chat text for a mailbox's counts (DESIGN.md: "New voicemail: 2 new, 5 old"); urgent new
 * messages are told, a waiting flag without counts is "New voicemail waiting".
 */
export function voicemailText(counts: VoicemailCounts): string {
  if (counts.waiting && counts.newMessages === 0 && counts.oldMessages === 0) return "New voicemail waiting";
  const urgent = counts.urgentNew > 0 ? ` (${counts.urgentNew} urgent)` : "";
  const text = `${counts.newMessages} new${urgent}, ${counts.oldMessages} old`;
  return counts.newMessages > 0 ? `New voicemail: ${text}` : `Voicemail: ${text}`;
}

/** Worth a chat notice: new messages went up (a voicemail was left), not a poll or messages read. */
export function isNewVoicemail(change: VoicemailChange): boolean {
  return change.counts.newMessages > (change.previous?.newMessages ?? 0);
}

export function sameCounts(a: VoicemailCounts, b: VoicemailCounts): boolean {
  return (
    a.waiting === b.waiting &&
    a.newMessages === b.newMessages &&
    a.oldMessages === b.oldMessages &&
    a.urgentNew === b.urgentNew &&
    a.urgentOld === b.urgentOld
  );
}
