// Runs the real `switchboard` executable (as an operator would) and captures its output.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

// The sources through tsx, never a possibly stale dist/ build.
const RUN = fileURLToPath(new URL("../../src/cli/run.ts", import.meta.url));

/**
 * The environment for a child `switchboard`: ours without NODE_V8_COVERAGE, because c8 merges a
 * child's coverage of the same sources badly (its ranges mark code as unrun that the tests ran).
 */
export function childEnv(): NodeJS.ProcessEnv {
  // Node copies NODE_V8_COVERAGE into a child's environment unless it is set there: set it empty.
  return { ...process.env, NODE_V8_COVERAGE: "" };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function switchboard(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", RUN, ...args],
      { env: { ...childEnv(), ...options.env }, timeout: options.timeoutMs ?? 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
