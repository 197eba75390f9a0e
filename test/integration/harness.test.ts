// One real protocol operation per harness server: the servers start, do their job, and stop.
import assert from "node:assert/strict";
import { component, xml, type Component, type Element } from "@xmpp/component";
import { createClient } from "redis";
import { DnsServer, enumDomain, exampleEnumRecords } from "../harness/dns.js";
import { tempDir } from "../harness/net.js";
import { Prosody } from "../harness/prosody.js";
import { RedisServer } from "../harness/redis.js";
import { Baresip, sipsak } from "../harness/sip-clients.js";
import { buildRequest, header, TcpSipSocket, UdpSipSocket } from "../harness/sip-socket.js";
import { LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD, Slapd } from "../harness/slapd.js";
import { SlixmppClient } from "../harness/xmpp-client.js";
import { HarnessError, ManagedProcess } from "../harness/process.js";

describe("harness: Prosody with mod_privilege and a slixmpp client", function () {
  let prosody: Prosody;
  let gateway: Component | undefined;
  let alice: SlixmppClient | undefined;

  before(async function () {
    prosody = await Prosody.start();
  });
  after(async function () {
    await alice?.close();
    await gateway?.stop();
    await prosody?.stop();
  });

  it("grants the component XEP-0356 presence and relays a chat message both ways", async function () {
    const grant = prosody.takeComponent();
    await prosody.register("alice", "alice-pw");
    gateway = component({
      service: `xmpp://${grant.host}:${grant.port}`,
      domain: grant.jid,
      password: grant.secret,
    });
    const stanzas: Element[] = [];
    gateway.on("error", () => undefined); // surfaced by start() rejecting
    gateway.on("stanza", (stanza) => {
      stanzas.push(stanza);
      const body = stanza.is("message") ? stanza.getChildText("body") : null;
      if (body && gateway) {
        void gateway.send(
          xml(
            "message",
            { type: "chat", from: stanza.attrs.to, to: stanza.attrs.from },
            xml("body", {}, `echo: ${body}`),
          ),
        );
      }
    });
    await gateway.start();

    alice = await SlixmppClient.connect("alice@example.org", "alice-pw", "127.0.0.1", prosody.c2sPort);
    alice.send({ op: "message", to: `bob@${grant.jid}`, body: "hello bob" });
    const reply = await alice.waitFor((e) => e.event === "message" && e.body === "echo: hello bob");
    assert.equal(reply.from, `bob@${grant.jid}`);

    const privilege = stanzas.find((s) => s.getChild("privilege", "urn:xmpp:privilege:2"));
    assert.ok(privilege, "Prosody announces the component's privileges (XEP-0356 §3)");
    const perms = privilege.getChild("privilege", "urn:xmpp:privilege:2")?.getChildren("perm") ?? [];
    assert.ok(perms.some((p) => p.attrs.access === "presence" && p.attrs.type === "managed_entity"));
    // managed_entity: the component receives the user's presence without any subscription.
    assert.ok(stanzas.some((s) => s.is("presence") && s.attrs.from?.startsWith("alice@example.org/")));
    const inbound = stanzas.find((s) => s.is("message") && s.getChildText("body") === "hello bob");
    assert.equal(inbound?.attrs.to, `bob@${grant.jid}`);
  });

  it("gives each test its own component domain", function () {
    const a = prosody.takeComponent();
    const b = prosody.takeComponent();
    assert.notEqual(a.jid, b.jid);
  });
});

