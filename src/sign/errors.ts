import { describeError, isPromoterError, PromoterError } from "../errors.js";

/**
 * - `sign-key`: a signing or verification key cannot be used (unreadable, not PEM, not ECDSA
 *   P-256, encrypted without a password). The message names the file or variable and what is
 *   wrong, never the key material.
 * - `sign-failed`: making a signature failed (the key, Fulcio, Rekor, an identity token).
 * - `sign-policy`: a signature policy (file or flags) is invalid.
 * - `sign-format`: a signature manifest, payload or bundle does not follow its layout.
 */
export type SignErrorCode = "sign-key" | "sign-failed" | "sign-policy" | "sign-format";

export class SignError extends PromoterError {
  declare readonly code: SignErrorCode;
}

/** An error as the code and message plans and outcomes carry (`internal` when not ours). */
export function problemOf(error: unknown): { code: string; message: string } {
  return { code: isPromoterError(error) ? error.code : "internal", message: describeError(error) };
}
