import type { AbortedError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Digest, Tag } from "../reference/index.js";
import type {
  BlobChecker,
  BlobMounter,
  BlobReader,
  BlobWriter,
  ManifestReader,
  ManifestResolver,
  ManifestWriter,
} from "../registry/index.js";
import type { CopyError } from "./errors.js";
import type { CopyEvent } from "./events.js";

/** What the engine asks of a source: manifests by digest, and blob streams. */
export type CopySourceStore = ManifestReader & BlobReader;

/**
 * What the engine asks of a destination: whether manifests and blobs are there, and writing
 * them (blobs by upload or, within one registry or layout tree, by mount).
 */
export type CopyDestinationStore = ManifestResolver & ManifestWriter & BlobChecker & BlobWriter & BlobMounter;

/** One destination repository of a task and the tags the root must carry there. */
export interface CopyDestination {
  readonly store: CopyDestinationStore;
  /**
   * Tags to point at the root once the image is complete there. Empty for a tagless digest.
   * The caller has decided these are wanted (the planner refuses tag moves); the engine writes
   * them without reading them first.
   */
  readonly tags: readonly Tag[];
  /**
   * What the caller saw here just before, so that the engine need not ask again:
   * - `root-absent`: the task's digest was not there (the planner's inventory asked): its
   *   existence check is skipped and the copy starts at once.
   * - `empty-repository`: the repository had nothing at all (a tags listing answered with no
   *   tags or `NAME_UNKNOWN`): no manifest or blob of the graph is checked before it is written.
   * A stale hint costs bytes, never correctness: content that arrived meanwhile is written again
   * with the same digest (writes by digest are idempotent), and tags still come last.
   */
  readonly seen?: DestinationHint;
}

export type DestinationHint = "root-absent" | "empty-repository";

/**
 * Work already decided by the planner: make `digest` (an image, an index, or any manifest)
 * and everything it references exist in every destination, then write the tags. A destination
 * that already has the digest only gets its tags.
 */
export interface CopyTask {
  /** Caller's name for the task, repeated in events and outcomes (e.g. the image and digest). */
  readonly id: string;
  readonly source: CopySourceStore;
  readonly digest: Digest;
  readonly destinations: readonly CopyDestination[];
}

export interface CopyOptions {
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /**
   * Blob transfers in flight: source reads, each feeding every destination that needs the blob
   * (so up to `concurrency` x destinations uploads). Default `DEFAULT_COPY_CONCURRENCY`.
   * Manifest operations and existence checks get 64x this; tasks in flight 8x (see
   * `copyLimits`): the registry client's per-host request limits are what bound them.
   */
  readonly concurrency?: number;
  /**
   * Mount blobs across repositories of one registry instead of uploading them: from the source
   * when it shares the destination's registry, or from another destination repository there that
   * this run saw holding the blob. The mount is sent without a HEAD first. Default true.
   */
  readonly mount?: boolean;
  /**
   * Attempts per write and destination: a blob upload (each attempt reads the source afresh and
   * restarts the upload) or a manifest or tag write. Errors that another attempt cannot fix
   * (denied, not found, invalid content) are not retried. Default `DEFAULT_WRITE_ATTEMPTS`.
   */
  readonly writeAttempts?: number;
  /**
   * How long an upload that has not read its first byte (waiting for a connection slot, say)
   * may hold back the other destinations of the same source read; it then gets a read of its
   * own later. Default `FAN_OUT_START_TIMEOUT_MS`.
   */
  readonly uploadStartTimeoutMs?: number;
  /** Progress events, called inline; a listener that throws is logged and ignored. */
  readonly onEvent?: (event: CopyEvent) => void;
}

/**
 * - `copied`: the root was missing and is now complete at the destination (with its tags).
 * - `tagged`: the root was already there; only tags were written.
 * - `unchanged`: the root was already there and no tag was asked for.
 * - `failed`: something failed; `error` says what and on which side. No tag was written unless
 *   listed in `tagsWritten` (tags are written only once the image is complete).
 * - `aborted`: the run was stopped before this destination was finished.
 */
export type CopyStatus = "copied" | "tagged" | "unchanged" | "failed" | "aborted";

export interface CopyStats {
  /** Blob bytes uploaded plus manifest bytes written, counting completed writes only. */
  bytesWritten: number;
  blobsUploaded: number;
  blobsMounted: number;
  /**
   * Blobs not transferred: already at the destination, written there earlier in this run for
   * another task, or non-distributable.
   */
  blobsSkipped: number;
  /** Manifests (and indexes) stored under their digest. Tags are not counted here. */
  manifestsWritten: number;
  /** Manifests the destination already had, or that another task of this run wrote. */
  manifestsSkipped: number;
}

/** The result for one (task, destination) pair. */
export interface CopyOutcome {
  readonly taskId: string;
  /** Position of the destination in `task.destinations`. */
  readonly destinationIndex: number;
  readonly source: string;
  readonly destination: string;
  readonly digest: Digest;
  readonly status: CopyStatus;
  readonly tagsWritten: readonly Tag[];
  /** Set for `failed` (a `CopyError`, whose `side` is source or destination) and `aborted`. */
  readonly error?: CopyError | AbortedError;
  readonly stats: Readonly<CopyStats>;
  /** From the start of the task to the end of this destination. */
  readonly durationMs: number;
}
