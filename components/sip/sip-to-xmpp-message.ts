// What an incoming MESSAGE says (RFC 3428 §7): its text or its composing indication, whatever form
// it came in — `text/plain` in any charset the runtime can decode (UTF-8 by default, RFC 3428 §9),
// `message/cpim` wrapping either (RFC 3862), or `application/im-iscomposing+xml` (RFC 3994). Pure:
// the endpoint decides the status; this only reads the content.
import type { ChatState } from "../../src/ports/message-port.js";
import { parseCpim } from "./cpim.js";
import { chatStateFromIsComposing, parseIsComposing } from "./is-composing.js";

export const ACCEPTED_TYPES = "text/plain, message/cpim, application/im-iscomposing+xml";

export type MessageContent =
  | { kind: "text"; body: string }
  | { kind: "composing"; chatState: ChatState }
  | { kind: "refused"; status: 400 | 415; reason: string };

interface ContentType {
  mediaType: string;
  charset?: string;
}

/** `text/plain; charset="ISO-8859-1"` → media type and charset, lowercased. */
export function parseContentType(value: string): ContentType {
  const [mediaType = "", ...params] = value.split(";").map((p) => p.trim());
  const charset = params
    .map((p) => /^charset\s*=\s*"?([^";\s]+)"?$/i.exec(p)?.[1])
    .find((c) => c !== undefined);
  return { mediaType: mediaType.toLowerCase(), ...(charset ? { charset: charset.toLowerCase() } : {}) };
}

// 0x80–0x9F of windows-1252 (WHATWG Encoding §5: also what the labels iso-8859-1, latin1 and
// us-ascii mean). Node 20's TextDecoder decodes them as C1 controls, so they are mapped here.
const CP1252_HIGH =
  "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

/** Bytes in a named charset as text; null when the runtime knows no such charset or they are invalid. */
function decode(bytes: Buffer, charset: string): string | null {
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    return null;
  }
  try {
    if (decoder.encoding === "windows-1252") {
      return [...bytes]
        .map((b) => (b >= 0x80 && b <= 0x9f ? CP1252_HIGH[b - 0x80] : String.fromCharCode(b)))
        .join("");
    }
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

function textContent(bytes: Buffer, charset: string | undefined): MessageContent {
  const text = decode(bytes, charset ?? "utf-8");
  if (text === null) {
    return charset && decode(Buffer.alloc(0), charset) === null
      ? { kind: "refused", status: 415, reason: `Unsupported charset ${charset}` }
      : { kind: "refused", status: 400, reason: `Body is not valid ${charset ?? "UTF-8"}` };
  }
  return { kind: "text", body: text };
}

function composingContent(text: string): MessageContent {
  const indication = parseIsComposing(text);
  if (!indication) return { kind: "refused", status: 400, reason: "Bad isComposing document" };
  return { kind: "composing", chatState: chatStateFromIsComposing(indication.state) };
}

/** The content of a MESSAGE with this Content-Type and body bytes. */
export function readMessageContent(contentType: string | undefined, bytes: Buffer): MessageContent {
  // RFC 3428 §7: a MESSAGE without a body type is taken as text/plain.
  const type = parseContentType(contentType ?? "text/plain");
  switch (type.mediaType) {
    case "text/plain":
      return textContent(bytes, type.charset);
    case "application/im-iscomposing+xml":
      return composingContent(bytes.toString("utf8"));
    case "message/cpim": {
      // Read byte for byte (latin1 keeps every byte), so the content keeps its own charset.
      const cpim = parseCpim(bytes.toString("latin1"));
      if (!cpim) return { kind: "refused", status: 400, reason: "Bad message/cpim body" };
      const inner = parseContentType(cpim.contentType);
      const content = Buffer.from(cpim.text, "latin1");
      if (inner.mediaType === "text/plain") return textContent(content, cpim.charset);
      if (inner.mediaType === "application/im-iscomposing+xml")
        return composingContent(content.toString("utf8"));
      return {
        kind: "refused",
        status: 415,
        reason: `Unsupported content in message/cpim: ${inner.mediaType}`,
      };
    }
    default:
      return { kind: "refused", status: 415, reason: `Unsupported content type ${type.mediaType}` };
  }
}
