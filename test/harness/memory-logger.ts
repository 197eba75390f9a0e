// A Logger that keeps every line, for tests that assert what the bridge said.
import type { Logger } from "../../src/ports/logger.js";

export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  fields: Record<string, unknown>;
  message: string;
}

export function memoryLogger(lines: LogLine[] = [], bound: object = {}): Logger & { lines: LogLine[] } {
  const at =
    (level: LogLine["level"]) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields: { ...bound, ...fields }, message });
    };
  return {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (fields) => memoryLogger(lines, { ...bound, ...fields }),
  };
}
