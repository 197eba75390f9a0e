// Crafted addresses: a Request-URI that only looks like a home user (another domain with the home
// domain as a prefix or in a parameter, an escaped "@", percent-encoded separators) never reaches
// that user; each gets a clear refusal, or (an "@" escaped in the user part) names a different
// home-domain JID, escaped as XEP-0106 says. The ones that do name the user (case, a trailing
// dot, the user's number) still do, so the refusals are not a blanket "no".
import assert from "node:assert/strict";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { ConfigDirectory } from "../../src/directory/config-directory.js";
import { XmppSideRecorder } from "../harness/message-recorder.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import { buildRequest, header, UdpSipSocket } from "../harness/sip-socket.js";

/** Look-alikes in other domains, or that cannot be a chat address: refused (4xx, or dropped). */
const REFUSED = [
  "sip:alice@example.net",
  "sip:alice@example.org.evil.test",
  "sip:alice@evil-example.org",
  "sip:alice@evil.test;maddr=example.org",
  "sip:alice@example.org@evil.test",
  "sip:alice%00@example.org",
  "sip:+442071234567@example.net",
  "sips:alice@[::1]",
  "sip:alice@127.0.0.1",
];
/** Home-domain names that only contain Alice's: each is its own JID (escaped per XEP-0106), not hers. */
const OTHER_NAMES: [uri: string, jid: string][] = [
  ["sip:alice%40example.net@example.org", "alice\\40example.net@example.org"],
  ["sip:alice%2540example.org@example.org", "alice%40example.org@example.org"],
  ["sip:al%69ce.evil@example.org", "alice.evil@example.org"],
];
const ALICE = [
  "sip:alice@example.org",
  "sip:ALICE@Example.ORG",
  "sip:alice@example.org.",
  "sip:+442071234567@example.org",
];

describe("crafted addresses never reach another user", function () {
  let endpoint: SipEndpoint;
  let port: number;
  let socket: UdpSipSocket;
  const xmpp = new XmppSideRecorder();

  before(async function () {
    ({ endpoint, port } = await startSipEndpoint({
      toXmpp: xmpp,
      directory: new ConfigDirectory(
        [{ uid: "alice", displayName: "Alice Archer", numbers: ["+44 20 7123 4567"] }],
        "example.org",
      ),
    }));
    socket = await UdpSipSocket.open();
  });
  after(async function () {
    await socket?.close();
    await endpoint?.stop();
  });

  async function send(uri: string): Promise<{ status: number; to: string | undefined }> {
    const callId = `craft-${Math.random().toString(36).slice(2)}@test`;
    await socket.send(
      buildRequest({
        method: "MESSAGE",
        uri,
        via: `UDP 127.0.0.1:${socket.port}`,
        from: "<sip:bob@example.org>",
        to: `<${uri}>`,
        callId,
        headers: { "Content-Type": "text/plain" },
        body: uri,
      }),
      port,
    );
    let status: number;
    try {
      const answer = await socket.waitFor(
        (m) => m.status !== undefined && m.status >= 200 && header(m, "call-id") === callId,
        2_000,
      );
      status = answer.status ?? 0;
    } catch {
      status = 0; // dropped: unparsable
    }
    return { status, to: xmpp.received.find((m) => m.id === callId)?.to };
  }

  it("refuses every look-alike of alice@example.org, and still reaches her by her real addresses", async function () {
    for (const uri of REFUSED) {
      const { status, to } = await send(uri);
      assert.equal(to, undefined, `${uri} reached ${to}`);
      assert.ok(status === 0 || (status >= 400 && status < 500), `${uri}: ${status}`);
    }
    for (const [uri, jid] of OTHER_NAMES) {
      const { to } = await send(uri);
      assert.equal(to, jid, uri);
    }
    for (const uri of ALICE) {
      const { status, to } = await send(uri);
      assert.equal(status, 200, uri);
      assert.equal(to, "alice@example.org", uri);
    }
  });
});
