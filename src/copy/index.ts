/**
 * Graph copy between repository stores: the engine that carries out a promotion plan.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#push
 */
export {
  copyGraphs,
  copyLimits,
  CopyRun,
  DEFAULT_WRITE_ATTEMPTS,
  DEFAULT_COPY_CONCURRENCY,
  type CopyLimits,
} from "./copy-graphs.js";
export { SMALL_BLOB_MAX_BYTES } from "./blob-transfers.js";
export type {
  CopyDestination,
  CopyDestinationStore,
  CopyOptions,
  CopyOutcome,
  CopySourceStore,
  CopyStats,
  CopyStatus,
  CopyTask,
  DestinationHint,
} from "./task.js";
export type { BlobEvent, CopyEvent, CopyEventType, DestinationEvent, ManifestEvent } from "./events.js";
export { CopyError, type CopyErrorCode } from "./errors.js";
export { FAN_OUT_HIGH_WATER_BYTES, FAN_OUT_START_TIMEOUT_MS } from "./fan-out.js";
