// Generates docs/config-reference.md from the schema, so the reference cannot drift from it.
// `npm run docs:config` rewrites the file; a unit test fails when it is out of date.
import { z } from "zod";
import { configSchema } from "./schema.js";

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  anyOf?: JsonSchema[];
}

function typeOf(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" \\| ");
  if (schema.type === "array") return `list of ${schema.items ? typeOf(schema.items) : "values"}`;
  if (schema.type === "integer") {
    return schema.minimum !== undefined && schema.maximum !== undefined
      ? `integer ${schema.minimum}–${schema.maximum}`
      : "integer";
  }
  if (Array.isArray(schema.type)) return schema.type.join(" \\| ");
  return schema.type ?? "value";
}

function rows(schema: JsonSchema, prefix: string, out: string[]): void {
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const isRequired = (schema.required ?? []).includes(key) && child.default === undefined;
    const shown = child.type === "object" ? "mapping" : typeOf(child);
    const def =
      child.default === undefined || child.type === "object" ? "" : `\`${JSON.stringify(child.default)}\``;
    out.push(`| \`${path}\` | ${shown} | ${isRequired ? "yes" : ""} | ${def} | ${child.description ?? ""} |`);
    if (child.type === "object") rows(child, path, out);
    if (child.type === "array" && child.items?.type === "object") rows(child.items, `${path}[]`, out);
  }
}

export function configReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input" }) as JsonSchema;
  const out = [
    "# Configuration reference",
    "",
    "Generated from `src/config/schema.ts` by `npm run docs:config`; do not edit by hand.",
    "`config/switchboard.example.yaml` shows every key in context. Any string may use `${ENV_VAR}` or",
    '`${ENV_VAR:-default}`; unknown keys are errors. "Required" means required when its section is present.',
    "",
    "| key | type | required | default | meaning |",
    "|---|---|---|---|---|",
  ];
  rows(schema, "", out);
  return `${out.join("\n")}\n`;
}
