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
  /**
   * Copy tasks (source digest to its destinations) and destination pairs in the plan; unknown
   * (undefined) in a pipelined promotion, which learns its plan as it goes.
   */
  readonly totalTasks?: number;
  readonly totalDestinations?: number;
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
  /** Bytes sent in uploads that succeeded or are in flight (a failed attempt's bytes are taken back). */
  private bytes = 0;
  /** Sizes of the uploads that succeeded or are in flight: what `bytes` will reach. */
  private bytesStarted = 0;
  /** Uploads in flight, by destination and digest: their size and the bytes sent so far. */
  private readonly inFlight = new Map<string, { size: number; sent: number }>();
  /** When the first byte went out: the rate counts from there, not from the manifest reads. */
  private firstByteAt: number | undefined;
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
      case "blob-started": {
        const key = `${event.destination} ${event.digest}`;
        this.forgetAttempt(key);
        this.inFlight.set(key, { size: event.size, sent: 0 });
        this.bytesStarted += event.size;
        break;
      }
      case "blob-progress": {
        this.firstByteAt ??= this.now();
        this.bytes += event.bytes;
        const upload = this.inFlight.get(`${event.destination} ${event.digest}`);
        if (upload) upload.sent += event.bytes;
        break;
      }
      case "blob-uploaded": {
        const key = `${event.destination} ${event.digest}`;
        const upload = this.inFlight.get(key);
        // Done is the whole blob, whatever the progress events added up to.
        if (upload) this.bytes += upload.size - upload.sent;
        this.inFlight.delete(key);
        this.blobsUploaded += 1;
        break;
      }
      case "blob-failed":
        // A later attempt sends the blob again from its first byte.
        this.forgetAttempt(`${event.destination} ${event.digest}`);
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

  /** Takes back an unfinished attempt: its bytes and size leave the counts. */
  private forgetAttempt(key: string): void {
    const upload = this.inFlight.get(key);
    if (!upload) return;
    this.bytes -= upload.sent;
    this.bytesStarted -= upload.size;
    this.inFlight.delete(key);
  }

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

  /**
   * One line: bytes sent of the bytes of every upload begun so far, the rate, and the time left
   * for those bytes; destinations done of total; blobs uploading, uploaded, mounted, present. The
   * byte count moves during a long upload, when no destination or blob has finished yet. The
   * total grows as uploads begin (the copy learns the blobs of each image as it reads it).
   */
  statusLine(): string {
    const now = this.now();
    const { totalDestinations } = this.options;
    const done = this.destinationsDone;
    const failed = this.failures > 0 ? `, ${this.failures} failed` : "";
    const sending = this.firstByteAt === undefined ? 0 : Math.max(1, now - this.firstByteAt);
    const rate = sending > 0 ? (this.bytes / sending) * 1000 : 0;
    const left = this.bytesStarted - this.bytes;
    const eta = rate > 0 && left > 0 ? `, ~${formatDuration((left / rate) * 1000)} left` : "";
    const uploading = this.inFlight.size > 0 ? `${this.inFlight.size} uploading, ` : "";
    // Bytes first: a narrow terminal cuts the end of the line, and they are what moves.
    return (
      `copying: ${formatBytes(this.bytes)} of ${formatBytes(this.bytesStarted)} at ${formatBytes(rate)}/s${eta}; ` +
      `${done}${totalDestinations === undefined ? "" : `/${totalDestinations}`} image destinations${failed}; blobs ${uploading}${this.blobsUploaded} uploaded, ` +
      `${this.blobsMounted} mounted, ${this.blobsSkipped} present`
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
