import { AbortedError } from "../errors.js";
import { Semaphore } from "./semaphore.js";

/**
 * A first-in, first-out limit on how many pieces of work run at once, for one run with one
 * abort signal. Work waits in a queue (a closure each, not a started promise), so thousands of
 * queued operations cost memory, not sockets. Once `signal` aborts, queued work is refused with
 * `AbortedError` and nothing new starts; work already running is left to its own signal handling.
 */
export class WorkLimiter {
  readonly limit: number;
  private readonly slots: Semaphore;
  private readonly signal: AbortSignal | undefined;

  constructor(limit: number, signal?: AbortSignal) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`a work limit must be a positive integer, got ${limit}`);
    }
    this.limit = limit;
    this.slots = new Semaphore(limit);
    this.signal = signal;
  }

  /** Work running now. */
  get running(): number {
    return this.slots.inUse;
  }

  /** Work waiting for a slot. */
  get queued(): number {
    return this.slots.waiting;
  }

  /** Runs `work` when a slot is free; rejects with `AbortedError` if aborted before it starts. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    let release: () => void;
    try {
      release = await this.slots.acquire(this.signal);
    } catch (error) {
      if (error instanceof AbortedError) throw abortedBeforeStart();
      throw error;
    }
    try {
      return await work();
    } finally {
      release();
    }
  }
}

function abortedBeforeStart(): AbortedError {
  return new AbortedError("stopped before it started: the run was aborted");
}
