// Percent-encoding shared by the SIP, tel and xmpp URI parsers (RFC 3986 §2.1, RFC 3261 §19.1.2:
// "escaped = % HEXDIG HEXDIG"). Escapes carry UTF-8 octets (RFC 3987 §3.1, RFC 5122 §2.2).

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Decodes %XX escapes as UTF-8. `fail` receives what is wrong and must throw, so the caller can name
 * its own input in the error.
 */
export function percentDecode(text: string, fail: (what: string) => never): string {
  if (!text.includes("%")) return text;
  const bytes: number[] = [];
  let out = "";
  const flush = (): void => {
    if (bytes.length === 0) return;
    try {
      out += utf8.decode(new Uint8Array(bytes));
    } catch {
      fail("percent-escapes that are not valid UTF-8");
    }
    bytes.length = 0;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "%") {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) fail(`bad percent-escape '%${hex}'`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      flush();
      out += c;
    }
  }
  flush();
  return out;
}

/** Encodes every character `allowed` rejects as %XX of its UTF-8 octets (uppercase hex, RFC 3986 §2.1). */
export function percentEncode(text: string, allowed: (c: string) => boolean): string {
  let out = "";
  for (const c of text) {
    if (allowed(c)) {
      out += c;
    } else {
      for (const b of encoder.encode(c)) out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}
