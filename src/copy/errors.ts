import { AbortedError, describeError, PromoterError, type CopyErrorCode, type ErrorCode } from "../errors.js";
import type { Digest } from "../reference/index.js";
import { RegistryError } from "../registry/index.js";
import type { Side } from "../registry/index.js";

/**
 * - `copy-source-missing`: the source does not have a manifest or blob the graph needs.
 * - `copy-source-failed`: reading from the source failed (network, digest mismatch, bad content).
 * - `copy-destination-failed`: writing to or checking the destination failed.
 */
export type { CopyErrorCode } from "../errors.js";

/**
 * Why one node of an image graph (a manifest, index or blob) could not be copied to one
 * destination. `side` says where to look; `cause` is the store's error (usually a
 * `RegistryError`, whose message names the request and status).
 */
export class CopyError extends PromoterError {
  declare readonly code: CopyErrorCode;
  readonly side: Side;
  /** The node that failed: the root itself, or a child manifest, config or layer. */
  readonly digest: Digest;

  constructor(
    code: CopyErrorCode,
    message: string,
    details: { side: Side; digest: Digest },
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.side = details.side;
    this.digest = details.digest;
  }
}

/** What a failed or stopped node reports to the parents waiting on it. */
export type NodeFailure = CopyError | AbortedError;

/**
 * Whether an error means the run was stopped on purpose rather than a store failing: an
 * `AbortedError`, a DOM `AbortError` from a cancelled fetch or timer, or anything thrown after
 * the run's signal fired.
 */
/** Whether a registry answered a write with a 4xx status: it refused that request. */
export function isRefusal(error: unknown): boolean {
  if (!(error instanceof RegistryError)) return false;
  const status = error.details.status;
  return status !== undefined && status >= 400 && status < 500;
}

export function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted === true) return true;
  if (error instanceof AbortedError) return true;
  return error instanceof Error && error.name === "AbortError";
}

/**
 * Error codes that another attempt will not fix (credentials, permissions, absence, caps,
 * malformed content). Everything else (network, 5xx surfacing after the client's retries,
 * a truncated or corrupted body) earns a fresh attempt.
 */
const PERMANENT_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "aborted",
  "registry-auth",
  "registry-denied",
  "registry-not-found",
  "registry-too-large",
  "registry-insecure",
  // The transport already knows these will not pass soon (a host down for the run, a TLS
  // server reached over plain HTTP, a quota spent for longer than a run waits).
  "registry-unreachable",
  "registry-https-required",
  "registry-quota",
  "layout-invalid",
  "invalid-content",
  "copy-source-missing",
]);

export function isRetryable(error: unknown): boolean {
  return !(error instanceof PromoterError && PERMANENT_ERROR_CODES.has(error.code));
}

/**
 * Wraps a store error with the node and the two ends of the copy, keeping the store's own
 * message (which already names the registry, the request and the status).
 */
export function nodeFailure(
  error: unknown,
  context: {
    side: Side;
    digest: Digest;
    what: string;
    source: string;
    destination: string;
    signal: AbortSignal | undefined;
  },
): NodeFailure {
  if (error instanceof CopyError) return error;
  if (isAbort(error, context.signal)) {
    return new AbortedError(
      `${context.what} ${context.digest} not copied to ${context.destination}: the run was aborted`,
      { cause: error },
    );
  }
  const side = error instanceof RegistryError && error.details.side ? error.details.side : context.side;
  const code: CopyErrorCode =
    side === "destination"
      ? "copy-destination-failed"
      : error instanceof RegistryError && error.code === "registry-not-found"
        ? "copy-source-missing"
        : "copy-source-failed";
  return new CopyError(
    code,
    `${context.what} ${context.digest} from ${context.source} to ${context.destination}: ${describeError(error)}`,
    { side, digest: context.digest },
    { cause: error },
  );
}
