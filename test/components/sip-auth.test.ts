// Who may talk to the endpoint (RFC 3261 §22, RFC 8760, RFC 3325): untrusted peers are challenged
// and, once authenticated, are the digest user whatever their From says; a nonce count cannot be
// replayed; P-Asserted-Identity is believed from trusted peers only. And the bridge's own MESSAGE
// answers a proxy's 407 with credentials. The expected digests are computed with node:crypto
// (test/harness/digest.ts), independently of components/sip/digest.ts; sipsak authenticates as an
// outside client.
import assert from "node:assert/strict";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { MemoryPresenceStore } from "../../src/presence/memory-store.js";
import { PresenceService } from "../../src/presence/presence-service.js";
import { digestAnswer as answer, hash, params } from "../harness/digest.js";
import { XmppSideRecorder } from "../harness/message-recorder.js";
import { sipsak } from "../harness/sip-clients.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import {
  buildRequest,
  buildResponse,
  header,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";

let n = 0;
function message(
  socket: UdpSipSocket,
  options: {
    from?: string;
    headers?: Record<string, string>;
    body?: string;
    cseq?: number;
    callId?: string;
  } = {},
): { text: string; callId: string } {
  const callId = options.callId ?? `auth-${++n}@test`;
  const text = buildRequest({
    method: "MESSAGE",
    uri: "sip:alice@example.org",
    via: `UDP 127.0.0.1:${socket.port}`,
    from: options.from ?? "<sip:bob@example.org>",
    to: "<sip:alice@example.org>",
    callId,
    cseq: options.cseq ?? 1,
    headers: { "Content-Type": "text/plain", ...options.headers },
    body: options.body ?? "hello",
  });
  return { text, callId };
}
const answerTo =
  (callId: string, cseq?: number) =>
  (m: RawSipMessage): boolean =>
    m.status !== undefined &&
    header(m, "call-id") === callId &&
    (cseq === undefined || header(m, "cseq")?.startsWith(`${cseq} `) === true);

