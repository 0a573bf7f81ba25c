import { AbortedError } from "../errors.js";
import { onAbort } from "./abort-listeners.js";

/** A FIFO counting semaphore whose waits can be aborted. */
export class Semaphore {
  private available: number;
  private readonly waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  get inUse(): number {
    return this.capacity - this.available;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** A slot at once when one is free and nobody waits for one (FIFO), else undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.available === 0 || this.waiters.length > 0) return undefined;
    this.available -= 1;
    return this.releaser();
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw new AbortedError();
    if (this.available > 0 && this.waiters.length === 0) {
      this.available -= 1;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      // One listener on the signal for all its waits (abort-listeners.ts).
      const stopWaiting = signal
        ? onAbort(signal, () => {
            const index = this.waiters.indexOf(waiter);
            if (index >= 0) this.waiters.splice(index, 1);
            reject(new AbortedError());
          })
        : undefined;
      const waiter = {
        resolve: () => {
          stopWaiting?.();
          resolve();
        },
        reject,
      };
      this.waiters.push(waiter);
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter; `available` only grows when nobody waits.
      if (next) next.resolve();
      else this.available += 1;
    };
  }
}
