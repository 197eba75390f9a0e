// The SIP message parser (RFC 3261 §7, §20, §25): a start line, headers (folded lines joined,
// compact forms expanded, names case-insensitive), a body. Each header the core relies on is
// checked where it is read — Via, From, To, Call-ID, CSeq, Contact, Content-Length, Max-Forwards
// — and a message whose such header does not parse is refused as a whole (undefined), like one
// without a blank line after its headers. It is written for speed (one pass, regular expressions
// on short strings, nothing parsed twice): it runs on every datagram the bridge receives.

/** A URI as it was written; parsed where it is used (src/domain/sip-uri.ts), not here. */
export class UriText {
  constructor(private readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** name-addr or addr-spec (RFC 3261 §20.10, §25.1) with its header parameters. */
export class NameAddr {
  constructor(
    readonly uri: UriText,
    readonly displayName: string,
    private readonly params: ReadonlyMap<string, string | null>,
  ) {}

  getParam(name: string): string | undefined {
    const value = this.params.get(name.toLowerCase());
    return value === undefined ? undefined : (value ?? "");
  }

  /** The tag (RFC 3261 §19.3); an empty one (`;tag`, `;tag=`) counts as none. */
  get tag(): string | undefined {
    return this.getParam("tag") || undefined;
  }

  hasParam(name: string): boolean {
    return this.params.has(name.toLowerCase());
  }
}

export interface ViaValue {
  transport: string;
  host: string;
  port: number | undefined;
  branch: string | undefined;
}

// RFC 3261 §7.3.3 compact forms, and RFC 3265/6665's o (Event) and u (Allow-Events). A Map: no
// name from the network can reach Object.prototype.
const COMPACT: ReadonlyMap<string, string> = new Map(
  Object.entries({
    v: "via",
    f: "from",
    t: "to",
    i: "call-id",
    m: "contact",
    l: "content-length",
    c: "content-type",
    k: "supported",
    e: "content-encoding",
    s: "subject",
    o: "event",
    u: "allow-events",
    r: "refer-to",
    b: "referred-by",
    x: "session-expires",
    a: "accept-contact",
    j: "reject-contact",
    d: "request-disposition",
    y: "identity",
    n: "identity-info",
  }),
);

const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const SCHEME_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"]+$/;

/** Splits a header value at the commas that separate values (not inside quotes or <...>). */
export function splitValues(value: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === 0x3c) depth++;
    else if (c === 0x3e) depth = Math.max(0, depth - 1);
    else if (c === 0x2c && depth === 0) {
      parts.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(value.slice(start).trim());
  return parts.filter((p) => p !== "");
}

/** `;name=value;flag` → map (names lower-cased, quotes kept off); undefined when malformed. */
function parseParams(text: string): Map<string, string | null> | undefined {
  const params = new Map<string, string | null>();
  let rest = text.trim();
  while (rest !== "") {
    if (rest[0] !== ";") return undefined;
    const match = /^;\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;\s"]*))?\s*/.exec(rest);
    if (!match?.[1]) return undefined;
    const raw = match[2];
    params.set(
      match[1].toLowerCase(),
      raw === undefined ? null : raw.startsWith('"') ? raw.slice(1, -1) : raw,
    );
    rest = rest.slice(match[0].length);
  }
  return params;
}

/** One name-addr / addr-spec value; undefined when it is not one. */
export function parseNameAddr(value: string): NameAddr | undefined {
  const text = value.trim();
  let display = "";
  let uri: string;
  let rest: string;
  const open = text.indexOf("<");
  if (text.startsWith('"')) {
    const quoted = /^"((?:[^"\\]|\\.)*)"\s*</.exec(text);
    if (!quoted) return undefined;
    display = quoted[1]?.replace(/\\(.)/g, "$1") ?? "";
    const close = text.indexOf(">", quoted[0].length);
    if (close < 0) return undefined;
    uri = text.slice(quoted[0].length, close);
    rest = text.slice(close + 1);
  } else if (open >= 0) {
    display = text.slice(0, open).trim();
    if (display !== "" && !display.split(/\s+/).every((word) => TOKEN.test(word))) return undefined;
    const close = text.indexOf(">", open);
    if (close < 0) return undefined;
    uri = text.slice(open + 1, close);
    rest = text.slice(close + 1);
  } else {
    // addr-spec: parameters after the URI are the header's (RFC 3261 §20.10).
    const semi = text.indexOf(";");
    uri = semi < 0 ? text : text.slice(0, semi);
    rest = semi < 0 ? "" : text.slice(semi);
  }
  uri = uri.trim();
  if (!SCHEME_URI.test(uri)) return undefined;
  const params = parseParams(rest);
  if (!params) return undefined;
  return new NameAddr(new UriText(uri), display, params);
}