describe("SIP authentication: digest as UAS and UAC, P-Asserted-Identity", function () {
  let endpoint: SipEndpoint;
  let port: number;
  let socket: UdpSipSocket;
  const xmpp = new XmppSideRecorder();
  const presence = new PresenceService(new MemoryPresenceStore());

  before(async function () {
    // Nobody is trusted: every peer on loopback must authenticate.
    ({ endpoint, port } = await startSipEndpoint({
      trustedPeers: ["192.0.2.1/32"],
      users: [
        { username: "bob", password: "s3cret" },
        {
          username: "carol",
          ha1: hash("md5", "carol:example.org:hash-only"),
          ha1Sha256: hash("sha256", "carol:example.org:hash-only"),
        },
      ],
      toXmpp: xmpp,
      presence,
    }));
    socket = await UdpSipSocket.open();
  });
  after(async function () {
    await socket?.close();
    await endpoint?.stop();
  });

  async function challengeFor(callId: string, text: string): Promise<string[]> {
    await socket.send(text, port);
    const challenge = await socket.waitFor(answerTo(callId, 1));
    assert.equal(challenge.status, 401);
    return challenge.headers.get("www-authenticate") ?? [];
  }

  it("challenges with SHA-256 first and MD5 second, and then takes the sender from the digest user", async function () {
    const first = message(socket, { from: "<sip:mallory@example.org>", body: "signed by bob" });
    const challenges = await challengeFor(first.callId, first.text);
    assert.deepEqual(
      challenges.map((c) => params(c).get("algorithm")),
      ["SHA-256", "MD5"],
    );
    for (const c of challenges) {
      assert.equal(params(c).get("realm"), "example.org");
      assert.equal(params(c).get("qop"), "auth");
    }
    for (const [i, challenge] of challenges.entries()) {
      const retry = message(socket, {
        callId: first.callId,
        cseq: 2 + i,
        from: "<sip:mallory@example.org>",
        body: `signed by bob ${i}`,
        headers: {
          Authorization: answer(challenge, {
            username: "bob",
            password: "s3cret",
            method: "MESSAGE",
            uri: "sip:alice@example.org",
            nc: "00000001",
            cnonce: `c${i}`,
          }),
        },
      });
      await socket.send(retry.text, port);
      assert.equal((await socket.waitFor(answerTo(first.callId, 2 + i))).status, 200);
      // Authenticated as bob: the From (mallory) is not believed.
      assert.equal(xmpp.received.find((m) => m.body === `signed by bob ${i}`)?.from, "bob@example.org");
    }
  });

  it("refuses a wrong password, an unknown user and a replayed nonce count", async function () {
    const first = message(socket);
    const [challenge = ""] = await challengeFor(first.callId, first.text);
    const credentials = (username: string, password: string, nc: string): string =>
      answer(challenge, {
        username,
        password,
        method: "MESSAGE",
        uri: "sip:alice@example.org",
        nc,
        cnonce: "replay",
      });
    const attempt = async (authorization: string, body: string): Promise<RawSipMessage> => {
      const request = message(socket, { headers: { Authorization: authorization }, body });
      await socket.send(request.text, port);
      return socket.waitFor(answerTo(request.callId));
    };
    assert.equal((await attempt(credentials("bob", "wrong", "00000001"), "wrong")).status, 401);
    assert.equal((await attempt(credentials("eve", "s3cret", "00000001"), "eve")).status, 401);
    assert.equal((await attempt(credentials("bob", "s3cret", "00000001"), "good")).status, 200);
    const replayed = await attempt(credentials("bob", "s3cret", "00000001"), "replayed");
    assert.equal(replayed.status, 401);
    assert.match(header(replayed, "www-authenticate") ?? "", /stale=true/i);
    assert.equal((await attempt(credentials("bob", "s3cret", "00000002"), "next")).status, 200);
    assert.deepEqual(
      xmpp.received
        .filter((m) => ["wrong", "eve", "good", "replayed", "next"].includes(m.body ?? ""))
        .map((m) => m.body),
      ["good", "next"],
    );
  });

  it("refuses credentials computed for another Request-URI with 400", async function () {
    const first = message(socket, { body: "moved" });
    const [challenge = ""] = await challengeFor(first.callId, first.text);
    const retry = message(socket, {
      callId: first.callId,
      cseq: 2,
      body: "moved",
      headers: {
        Authorization: answer(challenge, {
          username: "bob",
          password: "s3cret",
          method: "MESSAGE",
          uri: "sip:carol@example.org",
          nc: "00000001",
          cnonce: "elsewhere",
        }),
      },
    });
    await socket.send(retry.text, port);
    assert.equal((await socket.waitFor(answerTo(first.callId, 2))).status, 400);
    assert.equal(
      xmpp.received.find((m) => m.body === "moved"),
      undefined,
    );
  });

  it("accepts users configured with HA1 hashes only", async function () {
    const first = message(socket, { body: "carol" });
    const challenges = await challengeFor(first.callId, first.text);
    for (const [i, challenge] of challenges.entries()) {
      const retry = message(socket, {
        callId: first.callId,
        cseq: 2 + i,
        body: `carol ${i}`,
        headers: {
          Authorization: answer(challenge, {
            username: "carol",
            password: "hash-only",
            method: "MESSAGE",
            uri: "sip:alice@example.org",
            nc: "00000001",
            cnonce: "x",
          }),
        },
      });
      await socket.send(retry.text, port);
      assert.equal((await socket.waitFor(answerTo(first.callId, 2 + i))).status, 200);
    }
    assert.equal(xmpp.received.find((m) => m.body === "carol 1")?.from, "carol@example.org");
  });

  it("ignores P-Asserted-Identity from an untrusted peer, and lets a digest user publish only their own presence", async function () {
    const first = message(socket, {
      headers: { "P-Asserted-Identity": "<sip:boss@example.org>" },
      body: "pai",
    });
    const [challenge = ""] = await challengeFor(first.callId, first.text);
    const retry = message(socket, {
      callId: first.callId,
      cseq: 2,
      body: "pai",
      headers: {
        "P-Asserted-Identity": "<sip:boss@example.org>",
        Authorization: answer(challenge, {
          username: "bob",
          password: "s3cret",
          method: "MESSAGE",
          uri: "sip:alice@example.org",
          nc: "00000001",
          cnonce: "p",
        }),
      },
    });
    await socket.send(retry.text, port);
    assert.equal((await socket.waitFor(answerTo(first.callId, 2))).status, 200);
    assert.equal(xmpp.received.find((m) => m.body === "pai")?.from, "bob@example.org");

    const publish = (uri: string, cseq: number, authorization?: string): string =>
      buildRequest({
        method: "PUBLISH",
        uri,
        via: `UDP 127.0.0.1:${socket.port}`,
        from: `<${uri}>`,
        to: `<${uri}>`,
        callId: `publish-${uri}`,
        cseq,
        headers: {
          Event: "presence",
          Expires: "600",
          "Content-Type": "application/pidf+xml",
          ...(authorization ? { Authorization: authorization } : {}),
        },
        body: `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${uri}"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`,
      });
    for (const [uri, expected] of [
      ["sip:alice@example.org", 403],
      ["sip:bob@example.org", 200],
    ] as const) {
      await socket.send(publish(uri, 1), port);
      const challenged = await socket.waitFor(
        (m) => m.status !== undefined && header(m, "call-id") === `publish-${uri}`,
      );
      assert.equal(challenged.status, 401);
      await socket.send(
        publish(
          uri,
          2,
          answer(challenged.headers.get("www-authenticate")?.[0] ?? "", {
            username: "bob",
            password: "s3cret",
            method: "PUBLISH",
            uri,
            nc: "00000001",
            cnonce: "pub",
          }),
        ),
        port,
      );
      const answered = await socket.waitFor(
        (m) =>
          m.status !== undefined &&
          header(m, "call-id") === `publish-${uri}` &&
          header(m, "cseq") === "2 PUBLISH",
      );
      assert.equal(answered.status, expected, `${uri}: ${answered.startLine}`);
    }
  });

  it("sipsak authenticates with MD5 digest and gets 200, where MD5 is offered first", async function () {
    // sipsak reads only the first WWW-Authenticate and knows only MD5 (sip.digestAlgorithms).
    const { endpoint: md5First, port: md5Port } = await startSipEndpoint({
      trustedPeers: ["192.0.2.1/32"],
      users: [{ username: "bob", password: "s3cret" }],
      digestAlgorithms: ["MD5", "SHA-256"],
      toXmpp: xmpp,
    });
    try {
      const { text } = message(socket, { body: "from sipsak with digest" });
      const result = await sipsak({
        target: `sip:alice@127.0.0.1:${md5Port}`,
        request: text,
        auth: { username: "bob", password: "s3cret" },
      });
      assert.equal(result.response?.status, 200, result.output);
      assert.equal(xmpp.received.find((m) => m.body === "from sipsak with digest")?.from, "bob@example.org");
      const wrong = await sipsak({
        target: `sip:alice@127.0.0.1:${md5Port}`,
        request: message(socket, { body: "wrong password" }).text,
        auth: { username: "bob", password: "guess" },
      });
      assert.notEqual(wrong.response?.status, 200, wrong.output);
      assert.equal(
        xmpp.received.find((m) => m.body === "wrong password"),
        undefined,
      );
    } finally {
      await md5First.stop();
    }
  });
});

