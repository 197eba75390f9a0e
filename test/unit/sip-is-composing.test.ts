// RFC 3994 isComposing: parsing (strict XML, no entities), building (compared structurally, by
// parsing the XML back), and the mapping to XEP-0085 chat states.
import assert from "node:assert/strict";
import { SaxesParser } from "saxes";
import {
  buildIsComposing,
  chatStateFromIsComposing,
  COMPOSING_REFRESH_SECONDS,
  isComposingFromChatState,
  NS_IS_COMPOSING,
  parseIsComposing,
  type IsComposing,
  type IsComposingIndication,
  type IsComposingState,
} from "../../components/sip/is-composing.js";
import { CHAT_STATES, type ChatState } from "../../src/ports/message-port.js";

interface XmlNode {
  ns: string;
  name: string;
  attrs: Record<string, string>;
  children: (XmlNode | string)[];
}

/** A document as a tree of namespaced elements (namespace declarations and blank text left out). */
function tree(xml: string): { decl: { version?: string; encoding?: string }; root: XmlNode } {
  const parser = new SaxesParser({ xmlns: true });
  const stack: XmlNode[] = [];
  let root: XmlNode | undefined;
  let decl: { version?: string; encoding?: string } = {};
  parser.on("xmldecl", (d) => {
    decl = { version: d.version, encoding: d.encoding };
  });
  parser.on("opentag", (tag) => {
    const attrs: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes))
      if (attr.prefix !== "xmlns" && attr.name !== "xmlns") attrs[`{${attr.uri}}${attr.local}`] = attr.value;
    const node: XmlNode = { ns: tag.uri, name: tag.local, attrs, children: [] };
    stack[stack.length - 1]?.children.push(node);
    root ??= node;
    stack.push(node);
  });
  parser.on("text", (t) => {
    if (t.trim()) stack[stack.length - 1]?.children.push(t.trim());
  });
  parser.on("closetag", () => stack.pop());
  parser.write(xml).close();
  assert.ok(root, "a root element");
  return { decl, root };
}

const el = (name: string, ...children: (XmlNode | string)[]): XmlNode => ({
  ns: NS_IS_COMPOSING,
  name,
  attrs: {},
  children,
});

// RFC 3994 §6's example. The RFC text could not be fetched here (no network; the search corpora
// hold only its first page), so this is reconstructed from the copies quoted in SIP stacks (RCS
// IsComposingParser, linphone): idle, a lastactive, contenttype audio, with the schema location
// wrapped across two lines as the RFC prints it.
const RFC3994_EXAMPLE = [
  `<?xml version="1.0" encoding="UTF-8"?>`,
  `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"`,
  `  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`,
  `  xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing`,
  `  iscomposing.xsd">`,
  `  <state>idle</state>`,
  `  <lastactive>2003-01-27T10:43:00Z</lastactive>`,
  `  <contenttype>audio</contenttype>`,
  `</isComposing>`,
].join("\r\n");

const doc = (inner: string, root = `isComposing xmlns="${NS_IS_COMPOSING}"`): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<${root}>${inner}</${root.split(" ")[0]}>`;

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<isComposing xmlns="${NS_IS_COMPOSING}"><state>active</state><contenttype>&lol3;</contenttype></isComposing>`;

