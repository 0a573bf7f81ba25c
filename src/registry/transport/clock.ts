import { AbortedError } from "../../errors.js";

/**
 * Time for the transport layers (backoff, Retry-After, rate limits, token expiry). Injected so
 * tests can run a 30-second Retry-After in no time and check exactly how long was waited.
 */
export interface Clock {
  /** Milliseconds since the epoch (HTTP-dates in Retry-After are absolute). */
  now(): number;
  /** Waits `ms` milliseconds; rejects with AbortedError when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AbortedError());
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(new AbortedError());
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
