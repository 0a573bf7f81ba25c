import { formatBytes } from "../output/quantities.js";
import type { CopyEvent } from "../copy/index.js";
import type { Logger } from "../log.js";
import { formatDuration } from "./format.js";
import type { OutputStream } from "./io.js";

/**
 * Progress of a copy run: a live status line on a terminal, a plain line every
 * `PLAIN_INTERVAL_MS` otherwise (CI logs), or structured log lines (`--log-format json`).
 */
const TTY_INTERVAL_MS = 200;
const PLAIN_INTERVAL_MS = 10_000;

export interface ProgressOptions {
  readonly stream: OutputStream;
  readonly mode: "tty" | "plain" | "json" | "quiet";
  readonly logger: Logger;
  /** Copy tasks (source digest to its destinations) and destination pairs in the plan. */
  readonly totalTasks: number;
  readonly totalDestinations: number;
  readonly now?: () => number;
}

export class ProgressReporter {
  private readonly options: ProgressOptions;
  private readonly now: () => number;
  private readonly started: number;
  private timer: NodeJS.Timeout | undefined;
  private destinationsDone = 0;
  private failures = 0;
  private blobsUploaded = 0;
  private blobsMounted = 0;
  private blobsSkipped = 0;
  private bytes = 0;
  private lastLineLength = 0;

  constructor(options: ProgressOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
    if (options.mode === "tty" || options.mode === "plain") {
      const interval = options.mode === "tty" ? TTY_INTERVAL_MS : PLAIN_INTERVAL_MS;
      this.timer = setInterval(() => {
        this.render();
      }, interval);
      this.timer.unref();
    }
  }

  readonly onEvent = (event: CopyEvent): void => {
    switch (event.type) {
      case "blob-progress":
        this.bytes += event.bytes;
        break;
      case "blob-uploaded":
        this.blobsUploaded += 1;
        break;
      case "blob-mounted":
        this.blobsMounted += 1;
        break;
      case "blob-skipped":
        this.blobsSkipped += 1;
        break;
      case "destination-done":
        this.destinationsDone += 1;
        if (event.outcome.status === "failed" || event.outcome.status === "aborted") this.failures += 1;
        break;
      default:
        break;
    }
    if (this.options.mode === "json") this.logEvent(event);
  };

  private logEvent(event: CopyEvent): void {
    if (event.type === "blob-progress" || event.type === "source-read") return;
    if (event.type === "destination-done") {
      const { outcome } = event;
      this.options.logger.log(outcome.status === "failed" ? "error" : "info", "destination done", {
        event: event.type,
        task: event.taskId,
        destination: outcome.destination,
        digest: outcome.digest,
        status: outcome.status,
        tags: outcome.tagsWritten,
        bytes: outcome.stats.bytesWritten,
        durationMs: Math.round(outcome.durationMs),
        ...(outcome.error ? { error: outcome.error.message } : {}),
      });
      return;
    }
    const { type, ...fields } = event;
    this.options.logger.log(type === "blob-failed" ? "warn" : "debug", type, { event: type, ...fields });
  }

  /** One line: destinations done of total, blobs, bytes, rate, remaining. */
  statusLine(): string {
    const elapsed = Math.max(1, this.now() - this.started);
    const rate = (this.bytes / elapsed) * 1000;
    const { totalDestinations } = this.options;
    const done = this.destinationsDone;
    const remaining =
      done > 0 && done < totalDestinations
        ? `, ~${formatDuration((elapsed / done) * (totalDestinations - done))} left`
        : "";
    const failed = this.failures > 0 ? `, ${this.failures} failed` : "";
    return (
      `copying: ${done}/${totalDestinations} image destinations${failed}; blobs ${this.blobsUploaded} uploaded, ` +
      `${this.blobsMounted} mounted, ${this.blobsSkipped} present; ${formatBytes(this.bytes)} at ${formatBytes(rate)}/s${remaining}`
    );
  }

  private render(): void {
    const line = this.statusLine();
    if (this.options.mode === "tty") {
      const width = this.options.stream.columns ?? 120;
      const text = line.length >= width ? `${line.slice(0, width - 2)}…` : line;
      this.options.stream.write(`\r${text}${" ".repeat(Math.max(0, this.lastLineLength - text.length))}`);
      this.lastLineLength = text.length;
    } else {
      this.options.stream.write(`${line}\n`);
    }
  }

  /** Stops the display, leaving the terminal on a fresh line. */
  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.options.mode === "tty" && this.lastLineLength > 0) {
      this.options.stream.write(`\r${" ".repeat(this.lastLineLength)}\r`);
    }
  }
}
