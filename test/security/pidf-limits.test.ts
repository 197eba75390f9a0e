// PIDF parsing limits (components/sip/pidf.ts): depth and element count stop the parse at once.
// Regression: 64 KB of unclosed `<a>` under a <presence> root used to cost ~3 s of CPU (saxes walks
// the open elements to resolve each namespace), found by test/components/sip-fuzz.test.ts.
import assert from "node:assert/strict";
import { parsePidf } from "../../components/sip/pidf.js";
import { assertSwitchboardError } from "../unit/assert-error.js";

const root = '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.org">';

describe("PIDF parsing limits", function () {
  const refused: [string, string][] = [
    ["21,000 unclosed levels", `${root}${"<a>".repeat(21_000)}`],
    ["8,000 closed levels", `${root}${"<a>".repeat(8_000)}${"</a>".repeat(8_000)}</presence>`],
    ["prefixed levels, each declaring a namespace", `${root}${"<p:a xmlns:p='x'>".repeat(3_500)}`],
    ["16,000 siblings", `${root}${"<a/>".repeat(16_000)}</presence>`],
  ];
  for (const [name, xml] of refused) {
    // How fast is for the benchmarks; the fuzz test's per-document hang guard catches a regression.
    it(`refuses ${name} (${xml.length} bytes)`, function () {
      assertSwitchboardError(() => parsePidf(xml), "bad-request", "too deep or too large");
    });
  }

  it("still reads a document 16 levels deep", function () {
    const inner = "<x>".repeat(15) + "</x>".repeat(15);
    const xml = `${root}<tuple id="t"><status><basic>open</basic></status></tuple>${inner}</presence>`;
    assert.deepEqual(parsePidf(xml), {
      entity: "sip:alice@example.org",
      basic: "open",
      activities: [],
      note: null,
    });
  });
});
