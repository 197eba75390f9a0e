// The registration watcher (RFC 3680 `reg` over RFC 6665) against a raw UDP socket playing a
// Kamailio-style registrar with a reg event server (presence_reginfo): the endpoint SUBSCRIBEs to
// a desk phone's AOR through the registrar, the registrar's NOTIFYs say when the phone is offline
// and when it registers again (onOnline once per coming back), a terminated subscription is taken
// up again, refreshes stay in the dialog, unwatch unsubscribes, and a hostile document is refused.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { registrarRoutes } from "../../components/sip/reg-watcher.js";
import type { SipEndpoint } from "../../components/sip/sip-endpoint.js";
import { startSipEndpoint } from "../harness/sip-endpoint.js";
import {
  buildRequest,
  buildResponse,
  header,
  UdpSipSocket,
  type RawSipMessage,
} from "../harness/sip-socket.js";

const AOR = "sip:bob@example.org";
const PHONE = "sip:bob@192.0.2.10:5060";

interface RegDialog {
  callId: string;
  /** The watcher's From (with its tag): our To. */
  watcher: string;
  registrarTag: string;
  /** Where NOTIFYs go: the SUBSCRIBE's Contact. */
  target: { uri: string; port: number };
  cseq: number;
  /** The next reginfo version in this dialog (RFC 3680 §5.2: from 0 in each subscription). */
  version: number;
}

interface Document {
  state: "full" | "partial";
  /** The phone's contact active (registered) or terminated. */
  online: boolean;
  event?: string;
  /** Re-send this version (a duplicate) instead of the next one. */
  version?: number;
}

/** A reginfo document about bob's one contact, as presence_reginfo writes them. */
function reginfo(version: number, doc: Document): string {
  const regState = doc.online ? "active" : "terminated";
  const contactState = doc.online ? "active" : "terminated";
  const event = doc.event ?? (doc.online ? "registered" : "unregistered");
  return [
    `<?xml version="1.0"?>`,
    `<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="${version}" state="${doc.state}">`,
    `  <registration aor="${AOR}" id="0x7f3a5c" state="${regState}">`,
    `    <contact id="0x7f3a5d" state="${contactState}" event="${event}" expires="${doc.online ? 3600 : 0}">`,
    `      <uri>${PHONE}</uri>`,
    `    </contact>`,
    `  </registration>`,
    `</reginfo>`,
  ].join("\r\n");
}

const tagOf = (value: string | undefined): string | undefined => /;\s*tag=([^;>\s]+)/.exec(value ?? "")?.[1];

/**
 * The registrar: the test answers each new SUBSCRIBE (to control the order of events); in-dialog
 * SUBSCRIBEs (refreshes, the unsubscribe) are answered here with 200 and a NOTIFY with the full
 * state, as RFC 6665 §4.2.1.2 asks, terminated for Expires: 0. Anything else it gets is remembered.
 */
class FakeRegistrar {
  private readonly dialogs = new Map<string, RegDialog>();
  private readonly answered = new Set<string>();
  /** What refresh NOTIFYs say about the phone. */
  online = false;
  /** The Expires its 200s grant. */
  grant = "3600";

  private constructor(readonly socket: UdpSipSocket) {
    socket.onMessage((m) => void this.inDialog(m));
  }

  static async open(): Promise<FakeRegistrar> {
    return new FakeRegistrar(await UdpSipSocket.open());
  }

  get port(): number {
    return this.socket.port;
  }

  get uri(): string {
    return `sip:127.0.0.1:${this.port}`;
  }

  /** The reg SUBSCRIBEs received, without UDP retransmissions (same Via). */
  subscribes(): RawSipMessage[] {
    const seen = new Set<string>();
    return this.socket.received.filter((m) => {
      const via = header(m, "via") ?? "";
      if (m.method !== "SUBSCRIBE" || header(m, "event") !== "reg" || seen.has(via)) return false;
      seen.add(via);
      return true;
    });
  }

