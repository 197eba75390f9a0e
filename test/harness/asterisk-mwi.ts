// A fake of Asterisk's SIP side for MWI that only replays what a real Asterisk 22.10.1 sent
// (../shared/fixtures/asterisk-22.10.1/sip-mwi.log): the 200 to a message-summary SUBSCRIBE and the
// in-dialog NOTIFYs after it, the answer to the unsubscribe and its terminated NOTIFY, and the
// unsolicited NOTIFYs Asterisk sends an endpoint. Only addresses, dialog identifiers (Call-ID, tags,
// CSeq) and Via branches are rewritten for this run; anything the recording does not cover gets 501
// and is remembered as unrecorded, so a test can fail on it.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { header, parseRawSip, UdpSipSocket, type RawSipMessage } from "./sip-socket.js";

export const MWI_FIXTURE = fileURLToPath(
  new URL("../../../shared/fixtures/asterisk-22.10.1/sip-mwi.log", import.meta.url),
);

/** Asterisk's address and the UA's in the recording, replaced by this run's. */
const RECORDED_PBX = "127.0.0.1:5062";
const RECORDED_UA = "127.0.0.1:5070";

/** What Asterisk sent (RECV blocks), each exactly head + Content-Length bytes of body. */
export function recordedFromAsterisk(text: string): string[] {
  const out: string[] = [];
  const blocks = text.split(/^=== /m).slice(1);
  for (const block of blocks) {
    const [title = "", ...rest] = block.split("\n");
    if (!title.includes(" RECV ")) continue;
    const raw = rest.join("\n").split(/^###/m)[0] ?? "";
    const end = raw.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const length = Number(/^content-length:\s*(\d+)/im.exec(raw.slice(0, end))?.[1] ?? 0);
    out.push(raw.slice(0, end + 4 + length));
  }
  return out;
}

function replaceHeader(text: string, name: string, value: string): string {
  return text.replace(new RegExp(`^${name}:.*$`, "im"), `${name}: ${value}`);
}

export class RecordedAsteriskMwi {
  readonly unrecorded: RawSipMessage[] = [];
  private readonly subscribeOk: string;
  private readonly unsubscribeOk: string;
  /** In-dialog NOTIFYs in recorded order (active ones, then the terminated one). */
  readonly inDialog: string[];
  /** Unsolicited NOTIFYs (no To tag): Asterisk's sums over the endpoint's mailboxes. */
  readonly unsolicited: string[];
  private dialog?: { callId: string; uaTag: string; pbxTag: string; uaContact: string; cseq: number };

  private constructor(
    readonly socket: UdpSipSocket,
    recorded: string[],
  ) {
    const find = (predicate: (m: RawSipMessage) => boolean): string => {
      const found = recorded.find((text) => predicate(parseRawSip(text)));
      if (!found) throw new Error(`asterisk mwi fake: the recording lacks an expected message`);
      return found;
    };
    const isSubscribeOk = (expires: string) => (m: RawSipMessage) =>
      m.status === 200 && /SUBSCRIBE$/.test(header(m, "cseq") ?? "") && header(m, "expires") === expires;
    this.subscribeOk = find(isSubscribeOk("600"));
    this.unsubscribeOk = find(isSubscribeOk("0"));
    const notifies = recorded.filter((t) => t.startsWith("NOTIFY "));
    this.inDialog = notifies.filter((t) => /;tag=/.test(header(parseRawSip(t), "to") ?? ""));
    this.unsolicited = notifies.filter((t) => !/;tag=/.test(header(parseRawSip(t), "to") ?? ""));
    socket.onMessage((message) => void this.onMessage(message));
  }

  static async start(): Promise<RecordedAsteriskMwi> {
    const socket = await UdpSipSocket.open();
    return new RecordedAsteriskMwi(socket, recordedFromAsterisk(readFileSync(MWI_FIXTURE, "latin1")));
  }

  get port(): number {
    return this.socket.port;
  }

  get received(): RawSipMessage[] {
    return this.socket.received;
  }

  /** Recorded text with this run's addresses (and the Content-Length of the body that makes). */
  private localize(text: string, ua: string): string {
    const local = text.replaceAll(RECORDED_PBX, `127.0.0.1:${this.port}`).replaceAll(RECORDED_UA, ua);
    const end = local.indexOf("\r\n\r\n");
    const body = local.slice(end + 4);
    return replaceHeader(local.slice(0, end + 4), "Content-Length", String(Buffer.byteLength(body))) + body;
  }

  private async onMessage(message: RawSipMessage): Promise<void> {
    if (message.status !== undefined) return; // answers to our NOTIFYs
    const ua = `${message.from.address}:${message.from.port}`;
    const event = header(message, "event")?.split(";")[0]?.trim();
    const toTag = /;tag=([^;\s]+)/.exec(header(message, "to") ?? "")?.[1];
    const expires = header(message, "expires");
    if (message.method === "SUBSCRIBE" && event === "message-summary" && !toTag && expires !== "0") {
      this.dialog = {
        callId: header(message, "call-id") ?? "",
        uaTag: /;tag=([^;\s]+)/.exec(header(message, "from") ?? "")?.[1] ?? "",
        pbxTag: randomBytes(8).toString("hex"),
        uaContact: /<([^>]*)>/.exec(header(message, "contact") ?? "")?.[1] ?? `sip:${ua}`,
        cseq: 32611,
      };
      await this.answer(message, this.subscribeOk, ua);
      await this.notify(0, ua);
      return;
    }
    if (message.method === "SUBSCRIBE" && this.dialog && toTag === this.dialog.pbxTag && expires === "0") {
      await this.answer(message, this.unsubscribeOk, ua);
      await this.notify(this.inDialog.length - 1, ua);
      this.dialog = undefined;
      return;
    }
    this.unrecorded.push(message);
    await this.socket.send(
      [
        "SIP/2.0 501 Not Recorded",
        ...(message.headers.get("via") ?? []).map((v) => `Via: ${v}`),
        `From: ${header(message, "from") ?? ""}`,
        `To: ${header(message, "to") ?? ""}`,
        `Call-ID: ${header(message, "call-id") ?? ""}`,
        `CSeq: ${header(message, "cseq") ?? ""}`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      message.from.port,
      message.from.address,
    );
  }

  /** The recorded 200 with the request's Via, Call-ID, CSeq and tags. */
  private async answer(request: RawSipMessage, recorded: string, ua: string): Promise<void> {
    const dialog = this.dialog;
    if (!dialog) return;
    let text = this.localize(recorded, ua);
    const vias = (request.headers.get("via") ?? []).map((v) => `Via: ${v}`).join("\r\n");
    text = text.replace(/^Via:.*$/im, vias);
    text = replaceHeader(text, "Call-ID", dialog.callId);
    text = replaceHeader(text, "CSeq", header(request, "cseq") ?? "");
    text = text.replace(/^(From:.*;tag=)[^;\s]+/im, `$1${dialog.uaTag}`);
    text = text.replace(/^(To:.*;tag=)[^;\s]+/im, `$1${dialog.pbxTag}`);
    await this.socket.send(text, request.from.port, request.from.address);
  }

  /** Sends recorded in-dialog NOTIFY `index` (0: the first after subscribing) in the current dialog. */
  async notify(index: number, ua?: string): Promise<void> {
    const dialog = this.dialog;
    const recorded = this.inDialog[index];
    if (!dialog || !recorded) throw new Error(`asterisk mwi fake: no dialog or no recorded NOTIFY ${index}`);
    const target = /@?([0-9.]+):(\d+)/.exec(dialog.uaContact);
    const address = target?.[1] ?? "127.0.0.1";
    const port = Number(target?.[2] ?? 5060);
    let text = this.localize(recorded, ua ?? `${address}:${port}`);
    text = text.replace(/^NOTIFY \S+/, `NOTIFY ${dialog.uaContact}`);
    text = text.replace(/branch=[^;\s]+/, `branch=z9hG4bKPj${randomBytes(8).toString("hex")}`);
    text = replaceHeader(text, "Call-ID", dialog.callId);
    text = replaceHeader(text, "CSeq", `${dialog.cseq++} NOTIFY`);
    text = text.replace(/^(From:.*;tag=)[^;\s]+/im, `$1${dialog.pbxTag}`);
    text = text.replace(/^(To:.*;tag=)[^;\s]+/im, `$1${dialog.uaTag}`);
    await this.socket.send(text, port, address);
  }

  /** Sends recorded unsolicited NOTIFY `index` to `port` (a fresh Call-ID and branch). */
  async sendUnsolicited(index: number, port: number): Promise<string> {
    const recorded = this.unsolicited[index];
    if (!recorded) throw new Error(`asterisk mwi fake: no recorded unsolicited NOTIFY ${index}`);
    const callId = randomBytes(8).toString("hex");
    let text = this.localize(recorded, `127.0.0.1:${port}`);
    text = text.replace(/branch=[^;\s]+/, `branch=z9hG4bKPj${randomBytes(8).toString("hex")}`);
    text = replaceHeader(text, "Call-ID", callId);
    await this.socket.send(text, port);
    return callId;
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}
