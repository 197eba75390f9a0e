// SIP Digest (RFC 3261 §22, RFC 7616, RFC 8760): challenge parsing and choice, answers checked
// against published vectors, and the verifier's nonce, realm and replay rules.
//
// Expected digests are never produced by the code under test. The RFC 7616 §3.9.1, RFC 2617 §3.5
// and RFC 2069 (erratum 749) responses are the published ones, and each was also recomputed with
// Python's hashlib; the -sess vectors, which no RFC prints, were computed with both Python's
// hashlib and `openssl dgst`, which agree.
import assert from "node:assert/strict";
import { maskCredentials } from "../../components/sip/sip-endpoint.js";
import { createHash } from "node:crypto";
import {
  authorize,
  chooseChallenge,
  DigestVerifier,
  parseChallenges,
  type Credentials,
  type DigestChallenge,
  type DigestVerifierOptions,
  type VerifyResult,
} from "../../components/sip/digest.js";
import { assertSwitchboardError } from "./assert-error.js";

// RFC 7616 §3.9.1 (password "Circle of Life", lowercase "of": erratum 4495).
const RFC7616 = {
  realm: "http-auth@example.org",
  nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
  opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
  cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
  answer: { username: "Mufasa", password: "Circle of Life", method: "GET", uri: "/dir/index.html", nc: 1 },
};

function challengeOf(overrides: Partial<DigestChallenge>): DigestChallenge {
  return {
    realm: "r",
    nonce: "n",
    algorithm: "MD5",
    supported: true,
    qop: ["auth"],
    stale: false,
    ...overrides,
  };
}

describe("SIP Digest challenges (RFC 7235 §2.1, RFC 3261 §25.1)", function () {
  const rfc7616 = { realm: RFC7616.realm, nonce: RFC7616.nonce, opaque: RFC7616.opaque, stale: false };
  const parsed: { name: string; values: string[]; expected: DigestChallenge[] }[] = [
    {
      name: "the RFC 7616 §3.9.1 pair, one per header value, in order",
      values: [
        `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=SHA-256, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`,
        `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=MD5, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`,
      ],
      expected: [
        { ...rfc7616, algorithm: "SHA-256", supported: true, qop: ["auth", "auth-int"] },
        { ...rfc7616, algorithm: "MD5", supported: true, qop: ["auth", "auth-int"] },
      ],
    },
    {
      name: "scheme, names and algorithm in any case; qop as a bare token; stale=TRUE",
      values: ['DIGEST REALM="a.example" ,NONCE = "n1",ALGORITHM=sha-256-SESS,QOP=Auth,Stale=TRUE'],
      expected: [
        {
          realm: "a.example",
          nonce: "n1",
          algorithm: "SHA-256-sess",
          supported: true,
          qop: ["auth"],
          stale: true,
        },
      ],
    },
    {
      name: "quoted-pairs unescaped, commas and '=' inside quotes kept",
      values: ['Digest realm="say \\"hi\\", a\\\\b", nonce="x,y=z, Digest nonce=evil"'],
      expected: [
        {
          realm: 'say "hi", a\\b',
          nonce: "x,y=z, Digest nonce=evil",
          algorithm: "MD5",
          supported: true,
          qop: [],
          stale: false,
        },
      ],
    },
    {
      name: "several challenges in one value, other schemes (params or token68) skipped",
      values: [
        'Basic realm="b", Digest realm="a", nonce="1", algorithm=SHA-256, Bearer abc/+==, Negotiate, Digest realm="a", nonce="2"',
      ],
      expected: [
        { realm: "a", nonce: "1", algorithm: "SHA-256", supported: true, qop: [], stale: false },
        { realm: "a", nonce: "2", algorithm: "MD5", supported: true, qop: [], stale: false },
      ],
    },
    {
      name: "an unknown algorithm kept as sent, flagged unsupported",
      values: ['Digest realm="a", nonce="1", algorithm=SHA-512-256, qop="auth"'],
      expected: [
        { realm: "a", nonce: "1", algorithm: "SHA-512-256", supported: false, qop: ["auth"], stale: false },
      ],
    },
  ];
  for (const { name, values, expected } of parsed) {
    it(`parses ${name}`, function () {
      assert.deepEqual(parseChallenges(values), expected);
    });
  }

  it("drops, without throwing, values that are malformed or lack realm/nonce, keeping the good ones", function () {
    const good = 'Digest realm="ok", nonce="1"';
    const bad = [
      "",
      "   ",
      "Digest",
      'Digest realm="only-realm"',
      'Digest realm="unterminated, nonce="1"',
      'Digest realm="a", realm="b", nonce="1"',
      'Digest realm="a\r\nVia: injected", nonce="1"',
      'Digest realm="a", nonce="1" trailing"',
      'Digest realm="a", nonce=',
      '=,=,\\"',
      'Digest"realm="a", nonce="1"',
    ];
    assert.deepEqual(
      parseChallenges([...bad, good]).map((c) => c.realm),
      ["ok"],
    );
  });
});

