// The MWI subscriber (RFC 3842 over RFC 6665): one `Event: message-summary` subscription per
// configured mailbox at the PBX; the in-dialog NOTIFYs carry that mailbox's counts, and each change
// goes to the voicemail port. Subscriptions are refreshed before they expire and taken up again
// when the PBX ends them or cannot be reached (with a growing delay). An unsolicited NOTIFY (outside
// any dialog, as Asterisk sends to an endpoint's contact) is taken only when it names exactly one
// configured mailbox: Asterisk's sums every mailbox of the endpoint and says not which one changed
// (../shared/fixtures/asterisk-22.10.1/sip-mwi.log), so such a NOTIFY is refused with 481. The
// dialog machinery (refresh, new dialog, retry, unsubscribe) is event-subscriber.ts's.
import { parseSipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import { sameCounts, type VoicemailCounts, type VoicemailSink } from "../../src/ports/voicemail-port.js";
import { EventSubscriber, type NotifyAnswer } from "./event-subscriber.js";
import { parseMessageSummary, type MessageSummary } from "./message-summary.js";
import type { RequestSender } from "./request-sender.js";
import type { SipRequest } from "./sip-message.js";

export type { NotifyAnswer } from "./event-subscriber.js";

export interface MailboxConfig {
  /** The home user the mailbox belongs to (person key, e.g. alice@example.org). */
  person: string;
  /** Where to SUBSCRIBE: the mailbox's address at the PBX, e.g. sip:alice@pbx.example.org. */
  uri: string;
  /**
   * For unsolicited NOTIFYs: the To address or Message-Account that means this mailbox alone
   * (e.g. an Asterisk endpoint that has only this mailbox). Absent: only the subscription counts.
   */
  account?: string;
}

export interface MwiSubscriberOptions {
  mailboxes: readonly MailboxConfig[];
  sender: RequestSender;
  /** Our address in From (e.g. sip:switchboard@sip.example.org). */
  from: string;
  sink: VoicemailSink;
  log: Logger;
  /** Requested subscription duration in seconds (default 3600). */
  expires?: number;
  /** First retry delay after a failure, doubled up to 5 minutes (default 5 s). */
  retryMs?: number;
}

interface Mailbox {
  config: MailboxConfig;
  /** The `message-summary` subscription at the PBX (dialog, refresh, retry: event-subscriber.ts). */
  subscription: EventSubscriber;
  counts?: VoicemailCounts;
}

/** The address part of a name-addr (`"A" <sip:a@b>;tag=x` → sip:a@b), compared without params. */
function addressOf(value: string): string | null {
  const inner = /<([^>]*)>/.exec(value)?.[1] ?? value.split(";")[0]?.trim() ?? "";
  try {
    const uri = parseSipUri(inner);
    return `${uri.user ?? ""}@${uri.host}`.toLowerCase();
  } catch {
    return null;
  }
}

export class MwiSubscriber {
  private readonly mailboxes: Mailbox[];

  constructor(private readonly options: MwiSubscriberOptions) {
    this.mailboxes = options.mailboxes.map((config) => {
      const mailbox: Mailbox = {
        config,
        subscription: new EventSubscriber({
          event: "message-summary",
          accept: "application/simple-message-summary",
          resource: config.uri,
          from: options.from,
          sender: options.sender,
          log: options.log.child({ mailbox: config.uri }),
          label: "MWI",
          callIdHost: "mwi",
          ...(options.expires !== undefined ? { expires: options.expires } : {}),
          ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
          onNotify: ({ body }) => this.apply(mailbox, parseMessageSummary(body)),
        }),
      };
      return mailbox;
    });
  }

  /** Subscribes every mailbox (without waiting for the answers). */
  start(): void {
    for (const mailbox of this.mailboxes) mailbox.subscription.start();
  }

  /**
   * A NOTIFY with `Event: message-summary` from a trusted peer: in one of our dialogs, or
   * unsolicited and attributable to exactly one mailbox.
   */
  async handleNotify(request: SipRequest): Promise<NotifyAnswer> {
    const inDialog = this.mailboxes.find((m) => m.subscription.matches(request));
    if (inDialog) return inDialog.subscription.handleNotify(request);
    const summary = parseMessageSummary(request.body ?? "");
    const keys = [
      addressOf(request.getHeader("To") ?? ""),
      summary?.account ? addressOf(summary.account) : null,
    ];
    const matches = this.mailboxes.filter((m) => {
      const account = m.config.account ? addressOf(m.config.account) : null;
      return account !== null && keys.includes(account);
    });
    const mailbox = matches[0];
    if (matches.length !== 1 || !mailbox) {
      this.options.log.info(
        { to: request.getHeader("To"), account: summary?.account, matches: matches.length },
        "MWI: unsolicited NOTIFY not attributable to one mailbox, refused",
      );
      return { status: 481, reason: "Not attributable to one configured mailbox" };
    }
    return this.apply(mailbox, summary);
  }

  /** A mailbox's new summary: to the voicemail port when the counts changed. */
  private async apply(mailbox: Mailbox, summary: MessageSummary | null): Promise<NotifyAnswer> {
    if (!summary) return { status: 400, reason: "Bad message-summary body" };
    const voice = summary.voice;
    const counts: VoicemailCounts = {
      waiting: summary.waiting,
      newMessages: voice?.new ?? 0,
      oldMessages: voice?.old ?? 0,
      urgentNew: voice?.urgentNew ?? 0,
      urgentOld: voice?.urgentOld ?? 0,
    };
    const previous = mailbox.counts;
    mailbox.counts = counts;
    if (previous && sameCounts(previous, counts)) return { status: 200 }; // a poll repeating the same counts
    await this.options.sink.mailboxChanged({
      person: mailbox.config.person,
      mailbox: mailbox.config.uri,
      counts,
      ...(previous ? { previous } : {}),
    });
    return { status: 200 };
  }

  /** Ends every subscription (Expires: 0), each bounded by the transaction's own Timer F. */
  async stop(): Promise<void> {
    await Promise.all(this.mailboxes.map((m) => m.subscription.stop()));
  }
}
