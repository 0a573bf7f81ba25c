import { describeError, isPromoterError } from "../errors.js";
import { runBounded } from "../concurrency/index.js";
import { parseManifest } from "../oci/index.js";
import type { Digest } from "../reference/index.js";
import {
  openOnSide,
  type CallOptions,
  type RepositoryOpener,
  type RepositoryStore,
} from "../registry/index.js";
import type { SignatureTarget } from "./attachment-plan.js";
import { checkSignatures, type SignatureExpectation, type SignatureStatus } from "./check-signatures.js";
import { signatureSubjects, type SignatureSubject } from "./subjects.js";

/**
 * `promoter verify`: for every promoted digest (and each image of an index) at every
 * destination that holds it, whether a valid signature with the expected identity is there.
 */

export type VerifyStatus = SignatureStatus | "not-promoted" | "unreadable";

export interface VerifyResult {
  readonly target: SignatureTarget;
  readonly subject: Digest;
  readonly role: "root" | "child";
  readonly destination: string;
  readonly identity: string;
  readonly status: VerifyStatus;
  readonly reasons: readonly string[];
  readonly signers: readonly string[];
  readonly manifestDigest?: Digest;
}

/** Where a check looked: the promoted digest, the subject checked, the mirror and the name. */
export type CheckedPlace = Pick<VerifyResult, "target" | "subject" | "role" | "destination" | "identity">;

/** A check's place as the JSON documents (`verify`'s results and attestations) write it. */
export function checkedPlaceFields(result: CheckedPlace): Record<string, unknown> {
  return {
    project: result.target.project,
    image: result.target.image,
    digest: result.subject,
    promotedDigest: result.target.digest,
    role: result.role,
    destination: result.destination,
    identity: result.identity,
  };
}

/** How many results have each status; every status of `statuses` is listed, even at 0. */
export function statusCounts(
  statuses: readonly string[],
  results: readonly { readonly status: string }[],
): Record<string, number> {
  const summary: Record<string, number> = Object.fromEntries(statuses.map((status) => [status, 0]));
  for (const result of results) summary[result.status] = (summary[result.status] ?? 0) + 1;
  return summary;
}

export interface VerifyTargetsOptions {
  readonly provider: RepositoryOpener;
  /** Keys (and keyless identities) that count; the identity is each target's. */
  readonly expectation: Omit<SignatureExpectation, "identity">;
  readonly signChildren?: boolean;
  readonly signal?: AbortSignal;
  /** Promoted digests checked at once. */
  readonly concurrency?: number;
}

export async function verifyTargets(
  targets: readonly SignatureTarget[],
  options: VerifyTargetsOptions,
): Promise<VerifyResult[]> {
  const call: CallOptions = options.signal ? { signal: options.signal } : {};
  const results: VerifyResult[][] = new Array<VerifyResult[]>(targets.length);
  await runBounded(
    targets,
    options.concurrency ?? 8,
    async (target, index) => {
      results[index] = await verifyTarget(target, options, call);
    },
    options.signal,
  );
  return results.flat();
}

async function verifyTarget(
  target: SignatureTarget,
  options: VerifyTargetsOptions,
  call: CallOptions,
): Promise<VerifyResult[]> {
  const results: VerifyResult[] = [];
  const identity = target.identities[0] ?? "";
  const base = { target, subject: target.digest, role: "root" as const, identity, signers: [] };
  const present: { key: string; store: RepositoryStore }[] = [];
  for (const destination of target.destinations) {
    const store = openOnSide(options.provider, destination.location, "destination");
    try {
      if (await store.resolve(target.digest, call)) present.push({ key: destination.key, store });
      else results.push({ ...base, destination: destination.key, status: "not-promoted", reasons: [] });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      results.push({
        ...base,
        destination: destination.key,
        status: "unreadable",
        reasons: [describeError(error)],
      });
    }
  }
  const first = present[0];
  if (!first) return results;
  let subjects: SignatureSubject[];
  try {
    const content = await first.store.getManifest(target.digest, call);
    if (!content) throw new Error(`${target.digest} vanished from ${first.store.name}`);
    const parsed = parseManifest(content.bytes, content.mediaType, `${first.store.name}@${target.digest}`);
    subjects = signatureSubjects(
      target.digest,
      { mediaType: content.mediaType, digest: content.digest, size: content.bytes.length },
      parsed.kind === "index" ? parsed : undefined,
      options.signChildren ?? true,
    ).filter((subject) => subject.sign);
  } catch (error) {
    if (options.signal?.aborted) throw error;
    for (const { key } of present) {
      results.push({ ...base, destination: key, status: "unreadable", reasons: [describeError(error)] });
    }
    return results;
  }
  for (const subject of subjects) {
    for (const { key, store } of present) {
      const at = { target, subject: subject.digest, role: subject.role, destination: key, identity };
      try {
        const check = await checkSignatures(
          store,
          subject.digest,
          { ...options.expectation, identity },
          call,
        );
        results.push({
          ...at,
          status: check.status,
          reasons: check.reasons,
          signers: check.signers,
          ...(check.manifestDigest ? { manifestDigest: check.manifestDigest } : {}),
        });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        results.push({
          ...at,
          status: "unreadable",
          reasons: [isPromoterError(error) ? `${error.code}: ${error.message}` : describeError(error)],
          signers: [],
        });
      }
    }
  }
  return results;
}
