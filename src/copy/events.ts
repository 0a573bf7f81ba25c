import type { Digest, Tag } from "../reference/index.js";
import type { CopyOutcome } from "./task.js";

/**
 * Progress of a copy run, for live displays, periodic log lines and reports. Events name the
 * task and the destination (its store `name`) they concern. A node shared by several tasks of
 * the same run (a blob two images have in common) is reported once, under the task that copied
 * it. Listeners must be quick: they run inline with the copy.
 */
export type CopyEvent =
  /** The destination already has the manifest (checked by digest): its whole subgraph is skipped. */
  | ManifestEvent<"manifest-skipped">
  /** The manifest was stored under its digest, after everything it references. */
  | (ManifestEvent<"manifest-written"> & { readonly mediaType: string; readonly size: number })
  /** The root manifest was stored under a tag, after the image was complete at that destination. */
  | (DestinationEvent<"tag-written"> & { readonly digest: Digest; readonly tag: Tag })
  /**
   * Nothing to transfer: the destination already has the blob, or the blob is non-distributable
   * (a foreign layer pulled from its URLs, never pushed to registries).
   */
  | (BlobEvent<"blob-skipped"> & { readonly reason: "exists" | "non-distributable" })
  /** The registry linked the blob from the source repository (cross-repository mount). */
  | BlobEvent<"blob-mounted">
  /** An upload began (`attempt` counts from 1). */
  | (BlobEvent<"blob-started"> & { readonly attempt: number })
  /** `bytes` more bytes went to this destination (a delta, not a running total). */
  | (BlobEvent<"blob-progress"> & { readonly bytes: number })
  /** The destination confirmed the upload (and verified its digest). */
  | BlobEvent<"blob-uploaded">
  /** An attempt failed; `retrying` says whether a fresh attempt follows. */
  | (BlobEvent<"blob-failed"> & { readonly error: Error; readonly retrying: boolean })
  /** One read of a source blob began, feeding `destinations` destinations at once. */
  | {
      readonly type: "source-read";
      readonly taskId: string;
      readonly source: string;
      readonly digest: Digest;
      readonly size: number;
      readonly destinations: number;
      readonly attempt: number;
    }
  /** A task began; its destinations follow. */
  | { readonly type: "task-started"; readonly taskId: string; readonly destinations: number }
  /** One (task, destination) pair is finished, whatever the result. */
  | { readonly type: "destination-done"; readonly taskId: string; readonly outcome: CopyOutcome };

export type CopyEventType = CopyEvent["type"];

/** The fields every event about one destination of a task has. */
export interface DestinationEvent<T extends string> {
  readonly type: T;
  readonly taskId: string;
  readonly destination: string;
}

export interface ManifestEvent<T extends string> extends DestinationEvent<T> {
  readonly digest: Digest;
}

export interface BlobEvent<T extends string> extends DestinationEvent<T> {
  readonly digest: Digest;
  readonly size: number;
}
