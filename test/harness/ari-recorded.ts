// A fake of Asterisk's ARI HTTP interface that only replays what a real Asterisk 22.10.1 answered
// (../shared/fixtures/asterisk-22.10.1/ari-rest.txt): a request is answered only when the same
// method, path, credentials and body were recorded; anything else gets 501 and is remembered as
// unrecorded, so a test can fail on it. Asterisk is not packaged here; this is the accepted fake.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import { LOOPBACK } from "./net.js";

export const ARI_FIXTURE = fileURLToPath(
  new URL("../../../shared/fixtures/asterisk-22.10.1/ari-rest.txt", import.meta.url),
);

interface Exchange {
  title: string;
  method: string;
  path: string;
  authorization: string | undefined;
  requestBody: string;
  status: number;
  headers: [string, string][];
  body: string;
}

function splitHead(text: string): { head: string[]; body: string } {
  const normalized = text.replace(/\r\n/g, "\n");
  const blank = normalized.indexOf("\n\n");
  const head = (blank < 0 ? normalized : normalized.slice(0, blank)).split("\n").filter((l) => l !== "");
  return { head, body: blank < 0 ? "" : normalized.slice(blank + 2).replace(/\s+$/, "") };
}

export function parseAriRecording(text: string): Exchange[] {
  const exchanges: Exchange[] = [];
  for (const block of text.split(/^##### /m).slice(1)) {
    const title = block.slice(0, block.indexOf("\n")).trim();
    const requestAt = block.indexOf(">>> request");
    const responseAt = block.indexOf("<<< response");
    if (requestAt < 0 || responseAt < 0) continue;
    const requestText = block.slice(block.indexOf("\n", requestAt) + 1, responseAt);
    const responseText = block
      .slice(block.indexOf("\n", responseAt) + 1)
      .split("\n")
      .filter((l) => !/^(-----|>>>|<<<)/.test(l))
      .join("\n");
    const request = splitHead(requestText);
    const response = splitHead(responseText);
    const [method = "", path = ""] = (request.head[0] ?? "").split(" ");
    const headerValue = (head: string[], name: string): string | undefined =>
      head
        .slice(1)
        .find((l) => l.toLowerCase().startsWith(`${name}:`))
        ?.slice(name.length + 1)
        .trim();
    const status = Number((response.head[0] ?? "").split(" ")[1]);
    if (!method || !status) continue;
    exchanges.push({
      title,
      method,
      path,
      authorization: headerValue(request.head, "authorization"),
      requestBody: request.body,
      status,
      headers: response.head
        .slice(1)
        .map((l): [string, string] => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()])
        .filter(([name]) => !/^(content-length|connection|date|transfer-encoding)$/i.test(name)),
      body: response.body,
    });
  }
  return exchanges;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => resolve(body.trim()));
  });
}

export class RecordedAri {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** Requests that had no recording: a test that sees any here exercised something unrecorded. */
    readonly unrecorded: string[],
  ) {}

  get url(): string {
    return `http://${LOOPBACK}:${this.port}`;
  }

  static async start(fixture = ARI_FIXTURE): Promise<RecordedAri> {
    const exchanges = parseAriRecording(readFileSync(fixture, "utf8"));
    const unrecorded: string[] = [];
    const server = createServer((request, response) => {
      void readBody(request).then((body) => {
        const match = exchanges.find(
          (e) =>
            e.method === request.method &&
            e.path === request.url &&
            e.authorization === request.headers.authorization &&
            e.requestBody === body,
        );
        if (!match) {
          unrecorded.push(`${request.method} ${request.url}`);
          response.writeHead(501, { "content-type": "text/plain" }).end("unrecorded request\n");
          return;
        }
        response.writeHead(match.status, Object.fromEntries(match.headers)).end(match.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    const address = server.address();
    return new RecordedAri(server, typeof address === "object" && address ? address.port : 0, unrecorded);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
