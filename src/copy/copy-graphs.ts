import { describeError, UsageError } from "../errors.js";
import { silentLogger } from "../log.js";
import type { CopyEvent } from "./events.js";
import { FAN_OUT_START_TIMEOUT_MS } from "./fan-out.js";
import { GraphCopier } from "./graph-copier.js";
import type { RunContext } from "./run-state.js";
import type { CopyOptions, CopyOutcome, CopyTask } from "./task.js";
import { runBounded, Semaphore, shareSignal, WorkLimiter } from "../concurrency/index.js";

/** Blob transfers in flight by default: enough to hide latency, few enough for a laptop uplink. */
export const DEFAULT_COPY_CONCURRENCY = 8;
/**
 * Attempts per write and destination (a blob upload gets a fresh source read each time). As
 * many as the transport gives one request (DEFAULT_RETRY_POLICY.maxAttempts): an upload chains a
 * source read and a streamed PUT that the transport cannot replay, so each attempt fails when any
 * of them does. With 3, about 5% of requests failing made one blob upload in a few hundred give
 * up (test/e2e/faults.test.ts).
 */
export const DEFAULT_WRITE_ATTEMPTS = 5;

export interface CopyLimits {
  /** Source blob reads in flight (each feeding all the destinations that need the blob). */
  readonly transfers: number;
  /**
   * Reads of small blobs (at most `SMALL_BLOB_MAX_BYTES`) in flight, besides `transfers`: their
   * time is round trips, not bytes, so they need not queue behind the large ones.
   */
  readonly smallTransfers: number;
  /** Small requests in flight: existence checks, manifest reads and writes, mounts. */
  readonly requests: number;
  /** Tasks in flight; the rest wait in a queue so a large run does not start everything at once. */
  readonly tasks: number;
}

/**
 * How one `concurrency` figure splits into the engine's limits. Only blob bodies (memory and
 * uplink) are the engine's to bound tightly; small requests and tasks get room enough that the
 * transport's per-host limits (registry/transport/host-limits.ts) are what holds them back, so
 * over distance every host stays busy and one slow host does not use up a pool the others need
 * (issue 19: 4x and 2x left 40% of the per-host limits unused at 50 ms per request).
 */
export function copyLimits(concurrency: number = DEFAULT_COPY_CONCURRENCY): CopyLimits {
  return {
    transfers: concurrency,
    smallTransfers: concurrency * 8,
    requests: concurrency * 64,
    tasks: concurrency * 8,
  };
}

/**
 * Copies each task's image graph from its source to its destinations: blobs first, then
 * manifests from the leaves up, each stored under its digest (a root the task writes under its
 * first tag, which stores it and tags it in one request), and the tags last, so a tag never
 * points at an incomplete image. Skips what a destination already has (checked by digest), writes
 * each blob once per destination repository for the whole run, reads each needed source blob
 * once for all the destinations of a node, and mounts across repositories when a destination can.
 *
 * Resolves with one outcome per (task, destination), in task order then destination order;
 * failures are outcomes, not rejections. When `options.signal` aborts, nothing new starts, no
 * tag is written, in-flight transfers are abandoned, and what was not done is reported `aborted`.
 */
export async function copyGraphs(
  tasks: readonly CopyTask[],
  options: CopyOptions = {},
): Promise<CopyOutcome[]> {
  const run = new CopyRun(options);
  const outcomes = await run.copy(tasks);
  run.finish();
  return outcomes;
}

/**
 * One copy run that takes its tasks as they become known (a pipelined promotion hands over each
 * image as soon as its own facts are read, not after every repository was): every `copy` call
 * shares the run's limits, its record of what each destination repository already got, and its
 * mounts, as one `copyGraphs` call over all the tasks would. `finish` logs the totals once.
 */
export class CopyRun {
  private readonly run: RunContext;
  private readonly copier: GraphCopier;
  /** Tasks in flight across every `copy` call; the rest wait, in the order they were given. */
  private readonly taskSlots: Semaphore;
  private readonly taskLimit: number;
  private outcomeCount = 0;
  private failed = 0;
  private aborted = 0;
  private taskCount = 0;

  constructor(options: CopyOptions = {}) {
    const concurrency = options.concurrency ?? DEFAULT_COPY_CONCURRENCY;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new UsageError(`concurrency must be a positive integer, got ${concurrency}`);
    }
    const writeAttempts = options.writeAttempts ?? DEFAULT_WRITE_ATTEMPTS;
    if (!Number.isSafeInteger(writeAttempts) || writeAttempts < 1) {
      throw new UsageError(`writeAttempts must be a positive integer, got ${writeAttempts}`);
    }
    const { signal } = options;
    shareSignal(signal);
    const logger = options.logger ?? silentLogger;
    const limits = copyLimits(concurrency);
    const listener = options.onEvent;
    const emit = listener
      ? (event: CopyEvent) => {
          try {
            listener(event);
          } catch (error) {
            logger.log("warn", `progress listener failed: ${describeError(error)}`, { event: event.type });
          }
        }
      : () => undefined;
    this.run = {
      signal,
      call: signal ? { signal } : {},
      logger,
      emit,
      mount: options.mount ?? true,
      writeAttempts,
      uploadStartTimeoutMs: options.uploadStartTimeoutMs ?? FAN_OUT_START_TIMEOUT_MS,
      requests: new WorkLimiter(limits.requests, signal),
      transfers: new WorkLimiter(limits.transfers, signal),
      smallTransfers: new WorkLimiter(limits.smallTransfers, signal),
    };
    this.copier = new GraphCopier(this.run);
    this.taskLimit = limits.tasks;
    this.taskSlots = new Semaphore(limits.tasks);
  }

  /**
   * Copies `tasks` within the run and resolves with one outcome per (task, destination), in task
   * order then destination order; failures are outcomes, not rejections.
   */
  async copy(tasks: readonly CopyTask[]): Promise<CopyOutcome[]> {
    const { signal } = this.run;
    const outcomes: CopyOutcome[][] = new Array<CopyOutcome[]>(tasks.length);
    // No signal for the slots: after an abort the remaining tasks still get their `aborted`
    // outcomes (copyTask never rejects, skipTask does no I/O).
    await runBounded(tasks, this.taskLimit, async (task, index) => {
      const release = await this.taskSlots.acquire();
      try {
        outcomes[index] =
          signal?.aborted === true ? this.copier.skipTask(task) : await this.copier.copyTask(task);
      } finally {
        release();
      }
    });
    const flat = outcomes.flat();
    this.taskCount += tasks.length;
    this.outcomeCount += flat.length;
    for (const outcome of flat) {
      if (outcome.status === "failed") this.failed += 1;
      else if (outcome.status === "aborted") this.aborted += 1;
    }
    return flat;
  }

  /** Logs the run's totals. */
  finish(): void {
    this.run.logger.log(this.failed > 0 ? "warn" : "info", "copy finished", {
      tasks: this.taskCount,
      outcomes: this.outcomeCount,
      failed: this.failed,
      aborted: this.aborted,
    });
  }
}