describe("RFC 3994 isComposing", function () {
  describe("parseIsComposing", function () {
    const good: ReadonlyArray<[string, string, IsComposing]> = [
      [
        "the RFC 3994 §6 example",
        RFC3994_EXAMPLE,
        { state: "idle", lastActive: "2003-01-27T10:43:00Z", contentType: "audio" },
      ],
      [
        "active with refresh and content type",
        doc("<state>active</state><contenttype>text/plain</contenttype><refresh>90</refresh>"),
        { state: "active", contentType: "text/plain", refresh: 90 },
      ],
      ["state alone", doc("<state>active</state>"), { state: "active" }],
      [
        "a prefixed namespace",
        `<ic:isComposing xmlns:ic="${NS_IS_COMPOSING}"><ic:state>idle</ic:state></ic:isComposing>`,
        { state: "idle" },
      ],
      [
        "elements of other namespaces (the schema's extension point) ignored",
        doc(`<state>active</state><x:state xmlns:x="urn:example:x">idle</x:state><x:y xmlns:x="urn:x"/>`),
        { state: "active" },
      ],
      [
        "a refresh on idle dropped (it concerns active only)",
        doc("<state>idle</state><refresh>60</refresh>"),
        { state: "idle" },
      ],
      [
        "a refresh that is not a positive integer dropped",
        doc("<state>active</state><refresh>soon</refresh>"),
        { state: "active" },
      ],
      ["a zero refresh dropped", doc("<state>active</state><refresh>0</refresh>"), { state: "active" }],
      ["a negative refresh dropped", doc("<state>active</state><refresh>-5</refresh>"), { state: "active" }],
      [
        "white space around values",
        doc("<state>\n  active\n</state><refresh> 120 </refresh>"),
        { state: "active", refresh: 120 },
      ],
      [
        "character references and CDATA",
        doc("<state>&#97;ctive</state><contenttype><![CDATA[text/plain]]></contenttype>"),
        { state: "active", contentType: "text/plain" },
      ],
      ["a leading BOM and blank line", `\uFEFF\r\n${doc("<state>idle</state>")}`, { state: "idle" }],
      [
        "no XML declaration",
        `<isComposing xmlns="${NS_IS_COMPOSING}"><state>idle</state></isComposing>`,
        { state: "idle" },
      ],
    ];
    for (const [title, xml, expected] of good) {
      it(`reads ${title}`, function () {
        assert.deepEqual(parseIsComposing(xml), expected);
      });
    }

    const bad: ReadonlyArray<[string, string]> = [
      ["an empty body", ""],
      ["text that is not XML", "typing..."],
      ["JSON", `{"state":"active"}`],
      ["no namespace", "<isComposing><state>active</state></isComposing>"],
      ["another namespace", `<isComposing xmlns="urn:example"><state>active</state></isComposing>`],
      [
        "another root in the namespace",
        `<presence xmlns="${NS_IS_COMPOSING}"><state>active</state></presence>`,
      ],
      ["no state", doc("<contenttype>text/plain</contenttype>")],
      ["an empty state", doc("<state/>")],
      ["a state other than active/idle", doc("<state>typing</state>")],
      ["a state in another case", doc("<state>ACTIVE</state>")],
      ["two states", doc("<state>active</state><state>idle</state>")],
      ["a state with element content", doc("<state><b>active</b></state>")],
      ["a truncated document", `<isComposing xmlns="${NS_IS_COMPOSING}"><state>active</state>`],
      ["a truncated tag", `<isComposing xmlns="${NS_IS_COMPOSING}"><state>active</sta`],
      ["mismatched tags", doc("<state>active</status>")],
      ["a billion laughs", BILLION_LAUGHS],
      [
        "an external entity",
        `<?xml version="1.0"?><!DOCTYPE isComposing [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
          `<isComposing xmlns="${NS_IS_COMPOSING}"><state>active</state><contenttype>&xxe;</contenttype></isComposing>`,
      ],
      [
        "a DOCTYPE without entities",
        `<!doctype isComposing><isComposing xmlns="${NS_IS_COMPOSING}"><state>idle</state></isComposing>`,
      ],
      ["an undefined entity reference", doc("<state>active</state><contenttype>&lol;</contenttype>")],
      ["an unbound prefix", `<ic:isComposing><ic:state>idle</ic:state></ic:isComposing>`],
      ["two roots", `${doc("<state>idle</state>")}${doc("<state>idle</state>")}`],
      ["text after the root", `${doc("<state>idle</state>")}trailing`],
      ["a document over 16 KiB", doc(`<state>active</state><!--${"x".repeat(17 * 1024)}-->`)],
      [
        "a deep nesting",
        doc(`<state>active</state>${"<x:a xmlns:x='urn:x'>".repeat(20)}${"</x:a>".repeat(20)}`),
      ],
      ["many elements", doc(`<state>active</state>${"<x:a xmlns:x='urn:x'/>".repeat(300)}`)],
    ];
    for (const [title, xml] of bad) {
      it(`refuses ${title} (null, no throw)`, function () {
        assert.equal(parseIsComposing(xml), null);
      });
    }

    it("never throws on odd input", function () {
      for (const input of ["<", "<?xml", "\u0000", "\uD800", "]]>", "<a xmlns='", "&", "<![CDATA[", "<!--"]) {
        assert.doesNotThrow(() => parseIsComposing(input));
        assert.equal(parseIsComposing(input), null);
      }
    });
  });

  describe("buildIsComposing", function () {
    const table: ReadonlyArray<[IsComposingState, number | undefined, XmlNode]> = [
      [
        "active",
        60,
        el("isComposing", el("state", "active"), el("contenttype", "text/plain"), el("refresh", "60")),
      ],
      ["active", undefined, el("isComposing", el("state", "active"), el("contenttype", "text/plain"))],
      ["idle", undefined, el("isComposing", el("state", "idle"), el("contenttype", "text/plain"))],
      // refresh concerns the active state only (RFC 3994 §3.2)
      ["idle", 60, el("isComposing", el("state", "idle"), el("contenttype", "text/plain"))],
    ];
    for (const [state, refresh, expected] of table) {
      it(`builds ${state}${refresh === undefined ? "" : ` with refresh ${refresh}`}`, function () {
        const built = tree(buildIsComposing(state, refresh));
        assert.deepEqual(built.decl, { version: "1.0", encoding: "UTF-8" });
        assert.deepEqual(built.root, expected);
      });
    }

    it("round-trips through parseIsComposing", function () {
      assert.deepEqual(parseIsComposing(buildIsComposing("active", 60)), {
        state: "active",
        refresh: 60,
        contentType: "text/plain",
      });
      assert.deepEqual(parseIsComposing(buildIsComposing("idle")), {
        state: "idle",
        contentType: "text/plain",
      });
    });

    it("refuses a refresh that is not a positive integer", function () {
      for (const refresh of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
        assert.throws(() => buildIsComposing("active", refresh), RangeError);
    });
  });

  describe("mapping to XEP-0085 chat states", function () {
    const sipToXmpp: ReadonlyArray<[IsComposingState, ChatState]> = [
      ["active", "composing"],
      ["idle", "paused"],
    ];
    for (const [state, chatState] of sipToXmpp) {
      it(`isComposing ${state} → ${chatState}`, function () {
        assert.equal(chatStateFromIsComposing(state), chatState);
      });
    }

    const xmppToSip: ReadonlyArray<[ChatState, IsComposingIndication]> = [
      ["composing", { state: "active", refresh: 60 }],
      ["paused", { state: "idle" }],
      ["active", { state: "idle" }],
      ["inactive", { state: "idle" }],
      ["gone", { state: "idle" }],
    ];
    for (const [chatState, indication] of xmppToSip) {
      it(`chat state ${chatState} alone → ${indication.state}`, function () {
        assert.deepEqual(isComposingFromChatState(chatState), indication);
      });
    }

    it("covers every chat state", function () {
      assert.deepEqual(xmppToSip.map(([c]) => c).sort(), [...CHAT_STATES].sort());
    });

    it("sends nothing for a chat state that comes with a message body", function () {
      for (const chatState of CHAT_STATES) assert.equal(isComposingFromChatState(chatState, true), null);
    });

    it("asks for a 60 s refresh, and composing → active → composing round-trips", function () {
      assert.equal(COMPOSING_REFRESH_SECONDS, 60);
      const indication = isComposingFromChatState("composing");
      assert.ok(indication);
      const parsed = parseIsComposing(
        buildIsComposing(indication.state, "refresh" in indication ? indication.refresh : undefined),
      );
      assert.ok(parsed);
      assert.equal(chatStateFromIsComposing(parsed.state), "composing");
    });
  });
});
