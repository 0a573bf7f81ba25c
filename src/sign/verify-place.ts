import { describeError, isPromoterError } from "../errors.js";
import { isJsonObject } from "../json-shape.js";
import { recordedApprovers } from "../provenance/index.js";
import type { Digest } from "../reference/index.js";
import type { BlobReader, CallOptions, ManifestReader, ReferrerLister } from "../registry/index.js";
import { checkSignatures } from "./check-signatures.js";
import type { VerificationKey } from "./keys.js";
import type { KeylessPolicy } from "./keyless-policy.js";
import {
  checkPromotionAttestation,
  type ApproverPolicy,
  type FoundAttestation,
  type PromotionAttestationCheckStatus,
} from "./verify-attestations.js";

/**
 * One digest in one repository, as a reader of one mirror asks about it (the auditor's status
 * page, docs/auditor.md "Signatures and attestations, verified"): is it signed, by whom, and does
 * a verified promotion attestation say who approved it and in which change. The same checks as
 * `promoter verify` (`checkSignatures`, `checkPromotionAttestation`), for one place instead of
 * every target of the manifests.
 */

/** Whose signatures count, and what they must name: `promoter verify`'s trust settings. */
export interface PlaceExpectation {
  /** Public keys whose signatures count. */
  readonly keys: readonly VerificationKey[];
  /** Keyless signers accepted (certificate identity and issuer). */
  readonly keyless?: KeylessPolicy;
  /** The canonical name the signature and the attestation must name (`verify`'s identity). */
  readonly identity?: string;
  /** What the approvals a promotion record lists must show (`verify --require-approvers`). */
  readonly approvers?: ApproverPolicy;
}

/** The signature of a digest at one mirror. */
export interface PlaceSignature {
  /** `unreadable`: the registry did not answer (the reason says how). */
  readonly status: "valid" | "invalid" | "missing" | "unreadable";
  /** For a valid one: key ids or keyless subjects. */
  readonly signers: readonly string[];
  /** For the other statuses: what was found and why it does not count. */
  readonly reasons: readonly string[];
}

/** The review a verified promotion record names: where its digest's line is, and its change. */
export interface VerifiedReview {
  /** Approver logins the record's human review lists. */
  readonly approvers: readonly string[];
  /** The pull request (its URL, else `#<number>`), when the record names one. */
  readonly change?: string;
  /** The manifest file and the digest's line, with its git URI when the repository is known. */
  readonly manifest?: { readonly path: string; readonly line: number; readonly uri?: string };
}

/** The promotion attestation of a digest at one mirror. */
export interface PlaceAttestation {
  /** `unapproved`: it verified, but its approvals fall short of the approver policy. */
  readonly status: PromotionAttestationCheckStatus | "unreadable";
  /** Who signed the ones that verified: key ids, or keyless subjects. */
  readonly signers: readonly string[];
  /** For the other statuses: each attestation looked at and why it does not count. */
  readonly reasons: readonly string[];
  /** What each verified promotion record says (for valid and unapproved only). */
  readonly reviews: readonly VerifiedReview[];
}

/** What `verifyPlace` answers for one digest in one repository. */
export interface PlaceVerification {
  readonly signature: PlaceSignature;
  readonly attestation: PlaceAttestation;
}

function failure(error: unknown): string {
  return isPromoterError(error) ? `${error.code}: ${error.message}` : describeError(error);
}

/** The review facts of a verified promotion predicate (src/provenance/promotion-record.ts). */
export function verifiedReview(predicate: Record<string, unknown>): VerifiedReview {
  const review = isJsonObject(predicate.review) ? predicate.review : {};
  const pr = isJsonObject(review.pullRequest) ? review.pullRequest : {};
  const manifest = isJsonObject(review.manifest) ? review.manifest : undefined;
  const change =
    typeof pr.url === "string" && pr.url !== ""
      ? pr.url
      : typeof pr.number === "number"
        ? `#${pr.number}`
        : undefined;
  return {
    approvers: recordedApprovers(predicate).map((approver) => approver.name),
    ...(change === undefined ? {} : { change }),
    ...(manifest && typeof manifest.path === "string" && typeof manifest.line === "number"
      ? {
          manifest: {
            path: manifest.path,
            line: manifest.line,
            ...(typeof manifest.uri === "string" ? { uri: manifest.uri } : {}),
          },
        }
      : {}),
  };
}

function reviewsOf(found: readonly FoundAttestation[]): VerifiedReview[] {
  return found.flatMap((entry) => (entry.promotion ? [verifiedReview(entry.promotion.predicate)] : []));
}

/**
 * The signature and the promotion attestation of `digest` in one repository. Registry errors
 * make that part `unreadable` with the reason (the other part is still checked); an abort throws.
 */
export async function verifyPlace(
  store: ManifestReader & ReferrerLister & BlobReader,
  digest: Digest,
  expectation: PlaceExpectation,
  options: CallOptions = {},
): Promise<PlaceVerification> {
  const named = expectation.identity === undefined ? {} : { identity: expectation.identity };
  const keyless = expectation.keyless ? { keyless: expectation.keyless } : {};
  let signature: PlaceSignature;
  try {
    const check = await checkSignatures(
      store,
      digest,
      { keys: expectation.keys, ...keyless, ...named },
      options,
    );
    signature = { status: check.status, signers: check.signers, reasons: check.reasons };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    signature = { status: "unreadable", signers: [], reasons: [failure(error)] };
  }
  let attestation: PlaceAttestation;
  try {
    const check = await checkPromotionAttestation(
      store,
      digest,
      "promotion",
      {
        keys: expectation.keys,
        ...keyless,
        ...named,
        ...(expectation.approvers ? { approvers: expectation.approvers } : {}),
      },
      options,
    );
    attestation = {
      status: check.status,
      signers: [...new Set(check.found.map((entry) => entry.signer))],
      reasons: check.reasons,
      reviews: reviewsOf(check.found),
    };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    attestation = { status: "unreadable", signers: [], reasons: [failure(error)], reviews: [] };
  }
  return { signature, attestation };
}