describe("choosing a Digest challenge (RFC 8760 §2.4)", function () {
  const sha = challengeOf({ algorithm: "SHA-256" });
  const md5 = challengeOf({ algorithm: "MD5" });
  const authIntAndAuth = challengeOf({ qop: ["auth-int", "auth"] });
  const table: { name: string; offered: DigestChallenge[]; chosen: DigestChallenge | RegExp }[] = [
    { name: "the topmost of SHA-256 above MD5", offered: [sha, md5], chosen: sha },
    { name: "the topmost even when it is MD5 (the server's order rules)", offered: [md5, sha], chosen: md5 },
    {
      name: "past an unsupported algorithm",
      offered: [challengeOf({ algorithm: "SHA-512-256", supported: false }), sha],
      chosen: sha,
    },
    { name: "auth out of auth-int,auth", offered: [authIntAndAuth], chosen: authIntAndAuth },
    {
      name: "an RFC 2069 challenge without qop",
      offered: [challengeOf({ qop: [] })],
      chosen: challengeOf({ qop: [] }),
    },
    {
      name: "nothing when only auth-int is offered",
      offered: [challengeOf({ qop: ["auth-int"] })],
      chosen: /only qop=auth is supported/,
    },
    {
      name: "nothing for a -sess algorithm without qop",
      offered: [challengeOf({ algorithm: "MD5-sess", qop: [] })],
      chosen: /MD5-sess without qop/,
    },
    {
      name: "nothing for only unknown algorithms",
      offered: [challengeOf({ algorithm: "SHA-512-256", supported: false })],
      chosen: /SHA-512-256 is not supported/,
    },
    { name: "nothing from no challenge", offered: [], chosen: /no Digest challenge offered/ },
  ];
  for (const { name, offered, chosen } of table) {
    it(`chooses ${name}`, function () {
      const choice = chooseChallenge(offered);
      if (chosen instanceof RegExp) {
        assert.equal(choice.ok, false);
        assert.match(choice.ok ? "" : choice.reason, chosen);
      } else {
        assert.deepEqual(choice, { ok: true, challenge: chosen });
      }
    });
  }
});

