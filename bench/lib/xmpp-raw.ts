// Minimal XMPP peers for load, written against the raw stream so that the measuring side costs as
// little CPU as possible on a 2-core machine: a c2s client (SASL PLAIN on loopback, bind, then
// counting <message> bodies) and an XEP-0114 component (the ceiling: stanzas written as fast as the
// socket takes them). Neither parses XML beyond what the counting needs.
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
    socket.setNoDelay(true);
  });
}

/** Reads the socket until `done` holds for what arrived (bounded), returns it, and keeps nothing. */
function readUntil(
  socket: Socket,
  done: (text: string) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(
      () => finish(new Error(`${what}: no answer within ${timeoutMs} ms (got ${text.slice(0, 300)})`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      text += chunk.toString("utf8");
      if (/<stream:error|<failure/.test(text)) finish(new Error(`${what}: ${text.slice(0, 300)}`));
      else if (done(text)) finish();
    };
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      if (err) reject(err);
      else resolve(text);
    };
    socket.on("data", onData);
  });
}

const STREAM_NS = "xmlns:stream='http://etherx.jabber.org/streams'";

export interface ReceivedMessage {
  /** The body's first word (the sender's sequence number). */
  seq: number;
  /** The body's second word: when it was sent (performance.now() of this process). */
  sentAt: number;
  receivedAt: number;
}

/** A logged-in c2s session that counts the messages it receives. */
export class RawXmppClient {
  private buffer = "";
  private listener: ((message: ReceivedMessage) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk.toString("utf8")));
    socket.on("error", () => undefined);
  }

  static async connect(options: {
    host: string;
    port: number;
    domain: string;
    user: string;
    password: string;
    resource?: string;
  }): Promise<RawXmppClient> {
    const socket = await open(options.host, options.port);
    const header = `<?xml version='1.0'?><stream:stream to='${options.domain}' xmlns='jabber:client' ${STREAM_NS} version='1.0'>`;
    socket.write(header);
    await readUntil(socket, (t) => t.includes("</stream:features>"), "stream features");
    const plain = Buffer.from(`\0${options.user}\0${options.password}`).toString("base64");
    socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain}</auth>`);
    await readUntil(socket, (t) => t.includes("<success"), "SASL PLAIN");
    socket.write(header);
    await readUntil(socket, (t) => t.includes("</stream:features>"), "stream features after auth");
    socket.write(
      `<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${options.resource ?? "bench"}</resource></bind></iq>`,
    );
    await readUntil(socket, (t) => /id=['"]bind1['"]/.test(t) && t.includes("</iq>"), "resource binding");
    // Available, so that messages to the bare JID are routed to this resource.
    socket.write("<presence><priority>10</priority></presence>");
    return new RawXmppClient(socket);
  }

  onMessage(listener: (message: ReceivedMessage) => void): void {
    this.listener = listener;
  }

  /** Writes raw stanzas; resolves when the socket has taken them (backpressure). */
  write(text: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.write(text)) resolve();
      else this.socket.once("drain", resolve);
    });
  }

  private onData(text: string): void {
    this.buffer += text;
    let end: number;
    while ((end = this.buffer.indexOf("</message>")) >= 0) {
      const stanza = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + "</message>".length);
      const body = /<body>(\d+) ([\d.]+)<\/body>/.exec(stanza);
      if (body && this.listener) {
        this.listener({ seq: Number(body[1]), sentAt: Number(body[2]), receivedAt: performance.now() });
      }
    }
    // Other stanzas (presence, iq) before the next message are of no interest: keep only a tail.
    const start = this.buffer.lastIndexOf("<message");
    this.buffer = start >= 0 ? this.buffer.slice(start) : this.buffer.slice(-16);
  }

  close(): void {
    this.socket.end("</stream:stream>");
    this.socket.destroy();
  }
}

/** An XEP-0114 component connection that only writes. */
export class RawComponent {
  private constructor(private readonly socket: Socket) {
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
  }

  static async connect(options: {
    host: string;
    port: number;
    jid: string;
    secret: string;
  }): Promise<RawComponent> {
    const socket = await open(options.host, options.port);
    socket.write(
      `<?xml version='1.0'?><stream:stream to='${options.jid}' xmlns='jabber:component:accept' ${STREAM_NS}>`,
    );
    const opened = await readUntil(socket, (t) => /\sid=['"][^'"]+['"]/.test(t), "component stream");
    const id = /\sid=['"]([^'"]+)['"]/.exec(opened)?.[1] ?? "";
    socket.write(
      `<handshake>${createHash("sha1")
        .update(id + options.secret)
        .digest("hex")}</handshake>`,
    );
    await readUntil(socket, (t) => t.includes("<handshake"), "component handshake");
    return new RawComponent(socket);
  }

  write(text: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.write(text)) resolve();
      else this.socket.once("drain", resolve);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
