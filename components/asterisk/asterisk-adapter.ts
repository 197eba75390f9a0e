// The Asterisk side (facts in ../shared/fixtures/asterisk-22.10.1/README.md): phones' device state
// from ARI (`DeviceStateChanged`) becomes each user's `pbx-device` presence source; CustomPresence
// from AMI (`PresenceStateChange`; ARI has no such event and cannot read it) becomes `pbx-custom`;
// the chat presence is written back to `CustomPresence:<user>` through ARI (`PRESENCE_STATE`), so
// hints carry it to BLF keys; voicemail counts from AMI (`MessageWaiting`, `MailboxCount`) become a
// chat notice. On every (re)connection the state of every mapped user is read again, so nothing
// stale survives a PBX restart.
import type { AggregatePresence, DeviceState } from "../../src/domain/presence.js";
import { asteriskDeviceToDevice } from "../../src/domain/mapping/asterisk-device.js";
import {
  asteriskToPresence,
  formatPresenceState,
  presenceToAsterisk,
} from "../../src/domain/mapping/asterisk-presence.js";
import { SwitchboardError } from "../../src/domain/errors.js";
import { unescapeLocal } from "../../src/domain/jid-escape.js";
import { parseJid } from "../../src/domain/jid.js";
import { formatSipUri, makeSipUri } from "../../src/domain/sip-uri.js";
import type { Logger } from "../../src/ports/logger.js";
import { KeyedQueue } from "../../src/util/keyed-queue.js";
import type { ChatMessage, DeliveryOutcome, MessageSink } from "../../src/ports/message-port.js";
import { sameCounts, type VoicemailCounts, type VoicemailSink } from "../../src/ports/voicemail-port.js";
import type { PresenceService } from "../../src/presence/presence-service.js";
import type { AmiBlock, AmiClient } from "./ami-client.js";
import type { AriClient, AriEvent } from "./ari-client.js";

export interface PbxUser {
  /** Person key, e.g. alice@example.org. */
  person: string;
  /** Devices of the user's phones, e.g. PJSIP/alice. */
  devices: readonly string[];
  /** CustomPresence provider name (hint `CustomPresence:<presence>`). */
  presence: string;
  /** Voicemail box, e.g. alice@default. */
  mailbox: string;
  /** The endpoint ARI sends their messages to, e.g. PJSIP/alice. */
  endpoint?: string;
}

export interface AsteriskAdapterOptions {
  ari: AriClient;
  ami?: AmiClient;
  users: readonly PbxUser[];
  presence: PresenceService;
  /** CustomPresence: read from the PBX (`in`), written to it (`out`), or both. */
  direction: "in" | "out" | "both";
  voicemail: VoicemailSink;
  /** A mapped phone registered (ARI ContactStatusChange): its waiting messages can go now. */
  onPhoneOnline?: (person: string) => void;
  /** Messages from phones on Asterisk (ARI TextMessageReceived) go here (the XMPP side). */
  toXmpp?: MessageSink;
  /** The users' home domain, for the addresses of messages. */
  homeDomain: string;
  log: Logger;
}

interface PresenceValue {
  state: string;
  message: string;
}

const sameValue = (a: PresenceValue, b: PresenceValue): boolean =>
  a.state === b.state && a.message === b.message;

/**
 * A note as Asterisk can carry it back in an AMI event: no control characters (a newline would
 * end the `Message:` line) and at most 250 bytes (func_presencestate decodes into 255).
 */
export function pbxNote(note: string | null): string {
  let text = (note ?? "").replace(/\p{Cc}/gu, " ");
  while (Buffer.byteLength(text) > 250) text = text.slice(0, -1);
  return text;
}

/** A call in progress beats one on hold, a hold ringing, ringing an idle phone, idle an absent one. */
const DEVICE_RANK: Readonly<Record<DeviceState, number>> = {
  inuse: 4,
  onhold: 3,
  ringing: 2,
  idle: 1,
  unavailable: 0,
};

