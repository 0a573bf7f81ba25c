import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { AbortedError } from "../errors.js";
import { WorkLimiter } from "./work-limiter.js";

describe("WorkLimiter", () => {
  it("never runs more than its limit at once and runs work in arrival order", async () => {
    const limiter = new WorkLimiter(3);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limiter.run(async () => {
          started.push(i);
          running += 1;
          peak = Math.max(peak, running);
          await sleep(2);
          running -= 1;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(started).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("frees the slot when work fails", async () => {
    const limiter = new WorkLimiter(1);
    await expect(limiter.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(limiter.run(() => Promise.resolve(7))).resolves.toBe(7);
  });

  it("refuses queued and new work once aborted, and lets running work finish", async () => {
    const controller = new AbortController();
    const limiter = new WorkLimiter(1, controller.signal);
    const first = limiter.run(async () => {
      await sleep(20);
      return "finished";
    });
    const queued = limiter.run(() => Promise.resolve("should not run"));
    controller.abort();
    await expect(queued).rejects.toBeInstanceOf(AbortedError);
    await expect(first).resolves.toBe("finished");
    await expect(limiter.run(() => Promise.resolve(1))).rejects.toBeInstanceOf(AbortedError);
    expect(limiter.queued).toBe(0);
    expect(limiter.running).toBe(0);
  });

  it("rejects a limit that is not a positive integer", () => {
    expect(() => new WorkLimiter(0)).toThrow(RangeError);
    expect(() => new WorkLimiter(1.5)).toThrow(RangeError);
  });
});
