// Text that will travel in XML: XML 1.0 §2.2 allows only TAB, LF, CR and U+0020 and above (minus
// the surrogates and U+FFFE/U+FFFF). A character outside that set makes the whole stream
// not-well-formed, and Prosody closes the component connection over it, so such characters are
// removed at the edge before any stanza is built.
const FORBIDDEN =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function xmlSafeText(text: string): string {
  return text.replace(FORBIDDEN, "");
}
