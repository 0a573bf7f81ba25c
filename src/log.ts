/**
 * Library code never prints: it reports through a `Logger` that the caller passes in. The CLI
 * decides how lines look (text for people, JSON for machines) and where they go.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

/** A logger that drops everything: the default for library calls that are not given one. */
export const silentLogger: Logger = {
  log() {
    // Intentionally empty.
  },
};

/** Collects lines in memory; for tests and for attaching logs to reports. */
export class MemoryLogger implements Logger {
  readonly lines: { level: LogLevel; message: string; fields: LogFields }[] = [];

  log(level: LogLevel, message: string, fields: LogFields = {}): void {
    this.lines.push({ level, message, fields });
  }
}
