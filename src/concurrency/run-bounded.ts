import { AbortedError } from "../errors.js";
import { shareSignal } from "./shared-signal.js";

/**
 * Runs `work` over `items` with at most `limit` in flight, in order of start. Rejects with the
 * first error after in-flight work settles; stops starting new items when `signal` aborts.
 */
export async function runBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  shareSignal(signal);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      if (signal?.aborted) {
        failure ??= { error: new AbortedError() };
        return;
      }
      const index = next++;
      try {
        await work(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}
