// Each `check` probe against its real server (or, for Asterisk, the recorded ARI), in process.
import assert from "node:assert/strict";
import { amiProbe } from "../../components/asterisk/ami-probe.js";
import { ariProbe } from "../../components/asterisk/ari-probe.js";
import { AmiFake } from "../fakes/ami-fake.js";
import { enumProbe } from "../../components/enum/enum-probe.js";
import { httpListenProbe } from "../../components/http/listen-probe.js";
import { ldapProbe } from "../../components/ldap/ldap-probe.js";
import { redisProbe } from "../../components/redis/redis-probe.js";
import { sipListenProbe } from "../../components/sip/listen-probe.js";
import { xmppComponentProbe } from "../../components/xmpp/xmpp-probe.js";
import { runProbe, formatResult } from "../../src/check/probe.js";
import { AriFake as RecordedAri } from "../fakes/ari-fake.js";
import { freePort } from "../harness/net.js";
import { RedisClusterSet, RedisSentinelSet } from "../harness/redis.js";
import { Scene } from "../harness/scene.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, Slapd } from "../harness/slapd.js";
import { testCertificate, type TestCertificate } from "../harness/tls.js";
import { tlsFilesProbe } from "../../components/sip/tls-probe.js";
import { createServer } from "node:net";

describe("check probes (real servers, recorded ARI)", function () {
  let scene: Scene;
  let ari: RecordedAri;

  before(async function () {
    scene = await Scene.start();
    ari = await RecordedAri.start();
  });
  after(async function () {
    await ari?.stop();
    await scene?.stop();
  });

  it("ARI: Asterisk's version from the recorded /asterisk/info", async function () {
    const result = await runProbe(ariProbe({ url: ari.url, username: "bridge", password: "secret" }), 5_000);
    assert.deepEqual([result.ok, result.detail], [true, "ARI answered, Asterisk 22.10.1"]);
    assert.deepEqual(ari.unrecorded, []);
  });

  it("ARI: a reply it cannot use is a failure naming the status", async function () {
    const result = await runProbe(
      ariProbe({ url: ari.url, username: "bridge", password: "not-recorded" }),
      5_000,
    );
    assert.equal(result.ok, false);
    assert.match(result.detail, /^501 /);
    assert.deepEqual(ari.unrecorded, ["GET /ari/asterisk/info"]);
    ari.unrecorded.length = 0;
  });

  it("AMI: the recorded greeting and login, and a refused secret named by its key", async function () {
    const ami = await AmiFake.start();
    try {
      const ok = await runProbe(
        amiProbe({ host: ami.host, port: ami.port, username: "bridge", password: "secret" }),
        5_000,
      );
      assert.equal(ok.ok, true, ok.detail);
      assert.match(ok.detail, /^Asterisk Call Manager\/11\.0\.0, login accepted for bridge$/);
      const refused = await runProbe(
        amiProbe({ host: ami.host, port: ami.port, username: "bridge", password: "wrong" }),
        5_000,
      );
      assert.equal(refused.ok, false);
      assert.match(
        refused.detail,
        /login refused: asterisk\.ami\.username\/password \(Authentication failed\)/,
      );
      assert.deepEqual(ami.unrecorded, []);
    } finally {
      await ami.stop();
    }
  });

  it("Redis, LDAP, ENUM and the XMPP component answer", async function () {
    const config = await scene.config();
    const probes = [
      redisProbe(scene.redis.url),
      ldapProbe({
        url: scene.slapd.url,
        bindDN: LDAP_ADMIN_DN,
        password: LDAP_ADMIN_PASSWORD,
        base: "ou=people,dc=example,dc=org",
      }),
      enumProbe({ suffixes: ["e164.arpa"], servers: [scene.dns.address] }),
      xmppComponentProbe({ ...config.xmpp.component, host: "127.0.0.1", port: scene.prosody.componentPort }),
    ];
    const results = await Promise.all(probes.map((p) => runProbe(p, 5_000)));
    for (const result of results) assert.ok(result.ok, formatResult(result));
    assert.match(results[0]?.detail ?? "", /^PONG, Redis \d+\.\S+, append-only on$/);
  });

  it("Redis Sentinel and Redis Cluster answer; a master name the sentinels do not know fails on store.sentinel", async function () {
    this.timeout(60_000);
    const [sentinel, cluster] = await Promise.all([RedisSentinelSet.start(), RedisClusterSet.start()]);
    try {
      const onSentinel = await runProbe(redisProbe(sentinel.target), 10_000);
      assert.ok(onSentinel.ok, formatResult(onSentinel));
      assert.match(
        onSentinel.detail,
        /^PONG, Redis \d+\.\S+, append-only on, sentinel \(sentinel switchboard via /,
      );
      const onCluster = await runProbe(redisProbe(cluster.target), 10_000);
      assert.ok(onCluster.ok, formatResult(onCluster));
      assert.match(onCluster.detail, /^PONG, Redis \d+\.\S+, append-only on, cluster \(cluster via /);
      const unknown = redisProbe({ sentinel: { ...sentinel.target.sentinel, masterName: "nobody" } });
      assert.equal(unknown.keyPath, "store.sentinel");
      const refused = await runProbe(unknown, 10_000);
      assert.equal(refused.ok, false, formatResult(refused));
      assert.match(refused.detail, /no valid master node|None of the sentinels/i);
    } finally {
      await sentinel.stop();
      await cluster.stop();
    }
  });

  it("listen probes fail on a taken port and pass on a free one", async function () {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const busy = await runProbe(httpListenProbe(`127.0.0.1:${port}`), 2_000);
      assert.equal(busy.ok, false);
      assert.match(busy.detail, /EADDRINUSE/);
      const free = await freePort({ udp: true });
      for (const listen of [`udp:127.0.0.1:${free}`, `tcp:127.0.0.1:${free}`, `ws:127.0.0.1:${free}`]) {
        const result = await runProbe(sipListenProbe(listen, 0), 2_000);
        assert.ok(result.ok, formatResult(result));
      }
    } finally {
      taken.close();
    }
  });

  describe("TLS files (sip.tls)", function () {
    let good: TestCertificate;
    let other: TestCertificate;
    before(function () {
      good = testCertificate();
      other = testCertificate();
    });
    after(function () {
      good?.dir.remove();
      other?.dir.remove();
    });

    it("reads the certificate and its key, and says how long it is valid", async function () {
      const result = await runProbe(tlsFilesProbe({ cert: good.cert, key: good.key }), 2_000);
      assert.ok(result.ok, formatResult(result));
      // The test certificate is made for 2 days: the line warns that it ends soon.
      assert.match(result.detail, /CN=localhost, valid until .* \(1 days\) — renew it soon$/);
    });

    it("fails on an expired certificate, a key of another certificate and a missing file", async function () {
      const expired = await runProbe(
        tlsFilesProbe({ cert: good.cert, key: good.key }, () => Date.now() + 3 * 86_400_000),
        2_000,
      );
      assert.equal(expired.ok, false);
      assert.match(expired.detail, /expired on/);
      const mismatched = await runProbe(tlsFilesProbe({ cert: good.cert, key: other.key }), 2_000);
      assert.equal(mismatched.ok, false);
      assert.match(mismatched.detail, /sip\.tls\.key is not the key of sip\.tls\.cert/);
      const missing = await runProbe(tlsFilesProbe({ cert: "/nonexistent/cert.pem", key: good.key }), 2_000);
      assert.equal(missing.ok, false);
      assert.match(missing.detail, /sip\.tls\.cert \/nonexistent\/cert\.pem: ENOENT/);
      assert.equal(missing.keyPath, "sip.tls");
    });
  });

  describe("LDAP with StartTLS", function () {
    let certificate: TestCertificate;
    let tlsSlapd: Slapd;
    before(async function () {
      certificate = testCertificate();
      // This server refuses a bind not protected by TLS: the probe passing proves StartTLS came first.
      tlsSlapd = await Slapd.start({
        tls: { cert: certificate.cert, key: certificate.key, requireForBind: true },
      });
    });
    after(async function () {
      await tlsSlapd?.stop();
      certificate?.dir.remove();
    });

    it("is refused by that server when it binds without StartTLS (so the tests below can fail)", async function () {
      const result = await runProbe(
        ldapProbe({
          url: tlsSlapd.url,
          bindDN: LDAP_ADMIN_DN,
          password: LDAP_ADMIN_PASSWORD,
          base: "ou=people,dc=example,dc=org",
        }),
        5_000,
      );
      assert.equal(result.ok, false);
      assert.match(result.detail, /confidentiality|ConfidentialityRequired/i);
    });

    const probe = (ca?: string): ReturnType<typeof ldapProbe> =>
      ldapProbe({
        url: tlsSlapd.url,
        bindDN: LDAP_ADMIN_DN,
        password: LDAP_ADMIN_PASSWORD,
        base: "ou=people,dc=example,dc=org",
        startTls: true,
        ...(ca ? { ca } : {}),
      });

    it("upgrades before binding, trusting ldap.ca", async function () {
      const result = await runProbe(probe(certificate.cert), 5_000);
      assert.ok(result.ok, formatResult(result));
      assert.match(result.detail, /\(StartTLS\)/);
    });

    it("fails, without binding in clear, when the server's CA is not trusted", async function () {
      const result = await runProbe(probe(), 5_000);
      assert.equal(result.ok, false);
      assert.match(result.detail, /self[- ]signed certificate/i);
    });
  });
});