describe("SIP authentication: trusted peers and the bridge's own credentials", function () {
  let endpoint: SipEndpoint;
  let port: number;
  let proxy: UdpSipSocket;
  const xmpp = new XmppSideRecorder();

  before(async function () {
    proxy = await UdpSipSocket.open();
    ({ endpoint, port } = await startSipEndpoint({
      toXmpp: xmpp,
      outboundProxy: `sip:127.0.0.1:${proxy.port};lr`,
      credentials: { username: "switchboard", password: "bridge-pass" },
    }));
  });
  after(async function () {
    await proxy?.close();
    await endpoint?.stop();
  });

  it("believes P-Asserted-Identity from a trusted peer (RFC 3325)", async function () {
    const { text, callId } = message(proxy, {
      headers: { "P-Asserted-Identity": '"Carol" <sip:carol@example.org>, <tel:+442071234567>' },
      body: "asserted",
    });
    await proxy.send(text, port);
    assert.equal((await proxy.waitFor(answerTo(callId))).status, 200);
    assert.equal(xmpp.received.find((m) => m.body === "asserted")?.from, "carol@example.org");
  });

  it("answers a proxy's 407 with Proxy-Authorization in a new CSeq, and a second 407 is the outcome", async function () {
    const outcome = endpoint.sendMessage({
      id: "m1",
      from: "alice@example.org",
      to: "bob@example.org",
      body: "hi",
    });
    const first = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === "hi");
    const challenge = 'Digest realm="proxy.example.org", nonce="abc123", qop="auth", algorithm=SHA-256';
    await proxy.send(
      buildResponse(first, 407, "Proxy Authentication Required", { "Proxy-Authenticate": challenge }),
      first.from.port,
    );
    const second = await proxy.waitFor((m) => m.method === "MESSAGE" && m !== first && m.body === "hi");
    assert.equal(header(second, "call-id"), header(first, "call-id"));
    assert.equal(header(second, "cseq"), "2 MESSAGE");
    assert.notEqual(
      /branch=([^;]+)/.exec(header(second, "via") ?? "")?.[1],
      /branch=([^;]+)/.exec(header(first, "via") ?? "")?.[1],
    );
    const credentials = params(header(second, "proxy-authorization") ?? "");
    assert.equal(credentials.get("username"), "switchboard");
    assert.equal(credentials.get("realm"), "proxy.example.org");
    assert.equal(credentials.get("algorithm"), "SHA-256");
    const expected = answer(challenge, {
      username: "switchboard",
      password: "bridge-pass",
      method: "MESSAGE",
      uri: credentials.get("uri") ?? "",
      nc: credentials.get("nc") ?? "",
      cnonce: credentials.get("cnonce") ?? "",
    });
    assert.equal(credentials.get("response"), params(expected).get("response"));
    assert.equal(credentials.get("uri"), "sip:bob@example.org");
    await proxy.send(buildResponse(second, 200, "OK"), second.from.port);
    assert.equal(await outcome, "delivered");

    const refused = endpoint.sendMessage({
      id: "m2",
      from: "alice@example.org",
      to: "bob@example.org",
      body: "again",
    });
    refused.catch(() => undefined);
    const a = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === "again");
    await proxy.send(
      buildResponse(a, 407, "Proxy Authentication Required", { "Proxy-Authenticate": challenge }),
      a.from.port,
    );
    const b = await proxy.waitFor((m) => m.method === "MESSAGE" && m.body === "again" && m !== a);
    await proxy.send(
      buildResponse(b, 407, "Proxy Authentication Required", { "Proxy-Authenticate": challenge }),
      b.from.port,
    );
    await assert.rejects(refused, { condition: "forbidden" });
  });
});
