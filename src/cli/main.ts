// The `switchboard` command line (DESIGN.md "External interface").
import { lookup } from "./lookup.js";
import { parseArgs } from "node:util";
import { formatResult, runProbes } from "../check/probe.js";
import { ConfigError, configPath, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { probesFor } from "./probes.js";
import { createLogger, startBridge, type Bridge, type BridgeLogger } from "../app/bridge.js";
import { AddressError, SwitchboardError } from "../domain/errors.js";
import {
  BridgeUnreachableError,
  bridgeUrl,
  formatDuration,
  getBridgeJson,
  NotABridgeError,
  personForAddress,
  presencePath,
  type PresenceView,
  type SourceView,
} from "../../components/http/http-server.js";

export const USAGE = `usage: switchboard <command> [options]

commands:
  start    [--config FILE]              run the bridge
  check    [--config FILE] [--no-probe] [--timeout MS]
                                        validate the config, then probe every configured component
  lookup   <number|address> [--json] [--tenant DOMAIN]
                                        show how an address resolves (in a tenant's directory)
  presence <address> [--json] [--config FILE]
                                        show a user's aggregate and per-source presence, as the
                                        running bridge sees it (asked at http.listen)

The config file is --config FILE, else $SWITCHBOARD_CONFIG, else config/switchboard.yaml.`;

/** Which options each command takes; anything else is a usage error, not silently ignored. */
const OPTIONS_BY_COMMAND: Record<string, string[] | undefined> = {
  check: ["config", "no-probe", "timeout"],
  start: ["config"],
  lookup: ["config", "json", "tenant"],
  presence: ["config", "json"],
};

export interface Io {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

/** Exit codes: 0 success, 1 the check or the command failed, 2 usage error. */
export async function main(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        "no-probe": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        timeout: { type: "string" },
        tenant: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    io.err(`switchboard: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || command === undefined || command === "help") {
    if (command === undefined && !parsed.values.help) {
      io.err(USAGE);
      return 2;
    }
    io.out(USAGE);
    return 0;
  }
  const allowed = OPTIONS_BY_COMMAND[command];
  if (allowed) {
    const stray = Object.keys(parsed.values).filter((name) => !allowed.includes(name) && name !== "help");
    const given = stray.filter((name) => parsed.values[name as keyof typeof parsed.values] !== false);
    if (given.length > 0) return usageError(io, `${command} does not take --${given.join(", --")}`);
  }
  const file = configPath(parsed.values.config, io.env);

  switch (command) {
    case "check": {
      if (rest.length > 0) return usageError(io, `check takes no arguments (got ${rest.join(" ")})`);
      const config = load(file, io);
      if (!config) return 1;
      io.out(
        `ok   config     ${file}: valid (domain ${config.domain}, gateway ${config.xmpp.component.jid})`,
      );
      if (parsed.values["no-probe"]) return 0;
      const timeoutMs = parsed.values.timeout === undefined ? 5_000 : Number(parsed.values.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
        return usageError(io, "--timeout expects milliseconds");
      const results = await runProbes(probesFor(config), timeoutMs);
      for (const result of results) io.out(formatResult(result));
      const failed = results.filter((r) => !r.ok);
      if (failed.length > 0) {
        io.err(`check failed: ${failed.map((r) => `${r.component} (${r.keyPath})`).join(", ")}`);
        return 1;
      }
      return 0;
    }
    case "start": {
      if (rest.length > 0) return usageError(io, `start takes no arguments (got ${rest.join(" ")})`);
      const config = load(file, io);
      if (!config) return 1;
      return run(config, file, io);
    }
    case "presence": {
      const [address, ...extra] = rest;
      if (address === undefined) return usageError(io, "presence needs an address, e.g. alice@example.org");
      if (extra.length > 0) return usageError(io, `presence takes one address (got ${rest.join(" ")})`);
      const config = load(file, io);
      if (!config) return 1;
      return presence(config, address, parsed.values.json, io);
    }
    case "lookup": {
      const [input, ...extra] = rest;
      if (input === undefined)
        return usageError(io, "lookup needs a number or address, e.g. 8001 or +442071234567");
      if (extra.length > 0)
        return usageError(io, `lookup takes one number or address (got ${rest.join(" ")})`);
      const config = load(file, io);
      if (!config) return 1;
      try {
        return await lookup(config, input, parsed.values.json, io, parsed.values.tenant);
      } catch (err) {
        io.err(`switchboard lookup: ${err instanceof Error ? err.message : String(err)}`);
        return 1;
      }
    }
    default:
      return usageError(io, `unknown command '${command}'`);
  }
}

/**
 * Runs the bridge until SIGTERM/SIGINT, then stops it gracefully and resolves 0. SIGHUP reads the
 * config file again and applies what can change while running. A rejection nobody handled is
 * logged with its reason and the bridge goes on: one failed flow must not take the others down.
 */
async function run(config: Config, file: string, io: Io): Promise<number> {
  const log = createLogger(config);
  // From the start: a SIGHUP's default action would end the process (and systemd would not restart
  // it). One that comes while starting is answered once the bridge is up.
  let bridge: Bridge | undefined;
  let hangupWhileStarting = false;
  const onHangup = (): void => {
    if (bridge) reload(file, io.env, bridge, log);
    else hangupWhileStarting = true;
  };
  process.on("SIGHUP", onHangup);
  try {
    bridge = await startBridge(config, log);
  } catch (err) {
    process.off("SIGHUP", onHangup);
    if (!(err instanceof SwitchboardError)) throw err;
    io.err(`switchboard start: ${err.message}`);
    return 1;
  }
  if (hangupWhileStarting) reload(file, io.env, bridge, log);
  const onRejection = (reason: unknown): void => log.error({ err: String(reason) }, "unhandled rejection");
  process.on("unhandledRejection", onRejection);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "stopping");
  await bridge.stop();
  process.off("SIGHUP", onHangup);
  process.off("unhandledRejection", onRejection);
  log.info({}, "stopped");
  return 0;
}

/**
 * SIGHUP: the config file read again. An invalid file, or one asking for what is not built, is
 * refused with the reason and the running config stays; otherwise what may change while running
 * is applied (log level, directory entries, allowed domains) and the keys that need a restart are
 * named (never their values).
 */
function reload(file: string, env: NodeJS.ProcessEnv, bridge: Bridge, log: BridgeLogger): void {
  let next: Config;
  try {
    next = loadConfig(file, env);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log.error({ file, reason }, "config reload refused: the running config stays");
    return;
  }
  let plan;
  try {
    plan = bridge.reload(next);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log.error({ file, reason }, "config reload refused: the running config stays");
    return;
  }
  log.level = next.log.level;
  log.info({ file, applied: plan.apply }, "config reloaded");
  if (plan.restart.length > 0)
    log.warn({ keys: plan.restart }, "config changes that need a restart were not applied");
}

/** How long `presence` waits for the bridge's answer. */
const BRIDGE_TIMEOUT_MS = 5_000;

/**
 * `switchboard presence <address>`: asks the running bridge (GET /api/presence/<address> at
 * http.listen) rather than the store, so it shows what the bridge sees whichever store it uses.
 */
async function presence(config: Config, address: string, json: boolean, io: Io): Promise<number> {
  // Refuse a malformed address here, as a usage error, before bothering the bridge.
  try {
    personForAddress(address, { homeDomain: config.domain, gatewayDomain: config.xmpp.component.jid });
  } catch (err) {
    if (err instanceof AddressError) return usageError(io, `bad address: ${err.message}`);
    throw err;
  }
  const base = bridgeUrl(config.http.listen);
  let answer;
  try {
    answer = await getBridgeJson(base, presencePath(address), BRIDGE_TIMEOUT_MS, config.http.auth);
  } catch (err) {
    if (err instanceof BridgeUnreachableError) {
      io.err(
        `switchboard presence: cannot reach the bridge at ${base} (http.listen): ${err.message} — is \`switchboard start\` running?`,
      );
      return 1;
    }
    if (err instanceof NotABridgeError) {
      io.err(
        `switchboard presence: the server at ${base} (http.listen) did not answer as a Switchboard bridge: ${err.message}`,
      );
      return 1;
    }
    throw err;
  }
  if (answer.status !== 200 || !isPresenceView(answer.body)) {
    const body = answer.body as { error?: unknown } | null;
    const reason = typeof body?.error === "string" ? body.error : "an unexpected answer";
    io.err(`switchboard presence: the bridge at ${base} answered ${answer.status}: ${reason}`);
    return 1;
  }
  if (json) io.out(JSON.stringify(answer.body, null, 2));
  else for (const line of formatPresence(answer.body)) io.out(line);
  return 0;
}

