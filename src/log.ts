/**
 * Library code never prints: it reports through a `Logger` that the caller passes in. The CLI
 * decides how lines look (text for people, JSON for machines) and where they go.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
  /**
   * Whether a line of `level` would be written. Optional: a logger without it takes every level.
   * Callers that log once per request ask first, so that a run that does not show debug lines
   * does not build (and redact) one per request.
   */
  accepts?(level: LogLevel): boolean;
}

/** Whether `logger` writes lines of `level` (see `Logger.accepts`). */
export function logsAt(logger: Logger | undefined, level: LogLevel): boolean {
  return logger !== undefined && (logger.accepts?.(level) ?? true);
}

/** A logger that drops everything: the default for library calls that are not given one. */
export const silentLogger: Logger = {
  log() {
    // Intentionally empty.
  },
  accepts: () => false,
};

/** Collects lines in memory; for tests and for attaching logs to reports. */
export class MemoryLogger implements Logger {
  readonly lines: { level: LogLevel; message: string; fields: LogFields }[] = [];

  log(level: LogLevel, message: string, fields: LogFields = {}): void {
    this.lines.push({ level, message, fields });
  }
}