  /** SUBSCRIBE number `n` (from 0) received, now or within the wait. */
  subscribe(n: number, timeoutMs = 5_000): Promise<RawSipMessage> {
    return this.socket.waitFor(
      (m) => m.method === "SUBSCRIBE" && this.subscribes().indexOf(m) === n,
      timeoutMs,
    );
  }

  /** Answers a new SUBSCRIBE `status`; a 2xx sets up the dialog. */
  async answer(subscribe: RawSipMessage, status = 200, reason = "OK"): Promise<RegDialog> {
    const registrarTag = randomBytes(4).toString("hex");
    const contact = /<([^>]*)>/.exec(header(subscribe, "contact") ?? "")?.[1] ?? "";
    const dialog: RegDialog = {
      callId: header(subscribe, "call-id") ?? "",
      watcher: header(subscribe, "from") ?? "",
      registrarTag,
      target: { uri: contact, port: Number(/:(\d+)/.exec(contact.replace(/^sips?:/, ""))?.[1] ?? 5060) },
      cseq: 1,
      version: 0,
    };
    const to = header(subscribe, "to") ?? "";
    const text = buildResponse(subscribe, status, reason, {
      ...(status < 300 ? { Contact: `<${this.uri}>`, Expires: this.grant } : {}),
    }).replace(/^To: .*$/m, `To: ${to};tag=${registrarTag}`);
    if (status < 300) this.dialogs.set(dialog.callId, dialog);
    await this.socket.send(text, subscribe.from.port, subscribe.from.address);
    return dialog;
  }

