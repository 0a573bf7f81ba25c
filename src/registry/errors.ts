import { PromoterError, type RegistryErrorCode } from "../errors.js";
import type { Side } from "./side.js";

/**
 * A failure talking to a registry or layout directory. The message says which operation, which
 * registry and repository, which side (source or destination) when the store was opened for one
 * (`onSide`), the request (method and redacted URL), the HTTP status and the registry's error
 * codes. Never a credential.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
 */
export interface RegistryErrorDetails {
  readonly operation: string;
  readonly registry: string;
  readonly repository?: string;
  /** Which end of a promotion the repository is, when it was opened for one (`onSide`). */
  readonly side?: Side;
  /** `METHOD url` with credentials and signed query strings removed. */
  readonly request?: string;
  readonly status?: number;
  /** Error codes from the registry's error body, such as MANIFEST_UNKNOWN or DENIED. */
  readonly registryCodes?: readonly string[];
  /** Human text from the registry's error body, already redacted and truncated. */
  readonly registryMessage?: string;
  /** How many times the request was sent before this error was given up on (when more than once). */
  readonly attempts?: number;
}

/** The codes, each explained, are listed in src/errors.ts (`REGISTRY_ERROR_CODES`). */
export type { RegistryErrorCode } from "../errors.js";

export class RegistryError extends PromoterError {
  declare readonly code: RegistryErrorCode;
  readonly details: RegistryErrorDetails;
  /** What went wrong, without the details that `message` adds around it. */
  readonly summary: string;

  constructor(
    code: RegistryErrorCode,
    summary: string,
    details: RegistryErrorDetails,
    options?: { cause?: unknown },
  ) {
    super(code, formatRegistryMessage(summary, details), options);
    this.details = details;
    this.summary = summary;
  }

  /** The same failure, naming which end of a promotion it happened at. */
  onSide(side: Side): RegistryError {
    return new RegistryError(
      this.code,
      this.summary,
      { ...this.details, side },
      this.cause === undefined ? undefined : { cause: this.cause },
    );
  }
}

function formatRegistryMessage(summary: string, details: RegistryErrorDetails): string {
  const where = details.repository ? `${details.registry}/${details.repository}` : details.registry;
  const side = details.side ? `${details.side} ` : "";
  const parts = [`${details.operation} ${side}${where}: ${summary}`];
  if (details.status !== undefined) parts.push(`HTTP ${details.status}`);
  if (details.registryCodes && details.registryCodes.length > 0) parts.push(details.registryCodes.join(", "));
  if (details.registryMessage) parts.push(details.registryMessage);
  if (details.attempts !== undefined && details.attempts > 1)
    parts.push(`gave up after ${details.attempts} attempts`);
  if (details.request) parts.push(`(${details.request})`);
  return parts.join("; ");
}