describe("answering a Digest challenge (RFC 3261 §22.2, RFC 7616 §3.4)", function () {
  const vectors: {
    name: string;
    challenge: string;
    answer: Parameters<typeof authorize>[1];
    response: string;
  }[] = [
    {
      name: "RFC 7616 §3.9.1, SHA-256",
      challenge: `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=SHA-256, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`,
      answer: { ...RFC7616.answer, cnonce: RFC7616.cnonce },
      response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    },
    {
      name: "RFC 7616 §3.9.1, MD5",
      challenge: `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=MD5, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`,
      answer: { ...RFC7616.answer, cnonce: RFC7616.cnonce },
      response: "8ca523f5e9506fed4657c9700eebdbec",
    },
    {
      name: "RFC 2617 §3.5 (MD5 without an algorithm parameter)",
      challenge:
        'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
      answer: {
        username: "Mufasa",
        password: "Circle Of Life",
        method: "GET",
        uri: "/dir/index.html",
        nc: 1,
        cnonce: "0a4f113b",
      },
      response: "6629fae49393a05397450978507c4ef1",
    },
    {
      // The value printed in RFC 2069 §2.4 is wrong; erratum 749 gives this one.
      name: "RFC 2069 §2.4 as corrected by erratum 749 (no qop)",
      challenge:
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
      answer: { username: "Mufasa", password: "CircleOfLife", method: "GET", uri: "/dir/index.html", nc: 1 },
      response: "1949323746fe6a43ef61f9606e7febea",
    },
    {
      name: "MD5-sess on the RFC 7616 inputs (computed with hashlib and openssl)",
      challenge: `Digest realm="${RFC7616.realm}", qop="auth", algorithm=MD5-sess, nonce="${RFC7616.nonce}"`,
      answer: { ...RFC7616.answer, cnonce: RFC7616.cnonce },
      response: "e783283f46242139c486a698fec7211d",
    },
    {
      name: "SHA-256-sess on the RFC 7616 inputs (computed with hashlib and openssl)",
      challenge: `Digest realm="${RFC7616.realm}", qop="auth", algorithm=SHA-256-sess, nonce="${RFC7616.nonce}"`,
      answer: { ...RFC7616.answer, cnonce: RFC7616.cnonce },
      response: "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7",
    },
  ];
  for (const { name, challenge, answer, response } of vectors) {
    it(`matches ${name}`, function () {
      const [parsed] = parseChallenges([challenge]);
      assert.ok(parsed);
      assert.ok(authorize(parsed, answer).includes(`response="${response}"`));
    });
  }

  it("writes the whole RFC 7616 SHA-256 answer, quoting per RFC 3261 §25.1", function () {
    const [challenge] = parseChallenges([
      `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=SHA-256, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`,
    ]);
    assert.ok(challenge);
    assert.equal(
      authorize(challenge, { ...RFC7616.answer, cnonce: RFC7616.cnonce }),
      `Digest username="Mufasa", realm="${RFC7616.realm}", nonce="${RFC7616.nonce}", uri="/dir/index.html", ` +
        `response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", algorithm=SHA-256, ` +
        `cnonce="${RFC7616.cnonce}", qop=auth, nc=00000001, opaque="${RFC7616.opaque}"`,
    );
  });

  it("leaves out cnonce, qop and nc in an RFC 2069 answer", function () {
    const header = authorize(challengeOf({ qop: [] }), { ...RFC7616.answer, cnonce: "c" });
    assert.doesNotMatch(header, /cnonce|qop|nc=/);
  });

  it("escapes quotes and backslashes, and the escaped answer parses back", function () {
    const header = authorize(challengeOf({ realm: 'r"1' }), {
      ...RFC7616.answer,
      username: 'a"b\\c',
      cnonce: "c",
    });
    assert.ok(header.includes('username="a\\"b\\\\c", realm="r\\"1"'));
    // Credentials share the challenges' param grammar, so the challenge parser reads it back.
    assert.deepEqual(
      parseChallenges([header]).map((c) => c.realm),
      ['r"1'],
    );
  });

  it("writes nc as 8 hex digits and makes up a fresh cnonce when none is given", function () {
    const first = authorize(challengeOf({}), { ...RFC7616.answer, nc: 26 });
    const second = authorize(challengeOf({}), { ...RFC7616.answer, nc: 26 });
    assert.match(first, /, nc=0000001a/);
    const cnonce = (header: string): string | undefined => /cnonce="([^"]+)"/.exec(header)?.[1];
    assert.ok((cnonce(first) ?? "").length >= 16);
    assert.notEqual(cnonce(first), cnonce(second));
  });

  it("refuses what it cannot answer or encode", function () {
    const answer = { ...RFC7616.answer, cnonce: "c" };
    assertSwitchboardError(
      () => authorize(challengeOf({ qop: ["auth-int"] }), answer),
      "feature-not-implemented",
      "auth-int",
    );
    assertSwitchboardError(
      () => authorize(challengeOf({ algorithm: "SHA-512-256", supported: false }), answer),
      "feature-not-implemented",
      "SHA-512-256",
    );
    assertSwitchboardError(
      () => authorize(challengeOf({}), { ...answer, username: "a\r\nVia: x" }),
      "bad-request",
      "control character",
    );
    assert.throws(() => authorize(challengeOf({}), { ...answer, nc: 0 }), RangeError);
    assert.throws(() => authorize(challengeOf({}), { ...answer, nc: 2 ** 32 }), RangeError);
  });
});

