// A small deterministic mutation fuzzer for the SIP edge: a seeded PRNG (mulberry32), a seed corpus
// of valid SIP messages (ours and the recorded Asterisk traffic in ../shared/fixtures) and PIDF
// documents, mutators working on bytes, header lines and tokens, and a fixed list of hostile XML
// (entity bombs, external entities, deep nesting). Every case is a pure function of one 32-bit
// seed, so a failure that prints its seed can be replayed with `sipCase(corpus, seed)` alone.
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** mulberry32: a tiny 32-bit PRNG, good enough for fuzzing and identical on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }

  float(): number {
    return this.next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  token(length: number): string {
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    let out = "";
    for (let i = 0; i < length; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

/** The seed of case `index` in a run started from `base`: one number reproduces the case. */
export function caseSeed(base: number, index: number): number {
  return (Math.imul(index + 1, 0x9e3779b1) ^ base) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Seed corpus

const PIDF_NS =
  'xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"';

/** Valid PIDF documents (RFC 3863, RPID RFC 4480, data model RFC 4479) to mutate. */
export const PIDF_SEEDS: readonly string[] = [
  `<?xml version="1.0" encoding="UTF-8"?><presence ${PIDF_NS} entity="sip:alice@example.org"><tuple id="t1"><status><basic>open</basic></status><note>Lunch</note></tuple><dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities><dm:note>Back at 2</dm:note></dm:person></presence>`,
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<presence ${PIDF_NS} entity="sip:alice@example.org">\r\n <tuple id="a">\r\n  <status><basic>closed</basic></status>\r\n </tuple>\r\n</presence>`,
  `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:alice@example.org"><tuple id="x"><status><basic>open</basic></status><contact priority="0.8">sip:alice@127.0.0.1</contact><timestamp>2026-11-24T14:37:55Z</timestamp></tuple></presence>`,
  `<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:d="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:bob@example.org"><p:tuple id="b"><p:status><p:basic>open</p:basic></p:status></p:tuple><d:person id="pb"><r:activities><r:on-the-phone/><r:busy/></r:activities></d:person></p:presence>`,
  `<?xml version="1.0"?><presence ${PIDF_NS} entity="sip:alice@example.org"><tuple id="t"><status><basic>open</basic></status></tuple><dm:person id="p"><rpid:activities><rpid:meeting/></rpid:activities><dm:note xml:lang="en">In a &lt;meeting&gt; &amp; more &#9742;</dm:note></dm:person></presence>`,
];

const CRLF = "\r\n";
const join = (lines: string[], body = ""): string =>
  [...lines, `Content-Length: ${Buffer.byteLength(body)}`, "", body].join(CRLF);

/**
 * Valid SIP messages: MESSAGE, OPTIONS, PUBLISH (PIDF), SUBSCRIBE (presence and dialog), NOTIFY,
 * INVITE and a response. `contactPort` is where a SUBSCRIBE's NOTIFYs go (keep it on loopback).
 */
export function sipSeeds(contactPort = 5070): string[] {
  const via = (b: string): string => `Via: SIP/2.0/UDP 127.0.0.1:${contactPort};branch=z9hG4bK${b};rport`;
  const common = (method: string, uri: string, n: string, to = "<sip:alice@example.org>"): string[] => [
    `${method} ${uri} SIP/2.0`,
    via(`${n}a1`),
    "Max-Forwards: 70",
    `From: "Bob" <sip:bob@example.org>;tag=f${n}`,
    `To: ${to}`,
    `Call-ID: ${n}-seed@127.0.0.1`,
    `CSeq: 1 ${method}`,
  ];
  const pidf = PIDF_SEEDS[0] ?? "";
  return [
    join(
      [
        ...common("MESSAGE", "sip:alice@example.org", "m1"),
        "Content-Type: text/plain;charset=UTF-8",
        "User-Agent: fuzz/1",
      ],
      "Hello ✓ über",
    ),
    join([
      ...common("OPTIONS", "sip:example.org", "o1", "<sip:example.org>"),
      `Contact: <sip:bob@127.0.0.1:${contactPort}>`,
      "Accept: application/sdp",
    ]),
    join(
      [
        ...common("PUBLISH", "sip:alice@example.org", "p1"),
        "Event: presence",
        "Expires: 120",
        "Content-Type: application/pidf+xml",
      ],
      pidf,
    ),
    join([
      ...common("SUBSCRIBE", "sip:alice@example.org", "s1"),
      `Contact: <sip:bob@127.0.0.1:${contactPort}>`,
      "Event: presence",
      "Accept: application/pidf+xml",
      "Expires: 600",
    ]),
    join([
      ...common("SUBSCRIBE", "sip:alice@example.org", "s2"),
      `Contact: <sip:bob@127.0.0.1:${contactPort};transport=udp>`,
      "Event: dialog",
      "Accept: application/dialog-info+xml",
      "Expires: 3600",
      "Record-Route: <sip:127.0.0.1;lr>",
    ]),
    join(
      [
        ...common("NOTIFY", `sip:bridge@127.0.0.1:${contactPort}`, "n1", "<sip:bridge@127.0.0.1>;tag=t1"),
        "Event: presence",
        "Subscription-State: active;expires=599",
        "Content-Type: application/pidf+xml",
      ],
      pidf,
    ),
    join(
      [
        ...common("INVITE", "sip:alice@example.org", "i1"),
        `Contact: <sip:bob@127.0.0.1:${contactPort}>`,
        "Content-Type: application/sdp",
        "Supported: replaces, timer",
      ],
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
    ),
    join([
      "SIP/2.0 200 OK",
      via("r1a1").replace(";rport", ";rport=5070;received=127.0.0.1"),
      "From: <sip:alice@example.org>;tag=x1",
      "To: <sip:bob@127.0.0.1>;tag=y1",
      "Call-ID: r1-seed@127.0.0.1",
      "CSeq: 3 NOTIFY",
    ]),
  ];
}

/**
 * The SIP messages of recorded traffic (`=== … SEND/RECV …` blocks in ../shared/fixtures/*∕sip-*.log,
 * CRLF kept, each cut at its Content-Length); empty when the fixtures are not there.
 */
export function fixtureSipMessages(root = new URL("../../../shared/fixtures/", import.meta.url)): Buffer[] {
  if (!existsSync(root)) return [];
  const messages: Buffer[] = [];
  for (const dir of readdirSync(root, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    const folder = new URL(`${dir.name}/`, root);
    for (const name of readdirSync(folder).sort()) {
      if (!/^sip-.*\.log$/.test(name)) continue;
      const data = readFileSync(new URL(name, folder));
      let at = 0;
      while ((at = data.indexOf("\n=== ", at)) >= 0) {
        const start = data.indexOf("\n", at + 1) + 1;
        at = start;
        if (start <= 0) break;
        const headEnd = data.indexOf("\r\n\r\n", start);
        if (headEnd < 0) break;
        const head = data.subarray(start, headEnd).toString("latin1");
        if (!/^([A-Z]+ \S+ SIP\/2\.0|SIP\/2\.0 \d{3} )/.test(head)) continue;
        const length = Number(/^(?:content-length|l)[ \t]*:[ \t]*(\d+)/im.exec(head)?.[1] ?? 0);
        messages.push(Buffer.from(data.subarray(start, headEnd + 4 + length)));
      }
    }
  }
  return messages;
}

/** PIDF bodies of the recorded traffic (NOTIFYs with application/pidf+xml). */
export function fixturePidfBodies(messages: readonly Buffer[]): string[] {
  return messages
    .map((m) => m.toString("utf8"))
    .filter((m) => /^(?:content-type|c)[ \t]*:[ \t]*application\/pidf\+xml/im.test(m))
    .map((m) => m.slice(m.indexOf("\r\n\r\n") + 4))
    .filter((body) => body.length > 0);
}

// ---------------------------------------------------------------------------------------------
// Byte-level mutations (shared by SIP and PIDF)

const INTERESTING_BYTES = [
  0x00, 0xff, 0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3b, 0x3c, 0x3e, 0x22, 0x25, 0x26, 0x7f, 0x80,
];
const INVALID_UTF8 = [
  [0xc3], // lead byte without continuation
  [0x80], // lone continuation
  [0xc0, 0xaf], // overlong '/'
  [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xfe, 0xff],
  [0xe2, 0x82], // truncated 3-byte sequence
];

function splice(buf: Buffer, at: number, remove: number, insert: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), insert, buf.subarray(at + remove)]);
}

export const BYTE_MUTATORS: Record<string, (buf: Buffer, rng: Rng) => Buffer> = {
  bitFlip(buf, rng) {
    const out = Buffer.from(buf);
    for (let n = rng.between(1, 8); n > 0 && out.length > 0; n--) {
      const i = rng.int(out.length);
      out[i] = (out[i] ?? 0) ^ (1 << rng.int(8));
    }
    return out;
  },
  insertBytes(buf, rng) {
    return splice(buf, rng.int(buf.length + 1), 0, rng.bytes(rng.between(1, 16)));
  },
  deleteBytes(buf, rng) {
    return splice(buf, rng.int(buf.length + 1), rng.between(1, 32), Buffer.alloc(0));
  },
  interestingByte(buf, rng) {
    const out = Buffer.from(buf);
    if (out.length > 0) out[rng.int(out.length)] = rng.pick(INTERESTING_BYTES);
    return out;
  },
  truncate(buf, rng) {
    return buf.subarray(0, rng.int(buf.length + 1));
  },
  duplicateRange(buf, rng) {
    const from = rng.int(buf.length + 1);
    const chunk = buf.subarray(from, from + rng.between(1, 256));
    return splice(buf, rng.int(buf.length + 1), 0, Buffer.concat(Array(rng.between(1, 4)).fill(chunk)));
  },
  nulBytes(buf, rng) {
    let out = buf;
    for (let n = rng.between(1, 4); n > 0; n--) out = splice(out, rng.int(out.length + 1), 0, Buffer.of(0));
    return out;
  },
  invalidUtf8(buf, rng) {
    return splice(buf, rng.int(buf.length + 1), rng.int(2), Buffer.from(rng.pick(INVALID_UTF8)));
  },
};

// ---------------------------------------------------------------------------------------------
// SIP mutations: on the header lines (as latin1, so that every byte survives) and the body

interface SipParts {
  lines: string[];
  body: Buffer;
  /** Set by mutations that make Content-Length wrong on purpose: not repaired afterwards. */
  keepLength: boolean;
}

function splitSip(buf: Buffer): SipParts {
  const end = buf.indexOf("\r\n\r\n");
  const head = (end < 0 ? buf : buf.subarray(0, end)).toString("latin1");
  return {
    lines: head.split(CRLF),
    body: end < 0 ? Buffer.alloc(0) : buf.subarray(end + 4),
    keepLength: false,
  };
}

function joinSip(parts: SipParts): Buffer {
  return Buffer.concat([Buffer.from(parts.lines.join(CRLF) + CRLF + CRLF, "latin1"), parts.body]);
}

const COMPACT: Record<string, string> = {
  via: "v",
  from: "f",
  to: "t",
  "call-id": "i",
  "content-length": "l",
  "content-type": "c",
  contact: "m",
  event: "o",
  subject: "s",
  supported: "k",
  "allow-events": "u",
};

const headerIndexes = (lines: readonly string[], name?: RegExp): number[] =>
  lines.flatMap((line, i) => (i > 0 && (name ? name.test(line) : line.includes(":")) ? [i] : []));

const METHODS = [
  "INVITE",
  "ACK",
  "BYE",
  "CANCEL",
  "REGISTER",
  "OPTIONS",
  "MESSAGE",
  "PUBLISH",
  "SUBSCRIBE",
  "NOTIFY",
  "PRACK",
  "INFO",
  "REFER",
  "UPDATE",
  "options",
  "Message",
  "",
  "X".repeat(300),
  "INVITE\u0000",
  "MES SAGE",
  "%41CK",
  "-",
];

const ODD_URIS = [
  "tel:+4930123456",
  "tel:;phone-context=x",
  "sips:alice@example.org",
  "sip:",
  "sip:@",
  "sip:alice@",
  "sip:@example.org",
  "sip:alice@example.org:99999",
  "sip:alice@example.org:-1",
  "sip:alice@[::1",
  "sip:alice@[::1]:5060",
  "sip:alice:secret@example.org",
  "sip:a@b@c",
  "sip:%00@example.org",
  "sip:%zz@example.org",
  "sip:alice@example.org;transport=tls;lr;;",
  "sip:alice@example.org?subject=hi&",
  "sip:alice@exa mple.org",
  "mailto:alice@example.org",
  "xmpp:alice@example.org",
  "http://127.0.0.1/",
  "urn:uuid:0",
  "im:alice@example.org",
  "pres:alice@example.org",
  "data:,x",
  "*",
  "<sip:alice@example.org>",
  `sip:${"a".repeat(4000)}@example.org`,
  "sip:127.0.0.1:0",
  "SIP:ALICE@EXAMPLE.ORG",
];

const BAD_LENGTHS = [
  "-1",
  "-0",
  "99999999999",
  "4294967296",
  "1e3",
  "0x10",
  "abc",
  "",
  "1 2",
  " 12 ",
  "+5",
  "१२",
  "NaN",
  "Infinity",
  "00000000000000000007",
  "999999999",
  "65536",
];

const ODD_CSEQS = [
  "-1 INVITE",
  "0 MESSAGE",
  "4294967296 OPTIONS",
  "99999999999999999999999 MESSAGE",
  "1",
  "abc OPTIONS",
  "1 ",
  " 1 MESSAGE",
  "1 MESSAGE MESSAGE",
  "1\tMESSAGE",
  "2147483648 PUBLISH",
  "1.5 SUBSCRIBE",
  "",
  "1 message",
  "1 NOTIFY",
];

const PARAM_NOISE = [
  ";",
  ";;;",
  ";tag",
  ";tag=",
  ";branch=",
  ";rport=abc",
  ";received=",
  ";lr;lr;lr",
  ';x="open',
  ";=",
  ";expires=-1",
  ";q=9.9",
];

const SIP_LINE_MUTATORS: Record<string, (parts: SipParts, rng: Rng, corpus: readonly Buffer[]) => void> = {
  duplicateHeader({ lines }, rng) {
    const at = headerIndexes(lines);
    if (at.length === 0) return;
    const i = rng.pick(at);
    lines.splice(
      i,
      0,
      ...Array<string>(rng.chance(0.1) ? rng.between(10, 300) : rng.between(1, 3)).fill(lines[i] ?? ""),
    );
  },
  removeHeader({ lines }, rng) {
    if (lines.length > 1) lines.splice(rng.between(rng.chance(0.1) ? 0 : 1, lines.length - 1), 1);
  },
  swapLines({ lines }, rng) {
    const a = rng.int(lines.length);
    const b = rng.int(lines.length);
    [lines[a], lines[b]] = [lines[b] ?? "", lines[a] ?? ""];
  },
  hugeHeader({ lines }, rng) {
    const size = rng.pick([1024, 4096, 15_000, 20_000]);
    const value = rng.chance(0.5) ? "A".repeat(size) : rng.token(64).repeat(Math.ceil(size / 64));
    const at = headerIndexes(lines);
    if (at.length > 0 && rng.chance(0.6)) {
      const i = rng.pick(at);
      const line = lines[i] ?? "";
      lines[i] = `${line.slice(0, line.indexOf(":") + 1)} ${value}`;
    } else lines.splice(rng.between(1, lines.length), 0, `X-Fuzz: ${value}`);
  },
  badContentLength(parts, rng) {
    const value = rng.chance(0.3)
      ? String(parts.body.length + rng.pick([-100, -2, -1, 1, 2, 100, 1000]))
      : rng.pick(BAD_LENGTHS);
    const name = rng.pick(["Content-Length", "l", "content-length", "CONTENT-LENGTH "]);
    const at = headerIndexes(parts.lines, /^(content-length|l)\s*:/i);
    if (at.length > 0 && rng.chance(0.7)) parts.lines[rng.pick(at)] = `${name}: ${value}`;
    else parts.lines.splice(rng.between(1, parts.lines.length), 0, `${name}: ${value}`);
    parts.keepLength = true;
  },
  compactHeaders({ lines }, rng) {
    const all = rng.chance(0.5);
    for (const i of headerIndexes(lines)) {
      const line = lines[i] ?? "";
      const colon = line.indexOf(":");
      const short = COMPACT[line.slice(0, colon).trim().toLowerCase()];
      if (short && (all || rng.chance(0.3)))
        lines[i] = `${short}${rng.pick([":", " :", ":  ", "\t:"])}${line.slice(colon + 1)}`;
    }
  },
  foldHeader({ lines }, rng) {
    const at = headerIndexes(lines);
    if (at.length === 0) return;
    const i = rng.pick(at);
    const line = lines[i] ?? "";
    const cut = rng.between(line.indexOf(":") + 1, line.length);
    const fold = rng.pick(["\r\n ", "\r\n\t", "\r\n  \t ", "\r\n \r\n ", "\n "]);
    lines[i] = line.slice(0, cut) + fold + line.slice(cut);
  },
  repeatedVia({ lines }, rng) {
    const count = rng.pick([2, 5, 70, 200, 500]);
    const vias = Array.from(
      { length: count },
      (_, n) =>
        `Via: SIP/2.0/${rng.pick(["UDP", "TCP", "TLS", "WS", "X"])} 127.0.0.${n % 250}:${5060 + n};branch=z9hG4bK${rng.token(6)}`,
    );
    if (rng.chance(0.5)) lines.splice(1, 0, ...vias);
    else lines.splice(1, 0, `Via: ${vias.map((v) => v.slice(5)).join(", ")}`);
  },
  absurdCseq({ lines }, rng) {
    const at = headerIndexes(lines, /^cseq\s*:/i);
    const line = `CSeq: ${rng.pick(ODD_CSEQS)}`;
    if (at.length > 0) lines[rng.pick(at)] = line;
    else lines.push(line);
  },
  randomMethod({ lines }, rng) {
    const method = rng.chance(0.2) ? rng.token(rng.between(1, 12)).toUpperCase() : rng.pick(METHODS);
    const start = lines[0] ?? "";
    lines[0] = /^SIP\/2\.0 /.test(start)
      ? `${method} sip:alice@example.org SIP/2.0`
      : start.replace(/^\S*/, method);
    if (rng.chance(0.5)) {
      for (const i of headerIndexes(lines, /^cseq\s*:/i))
        lines[i] = (lines[i] ?? "").replace(/\S+\s*$/, method);
    }
  },
  oddUri({ lines }, rng) {
    const uri = rng.pick(ODD_URIS);
    const where = rng.int(3);
    if (where === 0) lines[0] = (lines[0] ?? "").replace(/^(\S+ )\S+/, `$1${uri}`);
    else {
      const at = headerIndexes(lines, where === 1 ? /^(from|to|f|t)\s*:/i : /^(contact|m|record-route)\s*:/i);
      if (at.length === 0) return;
      const i = rng.pick(at);
      lines[i] = (lines[i] ?? "").replace(/<[^>]*>/, `<${uri}>`);
    }
  },
  startLine({ lines }, rng) {
    lines[0] = rng.pick([
      (lines[0] ?? "").replace(
        "SIP/2.0",
        rng.pick(["SIP/3.0", "SIP/2.", "sip/2.0", "SIP/2.0 ", "HTTP/1.1", ""]),
      ),
      `SIP/2.0 ${rng.pick(["99999", "-1", "000", "1000", "2OO", "200", "183", "487", "699", "701"])} ${rng.pick(["OK", "", "Ring\u0000ing", "X".repeat(2000)])}`,
      (lines[0] ?? "").replace(/ /g, () => rng.pick(["  ", "\t", " "])),
      "",
      " ",
    ]);
  },
  headerSyntax({ lines }, rng) {
    const at = headerIndexes(lines);
    if (at.length === 0) return;
    const i = rng.pick(at);
    const line = lines[i] ?? "";
    lines[i] = rng.pick([
      line.replace(":", ""),
      line.replace(":", "::"),
      ` ${line}`,
      line.replace(/^([^:]*):/, "$1 \t :"),
      `${line.slice(0, line.indexOf(":") + 1)}`,
      `:${line}`,
      line.toUpperCase(),
      line + rng.pick(PARAM_NOISE),
      line.replace(/;/g, () => rng.pick(PARAM_NOISE)),
      line.replace(/"/g, ""),
      line.replace(/[<>]/g, ""),
    ]);
  },
  lineEndings(parts, rng) {
    const style = rng.pick(["\n", "\r", "\n\r", "\r\r\n"]);
    const joined = parts.lines.join(CRLF);
    const replaced = rng.chance(0.5) ? joined.split(CRLF).join(style) : joined.replace(CRLF, style);
    parts.lines = replaced.split(CRLF);
  },
  body(parts, rng) {
    const choice = rng.int(5);
    if (choice === 0) parts.body = Buffer.from(mutatePidf(rng.pick(PIDF_SEEDS), rng));
    else if (choice === 1) parts.body = Buffer.from(hostilePidf(rng.int(1 << 30)).xml);
    else if (choice === 2) parts.body = rng.bytes(rng.between(0, 2000));
    else if (choice === 3) parts.body = Buffer.alloc(rng.pick([1025, 4096, 20_000]), "x");
    else parts.body = Buffer.alloc(0);
    if (rng.chance(0.5)) {
      const at = headerIndexes(parts.lines, /^(content-type|c)\s*:/i);
      const type = `Content-Type: ${rng.pick(["application/pidf+xml", "text/plain", "text/plain;charset=latin1", "application/cpim-pidf+xml", "", 'text/plain;charset="utf-8"'])}`;
      if (at.length > 0) parts.lines[rng.pick(at)] = type;
      else parts.lines.push(type);
    }
  },
  spliceSeed(parts, rng, corpus) {
    // Headers of another message (e.g. a response's Via into a SUBSCRIBE).
    if (corpus.length === 0) return;
    const other = splitSip(rng.pick(corpus)).lines;
    const from = rng.int(other.length);
    parts.lines.splice(rng.between(1, parts.lines.length), 0, ...other.slice(from, from + rng.between(1, 4)));
  },
};

/** Sets every Content-Length to the body's byte count (adding one if there is none). */
function repairLength(parts: SipParts): void {
  const at = headerIndexes(parts.lines, /^(content-length|l)[ \t]*:/i);
  for (const i of at) parts.lines[i] = `Content-Length: ${parts.body.length}`;
  if (at.length === 0) parts.lines.push(`Content-Length: ${parts.body.length}`);
}

export interface SipMutation {
  bytes: Buffer;
  /** The mutators applied, in order (for failure messages). */
  applied: string[];
}

/**
 * 1–4 mutations of `seed`; afterwards Content-Length is usually repaired (so that most cases get
 * past framing into the grammar and the handlers), unless a mutation broke it on purpose.
 */
export function mutateSip(
  seed: Buffer,
  rng: Rng,
  corpus: readonly Buffer[] = [],
  maxBytes = 60_000,
): SipMutation {
  const applied: string[] = [];
  let bytes = seed;
  const byteNames = Object.keys(BYTE_MUTATORS);
  const lineNames = Object.keys(SIP_LINE_MUTATORS);
  for (let n = rng.between(1, 4); n > 0; n--) {
    if (rng.chance(0.3)) {
      const name = rng.pick(byteNames);
      applied.push(name);
      bytes = BYTE_MUTATORS[name]?.(bytes, rng) ?? bytes;
    } else {
      const name = rng.pick(lineNames);
      applied.push(name);
      const parts = splitSip(bytes);
      SIP_LINE_MUTATORS[name]?.(parts, rng, corpus);
      if (!parts.keepLength && rng.chance(0.8)) repairLength(parts);
      bytes = joinSip(parts);
    }
  }
  if (bytes.length > maxBytes) {
    applied.push(`cut to ${maxBytes}`);
    bytes = bytes.subarray(0, maxBytes);
  }
  return { bytes, applied };
}

/** New branch, Call-ID and From tag, so a live endpoint sees a new transaction, not a retransmission. */
export function freshIds(seed: Buffer, rng: Rng): Buffer {
  const id = rng.token(12);
  const text = seed
    .toString("latin1")
    .replace(/branch=z9hG4bK[^;,\s]*/g, () => `branch=z9hG4bK${rng.token(10)}`)
    .replace(/^((?:call-id|i)[ \t]*:[ \t]*)[^\r\n]*/gim, `$1${id}@127.0.0.1`)
    .replace(/^((?:from|f)[ \t]*:[^\r\n]*;tag=)[^;\r\n]*/gim, `$1${id}`);
  return Buffer.from(text, "latin1");
}

/**
 * Keeps a live endpoint's NOTIFYs on this machine: any IPv4 literal outside 127/8 (a bit flip can
 * make 127.0.0.1 into 107.0.0.1) becomes 127.0.0.1, and so does a host name in the headers a
 * NOTIFY is routed by (Contact, Route, Record-Route: `sip:alice@example.org` there would mean a
 * DNS lookup and a datagram to the real example.org). Ports stay fuzzed; other bytes stay exact.
 */
export function confineToLoopback(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1");
  const confined = text
    .replace(/(?<![\d.])(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.])/g, (ip, first: string) =>
      first === "127" ? ip : "127.0.0.1",
    )
    .replace(/^[ \t]*(?:contact|m|route|record-route)[ \t]*:[^\r\n]*/gim, (line) =>
      // An IPv6 literal is left alone: the endpoint sends from an IPv4 socket, which refuses it.
      line.replace(
        /(sips?:(?:[^@;>\s,]*@)?)(\[[^\]\s>]*\]?|[^;>:\s,?]+)/gi,
        (uri, prefix: string, host: string) =>
          /^(127\.\d+\.\d+\.\d+$|\[)/.test(host) ? uri : `${prefix}127.0.0.1`,
      ),
    );
  return confined === text ? bytes : Buffer.from(confined, "latin1");
}

/** Case `seed`: a corpus message, fresh ids and its mutations; the same seed gives the same bytes. */
export function sipCase(
  corpus: readonly Buffer[],
  seed: number,
  maxBytes = 60_000,
): SipMutation & { seed: number } {
  const rng = new Rng(seed);
  const base = freshIds(rng.pick(corpus), rng);
  // One case in twenty stays valid: the valid paths must hold up among the broken ones.
  if (rng.chance(0.05)) return { seed, bytes: base, applied: ["none"] };
  return { seed, ...mutateSip(base, rng, corpus, maxBytes) };
}

/** Splits `bytes` into 1–20 chunks at random places (a stream transport's view of it). */
export function chunk(bytes: Buffer, rng: Rng): Buffer[] {
  const cuts = Array.from({ length: rng.int(20) }, () => rng.int(bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > from) chunks.push(bytes.subarray(from, cut));
    from = Math.max(from, cut);
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// PIDF mutations and hostile XML

const XML_FRAGMENTS = [
  "&amp;",
  "&lt;",
  "&#0;",
  "&#xD800;",
  "&#1114112;",
  "&#x110000;",
  "&undefined;",
  "&",
  "<",
  "]]>",
  "<![CDATA[<b>&xxe;</b>]]>",
  "<?pi data?>",
  '<?xml-stylesheet href="file:///etc/passwd"?>',
  "<!-- comment -- -->",
  "<!---->",
  "<!DOCTYPE presence>",
  "<!ENTITY x 'y'>",
  "</presence>",
  "<presence>",
  "<rpid:activities><rpid:busy/><rpid:away/><rpid:x-unknown/></rpid:activities>",
  '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>',
  'xmlns="urn:ietf:params:xml:ns:pidf:x"',
  'xmlns:rpid=""',
  "\u0000",
  "\uFEFF",
  "\uFFFE",
  "\uD800",
  "<note>",
  "</note>",
  "<a:b:c/>",
];

const XML_MUTATORS: Record<string, (xml: string, rng: Rng) => string> = {
  insertFragment(xml, rng) {
    const at = rng.int(xml.length + 1);
    return xml.slice(0, at) + rng.pick(XML_FRAGMENTS) + xml.slice(at);
  },
  deleteTag(xml, rng) {
    const tags = [...xml.matchAll(/<[^<>]*>/g)];
    if (tags.length === 0) return xml;
    const tag = rng.pick(tags);
    return xml.slice(0, tag.index) + xml.slice(tag.index + tag[0].length);
  },
  duplicateElement(xml, rng) {
    const elements = [...xml.matchAll(/<(\w[\w:-]*)[^>]*>[^<]*<\/\1>/g)];
    if (elements.length === 0) return xml;
    const e = rng.pick(elements);
    const copies = e[0].repeat(rng.chance(0.1) ? 2_500 : rng.between(2, 5));
    return xml.slice(0, e.index) + copies + xml.slice(e.index + e[0].length);
  },
  namespace(xml, rng) {
    return xml.replace(/urn:ietf:params:xml:ns:pidf(:[a-z-]+)?/, () =>
      rng.pick([
        "urn:ietf:params:xml:ns:PIDF",
        "urn:ietf:params:xml:ns:pidf:rpid",
        "",
        "urn:ietf:params:xml:ns:cpim-pidf",
        "urn:ietf:params:xml:ns:pidf:data-model",
      ]),
    );
  },
  prefixes(xml, rng) {
    return xml.replace(/\b(rpid|dm|p|r|d):/g, () => rng.pick(["rpid:", "dm:", "x:", "", "xmlns:"]));
  },
  nest(xml, rng) {
    const depth = rng.pick([17, 100, 2_000]);
    const at = xml.indexOf("<tuple");
    const inner = "<tuple>".repeat(depth) + (rng.chance(0.5) ? "</tuple>".repeat(depth) : "");
    return at < 0 ? inner + xml : xml.slice(0, at) + inner + xml.slice(at);
  },
  hugeAttribute(xml, rng) {
    return xml.replace(/entity="/, `entity="${"A".repeat(rng.pick([1_000, 30_000, 70_000]))}`);
  },
  unclose(xml, rng) {
    const closes = [...xml.matchAll(/<\/[^>]+>/g)];
    if (closes.length === 0) return xml.slice(0, rng.int(xml.length));
    const c = rng.pick(closes);
    return xml.slice(0, c.index) + xml.slice(c.index + c[0].length);
  },
  note(xml, rng) {
    return xml.replace(/<(dm:)?note[^>]*>[^<]*/, (open) =>
      open.replace(
        />[^<]*$/,
        `>${rng.pick(["&#x1F600; ✓", "\u0007", "x".repeat(50_000), "a]]>b", "&#38;#38;", "<![CDATA[]]>"])}`,
      ),
    );
  },
  bytes(xml, rng) {
    const name = rng.pick(Object.keys(BYTE_MUTATORS));
    return (BYTE_MUTATORS[name]?.(Buffer.from(xml), rng) ?? Buffer.from(xml)).toString("utf8");
  },
};

/** 1–3 XML-aware or byte mutations of a PIDF document. */
export function mutatePidf(xml: string, rng: Rng): string {
  const names = Object.keys(XML_MUTATORS);
  let out = xml;
  for (let n = rng.between(1, 3); n > 0; n--) out = XML_MUTATORS[rng.pick(names)]?.(out, rng) ?? out;
  return out;
}

export interface HostileXml {
  name: string;
  xml: string;
  /** Text that appears in a parse result only if an entity was expanded or a file was read. */
  expansion: RegExp;
}

const pidfOpen = `<presence ${PIDF_NS} entity="sip:alice@example.org">`;
const tupleWith = (note: string): string =>
  `${pidfOpen}<tuple id="t"><status><basic>open</basic></status><note>${note}</note></tuple></presence>`;
const EXPANDED = /root:|lollol|EXPANDED|aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/;

function lolEntities(levels: number): string {
  const defs = ['<!ENTITY lol "lol">'];
  for (let i = 1; i <= levels; i++)
    defs.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? "" : i - 1};`.repeat(10)}">`);
  return defs.join("");
}

/** XML built to attack a parser: entity bombs, external entities, depth and size. */
export const HOSTILE_PIDF: readonly HostileXml[] = [
  {
    name: "billion laughs",
    xml: `<?xml version="1.0"?><!DOCTYPE lolz [${lolEntities(9)}]>${tupleWith("&lol9;")}`,
    expansion: EXPANDED,
  },
  {
    name: "billion laughs in an attribute",
    xml: `<?xml version="1.0"?><!DOCTYPE lolz [${lolEntities(9)}]><presence ${PIDF_NS} entity="&lol9;"/>`,
    expansion: EXPANDED,
  },
  {
    name: "quadratic blowup",
    xml: `<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "${"a".repeat(20_000)}">]>${tupleWith("&a;".repeat(10_000))}`,
    expansion: EXPANDED,
  },
  {
    name: "quadratic blowup over the size limit",
    xml: `<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "${"a".repeat(50_000)}">]>${tupleWith("&a;".repeat(50_000))}`,
    expansion: EXPANDED,
  },
  {
    name: "external entity (file)",
    xml: `<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${tupleWith("&xxe;")}`,
    expansion: EXPANDED,
  },
  {
    name: "external entity (public id, http)",
    xml: `<?xml version="1.0"?><!DOCTYPE p PUBLIC "-//X//Y" "http://127.0.0.1:1/x.dtd" [<!ENTITY xxe SYSTEM "http://127.0.0.1:1/">]>${tupleWith("&xxe;")}`,
    expansion: EXPANDED,
  },
  {
    name: "external DTD only",
    xml: `<?xml version="1.0" standalone="no"?><!DOCTYPE presence SYSTEM "file:///etc/passwd">${tupleWith("x")}`,
    expansion: EXPANDED,
  },
  {
    name: "parameter entities",
    xml: `<?xml version="1.0"?><!DOCTYPE p [<!ENTITY % pe "<!ENTITY exp 'EXPANDED'>"> %pe; <!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext;]>${tupleWith("&exp;")}`,
    expansion: EXPANDED,
  },
  {
    name: "lowercase doctype",
    xml: `<!doctype p [<!ENTITY e "EXPANDED">]>${tupleWith("&e;")}`,
    expansion: EXPANDED,
  },
  {
    name: "entity reference without a DTD",
    xml: tupleWith("&xxe;&lol9;"),
    expansion: EXPANDED,
  },
  {
    name: "XInclude",
    xml: tupleWith(
      '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>',
    ),
    expansion: EXPANDED,
  },
  {
    name: "100k nested elements",
    xml: `${pidfOpen}${"<tuple>".repeat(100_000)}${"</tuple>".repeat(100_000)}</presence>`,
    expansion: EXPANDED,
  },
  {
    name: "nested elements under the size limit",
    xml: `${pidfOpen}${"<a>".repeat(20_000)}`,
    expansion: EXPANDED,
  },
  {
    name: "many siblings",
    xml: `${pidfOpen}${"<tuple/>".repeat(7_000)}</presence>`,
    expansion: EXPANDED,
  },
  {
    name: "huge attribute",
    xml: `<presence ${PIDF_NS} entity="${"A".repeat(60_000)}"/>`,
    expansion: EXPANDED,
  },
  {
    name: "1 MB attribute",
    xml: `<presence ${PIDF_NS} entity="${"A".repeat(1_000_000)}"/>`,
    expansion: EXPANDED,
  },
  {
    name: "unclosed tags",
    xml: `${pidfOpen}<tuple id="t"><status><basic>open`,
    expansion: EXPANDED,
  },
  {
    name: "unclosed attribute",
    xml: `<presence ${PIDF_NS} entity="sip:alice@example.org><tuple>`,
    expansion: EXPANDED,
  },
  {
    name: "wrong namespace",
    xml: `<presence xmlns="urn:ietf:params:xml:ns:cpim-pidf" entity="x"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`,
    expansion: EXPANDED,
  },
  {
    name: "no namespace",
    xml: `<presence entity="x"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`,
    expansion: EXPANDED,
  },
  {
    name: "unbound prefix",
    xml: `<p:presence entity="x"><p:tuple/></p:presence>`,
    expansion: EXPANDED,
  },
  {
    name: "CDATA note with an entity reference",
    xml: tupleWith("<![CDATA[&xxe; <b>bold</b>]]>"),
    expansion: EXPANDED,
  },
  {
    name: "processing instructions",
    xml: `<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="file:///etc/passwd"?>${pidfOpen}<?php system('id'); ?></presence>`,
    expansion: EXPANDED,
  },
  {
    name: "UTF-16 BOM and declaration",
    xml: `\uFEFF<?xml version="1.0" encoding="UTF-16"?>${tupleWith("x")}`,
    expansion: EXPANDED,
  },
  {
    name: "UTF-16LE bytes read as UTF-8",
    xml: Buffer.concat([Buffer.of(0xff, 0xfe), Buffer.from(tupleWith("x"), "utf16le")]).toString("utf8"),
    expansion: EXPANDED,
  },
  {
    name: "two roots",
    xml: `${tupleWith("a")}${tupleWith("b")}`,
    expansion: EXPANDED,
  },
  {
    name: "empty",
    xml: "",
    expansion: EXPANDED,
  },
  {
    name: "XML declaration twice",
    xml: `<?xml version="1.0"?><?xml version="1.0"?>${tupleWith("x")}`,
    expansion: EXPANDED,
  },
];

/** Hostile document number `seed` (mod the list), sometimes mutated further. */
export function hostilePidf(seed: number): HostileXml {
  const rng = new Rng(seed);
  const base = HOSTILE_PIDF[seed % HOSTILE_PIDF.length] ?? { name: "", xml: "", expansion: EXPANDED };
  return rng.chance(0.3) ? { ...base, name: `${base.name} (mutated)`, xml: mutatePidf(base.xml, rng) } : base;
}

/** Case `seed` of the PIDF fuzz: a mutated seed document, or a (mutated) hostile one. */
export function pidfCase(
  seeds: readonly string[],
  seed: number,
): { seed: number; name: string; xml: string; expansion: RegExp } {
  const rng = new Rng(seed);
  if (rng.chance(0.2)) return { seed, ...hostilePidf(rng.int(1 << 30)) };
  if (rng.chance(0.05)) return { seed, name: "valid", xml: rng.pick(seeds), expansion: EXPANDED };
  return { seed, name: "mutated", xml: mutatePidf(rng.pick(seeds), rng), expansion: EXPANDED };
}