describe("harness: Redis", function () {
  let redis: RedisServer;

  before(async function () {
    redis = await RedisServer.start();
  });
  after(async function () {
    await redis?.stop();
  });

  it("stores and reads a key under a per-test prefix, with append-only persistence on", async function () {
    const prefix = RedisServer.newPrefix("harness");
    const client = createClient({ url: redis.url });
    client.on("error", () => undefined);
    await client.connect();
    try {
      await client.set(`${prefix}greeting`, "hello");
      assert.equal(await client.get(`${prefix}greeting`), "hello");
      assert.deepEqual(await client.configGet("appendonly"), { appendonly: "yes" });
    } finally {
      client.destroy();
    }
    assert.notEqual(RedisServer.newPrefix("harness"), prefix);
  });

  it("keeps written data across a kill -9 and restart (append-only file)", async function () {
    const prefix = RedisServer.newPrefix("harness");
    await redis.command("SET", `${prefix}durable`, "yes");
    redis = await redis.restart({ kill: true });
    assert.equal(await redis.command("GET", `${prefix}durable`), "yes");
  });

  it("reports a server that cannot start with the server's own log", async function () {
    const dir = tempDir("clash");
    try {
      const proc = new ManagedProcess({
        name: "redis-server",
        command: "redis-server",
        args: ["--port", String(redis.port), "--bind", "127.0.0.1", "--dir", dir.path],
        logFile: dir.file("redis.log"),
      });
      await assert.rejects(
        proc.waitReady(() => Promise.resolve(false), 10_000),
        (err: unknown) =>
          err instanceof HarnessError &&
          err.message.startsWith("redis-server: exited during start-up") &&
          /Address already in use/.test(err.message),
      );
    } finally {
      dir.remove();
    }
  });
});

describe("harness: OpenLDAP slapd", function () {
  let slapd: Slapd;

  before(async function () {
    slapd = await Slapd.start();
  });
  after(async function () {
    await slapd?.stop();
  });

  it("binds and finds the seeded users by number and by extension in a per-test base", async function () {
    const base = await slapd.newBase("harness");
    const client = slapd.client();
    try {
      await client.bind(LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD);
      const byNumber = await client.search(base, { filter: "(telephoneNumber=+442071234567)" });
      assert.deepEqual(
        byNumber.searchEntries.map((e) => e.uid),
        ["alice"],
      );
      const byExtension = await client.search(base, {
        filter: "(switchboardExtension=8002)",
        attributes: ["mail", "displayName"],
      });
      assert.equal(byExtension.searchEntries[0]?.mail, "bob@example.org");
      assert.equal(byExtension.searchEntries[0]?.displayName, "Bob Baker");
    } finally {
      await client.unbind();
    }
  });

  it("refuses a wrong password", async function () {
    const client = slapd.client();
    try {
      await assert.rejects(client.bind(LDAP_ADMIN_DN, "wrong"), /Invalid Credentials|InvalidCredentials/i);
    } finally {
      await client.unbind();
    }
  });
});

describe("harness: DNS server with NAPTR records (dnsmasq)", function () {
  let dns: DnsServer;
  const name = enumDomain("+442071234567");

  before(async function () {
    dns = await DnsServer.start(exampleEnumRecords());
  });
  after(async function () {
    await dns?.stop();
  });

  it("answers an ENUM NAPTR query", async function () {
    assert.equal(name, "7.6.5.4.3.2.1.7.0.2.4.4.e164.arpa");
    const records = await dns.resolver().resolveNaptr(name);
    const sorted = [...records].sort((a, b) => a.order - b.order || a.preference - b.preference);
    assert.deepEqual(
      sorted.map((r) => [r.service, r.regexp, r.flags]),
      [
        ["E2U+sip", "!^.*$!sip:alice@example.org!", "u"],
        ["E2U+xmpp", "!^.*$!xmpp:alice@example.org!", "u"],
      ],
    );
  });

  it("answers NXDOMAIN for a number it does not know", async function () {
    await assert.rejects(dns.resolver().resolveNaptr(enumDomain("+15550000000")), { code: "ENOTFOUND" });
  });
});

