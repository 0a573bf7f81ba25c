import { isJsonObject } from "../json-shape.js";
import { digestAlgorithm, digestHex, type Digest } from "../reference/index.js";
import { IN_TOTO_STATEMENT_V1, parseStatement, promoterId, type StatementParse } from "./promotion-record.js";

/**
 * The SLSA Verification Summary Attestation (VSA v1) written next to the promotion attestation,
 * for verifiers that only understand standard predicates (slsa-verifier `verify-vsa`, Ratify,
 * admission controllers). Pure.
 * https://slsa.dev/spec/v1.0/verification_summary
 *
 * `verifiedLevels` holds our custom levels (SLSA allows custom properties with an organisation
 * prefix): always `PROMOTED_LEVEL`, "this digest was promoted to production because a manifest
 * names it"; `REVIEWED_LEVEL`, "... by a reviewed change", only when the record shows it (the
 * manifest line is in a commit, and the pull request that brought it has an approver recorded);
 * and `SLSA_BUILD_LEVEL_<n>` when staging's verified provenance proves that level.
 */

export const VSA_PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1";
/** Custom verified level: promoted by image-promoter because a manifest names it. */
export const PROMOTED_LEVEL = "IMAGE_PROMOTER_MANIFEST_PROMOTED";
/** Custom verified level: ... and the change that named it was reviewed (approvers recorded). */
export const REVIEWED_LEVEL = "IMAGE_PROMOTER_MANIFEST_REVIEWED";

/** A resource the verification read: its URI and digest (SLSA ResourceDescriptor subset). */
export interface VerifiedInput {
  readonly uri: string;
  readonly digest: Digest;
}

export interface VerificationSummary {
  /** The promoted digest (an index or one of its images). */
  readonly digest: Digest;
  /** The production reference verified, `<identity>@<digest>`. */
  readonly resourceUri: string;
  readonly timeVerified: string;
  readonly promoterVersion: string;
  /** The manifest that approved it (a git URI) and the commit it was read at. */
  readonly policy?: { readonly uri: string; readonly gitCommit?: string };
  /** Staging's provenance and signatures that were checked. */
  readonly inputAttestations: readonly VerifiedInput[];
  /** The SLSA build level staging's provenance proves, when it does. */
  readonly slsaBuildLevel?: number;
  /** Whether the record shows the change reviewed (`REVIEWED_LEVEL`). */
  readonly reviewed?: boolean;
}

function digestSet(digest: Digest): Record<string, string> {
  return { [digestAlgorithm(digest)]: digestHex(digest) };
}

export function verificationSummaryStatement(summary: VerificationSummary): Record<string, unknown> {
  const levels = summary.reviewed === true ? [PROMOTED_LEVEL, REVIEWED_LEVEL] : [PROMOTED_LEVEL];
  if (summary.slsaBuildLevel !== undefined) levels.unshift(`SLSA_BUILD_LEVEL_${summary.slsaBuildLevel}`);
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [{ name: summary.resourceUri.replace(/@.*$/, ""), digest: digestSet(summary.digest) }],
    predicateType: VSA_PREDICATE_TYPE,
    predicate: {
      verifier: {
        id: promoterId(summary.promoterVersion),
        version: { "image-promoter": summary.promoterVersion },
      },
      timeVerified: summary.timeVerified,
      resourceUri: summary.resourceUri,
      ...(summary.policy
        ? {
            policy: {
              uri: summary.policy.uri,
              ...(summary.policy.gitCommit === undefined
                ? {}
                : { digest: { gitCommit: summary.policy.gitCommit } }),
            },
          }
        : {}),
      inputAttestations: summary.inputAttestations.map((input) => ({
        uri: input.uri,
        digest: digestSet(input.digest),
      })),
      verificationResult: "PASSED",
      verifiedLevels: levels,
      slsaVersion: "1.0",
    },
  };
}

export interface ParsedVerificationSummary {
  readonly resourceUri: string;
  readonly verifierId: string;
  readonly verificationResult: string;
  readonly verifiedLevels: readonly string[];
  readonly timeVerified: string;
}

/** A VSA about `subject` with the fields a verifier needs, or a reason it is not one. */
export function parseVerificationSummary(
  payload: Uint8Array,
  subject: Digest,
): StatementParse<ParsedVerificationSummary> {
  const statement = parseStatement(payload, VSA_PREDICATE_TYPE, subject);
  if (!statement.ok) return statement;
  const { predicate } = statement.value;
  const verifier = isJsonObject(predicate.verifier) ? predicate.verifier : {};
  const levels = Array.isArray(predicate.verifiedLevels) ? predicate.verifiedLevels : [];
  if (
    typeof predicate.resourceUri !== "string" ||
    typeof verifier.id !== "string" ||
    typeof predicate.verificationResult !== "string" ||
    typeof predicate.timeVerified !== "string" ||
    !levels.every((level): level is string => typeof level === "string")
  ) {
    return { ok: false, reason: "the verification summary lacks resourceUri, verifier.id, result or levels" };
  }
  return {
    ok: true,
    value: {
      resourceUri: predicate.resourceUri,
      verifierId: verifier.id,
      verificationResult: predicate.verificationResult,
      verifiedLevels: levels,
      timeVerified: predicate.timeVerified,
    },
  };
}
