import assert from "node:assert/strict";
import { mayWatch } from "../../src/presence/policy.js";

describe("watch policy", function () {
  const policy = { homeDomain: "example.org", allowedDomains: ["partner.example"] };
  const rows: [string, boolean][] = [
    ["example.org", true],
    ["Example.ORG", true],
    ["partner.example", true],
    ["example.net", false],
    ["sub.example.org", false],
  ];
  for (const [domain, allowed] of rows) {
    it(`${allowed ? "lets" : "does not let"} ${domain} watch`, function () {
      assert.equal(mayWatch(domain, policy), allowed);
    });
  }
});
