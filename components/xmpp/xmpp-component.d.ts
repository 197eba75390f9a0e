// Local typings for @xmpp/component 0.13, which ships none. Only what Switchboard uses is declared;
// the element API is ltx's (https://github.com/xmppjs/ltx).
declare module "@xmpp/component" {
  import type { EventEmitter } from "node:events";

  export type XmlChild = Element | string | number | null | undefined | false;

  export class Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: (Element | string)[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getAttr(name: string): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    append(...children: XmlChild[]): this;
    toString(): string;
  }

  export function xml(
    name: string,
    attrs?: Record<string, string | number | undefined> | null,
    ...children: XmlChild[]
  ): Element;

  export interface Jid {
    local: string;
    domain: string;
    resource: string;
    bare(): Jid;
    toString(): string;
  }
  export function jid(address: string): Jid;

  export interface ComponentEvents {
    online: [jid: Jid];
    offline: [];
    stanza: [stanza: Element];
    error: [error: Error];
    status: [status: string, value?: unknown];
    element: [element: Element];
    /** Every element written to the socket (stanzas and stream-level elements). */
    send: [element: Element];
    disconnect: [info: { clean: boolean; reason?: unknown }];
    /** The TCP connection is open (before the stream and the handshake). */
    connect: [];
  }

  /** @xmpp/middleware's incoming context; `element` is the IQ payload once @xmpp/iq's callee ran. */
  export interface IncomingContext {
    stanza: Element;
    element?: Element;
  }

  export interface Component extends EventEmitter {
    /** IQ requests with response matching and a timeout (@xmpp/iq caller). */
    iqCaller: {
      request(iq: Element, timeoutMs?: number): Promise<Element>;
    };
    middleware: {
      use(fn: (ctx: IncomingContext, next: () => Promise<unknown>) => unknown): void;
    };
    jid: Jid | null;
    status: string;
    start(): Promise<Jid>;
    stop(): Promise<void>;
    disconnect(timeoutMs?: number): Promise<void>;
    send(...elements: Element[]): Promise<void>;
    on<K extends keyof ComponentEvents>(event: K, listener: (...args: ComponentEvents[K]) => void): this;
    once<K extends keyof ComponentEvents>(event: K, listener: (...args: ComponentEvents[K]) => void): this;
    reconnect: EventEmitter & { delay: number; stop(): void; reconnect(): Promise<void> };
  }

  export function component(options: { service: string; domain: string; password: string }): Component;
}