describe("DigestVerifier (the bridge as UAS, RFC 3261 §22.2)", function () {
  const REALM = "example.com";
  const T0 = 1_700_000_000_000;
  const ha1 = (hash: string, user: string, password: string): string =>
    createHash(hash).update(`${user}:${REALM}:${password}`).digest("hex");
  const users = new Map<string, Credentials>([
    ["alice", { password: "wonderland" }],
    [
      "bob",
      { ha1: { md5: ha1("md5", "bob", "builder"), sha256: ha1("sha256", "bob", "builder").toUpperCase() } },
    ],
    ["carol", { ha1: { md5: ha1("md5", "carol", "singer") } }],
  ]);
  const passwords: Record<string, string> = { alice: "wonderland", bob: "builder", carol: "singer" };

  let clock = T0;
  let lookups = 0;
  function makeVerifier(options: Partial<DigestVerifierOptions> = {}): DigestVerifier {
    return new DigestVerifier({
      realm: REALM,
      now: () => clock,
      lookup: (username) => {
        lookups++;
        return Promise.resolve(users.get(username));
      },
      ...options,
    });
  }
  beforeEach(function () {
    clock = T0;
    lookups = 0;
  });

  /** The answer a client gives to the verifier's challenge for `algorithm`. */
  function answer(
    verifier: DigestVerifier,
    user: string,
    options: { algorithm?: string; nc?: number; password?: string; edit?: Partial<DigestChallenge> } = {},
  ): string {
    const offered = parseChallenges(verifier.challenge());
    const challenge = offered.find((c) => c.algorithm === (options.algorithm ?? "SHA-256"));
    assert.ok(challenge, "algorithm offered");
    return authorize(
      { ...challenge, ...options.edit },
      {
        username: user,
        password: options.password ?? passwords[user] ?? "",
        method: "MESSAGE",
        uri: "sip:bridge@example.com",
        nc: options.nc ?? 1,
      },
    );
  }

  function assertRefused(result: VerifyResult, reason: RegExp, stale = false): void {
    assert.equal(result.ok, false, "refused");
    if (!result.ok) {
      assert.match(result.reason, reason);
      assert.equal(result.stale, stale, `stale for '${result.reason}'`);
    }
  }

  it("challenges once per algorithm, SHA-256 first, each with a fresh self-checking nonce", function () {
    const verifier = makeVerifier();
    const offered = parseChallenges(verifier.challenge());
    assert.deepEqual(
      offered.map(({ realm, algorithm, qop, stale }) => ({ realm, algorithm, qop, stale })),
      [
        { realm: REALM, algorithm: "SHA-256", qop: ["auth"], stale: false },
        { realm: REALM, algorithm: "MD5", qop: ["auth"], stale: false },
      ],
    );
    assert.match(offered[0]?.nonce ?? "", /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(offered[0]?.nonce, offered[1]?.nonce);
    assert.deepEqual(
      parseChallenges(verifier.challenge(true)).map((c) => c.stale),
      [true, true],
    );
    assert.deepEqual(
      parseChallenges(makeVerifier({ algorithms: ["MD5"] }).challenge()).map((c) => c.algorithm),
      ["MD5"],
    );
    assert.deepEqual(chooseChallenge(offered), { ok: true, challenge: offered[0] });
  });

  const accepted: { user: string; algorithm: string }[] = [
    { user: "alice", algorithm: "SHA-256" },
    { user: "alice", algorithm: "MD5" },
    { user: "bob", algorithm: "SHA-256" },
    { user: "bob", algorithm: "MD5" },
    { user: "carol", algorithm: "MD5" },
  ];
  for (const { user, algorithm } of accepted) {
    it(`accepts ${user}'s ${algorithm} answer (${user === "alice" ? "password" : "HA1"} stored)`, async function () {
      const verifier = makeVerifier();
      const result = await verifier.verify("MESSAGE", [answer(verifier, user, { algorithm })]);
      assert.deepEqual(result, { ok: true, username: user, uri: "sip:bridge@example.com" });
    });
  }

  it("refuses wrong passwords, unknown users and missing HA1s, none of them stale", async function () {
    const verifier = makeVerifier();
    assertRefused(
      await verifier.verify("MESSAGE", [answer(verifier, "alice", { password: "x" })]),
      /wrong response/,
    );
    assertRefused(await verifier.verify("MESSAGE", [answer(verifier, "mallory")]), /unknown user "mallory"/);
    assertRefused(await verifier.verify("MESSAGE", [answer(verifier, "carol")]), /no SHA-256 HA1/);
    const header = answer(verifier, "alice");
    assertRefused(await verifier.verify("INVITE", [header]), /wrong response/);
  });

  it("refuses another realm, and a forged or tampered nonce before any lookup", async function () {
    const verifier = makeVerifier();
    const nonce = parseChallenges(verifier.challenge())[0]?.nonce ?? "";
    const flip = (text: string, at: number): string =>
      text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    const refusals: [Partial<DigestChallenge>, RegExp][] = [
      [{ realm: "other.example" }, /no well-formed Digest credentials for realm "example.com"/],
      [{ nonce: flip(nonce, 0) }, /nonce not issued by this verifier/], // issue time
      [{ nonce: flip(nonce, 15) }, /nonce not issued by this verifier/], // random part
      [{ nonce: flip(nonce, 30) }, /nonce not issued by this verifier/], // MAC
      [{ nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093" }, /nonce not issued by this verifier/],
      [{ nonce: `${nonce}=` }, /nonce not issued by this verifier/],
    ];
    for (const [edit, reason] of refusals) {
      assertRefused(await verifier.verify("MESSAGE", [answer(verifier, "alice", { edit })]), reason);
    }
    const otherSecret = makeVerifier({ secret: Buffer.alloc(32, 7) });
    assertRefused(await verifier.verify("MESSAGE", [answer(otherSecret, "alice")]), /nonce not issued/);
    assert.equal(lookups, 0);
  });

  it("refuses an expired nonce as stale only when the password was right", async function () {
    const verifier = makeVerifier({ nonceLifetimeMs: 60_000 });
    const [atTheEdge, good, bad] = [
      answer(verifier, "alice"),
      answer(verifier, "alice"),
      answer(verifier, "alice", { password: "x" }),
    ];
    clock = T0 + 60_000;
    assert.equal((await verifier.verify("MESSAGE", [atTheEdge])).ok, true);
    clock = T0 + 60_001;
    assertRefused(await verifier.verify("MESSAGE", [good]), /nonce expired/, true);
    assertRefused(await verifier.verify("MESSAGE", [bad]), /wrong response/, false);
  });

  it("refuses a replayed nonce count and accepts the next one (RFC 7616 §3.4, nc)", async function () {
    const verifier = makeVerifier();
    const challenge = parseChallenges(verifier.challenge())[0];
    assert.ok(challenge);
    const withCount = (nc: number): string =>
      authorize(challenge, {
        username: "alice",
        password: "wonderland",
        method: "MESSAGE",
        uri: "sip:b@x",
        nc,
      });
    const first = withCount(1);
    assert.equal((await verifier.verify("MESSAGE", [first])).ok, true);
    assertRefused(await verifier.verify("MESSAGE", [first]), /nonce count 1 not above 1 .*replay/, true);
    assert.equal((await verifier.verify("MESSAGE", [withCount(2)])).ok, true);
    assertRefused(await verifier.verify("MESSAGE", [withCount(2)]), /replay/, true);
    assertRefused(await verifier.verify("MESSAGE", [withCount(1)]), /replay/, true);
    assert.equal((await verifier.verify("MESSAGE", [withCount(7)])).ok, true);
  });

  it("lets only one of two concurrent requests with the same count through", async function () {
    const verifier = makeVerifier({
      lookup: async () => {
        await new Promise((resolve) => setImmediate(resolve));
        return { password: "wonderland" };
      },
    });
    const header = answer(verifier, "alice");
    const results = await Promise.all([
      verifier.verify("MESSAGE", [header]),
      verifier.verify("MESSAGE", [header]),
    ]);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, false],
    );
  });

  it("bounds its memory without reopening a replay window", async function () {
    const verifier = makeVerifier({ maxTrackedNonces: 2 });
    const headers: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock = T0 + i;
      headers.push(answer(verifier, "alice"));
    }
    const [oldest, middle, newest] = headers as [string, string, string];
    for (const header of headers) assert.equal((await verifier.verify("MESSAGE", [header])).ok, true);
    // The oldest nonce's count was evicted to stay within 2 entries: a replay of it is still refused.
    assertRefused(await verifier.verify("MESSAGE", [oldest]), /history dropped/, true);
    assertRefused(await verifier.verify("MESSAGE", [middle]), /replay/, true);
    assertRefused(await verifier.verify("MESSAGE", [newest]), /replay/, true);
    clock = T0 + 10;
    assert.equal((await verifier.verify("MESSAGE", [answer(verifier, "alice")])).ok, true);
  });

  it("picks its own realm's credentials out of several values (RFC 3261 §22.3)", async function () {
    const verifier = makeVerifier();
    const other = makeVerifier({ realm: "proxy.example" });
    const result = await verifier.verify("MESSAGE", [
      "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
      answer(other, "alice"),
      answer(makeVerifier({ secret: Buffer.alloc(32, 1) }), "alice"),
      answer(verifier, "alice"),
    ]);
    assert.equal(result.ok, true);
  });

  it("refuses answers without qop=auth, with another algorithm or missing fields", async function () {
    const verifier = makeVerifier({ algorithms: ["SHA-256"] });
    const good = answer(verifier, "alice");
    const edits: [string, RegExp][] = [
      [good.replace(/, qop=auth, nc=00000001/, "").replace(/, cnonce="[^"]*"/, ""), /qop=auth required/],
      [good.replace("qop=auth", "qop=auth-int"), /qop auth-int not supported/],
      [good.replace("nc=00000001", "nc=1"), /valid nc/],
      [good.replace(/, cnonce="[^"]*"/, ""), /without cnonce/],
      [good.replace("algorithm=SHA-256", "algorithm=MD5"), /algorithm MD5 was not offered/],
      [good.replace("algorithm=SHA-256", "algorithm=SHA-256-sess"), /SHA-256-sess was not offered/],
      [good.replace(/, algorithm=SHA-256/, ""), /algorithm MD5 was not offered/],
      [good.replace(/uri="[^"]*", /, ""), /need username, uri and response/],
      [good.replace(/response="[^"]*", /, ""), /need username, uri and response/],
      [good.replace(/response="[^"]*"/, 'response="00"'), /wrong response/],
    ];
    for (const [header, reason] of edits) assertRefused(await verifier.verify("MESSAGE", [header]), reason);
    assert.equal(lookups, 1, "only the well-formed answer cost a lookup");
  });

  it("answers malformed or missing credentials with ok:false, never by throwing", async function () {
    const verifier = makeVerifier();
    const nonce = parseChallenges(verifier.challenge())[0]?.nonce ?? "";
    const malformed: string[][] = [
      [],
      [""],
      ["garbage"],
      ["Digest"],
      ["Digest ,,,"],
      ['Digest username="alice, realm="example.com"'],
      [`Digest realm="example.com", nonce="${nonce}", nonce="${nonce}"`],
      [`Digest realm="example.com", nonce="${nonce}", username="a\\`],
      [`Digest realm="example.com", nonce="${nonce}"`],
      [`Digest realm="example.com", nonce="${nonce}", username="alice", uri="u", response="r" junk`],
      ["\u0000\u0001"],
      [`Digest realm=${"x".repeat(100_000)}`],
      ["Basic YWxhZGRpbjpvcGVuc2VzYW1l"],
    ];
    for (const values of malformed) {
      const result = await verifier.verify("MESSAGE", values);
      assert.equal(result.ok, false, JSON.stringify(values).slice(0, 80));
    }
    assert.equal(lookups, 0);
  });

  it("lets a failing lookup reject, which is a server error and not a refusal", async function () {
    const verifier = makeVerifier({ lookup: () => Promise.reject(new Error("LDAP down")) });
    await assert.rejects(verifier.verify("MESSAGE", [answer(verifier, "alice")]), /LDAP down/);
  });

  it("refuses a configuration it could not honour", function () {
    assert.throws(() => makeVerifier({ secret: Buffer.alloc(8) }), RangeError);
    assert.throws(() => makeVerifier({ algorithms: [] }), RangeError);
    assertSwitchboardError(() => makeVerifier({ realm: "a\nb" }), "bad-request", "control character");
  });
});

describe("maskCredentials (wire tracing)", function () {
  it("masks the digest response in Authorization and Proxy-Authorization, and nothing else", function () {
    const text = [
      "MESSAGE sip:bob@example.org SIP/2.0",
      'Authorization: Digest username="carol", realm="example.org", nonce="abc", response="0123456789abcdef0123456789abcdef"',
      'proxy-authorization : Digest username="sb", response=deadbeef, nonce="n"',
      'Subject: response="kept"',
      "",
      'response="kept too"',
    ].join("\r\n");
    const masked = maskCredentials(text);
    assert.ok(!masked.includes("0123456789abcdef0123456789abcdef"));
    assert.ok(!masked.includes("deadbeef"));
    assert.match(masked, /username="carol", realm="example.org", nonce="abc", response="\[masked\]"/);
    assert.match(masked, /proxy-authorization : Digest username="sb", response="\[masked\]", nonce="n"/);
    assert.match(masked, /Subject: response="kept"/);
    assert.match(masked, /\r\nresponse="kept too"$/);
  });

  it("masks it in a folded header too, with CRLF or bare LF line ends", function () {
    const folded = [
      "MESSAGE sip:bob@example.org SIP/2.0",
      'Authorization: Digest username="carol",',
      '  realm="example.org", response="0123456789abcdef0123456789abcdef",',
      '\tnonce="abc"',
      'Proxy-Authorization: Digest username="sb", response',
      " =",
      ' "fedcba9876543210fedcba9876543210"',
      "Subject: x",
    ];
    for (const eol of ["\r\n", "\n"]) {
      const masked = maskCredentials(folded.join(eol));
      assert.ok(!masked.includes("0123456789abcdef0123456789abcdef"), JSON.stringify(masked));
      assert.ok(!masked.includes("fedcba9876543210fedcba9876543210"), JSON.stringify(masked));
      assert.match(masked, /Subject: x$/);
    }
  });
});
