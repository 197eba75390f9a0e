// Messages on the XMPP side (RFC 6121 §5): chat users' messages to gateway contacts go to the
// message sink (the SIP side); messages from SIP parties arrive from their gateway contact. XEP-0184
// receipts only when the far end confirmed delivery, XEP-0085 chat states both ways, and every
// failure answered with a message error whose condition says why.
import { randomUUID } from "node:crypto";
import { xml, type Element } from "@xmpp/component";
import { SwitchboardError } from "../../src/domain/errors.js";
import type { GatewayDomains } from "../../src/domain/gateway-mapping.js";
import { bareJid, formatJid, parseJid, type Jid } from "../../src/domain/jid.js";
import type { Logger } from "../../src/ports/logger.js";
import {
  CHAT_STATES,
  type ChatMessage,
  type ChatState,
  type MessageSink,
} from "../../src/ports/message-port.js";
import { contactForPerson, personForContact } from "../../src/presence/person.js";
import { xmlSafeText } from "../../src/util/xml-text.js";
import { NS } from "./namespaces.js";
import { stanzaAddresses } from "./stanza-addresses.js";
import { errorReply } from "./stanza-error.js";

export interface MessageHandlerOptions {
  domains: GatewayDomains;
  /** Where chat users' messages to gateway contacts go; absent until the SIP side is wired. */
  sink: MessageSink | undefined;
  send: (stanza: Element) => Promise<void>;
  log: Logger;
  /** Largest body accepted, in UTF-8 bytes, either way (default 64 KiB). */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

function chatStateOf(stanza: Element): ChatState | undefined {
  return CHAT_STATES.find((state) => stanza.getChild(state, NS.chatStates) !== undefined);
}

export class XmppMessageHandler {
  private readonly maxBodyBytes: number;

