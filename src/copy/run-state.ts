import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../log.js";
import { formatRepositoryLocation, type Tag } from "../reference/index.js";
import type { CallOptions, RepositoryIdentity } from "../registry/index.js";
import { isAbort, type NodeFailure } from "./errors.js";
import type { CopyEvent } from "./events.js";
import type { CopyDestinationStore, CopySourceStore, CopyStats } from "./task.js";
import type { WorkLimiter } from "../concurrency/index.js";

/** Shared by every part of one `copyGraphs` run. */
export interface RunContext {
  readonly signal: AbortSignal | undefined;
  /** `{ signal }` for every store call. */
  readonly call: CallOptions;
  readonly logger: Logger;
  readonly emit: (event: CopyEvent) => void;
  readonly mount: boolean;
  readonly writeAttempts: number;
  readonly uploadStartTimeoutMs: number;
  /** Manifest reads and writes, existence checks, mounts: small requests. */
  readonly requests: WorkLimiter;
  /** Blob transfers: one slot per source read, whatever the number of destinations it feeds. */
  readonly transfers: WorkLimiter;
  /** The same for blobs of at most `SMALL_BLOB_MAX_BYTES` (see `CopyLimits.smallTransfers`). */
  readonly smallTransfers: WorkLimiter;
}

/**
 * Where a node of a graph is one: resolved (`written` says whether this run wrote it) or failed.
 * Node promises resolve with this and never reject, so a node shared by several parents and
 * tasks can be awaited by any of them at any time.
 */
export type NodeResult =
  { readonly ok: true; readonly written: boolean } | { readonly ok: false; readonly failure: NodeFailure };

export const NODE_PRESENT: NodeResult = { ok: true, written: false };
export const NODE_WRITTEN: NodeResult = { ok: true, written: true };

/** The source of a task, with the key that identifies its repository across store objects. */
export interface SourceRef {
  readonly taskId: string;
  readonly store: CopySourceStore;
  readonly key: string;
}

/** One destination of one task: the statistics it reports and the key of its repository. */
export class DestinationRun {
  readonly stats: CopyStats = emptyStats();
  /** Whether the task's root went up by `rootTag` here, which wrote that tag too. */
  rootTagged = false;

  constructor(
    readonly taskId: string,
    readonly index: number,
    readonly store: CopyDestinationStore,
    /** From `RepositoryShortIds`: equal for every store object that stands for the same repository. */
    readonly key: string,
    /** The tag the task's root goes up by where the task writes it (its first tag here). */
    readonly rootTag?: Tag,
  ) {}

  get name(): string {
    return this.store.name;
  }
}

export function emptyStats(): CopyStats {
  return {
    bytesWritten: 0,
    blobsUploaded: 0,
    blobsMounted: 0,
    blobsSkipped: 0,
    manifestsWritten: 0,
    manifestsSkipped: 0,
  };
}

/**
 * Short ids of repositories (`r0`, `r1`...), one per repository key whatever store object stands
 * for it: two tasks that name the same destination through different objects still share its
 * blobs. Short because a large run keeps one entry per (repository, node) for its whole length.
 */
export class RepositoryShortIds {
  private readonly ids = new Map<string, string>();

  of(store: RepositoryIdentity): string {
    const key = formatRepositoryLocation(store.location);
    let id = this.ids.get(key);
    if (id === undefined) {
      id = `r${this.ids.size}`;
      this.ids.set(key, id);
    }
    return id;
  }
}

/** Key of a node at a repository. */
export function nodeKey(repository: string, digest: string): string {
  return `${repository}@${digest}`;
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
}

/** A promise settled from outside (`Promise.withResolvers` needs Node 22). Later calls are no-ops. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** Pause before another attempt, times the attempt number: long enough for a blip to pass. */
export const RETRY_DELAY_MS = 200;

/** Waits before attempt `attempt + 1`; returns early (without throwing) when `signal` aborts. */
export async function pauseBeforeRetry(attempt: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(RETRY_DELAY_MS * attempt, undefined, signal ? { signal } : {});
  } catch (error) {
    // An abort ends the pause early; the caller sees the signal and stops.
    if (!isAbort(error, signal)) throw error;
  }
}
