import assert from "node:assert/strict";
import { isExtension, toE164 } from "../../src/domain/phone-number.js";

describe("phone numbers (E.164 with libphonenumber-js)", function () {
  const table: [string, string, string | null][] = [
    ["+44 20 7123 4567", "GB", "+442071234567"],
    ["02071234567", "GB", "+442071234567"],
    ["+442071234567", "US", "+442071234567"],
    ["(020) 7123-4567", "GB", "+442071234567"],
    ["+1 212 555 0123", "GB", "+12125550123"],
    ["8001", "GB", null],
    ["bob", "GB", null],
    ["+44 20 7123 456", "GB", null],
    ["*)(uid=*", "GB", null],
  ];
  for (const [input, region, expected] of table) {
    it(`${input} (${region}) → ${String(expected)}`, function () {
      assert.equal(toE164(input, region), expected);
    });
  }

  it("knows an extension from a number", function () {
    assert.equal(isExtension("8001"), true);
    assert.equal(isExtension("+442071234567"), false);
    assert.equal(isExtension("alice"), false);
  });
});
