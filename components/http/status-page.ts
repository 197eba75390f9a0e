// The live part of the status page (GET /): every known person's aggregate presence with each
// source's detail, and the last relayed messages' metadata (never a body), kept up to date by
// Server-Sent Events (GET /events) and a small script (GET /status.js) with no dependency. The page
// is whole without the script; the script only replaces rows as events arrive, writing text, never
// markup, so nothing from the network is ever parsed as HTML.
import type { ServerResponse } from "node:http";
import type { RelayedMessage } from "../../src/messages/recent-messages.js";
import type { PresenceView } from "./http-server.js";

/** What the status page shows, supplied by the bridge. */
export interface StatusSource {
  /** Everyone the bridge knows: people with presence, directory entries, PBX users. */
  people(): Promise<string[]>;
  /** Calls `listener` with the person key on each change of an aggregate; returns the unsubscribe. */
  onPresence(listener: (person: string) => void): () => void;
  /** The last relayed messages, newest first. */
  messages(): RelayedMessage[];
  /** Calls `listener` on each relayed message; returns the unsubscribe. */
  onMessage(listener: (message: RelayedMessage) => void): () => void;
}

/** Most people listed on the page (the others are a search away, in the address form). */
export const MAX_PEOPLE = 500;

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** One source of a person as a line of text: `xmpp phone: chat "Around" · 12s ago`. */
function sourceText(source: PresenceView["sources"][number]): string {
  const id = source.id === null ? "" : ` ${source.id}`;
  const note = source.note === null ? "" : ` "${source.note}"`;
  const expired = source.live ? "" : " (expired)";
  return `${source.kind}${id}: ${source.state ?? "(not set)"}${note}${expired}`;
}

/** A person's row; status.js builds the same cells from the same view (see rowCells there). */
export function personRow(view: PresenceView): string {
  const { aggregate } = view;
  const sources = view.sources.map((s) => `<li>${escapeHtml(sourceText(s))}</li>`).join("");
  return (
    `<tr data-person="${escapeHtml(view.person)}">` +
    `<td>${escapeHtml(view.person)}</td>` +
    `<td class="state state-${escapeHtml(aggregate.state)}">${escapeHtml(aggregate.state)}</td>` +
    `<td>${escapeHtml(aggregate.note ?? "")}</td>` +
    `<td>${escapeHtml(aggregate.since ?? "")}</td>` +
    `<td><ul>${sources}</ul></td></tr>`
  );
}

export function messageRow(message: RelayedMessage): string {
  const cells = [
    new Date(message.at).toISOString(),
    message.direction,
    message.from,
    message.to,
    message.outcome,
    `${message.ms.toFixed(1)} ms`,
  ];
  return `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`;
}

export function peopleSection(views: PresenceView[], total: number): string {
  const shown =
    total > views.length ? `<p>Showing ${views.length} of ${total}; find others by address.</p>` : "";
  return [
    "<h2>People</h2>",
    shown,
    '<table id="people"><thead><tr><th>Person</th><th>State</th><th>Note</th><th>Since</th>' +
      "<th>Sources</th></tr></thead><tbody>",
    ...views.map(personRow),
    "</tbody></table>",
  ].join("\n");
}

export function messagesSection(messages: RelayedMessage[]): string {
  return [
    "<h2>Recent messages</h2>",
    '<table id="messages"><thead><tr><th>At</th><th>Direction</th><th>From</th><th>To</th>' +
      "<th>Outcome</th><th>Took</th></tr></thead><tbody>",
    ...messages.map(messageRow),
    "</tbody></table>",
    '<p id="live">Live updates: <span id="live-state">off (no script)</span></p>',
  ].join("\n");
}

/**
 * The page's script: listens to /events and replaces a person's row (or adds one) on `presence`,
 * and adds a row on top on `message`. DOM text only (textContent), never innerHTML.
 */
