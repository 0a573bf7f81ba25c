import { AbortedError } from "../errors.js";

/**
 * A first-in, first-out limit on how many pieces of work run at once. Work waits in a queue
 * (a closure each, not a started promise), so thousands of queued operations cost memory, not
 * sockets. Once `signal` aborts, queued work is refused with `AbortedError` and nothing new
 * starts; work already running is left to its own signal handling.
 */
export class WorkLimiter {
  readonly limit: number;
  private readonly signal: AbortSignal | undefined;
  private active = 0;
  private readonly waiting: { start: () => void; refuse: (error: AbortedError) => void }[] = [];

  constructor(limit: number, signal?: AbortSignal) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`a work limit must be a positive integer, got ${limit}`);
    }
    this.limit = limit;
    this.signal = signal;
    signal?.addEventListener(
      "abort",
      () => {
        this.refuseWaiting();
      },
      { once: true },
    );
  }

  /** Work running now. */
  get running(): number {
    return this.active;
  }

  /** Work waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `work` when a slot is free; rejects with `AbortedError` if aborted before it starts. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.signal?.aborted) return Promise.reject(abortedBeforeStart());
    if (this.active < this.limit) {
      this.active += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({
        start: () => {
          this.active += 1;
          resolve();
        },
        refuse: reject,
      });
    });
  }

  private release(): void {
    this.active -= 1;
    if (this.signal?.aborted) {
      this.refuseWaiting();
      return;
    }
    this.waiting.shift()?.start();
  }

  private refuseWaiting(): void {
    for (const waiter of this.waiting.splice(0)) waiter.refuse(abortedBeforeStart());
  }
}

function abortedBeforeStart(): AbortedError {
  return new AbortedError("stopped before it started: the run was aborted");
}