function isPresenceView(body: unknown): body is PresenceView {
  const view = body as Partial<PresenceView> | null;
  return (
    typeof view?.person === "string" &&
    typeof view.now === "string" &&
    typeof view.aggregate?.state === "string" &&
    Array.isArray(view.sources)
  );
}

/**
 * Text from the network, made safe for a terminal: control characters (escape sequences) and
 * bidirectional overrides are shown as \uXXXX, not obeyed.
 */
function printable(text: string): string {
  return text.replace(
    /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function expiryText(source: SourceView): string {
  if (source.expiresInSeconds === null) return "never";
  return source.live
    ? `in ${formatDuration(source.expiresInSeconds)}`
    : `expired ${formatDuration(-source.expiresInSeconds)} ago`;
}

/**
 * The human form of a presence view: the aggregate on one line, then one line per source with its
 * age and expiry, in aligned columns.
 */
export function formatPresence(view: PresenceView): string[] {
  const { aggregate } = view;
  let head = `${view.person}: ${aggregate.state}`;
  if (aggregate.note !== null) head += ` "${aggregate.note}"`;
  if (aggregate.since !== null) {
    const ago = Math.floor((Date.parse(view.now) - Date.parse(aggregate.since)) / 1000);
    head += ` since ${aggregate.since} (${formatDuration(ago)} ago)`;
  }
  if (aggregate.winner !== null) {
    head += `, from ${aggregate.winner.kind}${aggregate.winner.id === null ? "" : ` ${aggregate.winner.id}`}`;
  }
  if (view.sources.length === 0) return [printable(head), "no presence sources"];
  const rows = [
    ["SOURCE", "ID", "STATE", "NOTE", "AGE", "EXPIRES"],
    ...view.sources.map((s) =>
      [
        s.kind,
        s.id ?? "-",
        s.state ?? "(not set)",
        s.note ?? "-",
        formatDuration(s.ageSeconds),
        expiryText(s),
      ].map(printable),
    ),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  const table = rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
  return [printable(head), ...table];
}

function usageError(io: Io, message: string): number {
  io.err(`switchboard: ${message}\n\n${USAGE}`);
  return 2;
}

function load(file: string, io: Io): Config | undefined {
  try {
    return loadConfig(file, io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message);
      return undefined;
    }
    throw err;
  }
}
