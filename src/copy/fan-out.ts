import { AbortedError, PromoterError } from "../errors.js";

/**
 * One read of a source stream feeding several consumers (the uploads of one blob to every
 * destination that needs it), with backpressure: the next source chunk is read only when every
 * live consumer has taken all but `highWaterBytes` of what it was given, so the slowest live
 * consumer sets the pace and memory stays bounded (chunks are shared, not copied). A consumer
 * that fails or stops reading is detached: it no longer holds the others back, and its failure
 * is reported for it alone. When every consumer is gone, the source is closed early.
 *
 * One exception keeps this from deadlocking against per-host request limits: an upload may
 * wait for a connection slot before it reads its first byte, and the slots may all be held by
 * uploads (of this or other blobs) that wait for this very source. A consumer that has not
 * started reading and holds the source back for `startTimeoutMs` is dropped with
 * `FanOutNotStartedError` (`notStarted` in its result) so the others can finish; the caller
 * gives it a fresh read later.
 */

/** Bytes a consumer may lag behind the source before the source is paused. */
export const FAN_OUT_HIGH_WATER_BYTES = 1024 * 1024;
/** How long a consumer that has not read its first byte may hold the source back. */
export const FAN_OUT_START_TIMEOUT_MS = 5_000;

/** Receives its own view of the source and resolves once it has stored all of it. */
export type FanOutConsumer = (content: AsyncIterable<Uint8Array>) => Promise<void>;

export type FanOutResult =
  | { readonly ok: true }
  /**
   * `failedSide` says whether the source stream or this consumer broke first; `notStarted`
   * that the consumer was dropped for not starting in time (nothing wrong with it as such).
   */
  | {
      readonly ok: false;
      readonly failedSide: "source" | "consumer";
      readonly error: unknown;
      readonly notStarted?: true;
    };

export interface FanOutOptions {
  readonly signal?: AbortSignal | undefined;
  readonly highWaterBytes?: number;
  readonly startTimeoutMs?: number;
  /** Called as consumer `index` takes `bytes` more bytes (for progress display). */
  readonly onProgress?: (index: number, bytes: number) => void;
}

/** A consumer was dropped because it had not started reading while the others waited for it. */
export class FanOutNotStartedError extends PromoterError {
  constructor(timeoutMs: number) {
    super(
      "copy-upload-not-started",
      `the upload had not started reading after ${timeoutMs} ms while other destinations waited; it will get its own read`,
    );
  }
}

/**
 * Streams `source` to every consumer and resolves, once all of them have settled, with one result
 * per consumer in the same order. Never rejects.
 */
export async function fanOut(
  source: AsyncIterable<Uint8Array>,
  consumers: readonly FanOutConsumer[],
  options: FanOutOptions = {},
): Promise<FanOutResult[]> {
  const highWater = options.highWaterBytes ?? FAN_OUT_HIGH_WATER_BYTES;
  const startTimeoutMs = options.startTimeoutMs ?? FAN_OUT_START_TIMEOUT_MS;
  const pace = new PaceSignal();
  const branches = consumers.map(
    (_, index) =>
      new FanOutBranch(pace, (bytes) => {
        options.onProgress?.(index, bytes);
      }),
  );
  // An object, not two lets: closures set it, and the loop below must re-read it after each await.
  const sourceState: { failed: boolean; error: unknown } = { failed: false, error: undefined };

  const settled = branches.map(async (branch, index): Promise<FanOutResult> => {
    const consume = consumers[index];
    try {
      await consume?.(branch);
      // A consumer that returns before the end has what it needs (or will be judged by its
      // store); either way it must not hold the others back.
      branch.detach();
      return { ok: true };
    } catch (error) {
      branch.detach();
      if (branch.notStartedError) {
        return { ok: false, failedSide: "consumer", error: branch.notStartedError, notStarted: true };
      }
      return sourceState.failed
        ? { ok: false, failedSide: "source", error: sourceState.error }
        : { ok: false, failedSide: "consumer", error };
    }
  });

  const failSource = (error: unknown) => {
    if (sourceState.failed) return;
    sourceState.failed = true;
    sourceState.error = error;
    for (const branch of branches) branch.fail(error);
    pace.wake();
  };
  const stopOnAbort = () => {
    failSource(new AbortedError("blob transfer abandoned: the run was aborted"));
  };
  if (options.signal?.aborted) stopOnAbort();
  else options.signal?.addEventListener("abort", stopOnAbort, { once: true });

  const behind = () => branches.filter((branch) => branch.live && branch.buffered > highWater);
  /** Waits until no live consumer is more than `highWater` behind, dropping idle ones in time. */
  const waitForPace = async () => {
    let blockedSince: number | undefined;
    for (let lagging = behind(); lagging.length > 0; lagging = behind()) {
      if (!lagging.every((branch) => !branch.started)) {
        blockedSince = undefined;
        await pace.wait();
        continue;
      }
      blockedSince ??= performance.now();
      const remaining = blockedSince + startTimeoutMs - performance.now();
      if (remaining > 0) {
        await pace.wait(remaining);
        continue;
      }
      const error = new FanOutNotStartedError(startTimeoutMs);
      for (const branch of lagging) branch.dropNotStarted(error);
    }
  };

  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      // Failed branches are not live, so this also stops after a source failure or an abort.
      if (!branches.some((branch) => branch.live)) break;
      const next = await nextUnlessAborted(iterator, options.signal);
      if (sourceState.failed || next === undefined) break;
      if (next.done === true) {
        finished = true;
        for (const branch of branches) branch.end();
        break;
      }
      for (const branch of branches) branch.push(next.value);
      await waitForPace();
    }
  } catch (error) {
    failSource(error);
  } finally {
    options.signal?.removeEventListener("abort", stopOnAbort);
    if (!finished) {
      // Closes the source early (a Readable is destroyed by its iterator's return()). Not awaited:
      // after an abort a generator may still be inside the next() we stopped waiting for.
      Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }
  return Promise.all(settled);
}