/** The first value of a Via header; undefined when it is not one. */
export function parseVia(value: string): ViaValue | undefined {
  const first = splitValues(value)[0] ?? "";
  const match =
    /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z0-9-]+)\s+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?:\s*:\s*(\d{1,5}))?\s*((?:;[\s\S]*)?)$/i.exec(
      first,
    );
  if (!match?.[1] || !match[2]) return undefined;
  const params = parseParams(match[4] ?? "");
  if (!params) return undefined;
  const port = match[3] === undefined ? undefined : Number(match[3]);
  if (port !== undefined && port > 65535) return undefined;
  const branch = params.get("branch");
  return { transport: match[1].toUpperCase(), host: match[2], port, branch: branch ?? undefined };
}

abstract class SipMessage {
  /** Header values by lower-case full name, in order; comma-separated lists of Contact, Route and
   * Record-Route are split into their values. */
  protected readonly headers = new Map<string, string[]>();
  body = "";
  callId = "";
  cseq = 0;
  from: NameAddr | undefined;
  to: NameAddr | undefined;
  fromTag: string | undefined;
  toTag: string | undefined;
  via: ViaValue | undefined;
  viaBranch: string | undefined;
  private contacts: NameAddr[] = [];

  getHeader(name: string): string | undefined {
    return this.headers.get(canonical(name))?.[0];
  }

  getHeaders(name: string): string[] {
    return [...(this.headers.get(canonical(name)) ?? [])];
  }

  hasHeader(name: string): boolean {
    return this.headers.has(canonical(name));
  }

  /** The parsed Contact (the only header parsed on demand); undefined when absent or `*`. */
  parseHeader(name: string, index = 0): NameAddr | undefined {
    return canonical(name) === "contact" ? this.contacts[index] : undefined;
  }

  /** Adds one header line; false when a header the core relies on does not parse. */
  add(name: string, value: string): boolean {
    const key = canonical(name);
    switch (key) {
      case "via": {
        if (!this.headers.has("via")) {
          const via = parseVia(value);
          if (!via) return false;
          this.via = via;
          this.viaBranch = via.branch;
        }
        break;
      }
      case "from":
      case "to": {
        const parsed = parseNameAddr(value);
        if (!parsed) return false;
        if (key === "from") {
          this.from = parsed;
          this.fromTag = parsed.tag;
        } else {
          this.to = parsed;
          this.toTag = parsed.tag;
        }
        this.headers.set(key, [value]);
        return true;
      }
      case "call-id":
        if (!/^\S+$/.test(value)) return false;
        this.callId = value;
        this.headers.set(key, [value]);
        return true;
      case "cseq": {
        const match = /^(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)$/.exec(value);
        if (!match) return false;
        this.cseq = Number(match[1]);
        this.onCseqMethod(match[2] ?? "");
        this.headers.set(key, [value]);
        return true;
      }
      case "content-length":
      case "max-forwards":
        if (!/^\d{1,10}$/.test(value)) return false;
        this.headers.set(key, [value]);
        return true;
      case "contact": {
        if (value === "*") break;
        const values = splitValues(value);
        const parsed = values.map(parseNameAddr);
        if (values.length === 0 || parsed.some((p) => p === undefined)) return false;
        this.contacts.push(...(parsed as NameAddr[]));
        this.append(key, values);
        return true;
      }
      case "route":
      case "record-route": {
        // Each value becomes a hop of a route set: it must be an address.
        const values = splitValues(value);
        if (values.length === 0 || values.some((v) => parseNameAddr(v) === undefined)) return false;
        this.append(key, values);
        return true;
      }
    }
    this.append(key, [value]);
    return true;
  }

