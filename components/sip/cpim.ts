// RFC 3862 `message/cpim`: some SIP clients (RCS stacks, linphone) wrap the text of a MESSAGE, or
// an isComposing indication, in CPIM. The body is three parts separated by blank lines (RFC 3862 §2):
// the CPIM message headers (From, To, DateTime, NS, Subject...), the MIME headers of the
// encapsulated content (Content-Type, Content-ID...), then the content itself. Pure: the caller
// decides whether the inner Content-Type is one it accepts.

export const CPIM_CONTENT_TYPE = "message/cpim";

export interface CpimMessage {
  /** The URI of the CPIM `From` header (RFC 3862 §4.1: `[Formal-name] "<" URI ">"`). */
  from?: string;
  /** The URI of the first CPIM `To` header (§4.2; To may repeat). */
  to?: string;
  /** The `DateTime` header as sent (§4.4, RFC 3339). */
  dateTime?: string;
  /** Media type of the encapsulated content, lowercased, without parameters: `text/plain`. */
  contentType: string;
  /** Its `charset` parameter, lowercased, when given. */
  charset?: string;
  /** The encapsulated content, exactly as it follows the blank line. */
  text: string;
}

interface Header {
  name: string;
  value: string;
}

// RFC 3862 §3.1 header names: printable US-ASCII but not ":" — with the §3.4 "Prefix." namespace.
const HEADER_LINE = /^([!-9;-~]+):(.*)$/;
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;
const IDENTITY_ENCODINGS = new Set(["7bit", "8bit", "binary"]);

/** Where the header block starting at `from` ends: its text and where what follows starts. */
function headerBlock(body: string, from: number): { head: string; next: number } | null {
  const rest = body.slice(from);
  const empty = /^\r?\n/.exec(rest);
  if (empty) return { head: "", next: from + empty[0].length };
  const blank = /\r?\n\r?\n/.exec(rest);
  if (!blank) return null; // truncated: no blank line ends the block
  return { head: rest.slice(0, blank.index), next: from + blank.index + blank[0].length };
}

/** Header lines of one block; null when a line is not a header. Folded lines are joined (RFC 5322 §2.2.3). */
function headers(head: string): Header[] | null {
  const result: Header[] = [];
  if (head === "") return result;
  for (const line of head.split(/\r?\n/)) {
    const last = result[result.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value += ` ${line.trim()}`;
      continue;
    }
    const match = HEADER_LINE.exec(line);
    if (!match) return null;
    result.push({ name: match[1] ?? "", value: match[2] ?? "" });
  }
  return result;
}

/** The value of a CPIM header without its parameters: `Subject:;lang=fr text` → `text` (§3.2, §3.3). */
function cpimValue(raw: string): string {
  if (!raw.startsWith(";")) return raw.trim();
  const space = raw.search(/[ \t]/);
  return space < 0 ? "" : raw.slice(space).trim();
}

/** The URI of a `[Formal-name] <URI>` value; the whole value when it has no angle brackets. */
function addressUri(value: string): string {
  return /<([^<>]*)>\s*$/.exec(value)?.[1]?.trim() ?? value;
}

function first(list: Header[], name: string): string | undefined {
  return list.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}

/**
 * Reads a `message/cpim` body (already decoded as UTF-8; CRLF line ends, LF tolerated). Null when
 * it is not one: a header block not ended by a blank line (truncated), a line that is not a header,
 * no Content-Type for the content (there is no safe default: text/plain would show an unknown
 * payload as chat text), or a Content-Transfer-Encoding other than 7bit/8bit/binary (the content
 * would be shown encoded). Only the first encapsulated content is read. Never throws.
 */
export function parseCpim(body: string): CpimMessage | null {
  let block = headerBlock(body, 0);
  if (!block) return null;
  let messageHeaders = headers(block.head);
  if (!messageHeaders) return null;
  // Some stacks put the outer `Content-Type: message/cpim` (the SIP header) in the body as well.
  if (
    messageHeaders.length === 1 &&
    messageHeaders[0]?.name.toLowerCase() === "content-type" &&
    messageHeaders[0].value.trim().toLowerCase().startsWith(CPIM_CONTENT_TYPE)
  ) {
    block = headerBlock(body, block.next);
    if (!block) return null;
    messageHeaders = headers(block.head);
    if (!messageHeaders) return null;
  }

  const mimeBlock = headerBlock(body, block.next);
  if (!mimeBlock) return null;
  const mimeHeaders = headers(mimeBlock.head);
  if (!mimeHeaders) return null;

  // MIME header names are case-insensitive (RFC 2045 §3); the parameters follow RFC 2045 §5.1.
  const contentTypeValue = first(mimeHeaders, "Content-Type");
  if (contentTypeValue === undefined) return null;
  const [mediaType = "", ...params] = contentTypeValue.split(";").map((p) => p.trim());
  const type = mediaType.toLowerCase();
  if (!MEDIA_TYPE.test(type)) return null;
  const encoding = first(mimeHeaders, "Content-Transfer-Encoding")?.trim().toLowerCase();
  if (encoding !== undefined && !IDENTITY_ENCODINGS.has(encoding)) return null;

  const result: CpimMessage = { contentType: type, text: body.slice(mimeBlock.next) };
  const charset = params
    .map((p) => /^charset\s*=\s*"?([^";\s]+)"?$/i.exec(p)?.[1])
    .find((c) => c !== undefined);
  if (charset) result.charset = charset.toLowerCase();

  // CPIM header names are matched case-insensitively too, to be lenient with senders.
  const from = first(messageHeaders, "From");
  if (from !== undefined && cpimValue(from)) result.from = addressUri(cpimValue(from));
  const to = first(messageHeaders, "To");
  if (to !== undefined && cpimValue(to)) result.to = addressUri(cpimValue(to));
  const dateTime = first(messageHeaders, "DateTime");
  if (dateTime !== undefined && cpimValue(dateTime)) result.dateTime = cpimValue(dateTime);
  return result;
}