describe("harness: SIP user agents (sipsak, baresip) and the raw socket", function () {
  let baresip: Baresip | undefined;
  let socket: UdpSipSocket;

  before(async function () {
    socket = await UdpSipSocket.open();
  });
  after(async function () {
    await baresip?.stop();
    await socket?.close();
  });

  it("sipsak sends a MESSAGE from a template and gets the raw socket's 200", async function () {
    socket.autoAnswer(["MESSAGE"], 200, "OK");
    const request = buildRequest({
      method: "MESSAGE",
      uri: `sip:bob@127.0.0.1:${socket.port}`,
      via: "UDP 127.0.0.1:5060",
      from: "<sip:alice@127.0.0.1>",
      to: `<sip:bob@127.0.0.1:${socket.port}>`,
      headers: { "Content-Type": "text/plain" },
      body: "hello from sipsak",
    });
    const result = await sipsak({ target: `sip:bob@127.0.0.1:${socket.port}`, request });
    assert.equal(result.exitCode, 0, result.output);
    assert.equal(result.response?.status, 200);
    const received = await socket.waitFor((m) => m.method === "MESSAGE");
    assert.equal(received.body, "hello from sipsak");
  });

  it("sipsak reports a non-2xx answer with a non-zero exit", async function () {
    const refusing = await UdpSipSocket.open();
    try {
      refusing.autoAnswer(["OPTIONS"], 404, "Not Found");
      const request = buildRequest({
        method: "OPTIONS",
        uri: `sip:nobody@127.0.0.1:${refusing.port}`,
        via: "UDP 127.0.0.1:5060",
        from: "<sip:alice@127.0.0.1>",
        to: `<sip:nobody@127.0.0.1:${refusing.port}>`,
      });
      const result = await sipsak({ target: `sip:nobody@127.0.0.1:${refusing.port}`, request });
      assert.notEqual(result.exitCode, 0);
      assert.equal(result.response?.status, 404);
    } finally {
      await refusing.close();
    }
  });

  it("baresip answers a MESSAGE with 200 and sends one to its contact", async function () {
    const peer = await UdpSipSocket.open();
    try {
      peer.autoAnswer(["MESSAGE"], 200, "OK");
      baresip = await Baresip.start({ user: "bob", contacts: [`sip:alice@127.0.0.1:${peer.port}`] });
      const request = buildRequest({
        method: "MESSAGE",
        uri: baresip.aor,
        via: `UDP 127.0.0.1:${peer.port}`,
        from: `<sip:alice@127.0.0.1:${peer.port}>`,
        to: `<${baresip.aor}>`,
        headers: { "Content-Type": "text/plain" },
        body: "hello baresip",
      });
      await peer.send(request, baresip.sipPort);
      const answer = await peer.waitFor((m) => m.status !== undefined && header(m, "cseq") === "1 MESSAGE");
      assert.equal(answer.status, 200);

      // The same over TCP (RFC 3261 §18.3: framed by Content-Length on one connection).
      const tcp = await TcpSipSocket.connect(baresip.sipPort);
      try {
        await tcp.send(
          buildRequest({
            method: "OPTIONS",
            uri: baresip.aor,
            via: `TCP 127.0.0.1:${tcp.localPort}`,
            from: `<sip:alice@127.0.0.1:${tcp.localPort};transport=tcp>`,
            to: `<${baresip.aor}>`,
          }),
        );
        const overTcp = await tcp.waitFor((m) => m.status !== undefined);
        assert.equal(overTcp.status, 200);
        assert.equal(header(overTcp, "cseq"), "1 OPTIONS");
        assert.match(header(overTcp, "via") ?? "", /^SIP\/2\.0\/TCP /);
      } finally {
        tcp.close();
      }

      await baresip.message("hello from baresip — grüße");
      const sent = await peer.waitFor((m) => m.method === "MESSAGE");
      assert.equal(sent.body, "hello from baresip — grüße");
      assert.match(header(sent, "from") ?? "", /sip:bob@127\.0\.0\.1/);
      assert.equal(header(sent, "content-type"), "text/plain");
    } finally {
      await peer.close();
    }
  });
});
