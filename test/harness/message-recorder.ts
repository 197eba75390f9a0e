// The XMPP side as the SIP tests see it: records what the SIP endpoint delivers, or refuses it with
// a chosen condition.
import { SwitchboardError, type Condition } from "../../src/domain/errors.js";
import type { ChatMessage, MessageSink } from "../../src/ports/message-port.js";

export class XmppSideRecorder implements MessageSink {
  readonly received: ChatMessage[] = [];
  failWith: Condition | null = null;

  deliver(message: ChatMessage): Promise<"accepted"> {
    if (this.failWith)
      return Promise.reject(new SwitchboardError(this.failWith, `xmpp side: ${this.failWith}`));
    this.received.push(message);
    return Promise.resolve("accepted");
  }
}
