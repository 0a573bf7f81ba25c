import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { AbortedError } from "../errors.js";
import { onAbort } from "./abort-listeners.js";
import { Semaphore } from "./semaphore.js";

describe("Semaphore waits on one signal", () => {
  it("add one abort listener to it whatever their number (issue 15: each added O(waits) of CPU)", async () => {
    const controller = new AbortController();
    const semaphore = new Semaphore(1);
    const release = await semaphore.acquire(controller.signal);
    const waits = Array.from({ length: 100 }, () => semaphore.acquire(controller.signal));
    expect(semaphore.waiting).toBe(100);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    release();
    const releaseFirst = await waits[0];
    controller.abort();
    const settled = await Promise.allSettled(waits.slice(1));
    expect(
      settled.every((result) => result.status === "rejected" && result.reason instanceof AbortedError),
    ).toBe(true);
    expect(semaphore.waiting).toBe(0);
    releaseFirst?.();
    expect(semaphore.inUse).toBe(0);
  });

  it("a wait that got its slot is not aborted later", async () => {
    const controller = new AbortController();
    const semaphore = new Semaphore(1);
    const first = await semaphore.acquire(controller.signal);
    const second = semaphore.acquire(controller.signal);
    first();
    const releaseSecond = await second;
    controller.abort();
    expect(semaphore.inUse).toBe(1);
    releaseSecond();
    expect(semaphore.inUse).toBe(0);
  });
});

describe("Semaphore.tryAcquire", () => {
  it("takes a free slot at once, but never one a waiter is queued for", async () => {
    const semaphore = new Semaphore(1);
    const first = semaphore.tryAcquire();
    expect(first).toBeDefined();
    expect(semaphore.tryAcquire()).toBeUndefined();
    const waiting = semaphore.acquire();
    // The slot freed now is the waiter's: a later tryAcquire does not jump the queue.
    first?.();
    expect(semaphore.tryAcquire()).toBeUndefined();
    const second = await waiting;
    expect(semaphore.inUse).toBe(1);
    second();
    const third = semaphore.tryAcquire();
    expect(third).toBeDefined();
    third?.();
    third?.();
    expect(semaphore.inUse).toBe(0);
  });
});

describe("onAbort", () => {
  it("calls each callback still waiting once, and none that stopped waiting", () => {
    const controller = new AbortController();
    const called: string[] = [];
    onAbort(controller.signal, () => called.push("a"));
    const stop = onAbort(controller.signal, () => called.push("b"));
    onAbort(controller.signal, () => called.push("c"));
    stop();
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    controller.abort();
    controller.abort();
    expect(called).toEqual(["a", "c"]);
  });
});
