// The MWI subscriber (RFC 3842 over RFC 6665): one `Event: message-summary` subscription per
// configured mailbox at the PBX; the in-dialog NOTIFYs carry that mailbox's counts, and each change
// goes to the voicemail port. Subscriptions are refreshed before they expire and taken up again
// when the PBX ends them or cannot be reached (with a growing delay). An unsolicited NOTIFY (outside
// any dialog, as Asterisk sends to an endpoint's contact) is taken only when it names exactly one
// configured mailbox: Asterisk's sums every mailbox of the endpoint and says not which one changed
// (../shared/fixtures/asterisk-22.10.1/sip-mwi.log), so such a NOTIFY is refused with 481.
import { randomBytes } from "node:crypto";
import { formatSipUri, parseSipUri, type SipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import { sameCounts, type VoicemailCounts, type VoicemailSink } from "../../src/ports/voicemail-port.js";
import { parseMessageSummary } from "./message-summary.js";
import type { RequestSender } from "./request-sender.js";
import { parseSip, type SipRequest } from "./sip-message.js";

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

interface MailboxState {
  config: MailboxConfig;
  callId: string;
  localTag: string;
  cseq: number;
  /** Set once the PBX answered 2xx: its tag, the remote target and the route set. */
  remoteTag?: string;
  target?: SipUri;
  routes: string[];
  counts?: VoicemailCounts;
  timer?: NodeJS.Timeout;
  failures: number;
}

const MAX_RETRY_MS = 300_000;

export type NotifyAnswer = { status: number; reason?: string };

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
  private readonly states: MailboxState[];
  private stopped = false;

  constructor(private readonly options: MwiSubscriberOptions) {
    this.states = options.mailboxes.map((config) => ({
      config,
      callId: `${randomBytes(10).toString("hex")}@mwi`,
      localTag: randomBytes(6).toString("hex"),
      cseq: 0,
      routes: [],
      failures: 0,
    }));
  }

  /** Subscribes every mailbox (without waiting for the answers). */
  start(): void {
    for (const state of this.states) this.subscribeLater(state, 0);
  }

  private subscribeLater(state: MailboxState, delayMs: number): void {
    clearTimeout(state.timer);
    if (this.stopped) return;
    state.timer = setTimeout(() => {
      this.subscribe(state).catch((err: unknown) =>
        this.options.log.warn({ err: String(err), mailbox: state.config.uri }, "MWI SUBSCRIBE failed"),
      );
    }, delayMs);
    state.timer.unref();
  }

  /** A new dialog (Call-ID and tag) after the PBX ended or lost the old one. */
  private resetDialog(state: MailboxState): void {
    state.callId = `${randomBytes(10).toString("hex")}@mwi`;
    state.localTag = randomBytes(6).toString("hex");
    state.cseq = 0;
    delete state.remoteTag;
    delete state.target;
    state.routes = [];
  }

  private async subscribe(state: MailboxState, expires = this.options.expires ?? 3600): Promise<void> {
    const { log, sender } = this.options;
    const mailbox = parseSipUri(state.config.uri);
    const inDialog = state.remoteTag !== undefined;
    const result = await sender.send({
      method: "SUBSCRIBE",
      ruri: state.target ?? mailbox,
      from: `<${this.options.from}>;tag=${state.localTag}`,
      to: `<${formatSipUri(mailbox)}>${inDialog ? `;tag=${state.remoteTag ?? ""}` : ""}`,
      callId: state.callId,
      cseq: ++state.cseq,
      routes: state.routes,
      inDialog,
      headers: [
        ["Event", "message-summary"],
        ["Accept", "application/simple-message-summary"],
        ["Expires", String(expires)],
      ],
    });
    state.cseq = result.cseq;
    if (expires === 0 || this.stopped) return;
    if (result.status >= 200 && result.status < 300 && result.response) {
      const response = parseSip(result.response);
      if (!inDialog && response) {
        state.remoteTag = response.toTag;
        const contact = (response.parseHeader("contact") as { uri?: { toString(): string } } | undefined)
          ?.uri;
        try {
          if (contact) state.target = parseSipUri(contact.toString());
        } catch {
          log.warn(
            { mailbox: state.config.uri },
            "MWI: the PBX's Contact is not a SIP URI; keeping the mailbox URI",
          );
        }
        // As UAC, the route set is the Record-Route list in reverse (RFC 3261 §12.1.2).
        state.routes = response
          .getHeaders("record-route")
          .flatMap((h) => h.split(/,(?=\s*<)/).map((r) => r.trim()))
          .reverse();
      }
      const granted = Number(response?.getHeader("Expires")?.trim() ?? expires);
      const seconds = Number.isFinite(granted) && granted > 0 ? granted : expires;
      state.failures = 0;
      // Refresh ahead of expiry (RFC 6665 §4.1.2.1): at 80 %, at least 5 s before.
      this.subscribeLater(state, Math.max(1_000, Math.min(seconds * 800, (seconds - 5) * 1000)));
      log.info({ mailbox: state.config.uri, expires: seconds }, "MWI subscription active");
      return;
    }
    if (inDialog && (result.status === 481 || result.status === 408)) {
      this.resetDialog(state); // the PBX lost the dialog: start a new one at once
      this.subscribeLater(state, 0);
      return;
    }
    state.failures += 1;
    const delay = Math.min(MAX_RETRY_MS, (this.options.retryMs ?? 5_000) * 2 ** (state.failures - 1));
    log.warn(
      { mailbox: state.config.uri, status: result.status, reason: result.reason, retryInMs: delay },
      "MWI subscription refused",
    );
    this.resetDialog(state);
    this.subscribeLater(state, delay);
  }

  /**
   * A NOTIFY with `Event: message-summary` from a trusted peer: in one of our dialogs, or
   * unsolicited and attributable to exactly one mailbox.
   */
  async handleNotify(request: SipRequest): Promise<NotifyAnswer> {
    const summary = parseMessageSummary(request.body ?? "");
    const inDialog = this.states.find((s) => s.callId === request.callId && s.localTag === request.toTag);
    let state = inDialog;
    if (!state) {
      const keys = [
        addressOf(request.getHeader("To") ?? ""),
        summary?.account ? addressOf(summary.account) : null,
      ];
      const matches = this.states.filter((s) => {
        const account = s.config.account ? addressOf(s.config.account) : null;
        return account !== null && keys.includes(account);
      });
      if (matches.length !== 1) {
        this.options.log.info(
          { to: request.getHeader("To"), account: summary?.account, matches: matches.length },
          "MWI: unsolicited NOTIFY not attributable to one mailbox, refused",
        );
        return { status: 481, reason: "Not attributable to one configured mailbox" };
      }
      state = matches[0];
    }
    if (!state) return { status: 481 };
    if (!summary) return { status: 400, reason: "Bad message-summary body" };
    const voice = summary.voice;
    const counts: VoicemailCounts = {
      waiting: summary.waiting,
      newMessages: voice?.new ?? 0,
      oldMessages: voice?.old ?? 0,
      urgentNew: voice?.urgentNew ?? 0,
      urgentOld: voice?.urgentOld ?? 0,
    };
    const previous = state.counts;
    state.counts = counts;
    if (inDialog && /^\s*terminated/i.test(request.getHeader("Subscription-State") ?? "") && !this.stopped) {
      // The PBX ended the subscription (RFC 6665 §4.1.3): take it up again in a new dialog.
      this.resetDialog(state);
      this.subscribeLater(state, this.options.retryMs ?? 5_000);
    }
    if (previous && sameCounts(previous, counts)) return { status: 200 }; // a poll repeating the same counts
    await this.options.sink.mailboxChanged({
      person: state.config.person,
      mailbox: state.config.uri,
      counts,
      ...(previous ? { previous } : {}),
    });
    return { status: 200 };
  }

  /** Ends every subscription (Expires: 0), each bounded by the transaction's own Timer F. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const state of this.states) clearTimeout(state.timer);
    await Promise.all(
      this.states
        .filter((s) => s.remoteTag !== undefined)
        .map((s) => this.subscribe(s, 0).catch(() => undefined)),
    );
  }
}
