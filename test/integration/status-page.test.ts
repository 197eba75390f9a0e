// The status page in a real browser (Debian's chromium, driven by playwright-core) against a real
// `switchboard start` and a real Prosody: it asks for http.auth, lists everyone the bridge knows,
// and shows a desk phone's PUBLISH and a relayed message as they happen, without a reload and
// without the message's body. The screenshot is saved to .tmp/screenshots/status-page.png.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { buildPidf } from "../../components/sip/pidf.js";
import { BridgeProcess } from "../harness/bridge-process.js";
import { freePort, tempDir } from "../harness/net.js";
import { Prosody } from "../harness/prosody.js";
import { publishPresence, sendSipMessage, UdpSipSocket } from "../harness/sip-socket.js";

/**
 * Polls an element's text from here: the page's CSP (script-src 'self') rightly forbids the eval
 * that waitForFunction with a source string would need.
 */
async function waitForText(page: Page, selector: string, expected: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | null = null;
  while (Date.now() < deadline) {
    last = await page.textContent(selector, { timeout: timeoutMs });
    if (last === expected) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${selector}: expected "${expected}" within ${timeoutMs} ms, last saw "${last}"`);
}

const SCREENSHOT_DIR = ".tmp/screenshots";
const BODY = "Secret plans for Friday";
const HOSTILE_NOTE = 'Call with <img src=x onerror="document.title=1"> Carol';

describe("status page in headless Chromium (real process, real Prosody)", function () {
  this.timeout(120_000);
  let prosody: Prosody;
  let bridge: BridgeProcess | undefined;
  let browser: Browser | undefined;
  let phone: UdpSipSocket | undefined;
  const dir = tempDir("status-page");

  before(async function () {
    prosody = await Prosody.start();
  });
  after(async function () {
    await browser?.close();
    if (bridge?.running) await bridge.stop();
    await phone?.close();
    await prosody?.stop();
    dir.remove();
  });

  it("shows presence changes and relayed messages live, behind basic auth", async function () {
    const grant = prosody.takeComponent();
    const sipPort = await freePort({ udp: true });
    const httpPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    bridge = BridgeProcess.start(dir.file("switchboard.yaml"), {
      domain: prosody.domain,
      xmpp: { component: { jid: grant.jid, host: grant.host, port: grant.port, secret: grant.secret } },
      sip: { listen: [`udp:127.0.0.1:${sipPort}`] },
      http: { listen: `127.0.0.1:${httpPort}`, auth: { username: "operator", password: "op-Pa55" } },
      directory: {
        users: [
          { uid: "bob", displayName: "Bob Baker", numbers: ["+442071234568"] },
          { uid: "dave", displayName: "Dave Dent", numbers: [] },
        ],
      },
    });
    await bridge.online();

    // Without the credentials: 401 with a Basic challenge; the probes stay open.
    const refused = await fetch(`${base}/`);
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get("www-authenticate") ?? "", /^Basic realm="Switchboard"/);
    assert.equal((await fetch(`${base}/events`)).status, 401);
    const basic = (credentials: string): { headers: { Authorization: string } } => ({
      headers: { Authorization: `Basic ${Buffer.from(credentials).toString("base64")}` },
    });
    for (const wrong of ["operator:wrong", "operator:op-Pa55x", "other:op-Pa55", "operator", ""]) {
      const answer = await fetch(`${base}/api/presence/bob%40example.org`, basic(wrong));
      assert.equal(answer.status, 401, `credentials ${JSON.stringify(wrong)}`);
    }
    assert.equal(
      (await fetch(`${base}/api/presence/bob%40example.org`, basic("operator:op-Pa55"))).status,
      200,
    );
    assert.equal((await fetch(`${base}/readyz`)).status, 200);

    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      // Running as root needs --no-sandbox; the rest keeps Chromium off the (closed) network.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 30_000,
    });
    const context = await browser.newContext({
      httpCredentials: { username: "operator", password: "op-Pa55" },
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    await page.goto(`${base}/`, { timeout: 15_000 });
    const row = (person: string): string => `#people tr[data-person="${person}"]`;
    assert.equal(await page.textContent(`${row("bob@example.org")} td.state`), "unavailable");
    assert.equal(await page.textContent(`${row("dave@example.org")} td.state`), "unavailable");
    await waitForText(page, "#live-state", "on");
    // A mark on this document: it must still be there after the updates (no reload happened).
    await page.evaluate('window.mark = "first load"');

    // Bob's desk phone PUBLISHes "on the phone": his row changes by itself.
    phone = await UdpSipSocket.open();
    const published = await publishPresence(phone, sipPort, {
      uri: "sip:bob@example.org",
      pidf: buildPidf("sip:bob@example.org", "on-the-phone", HOSTILE_NOTE),
    });
    assert.equal(published.status, 200);
    await waitForText(page, `${row("bob@example.org")} td.state`, "on-the-phone");
    // A note from the network is shown as text, never as markup.
    assert.equal(await page.textContent(`${row("bob@example.org")} td:nth-child(3)`), HOSTILE_NOTE);
    assert.equal(await page.locator(`${row("bob@example.org")} img`).count(), 0);
    assert.match(
      (await page.textContent(`${row("bob@example.org")} ul`)) ?? "",
      /^sip-publish \S+: on-the-phone/,
    );

    // Bob's phone writes to Alice: the message's metadata appears on top, its body nowhere.
    const sent = await sendSipMessage(phone, sipPort, {
      from: "sip:bob@example.org",
      to: "sip:alice@example.org",
      body: BODY,
    });
    assert.equal(sent.status, 200);
    await page.locator("#messages tbody tr").first().waitFor({ timeout: 5_000 });
    const cells = await page.locator("#messages tbody tr:first-child td").allTextContents();
    assert.deepEqual(cells.slice(1, 5), ["sip-to-xmpp", "bob@example.org", "alice@example.org", "accepted"]);
    assert.ok(!(await page.content()).includes(BODY), "no message body on the page");
    assert.equal(await page.evaluate("window.mark"), "first load");
    assert.deepEqual(errors, [], "no script error and no CSP violation");

    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const file = `${SCREENSHOT_DIR}/status-page.png`;
    const shot = await page.screenshot({ path: file, fullPage: true });
    assert.ok(shot.length > 1000, `a screenshot was written to ${file}`);

    // A reload shows the same, rendered by the server this time.
    await page.reload();
    assert.equal(await page.textContent(`${row("bob@example.org")} td.state`), "on-the-phone");
    assert.equal(await page.locator("#messages tbody tr").count(), 1);
    assert.equal(await page.textContent(`${row("bob@example.org")} td:nth-child(3)`), HOSTILE_NOTE);
    assert.equal(await page.locator(`${row("bob@example.org")} img`).count(), 0);
    await context.close();
  });
});
