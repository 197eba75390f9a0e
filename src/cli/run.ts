// Process entry point: run the CLI with the real stdout/stderr/env and exit with its code.
import { main } from "./main.js";

const code = await main(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
});
// Exit explicitly once output is flushed: a probe's socket left half-open by a silent peer must not
// keep the process alive after the results are printed.
process.stdout.write("", () => process.exit(code));
