import type { Writable } from "node:stream";
import { UsageError } from "../../errors.js";
import type { LogFields, Logger, LogLevel } from "../../log.js";

/**
 * Loggers of the audit commands. The server writes one JSON object per line (what log shippers
 * and alerting on log lines expect): `{"time","level","message",...fields}`. One-shot commands
 * write short text lines for people.
 */

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return "info";
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, not ${JSON.stringify(value)}`);
  }
  return value as LogLevel;
}

function enabled(level: LogLevel, minimum: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(minimum);
}

export function jsonLineLogger(
  stream: Writable,
  minimum: LogLevel,
  now: () => Date = () => new Date(),
): Logger {
  return {
    log(level: LogLevel, message: string, fields: LogFields = {}): void {
      if (!enabled(level, minimum)) return;
      stream.write(`${JSON.stringify({ time: now().toISOString(), level, message, ...fields })}\n`);
    },
  };
}

export function textLogger(stream: Writable, minimum: LogLevel): Logger {
  return {
    log(level: LogLevel, message: string, fields: LogFields = {}): void {
      if (!enabled(level, minimum)) return;
      const details = Object.entries(fields)
        .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
        .join(" ");
      stream.write(`promoter: ${level}: ${message}${details ? ` (${details})` : ""}\n`);
    },
  };
}
