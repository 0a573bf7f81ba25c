import {
  promotionStatement,
  shownReviewed,
  PROMOTION_PREDICATE_TYPE,
  statementBytes,
  verificationSummaryStatement,
  verificationPolicy,
  VSA_PREDICATE_TYPE,
  type BuildRecord,
  type ReviewRecord,
  type VerifiedInput,
} from "../provenance/index.js";
import type { Digest } from "../reference/index.js";
import type { SignatureTarget } from "./attachment-plan.js";
import type { AttestationLayout } from "./attestation-format.js";
import type { SignatureSubject } from "./subjects.js";

/**
 * Which attestations a run writes for a subject it signs, and their statement bytes. The
 * statements themselves are the provenance module's (promotion record, VSA); this only says
 * what goes into them: the facts the caller collected (review, build, verified inputs, policy),
 * the references, and one time for the whole run. A statement is made once per subject per run
 * and the same bytes are signed once and written to every mirror: `dstRef` and `resourceUri`
 * name the canonical identity (the first one signatures name), never a mirror.
 */

/** What the caller knows about one promoted subject; all optional (the CLI fills what it can). */
export interface AttestationFacts {
  readonly review?: ReviewRecord;
  readonly build?: BuildRecord;
  /** Staging's signatures and provenance the run verified (the VSA's `inputAttestations`). */
  readonly inputs?: readonly VerifiedInput[];
  /** The manifest that approved it, as a URI, and the commit it was read at (the VSA's `policy`). */
  readonly policy?: { readonly uri: string; readonly gitCommit?: string };
}

/** The facts of one subject of a promoted digest (the digest itself, or an image of its index). */
export type AttestationFactsOf = (target: SignatureTarget, subject: Digest) => AttestationFacts;

export interface AttestOptions {
  /** The promoter's version: the records' `builderId`, the VSA's `verifier`. */
  readonly promoterVersion: string;
  /** Where they are written (default `referrer`). */
  readonly layout?: AttestationLayout;
  /**
   * Collects the facts of the targets a plan may attest. Called at most once per plan, and only
   * when some subject lacks one of our attestations everywhere: a run with nothing to attest asks
   * neither git nor GitHub. Without it a statement holds only the references and the time.
   */
  readonly collectFacts?: (
    targets: readonly SignatureTarget[],
    signal?: AbortSignal,
  ) => Promise<AttestationFactsOf>;
  /** The run's time (`timestamp`, `timeVerified`); read once per plan. */
  readonly now?: () => Date;
}

/** A statement to sign: its predicate type, exact bytes, and the name it publishes the digest under. */
export interface PlannedStatement {
  readonly predicateType: string;
  readonly bytes: Uint8Array;
  /** The canonical identity the statement names (`<identity>@<digest>`). */
  readonly identity: string;
}

/** The promotion record and the VSA of `subject`, promoted at `timestamp` (RFC 3339). */
export function subjectStatements(
  target: SignatureTarget,
  subject: SignatureSubject,
  timestamp: string,
  promoterVersion: string,
  facts: AttestationFacts,
): PlannedStatement[] {
  const identity = target.identities[0];
  if (identity === undefined) return [];
  const dstRef = `${identity}@${subject.digest}`;
  const policy = facts.policy ?? (facts.review ? verificationPolicy(facts.review) : undefined);
  const record = promotionStatement({
    digest: subject.digest,
    srcRef: `${target.sourceKey}@${subject.digest}`,
    dstRef,
    timestamp,
    promoterVersion,
    ...(subject.role === "child" ? { index: target.digest } : {}),
    ...(facts.review ? { review: facts.review } : {}),
    ...(facts.build ? { build: facts.build } : {}),
  });
  const summary = verificationSummaryStatement({
    digest: subject.digest,
    resourceUri: dstRef,
    timeVerified: timestamp,
    promoterVersion,
    ...(policy ? { policy } : {}),
    inputAttestations: facts.inputs ?? [],
    ...(facts.build?.slsaBuildLevel === undefined ? {} : { slsaBuildLevel: facts.build.slsaBuildLevel }),
    reviewed: shownReviewed(facts.review),
  });
  return [
    { predicateType: PROMOTION_PREDICATE_TYPE, bytes: statementBytes(record), identity },
    { predicateType: VSA_PREDICATE_TYPE, bytes: statementBytes(summary), identity },
  ];
}
