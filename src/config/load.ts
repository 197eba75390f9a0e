// Loading the configuration: YAML file → ${ENV} substitution → schema validation. Every failure is
// a ConfigError whose message names the key path and what was expected.
import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { configSchema, type Config } from "./schema.js";

export const DEFAULT_CONFIG_PATH = "config/switchboard.yaml";

export interface ConfigProblem {
  /** Dotted key path, e.g. `xmpp.component.port`, or `(file)` for the file as a whole. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${file}: invalid configuration\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`);
  }
}

/** Which file to read: `--config`, else SWITCHBOARD_CONFIG, else the default path. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.SWITCHBOARD_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path.reduce<string>((out, key) => {
    if (typeof key === "number") return `${out}[${key}]`;
    return out ? `${out}.${String(key)}` : String(key);
  }, "");
}

function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "object") return "a mapping";
  return typeof value === "number" || typeof value === "boolean" ? String(value) : typeof value;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function problemsFrom(error: z.ZodError, input: unknown): ConfigProblem[] {
  return error.issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: "unknown key" }));
    }
    const got = valueAt(input, issue.path);
    const message =
      got === undefined && issue.code === "invalid_type"
        ? `required: ${issue.message}`
        : `${issue.message} (got ${describeValue(got)})`;
    return [{ path: formatPath(issue.path), message }];
  });
}

/**
 * Replaces `${NAME}` in every string value with the environment variable NAME, so secrets can stay
 * out of the file; `${NAME:-default}` falls back to `default` when NAME is unset or empty (as in
 * sh). `$${` writes a literal `${`. An unset variable without a default is an error naming the key.
 */
export function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: PropertyKey[] = [],
  problems: ConfigProblem[] = [],
): unknown {
  if (typeof value === "string") {
    return value.replace(
      /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (match, name: string, fallback: string | undefined) => {
        if (match.startsWith("$$")) return match.slice(1);
        const found = env[name];
        if (found !== undefined && (found !== "" || fallback === undefined)) return found;
        if (fallback !== undefined) return fallback;
        problems.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
        return "";
      },
    );
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnv(item, env, [...path, i], problems));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, substituteEnv(item, env, [...path, key], problems)]),
    );
  }
  return value;
}

/** Validates an already-parsed object (for tests and for reload). */
export function parseConfig(input: unknown, file = "(config)", env: NodeJS.ProcessEnv = process.env): Config {
  const problems: ConfigProblem[] = [];
  const substituted = substituteEnv(input, env, [], problems);
  if (problems.length > 0) throw new ConfigError(file, problems);
  const result = configSchema.safeParse(substituted);
  if (!result.success) throw new ConfigError(file, problemsFrom(result.error, substituted));
  return result.data;
}

export function parseConfigText(
  text: string,
  file = "(config)",
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((e) => ({
        path: "(file)",
        message: `YAML ${e.code}: ${e.message.split("\n")[0] ?? ""}`,
      })),
    );
  }
  const input: unknown = document.toJS({ maxAliasCount: 100 });
  if (input === null || input === undefined) {
    throw new ConfigError(file, [
      { path: "(top level)", message: "the file is empty; expected a mapping with at least domain and xmpp" },
    ]);
  }
  return parseConfig(input, file, env);
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : String(err);
    throw new ConfigError(file, [
      { path: "(file)", message: `${reason} (use --config FILE or SWITCHBOARD_CONFIG)` },
    ]);
  }
  return parseConfigText(text, file, env);
}
