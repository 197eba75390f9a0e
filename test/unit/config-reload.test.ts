import assert from "node:assert/strict";
import { changedPaths, keepPaths, reloadPlan } from "../../src/config/reload.js";
import { parseConfigText } from "../../src/config/load.js";

const base = `
domain: example.org
xmpp:
  component: { jid: sip.example.org, host: 127.0.0.1, port: 5347, secret: s3cret }
`;

describe("config reload plan", function () {
  it("names the changed key paths at the depth where they differ", function () {
    assert.deepEqual(changedPaths({ a: { b: 1, c: [1, 2] }, d: "x" }, { a: { b: 2, c: [1, 2] }, d: "x" }), [
      "a.b",
    ]);
    assert.deepEqual(changedPaths({ a: { c: [1, 2] } }, { a: { c: [2, 1] } }), ["a.c"]);
    assert.deepEqual(changedPaths({ a: 1 }, { a: 1, b: { c: 2 } }), ["b"]);
    assert.deepEqual(changedPaths({ a: 1 }, { a: 1 }), []);
  });

  it("applies the log level, directory entries and allowed domains, and names what needs a restart", function () {
    const before = parseConfigText(base, "a.yaml", {});
    const after = parseConfigText(
      `${base}
log: { level: debug }
directory: { users: [{ uid: bob, displayName: Bob, numbers: ["+442071234568"] }] }
sip: { listen: ["udp:127.0.0.1:5070"] }
`,
      "b.yaml",
      {},
    );
    const changedSecret = parseConfigText(base.replace("s3cret", "other"), "c.yaml", {});
    assert.deepEqual(reloadPlan(before, after), {
      apply: ["directory", "log.level"],
      restart: ["sip.listen"],
    });
    // A changed secret is named by its key path only.
    assert.deepEqual(reloadPlan(before, changedSecret), { apply: [], restart: ["xmpp.component.secret"] });
  });

  it("keeps the running values of what needs a restart", function () {
    const running = {
      sip: { listen: ["udp:a"], timers: { t1: 500 } },
      ldap: { url: "ldap://x" },
      log: "info",
    };
    const next = { sip: { listen: ["udp:b"], timers: { t1: 500 } }, log: "debug" };
    assert.deepEqual(keepPaths(next, running, ["sip.listen", "ldap"]), {
      sip: { listen: ["udp:a"], timers: { t1: 500 } },
      ldap: { url: "ldap://x" },
      log: "debug",
    });
    // A path the running config does not have is removed from the result.
    assert.deepEqual(keepPaths({ enum: { suffixes: ["e164.arpa"] } }, {}, ["enum"]), {});
  });
});
