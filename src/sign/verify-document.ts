import type { AttachmentOutcome } from "./execute-attachments.js";
import type { AttachmentPlan } from "./attachment-plan.js";
import { signaturesDocument } from "./signatures-document.js";
import { checkedPlaceFields, statusCounts, type VerifyResult } from "./verify-targets.js";
import { attestationsSection, type AttestationResult } from "./verify-attestations.js";

/**
 * The JSON document of `promoter verify --output json` (docs/signing.md). Fields are only ever
 * added (`attestations` came with `--attestations`); an incompatible change bumps the version.
 */
export const VERIFY_DOCUMENT_SCHEMA = "image-promoter/verify";
export const VERIFY_DOCUMENT_VERSION = 1;

/** Results with a missing, invalid or unreadable signature: what `verify` reports and exits 1 for. */
export function verifyProblems(results: readonly VerifyResult[]): VerifyResult[] {
  return results.filter(
    (result) => result.status === "missing" || result.status === "invalid" || result.status === "unreadable",
  );
}

export interface VerifyDocumentOptions {
  /** `--repair`: what was planned, and with `--confirm` what was written. */
  readonly repair?: { readonly plan: AttachmentPlan; readonly outcomes?: readonly AttachmentOutcome[] };
  /** `--attestations`: the promotion attestation and VSA checks. */
  readonly attestations?: readonly AttestationResult[];
  /** The document's `createdAt`; now by default. */
  readonly now?: Date;
}

/** The verification results (and a repair) as the `verify --output json` document. */
export function verifyDocument(
  results: readonly VerifyResult[],
  options: VerifyDocumentOptions = {},
): Record<string, unknown> {
  return {
    schema: VERIFY_DOCUMENT_SCHEMA,
    version: VERIFY_DOCUMENT_VERSION,
    createdAt: (options.now ?? new Date()).toISOString(),
    summary: statusCounts(["valid", "missing", "invalid", "unreadable", "not-promoted"], results),
    results: results.map((result) => ({
      ...checkedPlaceFields(result),
      status: result.status,
      ...(result.reasons.length > 0 ? { reasons: result.reasons } : {}),
      ...(result.signers.length > 0 ? { signers: result.signers } : {}),
      ...(result.manifestDigest ? { signatureManifest: result.manifestDigest } : {}),
    })),
    ...(options.attestations ? { attestations: attestationsSection(options.attestations) } : {}),
    ...(options.repair ? { repair: signaturesDocument(options.repair.plan, options.repair.outcomes) } : {}),
  };
}
