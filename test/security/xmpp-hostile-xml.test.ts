// Hostile XML on the component connection. Prosody would never pass these on (XMPP forbids DTDs and
// undeclared entities), so a server of our own plays the XMPP server (XEP-0114: stream header,
// handshake) and, after the handshake, sends one hostile payload per connection: a billion-laughs
// DTD, an external entity, 100,000 nested elements, invalid UTF-8, an unclosed tag soup. The
// gateway must expand nothing (its message sink never sees an expanded or external text), never
// crash or leak an exception, and connect again after the server closes the stream.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { XmppGateway } from "../../components/xmpp/xmpp-gateway.js";
import type { ChatMessage } from "../../src/ports/message-port.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { memoryLogger, type LogLine } from "../harness/memory-logger.js";
import { LOOPBACK } from "../harness/net.js";

const SECRET = "s3cret";
const GATEWAY = "gw.example.org";
const LAUGHS = [
  '<!DOCTYPE lolz [<!ENTITY lol "lol">',
  ...Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? "" : i};`.repeat(10)}">`),
  "]>",
].join("");

/** After the handshake, what the server sends (each on its own connection). */
const PAYLOADS: { name: string; bytes: Buffer }[] = [
  {
    name: "billion laughs",
    bytes: Buffer.from(
      `${LAUGHS}<message from="alice@example.org/x" to="bob@${GATEWAY}" type="chat"><body>&lol9;</body></message>`,
    ),
  },
  {
    name: "an external entity",
    bytes: Buffer.from(
      `<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><message from="alice@example.org/x" to="bob@${GATEWAY}" type="chat"><body>&xxe;</body></message>`,
    ),
  },
  {
    name: "an undeclared entity in a body",
    bytes: Buffer.from(
      `<message from="alice@example.org/x" to="bob@${GATEWAY}" type="chat"><body>&lol9;</body></message>`,
    ),
  },
  {
    name: "100,000 nested elements",
    bytes: Buffer.from(
      `<message from="alice@example.org/x" to="bob@${GATEWAY}" type="chat"><body>deep</body>${"<a>".repeat(100_000)}${"</a>".repeat(100_000)}</message>`,
    ),
  },
  {
    name: "invalid UTF-8 in a body",
    bytes: Buffer.concat([
      Buffer.from(`<message from="alice@example.org/x" to="bob@${GATEWAY}" type="chat"><body>`),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]),
      Buffer.from("</body></message>"),
    ]),
  },
  { name: "tag soup", bytes: Buffer.from("<message><body></message></body><<>>&&;</stream:stream>") },
];

/** A minimal XEP-0114 server: accepts the component's handshake, then sends `next()`'s payload. */
class HostileServer {
  readonly server: Server;
  connections = 0;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly next: () => Buffer | undefined) {
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, LOOPBACK, () => resolve()));
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  private accept(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => undefined);
    const id = `s${this.connections}`;
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString("utf8");
      if (text.includes("<stream:stream") && !text.includes("sent-header")) {
        text += "sent-header";
        socket.write(
          `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='${GATEWAY}' id='${id}'>`,
        );
      }
      const handshake = /<handshake>([0-9a-f]+)<\/handshake>/.exec(text)?.[1];
      if (handshake && !text.includes("handshaken")) {
        text += "handshaken";
        const expected = createHash("sha1").update(`${id}${SECRET}`).digest("hex");
        if (handshake !== expected) {
          socket.end(
            "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
          );
          return;
        }
        socket.write("<handshake/>");
        const payload = this.next();
        if (payload) {
          socket.write(payload);
          // Then the server goes away, as Prosody would after such input.
          setTimeout(() => socket.end("</stream:stream>"), 200);
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe("XMPP: hostile XML on the component connection", function () {
  this.timeout(60_000);

  it("expands nothing, never crashes, and connects again after each", async function () {
    let index = 0;
    const server = new HostileServer(() => PAYLOADS[index++]?.bytes);
    const port = await server.listen();
    const lines: LogLine[] = [];
    const delivered: ChatMessage[] = [];
    const uncaught: string[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(String(err));
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    const gateway = new XmppGateway({
      homeDomain: "example.org",
      version: "0.1.0",
      log: memoryLogger(lines),
      privilegeWaitMs: 100,
      connection: {
        jid: GATEWAY,
        host: LOOPBACK,
        port,
        secret: SECRET,
        backoff: { baseMs: 50, capMs: 200 },
        attemptTimeoutMs: 2_000,
      },
      presence: new PresenceService(new MemoryPresenceStore()),
      messages: {
        deliver: (message) => {
          delivered.push(message);
          return Promise.resolve("delivered");
        },
      },
    });
    const rssBefore = process.memoryUsage().rss;
    try {
      gateway.start();
      // Every payload had its connection, and one more came after the last.
      const deadline = Date.now() + 30_000;
      while (server.connections <= PAYLOADS.length && Date.now() < deadline) await sleep(50);
      assert.ok(
        server.connections > PAYLOADS.length,
        `only ${server.connections} connections for ${PAYLOADS.length} payloads`,
      );
    } finally {
      await gateway.stop();
      await server.close();
      process.off("uncaughtException", onUncaught);
      process.off("unhandledRejection", onUncaught);
    }
    assert.deepEqual(uncaught, []);
    // Nothing expanded or read from a file ever reached the SIP side.
    for (const message of delivered) {
      assert.doesNotMatch(message.body ?? "", /lol|root:/, JSON.stringify(message).slice(0, 200));
    }
    const grown = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    assert.ok(grown < 100, `RSS grew by ${grown.toFixed(0)} MB`);
    assert.ok(
      !lines.some((l) => l.level === "error"),
      JSON.stringify(lines.filter((l) => l.level === "error")),
    );
  });
});