export const STATUS_SCRIPT = `"use strict";
(function () {
  var MAX_MESSAGES = 50;
  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }
  function sourceText(s) {
    return s.kind + (s.id === null ? "" : " " + s.id) + ": " + (s.state === null ? "(not set)" : s.state) +
      (s.note === null ? "" : ' "' + s.note + '"') + (s.live ? "" : " (expired)");
  }
  function personRow(view) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-person", view.person);
    tr.appendChild(cell(view.person));
    tr.appendChild(cell(view.aggregate.state, "state state-" + view.aggregate.state));
    tr.appendChild(cell(view.aggregate.note === null ? "" : view.aggregate.note));
    tr.appendChild(cell(view.aggregate.since === null ? "" : view.aggregate.since));
    var td = document.createElement("td");
    var ul = document.createElement("ul");
    view.sources.forEach(function (s) {
      var li = document.createElement("li");
      li.textContent = sourceText(s);
      ul.appendChild(li);
    });
    td.appendChild(ul);
    tr.appendChild(td);
    return tr;
  }
  function messageRow(m) {
    var tr = document.createElement("tr");
    [new Date(m.at).toISOString(), m.direction, m.from, m.to, m.outcome, m.ms.toFixed(1) + " ms"].forEach(
      function (text) { tr.appendChild(cell(text)); });
    return tr;
  }
  var state = document.getElementById("live-state");
  var people = document.querySelector("#people tbody");
  var messages = document.querySelector("#messages tbody");
  if (!state || !people || !messages || typeof EventSource === "undefined") return;
  state.textContent = "connecting";
  var events = new EventSource("/events");
  var lost = false;
  events.onopen = function () {
    // Back after a gap: changes made meanwhile were never sent; the server's page has them.
    if (lost) { location.reload(); return; }
    state.textContent = "on";
  };
  events.onerror = function () {
    lost = true;
    // CLOSED: the server refused the stream (401, 503); the browser will not try again.
    state.textContent = events.readyState === EventSource.CLOSED ? "off (reload the page)" : "reconnecting";
  };
  events.addEventListener("presence", function (e) {
    var view = JSON.parse(e.data);
    var row = personRow(view);
    var rows = people.querySelectorAll("tr");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-person") === view.person) { people.replaceChild(row, rows[i]); return; }
    }
    people.appendChild(row);
  });
  events.addEventListener("message", function (e) {
    messages.insertBefore(messageRow(JSON.parse(e.data)), messages.firstChild);
    while (messages.children.length > MAX_MESSAGES) messages.removeChild(messages.lastChild);
  });
})();
`;

/** Most event streams open at once; one more is answered 503. */
export const MAX_EVENT_CLIENTS = 50;
const HEARTBEAT_MS = 15_000;
/** Changes to one person within this window go out as one event (a fan-out storm stays cheap). */
const COALESCE_MS = 100;

/**
 * The open /events streams: presence changes (coalesced per person, one snapshot each) and relayed
 * messages are written to every stream as Server-Sent Events.
 */
export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly pending = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[];

  constructor(
    source: StatusSource,
    private readonly view: (person: string) => Promise<PresenceView>,
    private readonly onError: (err: unknown) => void,
  ) {
    this.unsubscribe = [
      source.onPresence((person) => this.presenceChanged(person)),
      // Nothing is serialised while nobody watches: this runs for every relayed message.
      source.onMessage((message) => {
        if (this.clients.size > 0) this.broadcast("message", JSON.stringify(message));
      }),
    ];
    this.heartbeat = setInterval(() => this.write(": keepalive\n\n"), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes a response as a new stream; false when there are too many already. */
  add(res: ServerResponse): boolean {
    if (this.clients.size >= MAX_EVENT_CLIENTS) return false;
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    });
    res.write("retry: 2000\n\n");
    this.clients.add(res);
    res.on("close", () => this.clients.delete(res));
    return true;
  }

  private presenceChanged(person: string): void {
    if (this.clients.size === 0) return;
    this.pending.add(person);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      const people = [...this.pending];
      this.pending.clear();
      for (const person of people) {
        this.view(person).then(
          (view) => this.broadcast("presence", JSON.stringify(view)),
          (err: unknown) => this.onError(err),
        );
      }
    }, COALESCE_MS);
  }

  private broadcast(event: string, data: string): void {
    // JSON has no raw newlines, so one data: line carries it.
    this.write(`event: ${event}\ndata: ${data}\n\n`);
  }

  private write(text: string): void {
    for (const client of this.clients) if (!client.destroyed) client.write(text);
  }

  close(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.flushTimer);
    for (const stop of this.unsubscribe) stop();
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}
