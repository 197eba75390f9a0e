// The XMPP side of the bridge as one object: the component connection plus the handlers for what
// arrives on it. Grows with each capability (presence, messages); today it answers IQs.
import type { Element } from "@xmpp/component";
import { ComponentConnection, type ComponentConnectionOptions } from "./component-connection.js";
import { handleIq, type GatewayIdentity } from "./iq-handler.js";

export interface XmppGatewayOptions {
  connection: ComponentConnectionOptions;
  homeDomain: string;
  version: string;
  /** Receives handled problems (socket errors, refused connections) for logging. */
  onProblem?: (error: Error) => void;
}

export class XmppGateway {
  readonly connection: ComponentConnection;
  private readonly identity: GatewayIdentity;

  constructor(options: XmppGatewayOptions) {
    this.identity = {
      gatewayDomain: options.connection.jid,
      homeDomain: options.homeDomain,
      name: "Switchboard",
      version: options.version,
    };
    this.connection = new ComponentConnection(options.connection);
    this.connection.on("problem", options.onProblem ?? (() => undefined));
    this.connection.on("stanza", (stanza) => this.onStanza(stanza));
  }

  start(): void {
    this.connection.start();
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }

  private onStanza(stanza: Element): void {
    if (!stanza.is("iq")) return;
    const reply = handleIq(stanza, this.identity);
    if (reply) {
      this.connection.send(reply).catch((err: unknown) => {
        this.connection.emit("problem", err instanceof Error ? err : new Error(String(err)));
      });
    }
  }
}