export class AsteriskAdapter {
  private readonly byDevice = new Map<string, PbxUser>();
  private readonly byPresence = new Map<string, PbxUser>();
  private readonly byMailbox = new Map<string, PbxUser>();
  private readonly byPerson = new Map<string, PbxUser>();
  private readonly devices = new Map<string, DeviceState>();
  /** Per provider, the value the bridge wrote last (what the PBX holds because of us). */
  private readonly written = new Map<string, PresenceValue>();
  /** Per provider, writes whose PresenceStateChange has not come back yet, oldest first. */
  private readonly echoes = new Map<string, PresenceValue[]>();
  /** Writes of one provider go one after another, so Asterisk applies them in order. */
  private readonly writing = new KeyedQueue();
  /** When the last event for each device arrived (a resync reading older than it is dropped). */
  private readonly deviceEventAt = new Map<string, number>();
  private stopped = false;
  private wired = false;
  private readonly counts = new Map<string, VoicemailCounts>();

  constructor(private readonly options: AsteriskAdapterOptions) {
    for (const user of options.users) {
      for (const device of user.devices) this.byDevice.set(device.toLowerCase(), user);
      this.byPresence.set(user.presence.toLowerCase(), user);
      this.byMailbox.set(user.mailbox.toLowerCase(), user);
      this.byPerson.set(user.person, user);
    }
  }

  private get reads(): boolean {
    return this.options.direction !== "out";
  }

  private get writes(): boolean {
    return this.options.direction !== "in";
  }

  /** Connects ARI (and AMI); after stop(), connects again. */
  start(): void {
    const { ari, ami, presence } = this.options;
    this.stopped = false;
    presence.off("change", this.onChange); // once, however often started
    presence.on("change", this.onChange);
    if (!this.wired) this.wire();
    ari.start();
    ami?.start();
  }

