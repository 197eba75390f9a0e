// Rewrites docs/benchmarks.md from result files (bench/results/*.json), merged in the order given:
// e.g. a full run and a separate soak run (`BENCH_ONLY=soak BENCH_SOAK_MINUTES=10 npm run bench`).
//   npx tsx bench/report-cli.ts bench/results/<full>.json bench/results/<soak>.json
import { readFileSync } from "node:fs";
import { writeReport } from "./report.js";

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write("usage: tsx bench/report-cli.ts RESULTS.json [MORE.json ...]\n");
  process.exit(2);
}
const merged: Record<string, unknown> = {};
for (const file of files)
  Object.assign(merged, JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>);
// The machine and the time span are the first file's; a later file adds or replaces scenarios.
Object.assign(merged, JSON.parse(readFileSync(files[0] ?? "", "utf8")) as Record<string, unknown>, {
  soak: merged.soak,
});
writeReport(merged, files.join(", "));
process.stdout.write("docs/benchmarks.md written\n");
