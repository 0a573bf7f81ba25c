import type { Writable } from "node:stream";
import { UsageError } from "../errors.js";
import type { LogFields, Logger, LogLevel } from "../log.js";
import { jsonText, textValue } from "../output/encode.js";

export type LogFormat = "text" | "json";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export const LOG_LEVELS = Object.keys(LEVEL_RANK) as readonly LogLevel[];

/** `--log-level` (default info). */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return "info";
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, not ${JSON.stringify(value)}`);
  }
  return value as LogLevel;
}

/**
 * The CLI's logger: text lines for people (`promoter: warn: message (key=value)`) or one JSON
 * object per line, `{"time","level","message",...fields}`, for log collectors and alerting on log
 * lines (`--log-format json`, and always for `audit serve`). Library code reaches the terminal
 * only through this. Messages and fields carry outside text (registry errors, names): a text
 * line is encoded whole with `textValue` (it stays one line and runs nothing), a JSON line with
 * `jsonText`; the stream is the run's guarded one, which removes known secrets.
 */
export function createCliLogger(
  stream: Writable,
  options: { format: LogFormat; level?: LogLevel; now?: () => Date },
): Logger {
  const threshold = LEVEL_RANK[options.level ?? "info"];
  const now = options.now ?? (() => new Date());
  return {
    accepts: (level: LogLevel) => LEVEL_RANK[level] >= threshold,
    log(level: LogLevel, message: string, fields: LogFields = {}) {
      if (LEVEL_RANK[level] < threshold) return;
      if (options.format === "json") {
        stream.write(`${jsonText({ time: now().toISOString(), level, message, ...jsonFields(fields) })}\n`);
        return;
      }
      const extra = Object.entries(jsonFields(fields))
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
        .join(" ");
      stream.write(`${textValue(`promoter: ${level}: ${message}${extra ? ` (${extra})` : ""}`)}\n`);
    },
  };
}

function jsonFields(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? value.message : value;
  }
  return out;
}