  /** Sends a NOTIFY in `dialog` and resolves with the endpoint's answer to it. */
  async notify(
    dialog: RegDialog,
    content: Document | { raw: string } | null,
    subscriptionState = "active;expires=3600",
  ): Promise<RawSipMessage> {
    let body = "";
    if (content && "raw" in content) body = content.raw;
    else if (content) {
      body = reginfo(content.version ?? dialog.version++, content);
      this.online = content.online;
    }
    const cseq = dialog.cseq++;
    const text = [
      `NOTIFY ${dialog.target.uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK-reg${randomBytes(6).toString("hex")};rport`,
      `Max-Forwards: 70`,
      `From: <${AOR}>;tag=${dialog.registrarTag}`,
      `To: ${dialog.watcher}`,
      `Call-ID: ${dialog.callId}`,
      `CSeq: ${cseq} NOTIFY`,
      `Contact: <${this.uri}>`,
      `Event: reg`,
      `Subscription-State: ${subscriptionState}`,
      ...(body ? [`Content-Type: application/reginfo+xml`] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      ``,
      body,
    ].join("\r\n");
    await this.socket.send(text, dialog.target.port);
    return this.socket.waitFor(
      (m) =>
        m.status !== undefined &&
        header(m, "call-id") === dialog.callId &&
        header(m, "cseq") === `${cseq} NOTIFY`,
    );
  }

  private async inDialog(m: RawSipMessage): Promise<void> {
    if (m.method !== "SUBSCRIBE" || !tagOf(header(m, "to"))) return;
    if (this.answered.has(header(m, "via") ?? "")) return; // a retransmission
    this.answered.add(header(m, "via") ?? "");
    const dialog = this.dialogs.get(header(m, "call-id") ?? "");
    if (!dialog || tagOf(header(m, "to")) !== dialog.registrarTag) {
      await this.socket.send(buildResponse(m, 481, "Subscription does not exist"), m.from.port);
      return;
    }
    const expires = header(m, "expires") ?? "3600";
    await this.socket.send(
      buildResponse(m, 200, "OK", { Contact: `<${this.uri}>`, Expires: expires === "0" ? "0" : this.grant }),
      m.from.port,
    );
    if (expires === "0") {
      this.dialogs.delete(dialog.callId);
      await this.notify(dialog, { state: "full", online: this.online }, "terminated;reason=timeout");
    } else {
      await this.notify(dialog, { state: "full", online: this.online });
    }
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}

/** A NOTIFY outside any dialog (or of another package) to the endpoint; its answer. */
async function sendOutOfDialog(
  socket: UdpSipSocket,
  port: number,
  headers: Record<string, string>,
): Promise<RawSipMessage> {
  const callId = `${randomBytes(6).toString("hex")}@registrar`;
  await socket.send(
    buildRequest({
      method: "NOTIFY",
      uri: `sip:switchboard@127.0.0.1:${port}`,
      via: `UDP 127.0.0.1:${socket.port}`,
      from: `<${AOR}>`,
      to: "<sip:switchboard@sip.example.org>",
      callId,
      headers,
    }),
    port,
  );
  return socket.waitFor((m) => m.status !== undefined && header(m, "call-id") === callId);
}

describe("SIP reg watcher (RFC 3680) against a registrar's reg event server", function () {
  let registrar: FakeRegistrar;
  let endpoint: SipEndpoint;
  let port: number;
  const online: string[] = [];
  let dialog: RegDialog;

  before(async function () {
    registrar = await FakeRegistrar.open();
    ({ endpoint, port } = await startSipEndpoint({
      regEvents: { registrar: registrar.uri, onOnline: (person) => void online.push(person), retryMs: 100 },
    }));
  });
  after(async function () {
    await endpoint?.stop();
    await registrar?.close();
  });

  it("subscribes to the AOR's reg events with the registrar as first hop, once per person", async function () {
    assert.equal(endpoint.reg?.watch("bob@example.org", AOR), true);
    assert.equal(endpoint.reg?.watch("bob@example.org", AOR), true); // already watched
    const subscribe = await registrar.subscribe(0);
    assert.equal(subscribe.startLine, `SUBSCRIBE ${AOR} SIP/2.0`);
    assert.deepEqual(subscribe.headers.get("route"), [`<sip:127.0.0.1:${registrar.port};lr>`]);
    assert.equal(header(subscribe, "event"), "reg");
    assert.equal(header(subscribe, "accept"), "application/reginfo+xml");
    assert.equal(header(subscribe, "expires"), "3600");
    assert.equal(header(subscribe, "to"), `<${AOR}>`);
    assert.ok(tagOf(header(subscribe, "from")), "From has our tag");
    dialog = await registrar.answer(subscribe);
    assert.equal(dialog.target.port, port, "NOTIFYs go to the endpoint's Contact");
    await sleep(100);
    assert.equal(registrar.subscribes().length, 1, "watching twice subscribed twice");
    assert.equal(endpoint.reg?.size, 1);
  });

  it("takes a full document with the contact terminated (phone offline) without calling onOnline", async function () {
    const answer = await registrar.notify(dialog, { state: "full", online: false });
    assert.equal(answer.status, 200);
    assert.deepEqual(online, []);
  });

  it("calls onOnline once when a partial document shows the contact registered", async function () {
    const answer = await registrar.notify(dialog, { state: "partial", online: true, event: "registered" });
    assert.equal(answer.status, 200);
    assert.deepEqual(online, ["bob@example.org"]);
  });

  it("does not call it again for a refreshed contact or a repeated document", async function () {
    assert.equal(
      (await registrar.notify(dialog, { state: "partial", online: true, event: "refreshed" })).status,
      200,
    );
    const repeated = {
      state: "partial",
      online: true,
      event: "refreshed",
      version: dialog.version - 1,
    } as const;
    assert.equal((await registrar.notify(dialog, repeated)).status, 200);
    assert.equal((await registrar.notify(dialog, { state: "full", online: true })).status, 200);
    assert.deepEqual(online, ["bob@example.org"]);
  });

  it("calls it again when the phone went offline and registered again", async function () {
    await registrar.notify(dialog, { state: "partial", online: false, event: "expired" });
    assert.deepEqual(online, ["bob@example.org"]);
    await registrar.notify(dialog, { state: "partial", online: true, event: "registered" });
    assert.deepEqual(online, ["bob@example.org", "bob@example.org"]);
    await registrar.notify(dialog, { state: "partial", online: false, event: "unregistered" });
  });

  it("refuses a hostile reginfo document (DOCTYPE with entities) with 400, calling nothing", async function () {
    const hostile = reginfo(dialog.version, { state: "partial", online: true }).replace(
      `<?xml version="1.0"?>`,
      `<?xml version="1.0"?><!DOCTYPE reginfo [<!ENTITY a "active"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>`,
    );
    const answer = await registrar.notify(dialog, { raw: hostile });
    assert.equal(answer.status, 400);
    const notXml = await registrar.notify(dialog, { raw: "Messages-Waiting: yes\r\n" });
    assert.equal(notXml.status, 400);
    assert.equal(online.length, 2);
  });

  it("subscribes again in a new dialog when the registrar ends the subscription, and refreshes in it", async function () {
    const answer = await registrar.notify(dialog, null, "terminated;reason=deactivated");
    assert.equal(answer.status, 200);
    const again = await registrar.subscribe(1);
    assert.notEqual(header(again, "call-id"), dialog.callId);
    assert.equal(tagOf(header(again, "to")), undefined);
    assert.equal(again.startLine, `SUBSCRIBE ${AOR} SIP/2.0`);
    assert.deepEqual(again.headers.get("route"), [`<sip:127.0.0.1:${registrar.port};lr>`]);
    registrar.grant = "2"; // refreshed at 80 %, at least 1 s on
    dialog = await registrar.answer(again);
    registrar.grant = "3600";
    // The phone registered while there was no subscription: the new dialog's first document says so.
    await registrar.notify(dialog, { state: "full", online: true });
    assert.deepEqual(online.length, 3);
    const refresh = await registrar.subscribe(2, 3_000);
    assert.equal(refresh.startLine, `SUBSCRIBE ${registrar.uri} SIP/2.0`); // the registrar's Contact
    assert.equal(header(refresh, "call-id"), dialog.callId);
    assert.equal(tagOf(header(refresh, "to")), dialog.registrarTag);
    assert.equal(refresh.headers.get("route"), undefined); // no Record-Route: straight to the target
    // The refresh's NOTIFY (full state, still online) calls nothing.
    await registrar.socket.waitFor(
      (m) => m.status === 200 && header(m, "call-id") === dialog.callId && header(m, "cseq") === "2 NOTIFY",
    );
    assert.equal(online.length, 3);
  });

  it("unsubscribes with Expires: 0 on unwatch, acknowledges the last NOTIFY, and subscribes no more", async function () {
    const before = registrar.subscribes().length;
    await endpoint.reg?.unwatch("bob@example.org");
    const unsubscribe = registrar.subscribes()[before];
    assert.ok(unsubscribe, "no unsubscribe");
    assert.equal(header(unsubscribe, "expires"), "0");
    assert.equal(header(unsubscribe, "call-id"), dialog.callId);
    assert.equal(tagOf(header(unsubscribe, "to")), dialog.registrarTag);
    const last = await registrar.socket.waitFor(
      (m) =>
        m.status !== undefined && header(m, "call-id") === dialog.callId && header(m, "cseq") === "3 NOTIFY",
    );
    assert.equal(last.status, 200);
    await sleep(300);
    assert.equal(registrar.subscribes().length, before + 1);
    assert.equal(endpoint.reg?.size, 0);
    assert.equal(online.length, 3);
  });
});

describe("SIP reg watcher: refusals, bounds and retries", function () {
  let registrar: FakeRegistrar;
  let endpoint: SipEndpoint;
  let port: number;

  before(async function () {
    registrar = await FakeRegistrar.open();
    ({ endpoint, port } = await startSipEndpoint({
      // MWI too (its SUBSCRIBEs go unanswered here), for Allow-Events with both packages.
      mwi: {
        mailboxes: [{ person: "alice@example.org", uri: `sip:alice@127.0.0.1:${registrar.port}` }],
        sink: { mailboxChanged: () => Promise.resolve() },
        retryMs: 60_000,
      },
      regEvents: { registrar: registrar.uri, onOnline: () => undefined, retryMs: 100, maxWatched: 1 },
    }));
  });
  after(async function () {
    await endpoint?.stop();
    await registrar?.close();
  });

  it("answers NOTIFY of another package 489 listing both packages, and offers NOTIFY in Allow", async function () {
    const answer = await sendOutOfDialog(registrar.socket, port, {
      Event: "presence",
      "Subscription-State": "active",
    });
    assert.equal(answer.status, 489);
    assert.equal(header(answer, "allow-events"), "message-summary, reg");
    assert.equal((await sendOutOfDialog(registrar.socket, port, {})).status, 489); // no Event at all
    const callId = `${randomBytes(4).toString("hex")}@registrar`;
    await registrar.socket.send(
      buildRequest({
        method: "OPTIONS",
        uri: `sip:switchboard@127.0.0.1:${port}`,
        via: `UDP 127.0.0.1:${registrar.port}`,
        from: `<${AOR}>`,
        to: "<sip:switchboard@sip.example.org>",
        callId,
      }),
      port,
    );
    const allow = await registrar.socket.waitFor(
      (m) => m.status !== undefined && header(m, "call-id") === callId,
    );
    assert.match(header(allow, "allow") ?? "", /\bNOTIFY\b/);
  });

  it("answers a reg NOTIFY outside any subscription 481", async function () {
    const answer = await sendOutOfDialog(registrar.socket, port, {
      Event: "reg",
      "Subscription-State": "active",
      "Content-Type": "application/reginfo+xml",
    });
    assert.equal(answer.status, 481);
  });

  it("retries a refused SUBSCRIBE in a new dialog, and watches at most maxWatched AORs", async function () {
    assert.equal(endpoint.reg?.watch("carol@example.org", "not a sip uri"), false);
    assert.equal(endpoint.reg?.watch("carol@example.org", "sip:carol@example.org"), true);
    assert.equal(endpoint.reg?.watch("dave@example.org", "sip:dave@example.org"), false); // the bound is 1
    const first = await registrar.subscribe(0);
    await registrar.answer(first, 403, "Forbidden");
    const second = await registrar.subscribe(1);
    assert.equal(second.startLine, "SUBSCRIBE sip:carol@example.org SIP/2.0");
    assert.notEqual(header(second, "call-id"), header(first, "call-id"));
    await registrar.answer(second);
    // Unwatched at once, perhaps before the 200 arrived: the dialog it set up is ended either way.
    await endpoint.reg?.unwatch("carol@example.org");
    const unsubscribe = await registrar.socket.waitFor(
      (m) =>
        m.method === "SUBSCRIBE" &&
        header(m, "call-id") === header(second, "call-id") &&
        header(m, "expires") === "0",
    );
    assert.ok(tagOf(header(unsubscribe, "to")));
    assert.equal(endpoint.reg?.watch("dave@example.org", "sip:dave@example.org"), true);
  });
});

describe("SIP reg watcher: the route set of a reg SUBSCRIBE", function () {
  const cases: { name: string; registrar: string; proxy?: string; routes: string[] }[] = [
    {
      name: "the registrar, made loose",
      registrar: "sip:reg.example.org",
      routes: ["<sip:reg.example.org;lr>"],
    },
    {
      name: "the registrar's own parameters kept",
      registrar: "sip:reg.example.org:5070;transport=tcp;lr",
      routes: ["<sip:reg.example.org:5070;transport=tcp;lr>"],
    },
    {
      name: "a loose-routing outbound proxy first",
      registrar: "sip:reg.example.org",
      proxy: "sip:proxy.example.org;lr",
      routes: ["<sip:proxy.example.org;lr>", "<sip:reg.example.org;lr>"],
    },
    {
      name: "an outbound proxy that is the registrar, once",
      registrar: "sip:reg.example.org",
      proxy: "sip:reg.example.org:5060;lr",
      routes: ["<sip:reg.example.org;lr>"],
    },
    {
      name: "an outbound proxy without lr left out",
      registrar: "sip:reg.example.org",
      proxy: "sip:proxy.example.org",
      routes: ["<sip:reg.example.org;lr>"],
    },
  ];
  for (const { name, registrar, proxy, routes } of cases) {
    it(name, function () {
      assert.deepEqual(registrarRoutes(registrar, proxy), routes);
    });
  }
});
