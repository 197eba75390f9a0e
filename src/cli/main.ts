// The `switchboard` command line (DESIGN.md "External interface").
import { parseArgs } from "node:util";
import { formatResult, runProbes } from "../check/probe.js";
import { ConfigError, configPath, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { probesFor } from "./probes.js";
import { createLogger, startBridge, type Bridge } from "../app/bridge.js";
import { SwitchboardError } from "../domain/errors.js";

export const USAGE = `usage: switchboard <command> [options]

commands:
  start    [--config FILE]              run the bridge
  check    [--config FILE] [--no-probe] [--timeout MS]
                                        validate the config, then probe every configured component
  lookup   <number|address> [--json]    show how an address resolves
  presence <address> [--json]           show a user's aggregate and per-source presence

The config file is --config FILE, else $SWITCHBOARD_CONFIG, else config/switchboard.yaml.`;

/** Which options each command takes; anything else is a usage error, not silently ignored. */
const OPTIONS_BY_COMMAND: Record<string, string[] | undefined> = {
  check: ["config", "no-probe", "timeout"],
  start: ["config"],
  lookup: ["config", "json"],
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
      return run(config, io);
    }
    case "lookup":
    case "presence": {
      // Not built yet: say so plainly rather than pretend (see the open issues for each).
      io.err(
        `switchboard ${command}: not implemented yet in this version (the configuration can be checked with 'switchboard check')`,
      );
      return 1;
    }
    default:
      return usageError(io, `unknown command '${command}'`);
  }
}

/**
 * Runs the bridge until SIGTERM/SIGINT, then stops it and resolves 0. A rejection nobody handled is
 * logged with its reason and the bridge goes on: one failed flow must not take the others down.
 */
async function run(config: Config, io: Io): Promise<number> {
  const log = createLogger(config);
  let bridge: Bridge;
  try {
    bridge = await startBridge(config, log);
  } catch (err) {
    if (!(err instanceof SwitchboardError)) throw err;
    io.err(`switchboard start: ${err.message}`);
    return 1;
  }
  const onRejection = (reason: unknown): void => log.error({ err: String(reason) }, "unhandled rejection");
  process.on("unhandledRejection", onRejection);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "stopping");
  await bridge.stop();
  process.off("unhandledRejection", onRejection);
  log.info({}, "stopped");
  return 0;
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
