#!/usr/bin/env node
// `switchboard` executable: runs the compiled CLI when built (npm run build), otherwise the
// TypeScript sources through tsx's loader.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = fileURLToPath(new URL("../../dist/src/cli/run.js", import.meta.url));
if (existsSync(compiled)) {
  await import(compiled);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("./run.ts");
}