/**
 * The iterator's next chunk, or undefined as soon as `signal` aborts: a source that ignores its
 * signal must not keep the pump waiting after an abort.
 */
function nextUnlessAborted(
  iterator: AsyncIterator<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<IteratorResult<Uint8Array> | undefined> {
  if (!signal) return iterator.next();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      resolve(undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(
      (result) => {
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Wakes the pump whenever a consumer takes a chunk or leaves. */
class PaceSignal {
  private wakeUp: (() => void) | undefined;

  wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
  }

  /** Resolves at the next wake, or after `timeoutMs` when given. */
  async wait(timeoutMs?: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      if (timeoutMs !== undefined) timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
  }
}

type BranchState = "open" | "ended" | "failed" | "detached";

/** One consumer's view of the source: an async iterator over the shared chunks. */
class FanOutBranch implements AsyncIterableIterator<Uint8Array> {
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private state: BranchState = "open";
  private error: unknown;
  private reader:
    { resolve: (result: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void } | undefined;

  constructor(
    private readonly pace: PaceSignal,
    private readonly onTaken: (bytes: number) => void,
  ) {}

  /** Set when dropped for not starting in time. */
  notStartedError: FanOutNotStartedError | undefined;
  private hasStarted = false;

  /** The consumer has asked for its first chunk. */
  get started(): boolean {
    return this.hasStarted;
  }

  /** Still consuming: its pace counts. */
  get live(): boolean {
    return this.state === "open" || (this.state === "ended" && this.queue.length > 0);
  }

  get buffered(): number {
    return this.queuedBytes;
  }

  push(chunk: Uint8Array): void {
    if (this.state !== "open") return;
    if (this.reader) {
      this.take(chunk);
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += chunk.byteLength;
  }

  end(): void {
    if (this.state !== "open") return;
    this.state = "ended";
    if (this.queue.length === 0) this.settleReader({ done: true, value: undefined });
  }

  fail(error: unknown): void {
    if (this.state !== "open" && this.state !== "ended") return;
    this.state = "failed";
    this.error = error;
    this.dropQueue();
    const reader = this.reader;
    this.reader = undefined;
    reader?.reject(error);
  }

  dropNotStarted(error: FanOutNotStartedError): void {
    this.notStartedError = error;
    this.fail(error);
    this.pace.wake();
  }

  detach(): void {
    if (this.state === "detached") return;
    this.state = "detached";
    this.dropQueue();
    this.settleReader({ done: true, value: undefined });
    this.pace.wake();
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    this.hasStarted = true;
    const chunk = this.queue.shift();
    if (chunk !== undefined) {
      this.queuedBytes -= chunk.byteLength;
      this.onTaken(chunk.byteLength);
      this.pace.wake();
      return Promise.resolve({ done: false, value: chunk });
    }
    switch (this.state) {
      case "open":
        return new Promise((resolve, reject) => (this.reader = { resolve, reject }));
      case "failed":
        return Promise.reject(this.error instanceof Error ? this.error : new Error(String(this.error)));
      case "ended":
      case "detached":
        return Promise.resolve({ done: true, value: undefined });
    }
  }

  /** The consumer stopped reading (`break` in a for-await, a destroyed Readable.from). */
  return(): Promise<IteratorResult<Uint8Array>> {
    this.detach();
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this;
  }

  private take(chunk: Uint8Array): void {
    this.onTaken(chunk.byteLength);
    this.settleReader({ done: false, value: chunk });
  }

  private settleReader(result: IteratorResult<Uint8Array>): void {
    const reader = this.reader;
    this.reader = undefined;
    reader?.resolve(result);
  }

  private dropQueue(): void {
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}