  /** The clients' events to this adapter: once for its whole life. */
  private wire(): void {
    this.wired = true;
    const { ari, ami } = this.options;
    ari.on("event", (event) => this.guard(this.onAriEvent(event), "ARI event"));
    ari.on("connected", () => {
      this.guard(this.resyncDevices(), "reading device states");
      // Writes lost while ARI was away: each mapped user's presence goes out again.
      this.written.clear();
      this.echoes.clear();
      for (const user of this.options.users) {
        this.guard(
          this.options.presence.current(user.person).then((a) => this.onChange(user.person, a)),
          "writing CustomPresence again",
        );
      }
    });
    if (ami) {
      ami.on("event", (block) => this.guard(this.onAmiEvent(block), "AMI event"));
      ami.on("connected", () => this.guard(this.resyncAmi(), "reading CustomPresence and mailboxes"));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.options.presence.off("change", this.onChange);
    await Promise.all([this.options.ari.stop(), this.options.ami?.stop()]);
  }

  private guard(flow: Promise<unknown>, what: string): void {
    if (this.stopped) return;
    flow.catch((err: unknown) => this.options.log.warn({ err: String(err) }, `asterisk: failed ${what}`));
  }

  // --- device state (ARI) ---------------------------------------------------------------------

  private async onAriEvent(event: AriEvent): Promise<void> {
    if (event.type === "TextMessageReceived") {
      await this.textMessage(event);
      return;
    }
    if (event.type === "ContactStatusChange") {
      this.contactStatus(event);
      return;
    }
    if (event.type !== "DeviceStateChanged") return;
    const device = (event as { device_state?: { name?: unknown; state?: unknown } }).device_state;
    if (typeof device?.name !== "string" || typeof device.state !== "string") return;
    await this.deviceChanged(device.name, device.state);
  }

  private async deviceChanged(name: string, state: string, readAt?: number): Promise<void> {
    const user = this.byDevice.get(name.toLowerCase());
    // A resync reading taken before the device's latest event is older news: dropped.
    if (readAt !== undefined && (this.deviceEventAt.get(name.toLowerCase()) ?? -1) >= readAt) return;
    if (readAt === undefined) this.deviceEventAt.set(name.toLowerCase(), performance.now());
    if (!user) return;
    this.devices.set(name.toLowerCase(), asteriskDeviceToDevice(state));
    // One pbx-device source per person: the busiest of their phones.
    const device = user.devices
      .map((d) => this.devices.get(d.toLowerCase()) ?? "unavailable")
      .reduce((a, b) => (DEVICE_RANK[b] > DEVICE_RANK[a] ? b : a), "unavailable" as DeviceState);
    const now = this.options.presence.now();
    await this.options.presence.report(
      user.person,
      { source: { kind: "pbx-device" }, device, updatedAt: now, expiresAt: null },
      { retain: true }, // the PBX will not say it again: held while the store is away
    );
  }

  /**
   * A phone on Asterisk sent a MESSAGE that Asterisk handed to ARI (README fact 6): to the chat
   * user named in `to` (`pjsip:alice@…`), from the sending endpoint's user (or its From address).
   */
  private async textMessage(event: AriEvent): Promise<void> {
    const { endpoint, message } = event as {
      endpoint?: { technology?: unknown; resource?: unknown };
      message?: { from?: unknown; to?: unknown; body?: unknown; variables?: Record<string, unknown> };
    };
    const sink = this.options.toXmpp;
    if (!sink || typeof message?.to !== "string" || typeof message.body !== "string") return;
    const recipient = /^[a-z]+:([^@;>]+)/i.exec(message.to)?.[1];
    if (!recipient) return;
    const device =
      typeof endpoint?.technology === "string" && typeof endpoint.resource === "string"
        ? `${endpoint.technology}/${endpoint.resource}`
        : "";
    // Only a mapped phone speaks for its user: an unknown endpoint's From could say anything.
    const sender = this.byDevice.get(device.toLowerCase())?.person;
    if (!sender) {
      this.options.log.info({ endpoint: device }, "asterisk: message from an unmapped endpoint ignored");
      return;
    }
    const callId = message.variables?.["Call-ID"];
    await sink.deliver({
      id: typeof callId === "string" ? callId : `ari-${event.timestamp ?? Date.now()}`,
      from: sender,
      to: `${recipient.toLowerCase()}@${this.options.homeDomain}`,
      body: message.body,
    });
  }

  /** Whether a message for this person goes through ARI (they have a phone endpoint on Asterisk). */
  handles(person: string): boolean {
    return this.byPerson.get(person)?.endpoint !== undefined;
  }

  /**
   * A chat user's message to a phone on Asterisk, through ARI `endpoints/sendMessage`: its 202
   * means Asterisk took it, not that the phone has it (DESIGN.md: no receipt).
   */
  async sendMessage(message: ChatMessage): Promise<DeliveryOutcome> {
    const user = this.byPerson.get(message.to);
    if (!user?.endpoint || message.body === undefined) return "accepted";
    const [technology = "", ...resource] = user.endpoint.split("/");
    const jid = parseJid(message.from);
    const from = formatSipUri(makeSipUri({ user: unescapeLocal(jid.local ?? ""), host: jid.domain }));
    try {
      await this.options.ari.sendMessage(
        `${technology.toLowerCase()}:${resource.join("/")}`,
        from,
        message.body,
      );
    } catch (err) {
      // Asterisk's 404 for an endpoint with no registered phone: offline, so the message waits.
      if (err instanceof SwitchboardError && err.condition === "item-not-found") {
        throw new SwitchboardError("recipient-unavailable", err.message);
      }
      throw err;
    }
    return "accepted";
  }

  /** A phone's contact became reachable (registered: NonQualified or Reachable, endpoint online). */
  private contactStatus(event: AriEvent): void {
    const { endpoint, contact_info: contact } = event as {
      endpoint?: { technology?: unknown; resource?: unknown; state?: unknown };
      contact_info?: { contact_status?: unknown };
    };
    if (typeof endpoint?.technology !== "string" || typeof endpoint.resource !== "string") return;
    const status = typeof contact?.contact_status === "string" ? contact.contact_status : "";
    if (endpoint.state !== "online" || !/^(NonQualified|Reachable)$/.test(status)) return;
    const user = this.byDevice.get(`${endpoint.technology}/${endpoint.resource}`.toLowerCase());
    if (user) this.options.onPhoneOnline?.(user.person);
  }

  /** After ARI (re)connected: the device state of every mapped phone, as Asterisk has it now. */
  private async resyncDevices(): Promise<void> {
    for (const user of this.options.users) {
      for (const name of user.devices) {
        const readAt = performance.now();
        try {
          const { state } = await this.options.ari.deviceState(name);
          await this.deviceChanged(name, state, readAt);
        } catch (err) {
          // Unreadable after a restart: not "on the phone" from before it.
          this.options.log.warn({ err: String(err), device: name }, "asterisk: device state unreadable");
          await this.deviceChanged(name, "UNKNOWN", readAt);
        }
      }
    }
  }

  // --- CustomPresence and voicemail (AMI) -------------------------------------------------------

  private async onAmiEvent(block: AmiBlock): Promise<void> {
    const event = block.get("Event");
    if (event === "PresenceStateChange") {
      const presentity = block.get("Presentity") ?? "";
      const match = /^CustomPresence:(.+)$/i.exec(presentity);
      if (match?.[1])
        await this.customPresence(match[1], block.get("Status") ?? "", block.get("Message") ?? "");
    } else if (event === "MessageWaiting") {
      await this.mailbox(block.get("Mailbox") ?? "", {
        waiting: /^(1|yes)$/i.test(block.get("Waiting") ?? ""),
        newMessages: Number(block.get("New") ?? 0) || 0,
        oldMessages: Number(block.get("Old") ?? 0) || 0,
        urgentNew: 0,
        urgentOld: 0,
      });
    }
  }

  /**
   * A CustomPresence value from the PBX. The echo of one of our writes is not news (it and any
   * older pending write are done), nor is the value we wrote last (read again on a resync). At a
   * resync (`found`), a value the store already holds keeps its time, and a new one is dated as
   * old as can be: it was set at some unknown moment, and must not beat a newer chat state.
   */
  private async customPresence(
    provider: string,
    status: string,
    message: string,
    found = false,
  ): Promise<void> {
    if (!this.reads) return;
    const user = this.byPresence.get(provider.toLowerCase());
    if (!user) return;
    const key = provider.toLowerCase();
    const value = { state: status.toLowerCase(), message };
    const pending = this.echoes.get(key) ?? [];
    const echo = pending.findIndex((p) => sameValue(p, value));
    if (echo >= 0) {
      pending.splice(0, echo + 1);
      return;
    }
    const mine = this.written.get(key);
    if (mine && sameValue(mine, value)) return;
    const state = asteriskToPresence(status);
    const note = message === "" ? null : message;
    if (found) {
      // Only a resync reading needs the stored record (a live event is news in any case).
      const { records } = await this.options.presence.snapshot(user.person);
      const stored = records.find((r) => r.source.kind === "pbx-custom");
      if (stored && "state" in stored && stored.state === state && (stored.note ?? null) === note) return;
    }
    const now = found ? 0 : this.options.presence.now();
    await this.options.presence.report(
      user.person,
      {
        source: { kind: "pbx-custom" },
        state: asteriskToPresence(status),
        note: message === "" ? null : message,
        updatedAt: now,
        expiresAt: null,
      },
      { retain: true },
    );
  }

  /**
   * A mailbox's counts: a notice only when the new messages went up (a voicemail was left), never
   * for the same counts again (a poll, a reconnect) or for messages read.
   */
  private async mailbox(mailbox: string, counts: VoicemailCounts, quiet = false): Promise<void> {
    const user = this.byMailbox.get(mailbox.toLowerCase());
    if (!user) return;
    const previous = this.counts.get(mailbox.toLowerCase());
    this.counts.set(mailbox.toLowerCase(), counts);
    if (previous && sameCounts(previous, counts)) return;
    if (quiet && !previous) return; // the first reading after start-up is the baseline
    if (previous && counts.newMessages <= previous.newMessages) return;
    if (!previous && counts.newMessages === 0) return;
    await this.options.voicemail.mailboxChanged({
      person: user.person,
      mailbox,
      counts,
      ...(previous ? { previous } : {}),
    });
  }

  /** After AMI (re)connected: CustomPresence and mailbox counts of every mapped user. */
  private async resyncAmi(): Promise<void> {
    const ami = this.options.ami;
    if (!ami) return;
    for (const user of this.options.users) {
      if (this.reads) {
        try {
          const reply = await ami.action("PresenceState", { Provider: `CustomPresence:${user.presence}` });
          // The reply has two Message: lines (its own and the presence message): the last one.
          const messages = reply.all("Message");
          await this.customPresence(
            user.presence,
            reply.get("State") ?? "",
            reply.get("PresenceMessage") ?? messages.at(-1) ?? "",
            true,
          );
        } catch (err) {
          this.options.log.warn(
            { err: String(err), user: user.person },
            "asterisk: CustomPresence unreadable",
          );
        }
      }
      try {
        const reply = await ami.action("MailboxCount", { Mailbox: user.mailbox });
        await this.mailbox(
          user.mailbox,
          {
            waiting: Number(reply.get("NewMessages") ?? 0) > 0,
            // MessageWaiting's New counts urgent messages too; MailboxCount lists them apart.
            newMessages:
              (Number(reply.get("NewMessages") ?? 0) || 0) + (Number(reply.get("UrgMessages") ?? 0) || 0),
            oldMessages: Number(reply.get("OldMessages") ?? 0) || 0,
            urgentNew: Number(reply.get("UrgMessages") ?? 0) || 0,
            urgentOld: 0,
          },
          true,
        );
      } catch (err) {
        this.options.log.warn({ err: String(err), mailbox: user.mailbox }, "asterisk: mailbox unreadable");
      }
    }
  }

  // --- chat presence → CustomPresence (ARI) ----------------------------------------------------

  private readonly onChange = (person: string, aggregate: AggregatePresence): void => {
    if (!this.writes) return;
    const user = this.byPerson.get(person);
    if (!user) return;
    // What the PBX itself decided (its CustomPresence) is not written back to it; a call is the
    // device's to show (on-the-phone has no CustomPresence form); with only the phone left, the
    // chat presence is plain available.
    if (aggregate.winner?.kind === "pbx-custom") return;
    const state =
      aggregate.winner?.kind === "pbx-device"
        ? aggregate.state === "on-the-phone"
          ? null
          : "available"
        : presenceToAsterisk(aggregate.state);
    if (state === null) return;
    const key = user.presence.toLowerCase();
    const value = { state, message: aggregate.winner?.kind === "pbx-device" ? "" : pbxNote(aggregate.note) };
    const previous = this.written.get(key);
    if (previous && sameValue(previous, value)) return;
    this.written.set(key, value);
    this.echoes.set(key, [...(this.echoes.get(key) ?? []), value].slice(-10));
    const text = formatPresenceState({ value: state, subtype: "", message: value.message });
    this.guard(
      this.writing.run(key, () =>
        this.options.ari.setCustomPresence(user.presence, text).catch((err: unknown) => {
          // Not written: forget it, so the next change (or ARI coming back) writes again.
          if (this.written.get(key) === value) this.written.delete(key);
          this.echoes.set(
            key,
            (this.echoes.get(key) ?? []).filter((p) => p !== value),
          );
          throw err;
        }),
      ),
      "writing CustomPresence",
    );
  };
}
