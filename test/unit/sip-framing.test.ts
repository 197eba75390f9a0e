import assert from "node:assert/strict";
import { contentLength, frameDatagram, FramingError, StreamFramer } from "../../components/sip/framing.js";

const message = (body: string, extra = ""): string =>
  `MESSAGE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n${extra}l: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe("SIP framing (RFC 3261 §18.3)", function () {
  it("reads Content-Length in long and compact form, refusing nonsense", function () {
    assert.equal(contentLength("X\r\nContent-Length: 12"), 12);
    assert.equal(contentLength("X\r\nl:3"), 3);
    assert.equal(contentLength("X\r\nSubject: l: 4"), null);
    assert.throws(() => contentLength("X\r\nContent-Length: -1"), FramingError);
    assert.throws(() => contentLength("X\r\nContent-Length: 99999999999"), FramingError);
  });

  it("splits two messages in one chunk and joins one split across chunks, counting bytes", function () {
    const framer = new StreamFramer();
    const a = message("één");
    const b = message("two ✓");
    assert.deepEqual(framer.push(Buffer.from(a + b)).messages, [a, b]);
    const bytes = Buffer.from(message("split ✓"));
    assert.deepEqual(framer.push(bytes.subarray(0, bytes.length - 1)).messages, []);
    assert.deepEqual(framer.push(bytes.subarray(bytes.length - 1)).messages, [message("split ✓")]);
  });

  it("counts keepalive pings between messages (RFC 5626 §3.5.1)", function () {
    const framer = new StreamFramer();
    const result = framer.push(Buffer.from(`\r\n\r\n${message("x")}\r\n\r\n`));
    assert.deepEqual(result.messages, [message("x")]);
    assert.equal(result.keepalives, 2);
    // A ping split across two reads is still one ping.
    assert.equal(framer.push(Buffer.from("\r\n")).keepalives, 0);
    assert.equal(framer.push(Buffer.from("\r\n")).keepalives, 1);
  });

  it("hands out each message's bytes as they came, for bodies in other charsets", function () {
    const latin1 = Buffer.concat([
      Buffer.from("MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\n"),
      Buffer.from("caf\xe9!", "latin1"),
    ]);
    const result = new StreamFramer().push(latin1);
    assert.equal(result.bytes.length, 1);
    assert.ok(result.bytes[0]?.equals(latin1));
  });

  it("refuses a stream message without Content-Length and oversize heads or bodies", function () {
    assert.throws(
      () => new StreamFramer().push(Buffer.from("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n")),
      /no Content-Length/,
    );
    const limits = { maxHeadBytes: 64, maxBodyBytes: 10 };
    assert.throws(
      () => new StreamFramer(limits).push(Buffer.from("X".repeat(100))),
      /header section too large/,
    );
    assert.throws(() => new StreamFramer(limits).push(Buffer.from(message("x".repeat(11)))), /too large/);
  });

  it("takes a datagram as one message, cutting what follows the body and refusing a short one", function () {
    assert.equal(frameDatagram(Buffer.from(`${message("abc")}trailing junk`)), message("abc"));
    assert.equal(frameDatagram(Buffer.from(message("abc").slice(0, -1))), null);
    assert.equal(frameDatagram(Buffer.from("no blank line")), null);
    const withoutLength = "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\nbody";
    assert.equal(frameDatagram(Buffer.from(withoutLength)), withoutLength);
  });
});

describe("framing: Content-Length read in linear time", function () {
  it("takes a 64 KB line of spaces that is not a Content-Length quickly, and refuses it", function () {
    const line = `l:${" ".repeat(65_536)}x y`;
    const started = performance.now();
    assert.throws(() => contentLength(`MESSAGE sip:a@b SIP/2.0\r\n${line}`), /bad Content-Length/);
    // Bounded by design, not a timing test: the old pattern took seconds on this input.
    assert.ok(performance.now() - started < 1_000);
    assert.equal(contentLength("MESSAGE sip:a@b SIP/2.0\r\nContent-Length :  12 "), 12);
  });
});