  protected onCseqMethod(_method: string): void {
    // A response takes its method from CSeq.
  }

  private append(key: string, values: string[]): void {
    const list = this.headers.get(key);
    if (list) list.push(...values);
    else this.headers.set(key, values);
  }
}

export class SipRequest extends SipMessage {
  constructor(
    readonly method: string,
    readonly ruri: UriText,
  ) {
    super();
  }
}

export class SipResponse extends SipMessage {
  method = "";

  constructor(
    readonly statusCode: number,
    readonly reasonPhrase: string,
  ) {
    super();
  }

  protected override onCseqMethod(method: string): void {
    this.method = method;
  }
}

function canonical(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT.get(lower) ?? lower;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

const REQUEST_LINE = /^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP\/2\.0$/;
const STATUS_LINE = /^SIP\/2\.0 ([1-6]\d\d) ([^\r\n]*)$/;

/**
 * A request or a response from `text` (one message, as framing hands it out), or undefined when it
 * is not a SIP message this side can read.
 */
export function parseSipMessage(text: string): SipRequest | SipResponse | undefined {
  const firstEnd = text.indexOf("\r\n");
  if (firstEnd < 0) return undefined;
  const first = text.slice(0, firstEnd);
  if (CONTROL.test(first)) return undefined;
  let message: SipRequest | SipResponse;
  const status = STATUS_LINE.exec(first);
  if (status) {
    message = new SipResponse(Number(status[1]), status[2] ?? "");
  } else {
    const request = REQUEST_LINE.exec(first);
    if (!request?.[1] || !request[2] || !SCHEME_URI.test(request[2])) return undefined;
    message = new SipRequest(request[1], new UriText(request[2]));
  }
  const headEnd = text.indexOf("\r\n\r\n", firstEnd);
  const head = headEnd === firstEnd ? "" : text.slice(firstEnd + 2, headEnd < 0 ? text.length : headEnd);
  if (headEnd < 0) return undefined; // no blank line: the header section never ended
  // Unfold continuation lines (RFC 3261 §7.3.1): a line starting with whitespace continues the last.
  const lines = head === "" ? [] : head.split("\r\n");
  let name = "";
  let value = "";
  for (let i = 0; i <= lines.length; i++) {
    const line = lines[i];
    if (line !== undefined && (line.startsWith(" ") || line.startsWith("\t"))) {
      if (name === "" || CONTROL.test(line)) return undefined;
      value += ` ${line.trim()}`;
      continue;
    }
    if (name !== "" && !message.add(name, value.trim())) return undefined;
    if (line === undefined) break;
    // Control characters (a lone CR or LF, NUL...) never belong in a header (RFC 3261 §25.1), and
    // a value is copied into responses and logs: refuse the message rather than echo them.
    if (CONTROL.test(line)) return undefined;
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    name = line.slice(0, colon).replace(/[ \t]+$/, "");
    if (!TOKEN.test(name)) return undefined;
    value = line.slice(colon + 1);
  }
  const bodyStart = headEnd + 4;
  const length = message.getHeader("content-length");
  // RFC 3261 §18.3: bytes beyond Content-Length are not the body (framing counts them in bytes).
  message.body = length === undefined ? text.slice(bodyStart) : text.substr(bodyStart, Number(length));
  return message;
}
