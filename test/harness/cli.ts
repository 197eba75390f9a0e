// Runs the real `switchboard` executable (as an operator would) and captures its output.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

// The sources through tsx, never a possibly stale dist/ build.
const RUN = fileURLToPath(new URL("../../src/cli/run.ts", import.meta.url));

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
      { env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
