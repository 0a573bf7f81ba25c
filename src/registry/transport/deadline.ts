/**
 * The overall deadline of one request attempt. Stall timeouts bound silence, not duration: a
 * registry that sends one byte every few seconds is never silent and never done. So every
 * attempt runs on a schedule. After an allowance (the stall timeout: connection set-up and the
 * registry's first answer fit in it) the attempt must have moved, sent and received together,
 * at least the minimum rate's worth of bytes:
 *
 *   bytes moved by `t`  >=  minBytesPerSecond × (t − allowance)
 *
 * For a request that moves N bytes this is a total deadline of `allowance + N / minBytesPerSecond`
 * (a 600 MiB blob at the default 16 KiB/s: 60 s plus 10 h 40 min), checked as the bytes come,
 * so a trickle is cut off soon after the allowance, whatever size it announced. A request body
 * counts as moved as the connection takes it (the transport hands it over in slices).
 * A request with a wait of its own for the answer (the one that completes a blob upload, which
 * registries answer only once they have verified the blob) gets that wait added once its body
 * has been sent, not before: a registry that reads the upload slowly is cut off all the same.
 */

/** Default minimum average rate of a request once its allowance has passed. */
export const DEFAULT_MIN_BYTES_PER_SECOND = 16 * 1024;

export interface TransferPace {
  /** Time before the minimum rate applies (the stall timeout of the request). */
  readonly allowanceMs: number;
  readonly minBytesPerSecond: number;
}

/** Time for deadlines: monotonic, and injectable so tests can play hours in no time. */
export interface DeadlineTimers {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `callback` after `ms` milliseconds; returns a function that cancels the call. */
  schedule(ms: number, callback: () => void): () => void;
}

export const realDeadlineTimers: DeadlineTimers = {
  now: () => performance.now(),
  schedule: (ms, callback) => {
    const timer = setTimeout(callback, ms);
    // A deadline alone must not keep the process alive; the request's socket does while it lives.
    timer.unref();
    return () => {
      clearTimeout(timer);
    };
  },
};

/** What an expired deadline saw. */
export interface DeadlineReport {
  readonly elapsedMs: number;
  readonly bytesMoved: number;
}

/**
 * The schedule of one attempt. It keeps a single timer, set for the moment the bytes moved so
 * far run out of time; when it fires and more bytes came meanwhile, it is set again for later.
 */
export class TransferDeadline {
  private readonly startedAt: number;
  private moved = 0;
  private extraMs = 0;
  private cancelTimer: (() => void) | undefined;
  private over = false;

  constructor(
    private readonly pace: TransferPace,
    private readonly onExpired: (report: DeadlineReport) => void,
    private readonly timers: DeadlineTimers = realDeadlineTimers,
  ) {
    this.startedAt = timers.now();
    this.arm();
  }

  /** Counts bytes sent or received. */
  progress(bytes: number): void {
    this.moved += bytes;
  }

  /**
   * Adds `ms` to the allowance: a wait the request is entitled to on top of moving its bytes,
   * such as the registry verifying a whole uploaded blob before it answers.
   */
  extend(ms: number): void {
    this.extraMs += ms;
  }

  get bytesMoved(): number {
    return this.moved;
  }

  /** When the bytes moved so far run out of time (in `timers.now()` milliseconds). */
  dueAt(): number {
    return (
      this.startedAt +
      this.pace.allowanceMs +
      this.extraMs +
      (this.moved * 1000) / this.pace.minBytesPerSecond
    );
  }

  /** The attempt is over (done, failed or dropped): no more checks. */
  finish(): void {
    this.over = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private arm(): void {
    const wait = Math.max(1, Math.ceil(this.dueAt() - this.timers.now()));
    this.cancelTimer = this.timers.schedule(wait, () => {
      this.check();
    });
  }

  private check(): void {
    if (this.over) return;
    const now = this.timers.now();
    if (now < this.dueAt()) {
      this.arm();
      return;
    }
    this.over = true;
    this.cancelTimer = undefined;
    this.onExpired({ elapsedMs: now - this.startedAt, bytesMoved: this.moved });
  }
}

/** `16 KiB/s`, `1.5 KiB/s`, `512 B/s`. */
export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond < 1024) return `${Number(bytesPerSecond.toPrecision(3))} B/s`;
  return `${Number((bytesPerSecond / 1024).toPrecision(4))} KiB/s`;
}

/**
 * The summary of a `registry-timeout` error for an expired deadline. `answered`: whether the
 * response headers had come; without them and without a byte sent, it was silence all along.
 */
export function deadlineSummary(pace: TransferPace, report: DeadlineReport, answered: boolean): string {
  const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
  if (!answered && report.bytesMoved === 0) {
    return `timed out: no response headers in time (${seconds(pace.allowanceMs)} s)`;
  }
  return (
    `timed out: ${report.bytesMoved} bytes ${answered ? "moved" : "sent"} in ${seconds(report.elapsedMs)} s, ` +
    `below the minimum rate of ${formatRate(pace.minBytesPerSecond)} after the first ${seconds(pace.allowanceMs)} s`
  );
}
