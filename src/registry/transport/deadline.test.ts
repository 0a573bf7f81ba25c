import { describe, expect, it } from "vitest";
import {
  deadlineSummary,
  DEFAULT_MIN_BYTES_PER_SECOND,
  formatRate,
  TransferDeadline,
  type DeadlineReport,
  type DeadlineTimers,
} from "./deadline.js";

/** Timers driven by the test: `advance` runs what falls due, in order. */
class ManualTimers implements DeadlineTimers {
  private time = 0;
  private readonly pending: { at: number; callback: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.time;
  }

  schedule(ms: number, callback: () => void): () => void {
    const entry = { at: this.time + ms, callback, cancelled: false };
    this.pending.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.pending
        .filter((entry) => !entry.cancelled && entry.at <= until)
        .sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.pending.splice(this.pending.indexOf(due), 1);
      this.time = Math.max(this.time, due.at);
      due.callback();
    }
    this.time = until;
  }

  get waiting(): number {
    return this.pending.filter((entry) => !entry.cancelled).length;
  }
}

const MiB = 1024 * 1024;

function start(allowanceMs: number, minBytesPerSecond = DEFAULT_MIN_BYTES_PER_SECOND) {
  const timers = new ManualTimers();
  const expired: DeadlineReport[] = [];
  const deadline = new TransferDeadline(
    { allowanceMs, minBytesPerSecond },
    (report) => expired.push(report),
    timers,
  );
  return { timers, expired, deadline };
}

/** Moves `total` bytes in `chunk`-byte steps at `bytesPerSecond`; stops early once expired. */
function transfer(
  run: ReturnType<typeof start>,
  total: number,
  bytesPerSecond: number,
  chunk = 64 * 1024,
): void {
  for (let moved = 0; moved < total && run.expired.length === 0; moved += chunk) {
    run.timers.advance((chunk / bytesPerSecond) * 1000);
    run.deadline.progress(chunk);
  }
}

describe("TransferDeadline", () => {
  it("lets a slow but honest 600 MiB blob through: 20 KiB/s for eight and a half hours", () => {
    const run = start(60_000);
    transfer(run, 600 * MiB, 20 * 1024);
    expect(run.expired).toEqual([]);
    expect(run.timers.now()).toBeGreaterThan(8 * 3600_000);
    run.deadline.finish();
    expect(run.timers.waiting).toBe(0);
  });

  it("cuts off a 600 MiB blob that moves below the minimum rate, by its size deadline at the latest", () => {
    const run = start(60_000);
    transfer(run, 600 * MiB, 12 * 1024);
    expect(run.expired).toHaveLength(1);
    const sizeDeadline = 60_000 + ((600 * MiB) / DEFAULT_MIN_BYTES_PER_SECOND) * 1000;
    expect(run.expired[0]!.elapsedMs).toBeLessThan(sizeDeadline);
  });

  it("cuts off a trickle of one byte every 2 s soon after the allowance", () => {
    const run = start(3000);
    for (let i = 0; i < 10 && run.expired.length === 0; i++) {
      run.timers.advance(2000);
      run.deadline.progress(1);
    }
    expect(run.expired).toHaveLength(1);
    expect(run.expired[0]!.elapsedMs).toBeGreaterThanOrEqual(3000);
    expect(run.expired[0]!.elapsedMs).toBeLessThan(4000);
    expect(run.expired[0]!.bytesMoved).toBe(1);
  });

  it("expires at the allowance when nothing moves (a HEAD that gets no answer)", () => {
    const run = start(5000);
    run.timers.advance(4999);
    expect(run.expired).toEqual([]);
    run.timers.advance(1);
    expect(run.expired).toEqual([{ elapsedMs: 5000, bytesMoved: 0 }]);
  });

  it("lets bytes moved early pay for a pause later (the average counts)", () => {
    const run = start(1000, 1024);
    run.deadline.progress(10 * 1024); // 10 s of credit at 1 KiB/s, right away
    run.timers.advance(10_500);
    expect(run.expired).toEqual([]);
    run.timers.advance(600);
    expect(run.expired).toHaveLength(1);
  });

  it("grants an extension (the wait for an upload's answer) on top of the schedule", () => {
    const run = start(1000, 1024);
    run.deadline.progress(1024);
    run.deadline.extend(10_000);
    run.timers.advance(11_999);
    expect(run.expired).toEqual([]);
    run.timers.advance(2);
    expect(run.expired).toHaveLength(1);
  });

  it("stops checking once finished", () => {
    const run = start(1000);
    run.deadline.finish();
    run.timers.advance(60_000);
    expect(run.expired).toEqual([]);
    expect(run.timers.waiting).toBe(0);
  });

  it("says what it saw and what the rule was", () => {
    const pace = { allowanceMs: 3000, minBytesPerSecond: 16 * 1024 };
    expect(deadlineSummary(pace, { elapsedMs: 3012, bytesMoved: 2 }, true)).toBe(
      "timed out: 2 bytes moved in 3 s, below the minimum rate of 16 KiB/s after the first 3 s",
    );
    expect(deadlineSummary(pace, { elapsedMs: 9000, bytesMoved: 98304 }, false)).toBe(
      "timed out: 98304 bytes sent in 9 s, below the minimum rate of 16 KiB/s after the first 3 s",
    );
    expect(deadlineSummary(pace, { elapsedMs: 3000, bytesMoved: 0 }, false)).toBe(
      "timed out: no response headers in time (3 s)",
    );
    expect(formatRate(512)).toBe("512 B/s");
    expect(formatRate(1536)).toBe("1.5 KiB/s");
  });
});