  constructor(private readonly options: MessageHandlerOptions) {
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  /** A message from a chat user to a gateway contact (or to the gateway domain itself). */
  async onMessage(stanza: Element): Promise<void> {
    const type = stanza.attrs.type ?? "normal";
    if (type === "error") {
      this.options.log.info({ from: stanza.attrs.from, to: stanza.attrs.to }, "message error from XMPP");
      return;
    }
    const refuse = (condition: SwitchboardError["condition"], text: string): Promise<void> =>
      this.options.send(errorReply(stanza, condition, text));
    // RFC 6121 §8.5.2.1: a headline is silently ignored, a groupchat (no room here) refused.
    if (type === "headline") return;
    if (type !== "chat" && type !== "normal") {
      await refuse("service-unavailable", `message type '${type}' is not relayed; send a chat message`);
      return;
    }
    const addresses = stanzaAddresses(stanza, this.options.log);
    if (!addresses) return;
    const { from, to } = addresses;
    if (to.local === null) {
      if (stanza.getChild("body"))
        await refuse("service-unavailable", "the gateway itself takes no messages");
      return;
    }
    const rawBody = stanza.getChildText("body");
    const chatState = chatStateOf(stanza);
    if (rawBody === null && chatState === undefined) return; // nothing to relay (e.g. a bare receipt)
    if (rawBody !== null && Buffer.byteLength(rawBody) > this.maxBodyBytes) {
      await refuse("policy-violation", `message body larger than ${this.maxBodyBytes} bytes`);
      return;
    }
    let person: string;
    try {
      person = personForContact(bareJid(to), this.options.domains);
    } catch (err) {
      if (err instanceof SwitchboardError) return refuse(err.condition, err.message);
      throw err;
    }
    const sink = this.options.sink;
    if (!sink) {
      await refuse("service-unavailable", "the SIP side is not connected");
      return;
    }
    const message: ChatMessage = {
      // A message without an id gets one of its own: the queue keys messages by sender and id.
      id: stanza.attrs.id || `sb-${randomUUID()}`,
      from: formatJid(bareJid(from)),
      to: person,
      ...(rawBody !== null ? { body: xmlSafeText(rawBody) } : {}),
      ...(stanza.getChildText("thread") ? { thread: stanza.getChildText("thread") ?? "" } : {}),
      ...(stanza.attrs["xml:lang"] ? { lang: stanza.attrs["xml:lang"] } : {}),
      ...(chatState ? { chatState } : {}),
      ...(rawBody !== null && stanza.getChild("request", NS.receipts) && stanza.attrs.id
        ? { receipt: true }
        : {}),
      ...(rawBody !== null && stanza.attrs.from ? { replyTo: stanza.attrs.from } : {}),
    };
    const flow = this.options.log.child({
      jid: message.from,
      contact: formatJid(bareJid(to)),
      id: message.id,
    });
    try {
      const outcome = await sink.deliver(message);
      flow.info({ outcome }, "message to SIP");
      // `queued`: no receipt and no error now; the queue reports the outcome later (reportDelivered).
      if (outcome === "delivered" && message.receipt) {
        await this.sendReceipt(stanza.attrs.to ?? "", stanza.attrs.from ?? "", message.id);
      }
    } catch (err) {
      const known = err instanceof SwitchboardError;
      flow.warn({ err: String(err) }, "message to SIP failed");
      if (rawBody !== null) {
        await refuse(
          known ? err.condition : "internal-server-error",
          known ? err.message : "delivery failed",
        );
      }
    }
  }

  /** XEP-0184 §5.1: a receipt means the recipient's device has the message, so only on `delivered`. */
  private sendReceipt(from: string, to: string, id: string): Promise<void> {
    return this.options.send(
      xml("message", { from, to, id: `receipt-${id}` }, xml("received", { xmlns: NS.receipts, id })),
    );
  }

  /** A queued message (`message.to` a person key) was delivered later: its receipt, when asked. */
  async reportDelivered(message: ChatMessage, outcome: "delivered" | "accepted"): Promise<void> {
    if (outcome !== "delivered" || !message.receipt) return;
    await this.sendReceipt(
      contactForPerson(message.to, this.options.domains),
      message.replyTo ?? message.from,
      message.id,
    );
  }

  /** A queued message was given up: the sender gets a message error from the contact. */
  async reportFailed(
    message: ChatMessage,
    condition: SwitchboardError["condition"],
    text: string,
  ): Promise<void> {
    const contact = contactForPerson(message.to, this.options.domains);
    const original = xml("message", { id: message.id, from: message.replyTo ?? message.from, to: contact });
    await this.options.send(errorReply(original, condition, text));
  }

  /**
   * A message from a SIP party (`message.from` is its person key) to a chat user: sent from the
   * party's gateway contact (forbidden XML characters are removed as it is sent). An oversize body
   * is refused with `policy-violation` for the SIP side to answer (513); a recipient on the gateway
   * domain would loop back into the bridge and is refused with `loop-detected` (482).
   */
  async deliver(message: ChatMessage): Promise<void> {
    const body = message.body;
    let to: Jid;
    try {
      to = parseJid(message.to);
    } catch (err) {
      if (err instanceof SwitchboardError) throw err;
      throw new SwitchboardError("malformed-address", `bad recipient '${message.to}'`, { cause: err });
    }
    if (to.domain === this.options.domains.gatewayDomain) {
      throw new SwitchboardError(
        "loop-detected",
        `${message.to} is on the gateway domain: it would come back here`,
      );
    }
    if (body !== undefined && Buffer.byteLength(body) > this.maxBodyBytes) {
      throw new SwitchboardError("policy-violation", `message body larger than ${this.maxBodyBytes} bytes`);
    }
    if (body === undefined && message.chatState === undefined) {
      throw new SwitchboardError("bad-request", "a message needs a body or a chat state");
    }
    const from = contactForPerson(message.from, this.options.domains);
    await this.options.send(
      xml(
        "message",
        { type: "chat", from, to: message.to, id: message.id || undefined, "xml:lang": message.lang },
        body !== undefined ? xml("body", {}, body) : null,
        message.thread ? xml("thread", {}, message.thread) : null,
        message.chatState ? xml(message.chatState, { xmlns: NS.chatStates }) : null,
      ),
    );
  }
}
