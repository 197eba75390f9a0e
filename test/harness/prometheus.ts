// Prometheus text parsed by an independent parser: prometheus_client's (Debian
// python3-prometheus-client), run with the system python (see prom_parse.py).
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SYSTEM_PYTHON } from "./xmpp-client.js";

const SCRIPT = fileURLToPath(new URL("./prom_parse.py", import.meta.url));

export interface Sample {
  family: string;
  type: string;
  name: string;
  labels: Record<string, string>;
  value: number | "+Inf" | null;
}

export interface Exposition {
  families: { name: string; type: string }[];
  samples: Sample[];
}

/** Rejects with the parser's message when `text` is not valid exposition format. */
export function parsePrometheus(text: string): Promise<Exposition> {
  return new Promise((resolve, reject) => {
    const child = execFile(SYSTEM_PYTHON, [SCRIPT], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${stderr.trim() || err.message}`));
      else resolve(JSON.parse(stdout) as Exposition);
    });
    child.stdin?.end(text);
  });
}

/** The value of the sample `name` whose labels include `labels`; 0 when there is none yet. */
export function sampleValue(
  { samples }: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found.reduce((sum, s) => sum + (typeof s.value === "number" ? s.value : 0), 0);
}
