import {
  describeError,
  isPromoterError,
  PromoterError,
  type Problem,
  type SignErrorCode,
} from "../errors.js";

export type { SignErrorCode } from "../errors.js";

/**
 * - `sign-key`: a signing or verification key cannot be used (unreadable, not PEM, not ECDSA
 *   P-256, encrypted without a password). The message names the file or variable and what is
 *   wrong, never the key material.
 * - `sign-failed`: making a signature failed (the key, Fulcio, Rekor, an identity token).
 * - `sign-policy`: a signature policy (file or flags) is invalid.
 * - `sign-format`: a signature manifest, payload or bundle does not follow its layout.
 */
export class SignError extends PromoterError {
  declare readonly code: SignErrorCode;

  // Not useless: it narrows the codes a SignError accepts (a class is not generic in its `code`, so
  // that `instanceof` narrows `code` to its union rather than to any).
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor
  constructor(code: SignErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** An error as the code and message plans and outcomes carry (`internal` when not ours). */
export function problemOf(error: unknown): Problem {
  return { code: isPromoterError(error) ? error.code : "internal", message: describeError(error) };
}
