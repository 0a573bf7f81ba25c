import { describeError, isPromoterError } from "../errors.js";
import { isJsonObject } from "../json-shape.js";
import { parseManifest, type Descriptor } from "../oci/index.js";
import {
  parsePromotionStatement,
  parseVerificationSummary,
  PROMOTED_LEVEL,
  PROMOTION_PREDICATE_TYPE,
  recordedApprovers,
  recordedAuthor,
  VSA_PREDICATE_TYPE,
  type ParsedPromotionStatement,
  type ParsedVerificationSummary,
} from "../provenance/index.js";
import { attachmentTag, digestOf, type Digest } from "../reference/index.js";
import { runBounded } from "../concurrency/index.js";
import {
  openOnSide,
  type BlobReader,
  type CallOptions,
  type ManifestReader,
  type ReferrerLister,
  type RepositoryOpener,
  type RepositoryStore,
} from "../registry/index.js";
import type { SignatureTarget } from "./attachment-plan.js";
import { layerPredicateType } from "./attestation-format.js";
import { readSmallBlob } from "./blob-io.js";
import {
  boundedCandidates,
  BUNDLE_MEDIA_TYPE,
  BundleAnnotation,
  bundleLayerOf,
  checkSigningStatement,
  MAX_BUNDLE_BYTES,
  verifySigningBundle,
} from "./bundle-format.js";
import type { SignatureExpectation } from "./check-signatures.js";
import { CosignAnnotation, MAX_SIGNATURE_LAYER_BYTES, parseLayerSet } from "./cosign-format.js";
import { dsseSigner, parseDsseEnvelope } from "./dsse.js";
import { signatureSubjects, type SignatureSubject } from "./subjects.js";
import { checkedPlaceFields, statusCounts } from "./verify-targets.js";

/**
 * `promoter verify --attestations` and `promoter explain`: whether a promoted digest carries the
 * promotion attestation and the VSA that `promote` writes (src/provenance/), at a mirror. One
 * counts when it is signed by a key (or keyless identity) of the expectation, its in-toto
 * statement is about the digest with the right predicate type, and it names the expected
 * production reference (`dstRef`, the VSA's `resourceUri`: `<identity>@<digest>`). They are read
 * from sigstore bundle referrers annotated with their predicate type (the registry client reads
 * the referrers API or the tag-schema fallback) and from cosign's `.att` layers annotated alike.
 *
 * Annotations only choose what is read: they are not signed. A referrer annotated as a
 * promotion record that holds something else is `invalid`; an attestation annotated as
 * something else is not looked at, so hiding one makes it `missing`, never `valid`.
 */

/** Which of our attestations: the promotion record, or the SLSA verification summary. */
export type AttestationKind = "promotion" | "summary";
export const ATTESTATION_KINDS: readonly AttestationKind[] = ["promotion", "summary"];
export const ATTESTATION_PREDICATE_TYPES: Readonly<Record<AttestationKind, string>> = {
  promotion: PROMOTION_PREDICATE_TYPE,
  summary: VSA_PREDICATE_TYPE,
};

/** What the approvals recorded in a promotion record must show. */
export interface ApproverPolicy {
  /** At least this many recorded approvers. */
  readonly minApprovers?: number;
  /** At least one approver who is not the pull request's author. */
  readonly independentApprover?: boolean;
}

export interface AttestationExpectation {
  readonly keys: SignatureExpectation["keys"];
  readonly keyless?: SignatureExpectation["keyless"];
  /**
   * The canonical name the statements must name (`dstRef` = `<identity>@<digest>`); any name
   * when absent (`explain` of a reference without manifests).
   */
  readonly identity?: string;
  readonly approvers?: ApproverPolicy;
}

/** One attestation that verified: where it was, who signed it, what it says. */
export interface FoundAttestation {
  /** The referrer manifest's digest, or the `.att` layer's (the DSSE envelope). */
  readonly digest: Digest;
  readonly layout: "referrer" | "att";
  readonly signer: string;
  readonly promotion?: ParsedPromotionStatement;
  readonly summary?: ParsedVerificationSummary;
  /** Set when it verified but its recorded approvals do not meet the policy. */
  readonly approvalProblem?: string;
}

export type PromotionAttestationCheckStatus = "valid" | "missing" | "invalid" | "unapproved";

export interface PromotionAttestationCheck {
  readonly status: PromotionAttestationCheckStatus;
  /**
   * For missing, invalid and unapproved: each attestation looked at and why it does not count.
   * For any status: that a list was cut to MAX_BUNDLE_CANDIDATES (a flood of lookalikes).
   */
  readonly reasons: readonly string[];
  /** The ones that verified (for `unapproved`: those whose approvals fall short). */
  readonly found: readonly FoundAttestation[];
}

/** Why a promotion predicate's recorded approvals do not meet `policy`, or undefined. */
export function approvalProblem(
  predicate: Record<string, unknown>,
  policy: ApproverPolicy | undefined,
): string | undefined {
  if (!policy) return undefined;
  const approvers = recordedApprovers(predicate);
  const names = approvers.map((approver) => approver.name);
  const listed = names.length === 0 ? "none recorded" : names.join(", ");
  const minimum = policy.minApprovers ?? 0;
  if (approvers.length < minimum) {
    return `${approvers.length} approver${approvers.length === 1 ? "" : "s"} recorded (${listed}), at least ${minimum} required`;
  }
  if (policy.independentApprover) {
    const author = recordedAuthor(predicate);
    if (author === undefined) {
      return `no pull request author recorded, so no approver can be shown independent (approvers: ${listed})`;
    }
    // Forge logins are case-insensitive (GitHub's are).
    if (!names.some((name) => name.toLowerCase() !== author.toLowerCase())) {
      return `no approver other than the pull request's author ${author} (approvers: ${listed})`;
    }
  }
  return undefined;
}

type Verdict<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** The payload of a bundle's DSSE envelope (read after the bundle verified, from the same JSON). */
function bundlePayload(bytes: Uint8Array): Buffer | undefined {
  try {
    const document: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (!isJsonObject(document) || !isJsonObject(document.dsseEnvelope)) return undefined;
    const payload = document.dsseEnvelope.payload;
    return typeof payload === "string" ? Buffer.from(payload, "base64") : undefined;
  } catch {
    return undefined;
  }
}

/** What a verified statement says, checked against the kind and expected reference. */
function readStatement(
  kind: AttestationKind,
  payload: Uint8Array,
  subject: Digest,
  expectation: AttestationExpectation,
): Verdict<Pick<FoundAttestation, "promotion" | "summary" | "approvalProblem">> {
  const expectedRef = expectation.identity === undefined ? undefined : `${expectation.identity}@${subject}`;
  if (kind === "promotion") {
    const parsed = parsePromotionStatement(payload, subject);
    if (!parsed.ok) return parsed;
    const { dstRef } = parsed.value;
    if (expectedRef !== undefined ? dstRef !== expectedRef : !dstRef.endsWith(`@${subject}`)) {
      return {
        ok: false,
        reason: `the promotion record's dstRef is ${JSON.stringify(dstRef)}, not ${JSON.stringify(expectedRef ?? `…@${subject}`)}`,
      };
    }
    const problem = approvalProblem(parsed.value.predicate, expectation.approvers);
    return {
      ok: true,
      value: { promotion: parsed.value, ...(problem === undefined ? {} : { approvalProblem: problem }) },
    };
  }
  const parsed = parseVerificationSummary(payload, subject);
  if (!parsed.ok) return parsed;
  const { resourceUri, verificationResult, verifiedLevels } = parsed.value;
  if (expectedRef !== undefined ? resourceUri !== expectedRef : !resourceUri.endsWith(`@${subject}`)) {
    return {
      ok: false,
      reason: `the verification summary's resourceUri is ${JSON.stringify(resourceUri)}, not ${JSON.stringify(expectedRef ?? `…@${subject}`)}`,
    };
  }
  if (verificationResult !== "PASSED") {
    return {
      ok: false,
      reason: `the verification summary's result is ${JSON.stringify(verificationResult)}`,
    };
  }
  if (!verifiedLevels.includes(PROMOTED_LEVEL)) {
    return { ok: false, reason: `the verification summary does not list ${PROMOTED_LEVEL}` };
  }
  return { ok: true, value: { summary: parsed.value } };
}

/** A bundle referrer: signature (key, then keyless), then the statement. */
async function verifyBundleReferrer(
  store: ManifestReader & BlobReader,
  referrer: Descriptor,
  kind: AttestationKind,
  subject: Digest,
  expectation: AttestationExpectation,
  options: CallOptions,
): Promise<Verdict<FoundAttestation>> {
  const manifest = await store.getManifest(referrer.digest, options);
  if (!manifest) return { ok: false, reason: "listed but absent" };
  const layer = bundleLayerOf(manifest, `${store.name}@${referrer.digest}`);
  const bytes = await readSmallBlob(store, layer, MAX_BUNDLE_BYTES, options);
  if (bytes.length !== layer.size || digestOf(bytes) !== layer.digest) {
    return { ok: false, reason: `the bundle does not match its layer digest ${layer.digest}` };
  }
  const expected = {
    digest: subject,
    ...(expectation.identity === undefined ? {} : { identity: expectation.identity }),
  };
  const byKey =
    expectation.keys.length > 0
      ? await verifySigningBundle(bytes, expectation.keys, expected, "attestation")
      : undefined;
  let signer: string | undefined = byKey?.ok ? byKey.keyId : undefined;
  const keyless =
    signer === undefined && expectation.keyless
      ? await expectation.keyless.verifyBundle(bytes, expected, "attestation")
      : undefined;
  if (keyless?.ok) signer = keyless.signer;
  if (signer === undefined) {
    const why = [byKey, keyless].flatMap((entry) => (entry && !entry.ok ? [entry.reason] : []));
    return { ok: false, reason: why.join("; ") || "no key or keyless identity to verify it with" };
  }
  const payload = bundlePayload(bytes);
  if (!payload) return { ok: false, reason: "the bundle holds no DSSE payload" };
  const statement = readStatement(kind, payload, subject, expectation);
  if (!statement.ok) return statement;
  return { ok: true, value: { digest: referrer.digest, layout: "referrer", signer, ...statement.value } };
}

/** A cosign `.att` layer: the envelope, its signature (key or keyless), then the statement. */
async function verifyAttLayer(
  store: BlobReader,
  layer: Descriptor,
  kind: AttestationKind,
  subject: Digest,
  expectation: AttestationExpectation,
  options: CallOptions,
): Promise<Verdict<FoundAttestation>> {
  const bytes = await readSmallBlob(store, layer, MAX_SIGNATURE_LAYER_BYTES, options);
  if (bytes.length !== layer.size || digestOf(bytes) !== layer.digest) {
    return { ok: false, reason: "the envelope does not match the layer digest" };
  }
  const envelope = parseDsseEnvelope(bytes);
  if (typeof envelope === "string") return { ok: false, reason: envelope };
  const expected = {
    digest: subject,
    ...(expectation.identity === undefined ? {} : { identity: expectation.identity }),
  };
  let signer: string;
  if (layer.annotations?.[CosignAnnotation.certificate] !== undefined) {
    if (!expectation.keyless) {
      return { ok: false, reason: "signed with a certificate; no keyless identity is trusted" };
    }
    const verdict = await expectation.keyless.verifyAttestationLayer(layer, envelope, expected);
    if (!verdict.ok) return verdict;
    signer = verdict.signer;
  } else {
    const key = dsseSigner(envelope, expectation.keys);
    if (!key) {
      return {
        ok: false,
        reason:
          expectation.keys.length === 0
            ? "signed with a key; no key is trusted"
            : "the envelope verifies with none of the public keys",
      };
    }
    const named = checkSigningStatement(envelope.payload, expected, "attestation");
    if (!named.ok) return named;
    signer = key.keyId;
  }
  const statement = readStatement(kind, envelope.payload, subject, expectation);
  if (!statement.ok) return statement;
  return { ok: true, value: { digest: layer.digest, layout: "att", signer, ...statement.value } };
}

function failure(error: unknown): string {
  return isPromoterError(error) ? error.message : describeError(error);
}

/**
 * The attestation of `kind` for `subject` in one repository: `valid` when one verifies (and meets
 * the approver policy), `unapproved` when those that verify fall short of it, `invalid` when
 * there are some and none verifies, `missing` when there is none. Registry errors listing the
 * referrers or reading the `.att` tag are thrown (the caller reports them as unreadable); errors
 * reading one attestation make it not count, with the reason.
 */
export async function checkPromotionAttestation(
  store: ManifestReader & ReferrerLister & BlobReader,
  subject: Digest,
  kind: AttestationKind,
  expectation: AttestationExpectation,
  options: CallOptions = {},
): Promise<PromotionAttestationCheck> {
  const predicateType = ATTESTATION_PREDICATE_TYPES[kind];
  const reasons: string[] = [];
  /** Lists cut to MAX_BUNDLE_CANDIDATES: reported whatever the status. */
  const cuts: string[] = [];
  const found: FoundAttestation[] = [];
  let seen = 0;
  const referrers = boundedCandidates(
    (await store.referrers(subject, options)).filter(
      (referrer) =>
        referrer.artifactType === BUNDLE_MEDIA_TYPE &&
        referrer.annotations?.[BundleAnnotation.predicateType] === predicateType,
    ),
    `the referrers list of ${predicateType} bundles`,
  );
  if (referrers.cut !== undefined) cuts.push(referrers.cut);
  for (const referrer of referrers.read) {
    seen += 1;
    try {
      const verdict = await verifyBundleReferrer(store, referrer, kind, subject, expectation, options);
      if (verdict.ok) found.push(verdict.value);
      else reasons.push(`referrer ${referrer.digest}: ${verdict.reason}`);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      reasons.push(`referrer ${referrer.digest}: ${failure(error)}`);
    }
  }
  const tag = attachmentTag(subject, "att");
  const att = await store.getManifest(tag, options);
  if (att) {
    let layers: readonly Descriptor[] = [];
    try {
      layers = parseLayerSet(att, `${store.name}:${tag}`).layers;
    } catch (error) {
      reasons.push(`${tag} ${att.digest}: ${failure(error)}`);
    }
    const ofType = boundedCandidates(
      layers.filter((layer) => layerPredicateType(layer) === predicateType),
      `${tag} (${predicateType} layers)`,
    );
    if (ofType.cut !== undefined) cuts.push(ofType.cut);
    for (const layer of ofType.read) {
      seen += 1;
      try {
        const verdict = await verifyAttLayer(store, layer, kind, subject, expectation, options);
        if (verdict.ok) found.push(verdict.value);
        else reasons.push(`${tag} layer ${layer.digest}: ${verdict.reason}`);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        reasons.push(`${tag} layer ${layer.digest}: ${failure(error)}`);
      }
    }
  }
  const approved = found.filter((entry) => entry.approvalProblem === undefined);
  if (approved.length > 0) return { status: "valid", reasons: cuts, found: approved };
  if (found.length > 0) {
    return {
      status: "unapproved",
      reasons: [
        ...cuts,
        ...found.map(
          (entry) =>
            `${entry.layout === "att" ? `${tag} layer` : "referrer"} ${entry.digest}: ${entry.approvalProblem ?? ""}`,
        ),
      ],
      found,
    };
  }
  if (seen === 0 && reasons.length === 0) {
    return { status: "missing", reasons: [`no ${predicateType} attestation`], found: [] };
  }
  return { status: "invalid", reasons: [...cuts, ...reasons], found: [] };
}

export type AttestationStatus = PromotionAttestationCheckStatus | "not-promoted" | "unreadable";

/** One attestation kind of one subject at one mirror. */
export interface AttestationResult {
  readonly target: SignatureTarget;
  readonly subject: Digest;
  readonly role: "root" | "child";
  readonly destination: string;
  readonly identity: string;
  readonly kind: AttestationKind;
  readonly status: AttestationStatus;
  readonly reasons: readonly string[];
  readonly found: readonly FoundAttestation[];
  /**
   * Whether the mirrors that hold a verified one hold the same ones (by referrer or layer
   * digest); set on valid and unapproved results.
   */
  readonly identicalAcrossMirrors?: boolean;
}

export interface VerifyAttestationsOptions {
  readonly provider: RepositoryOpener;
  readonly expectation: Omit<AttestationExpectation, "identity">;
  /** Also each image of an index (as signatures; default true). */
  readonly signChildren?: boolean;
  readonly signal?: AbortSignal;
  readonly concurrency?: number;
}

/** Problems `verify --attestations` reports and exits 1 for. */
export function attestationProblems(results: readonly AttestationResult[]): AttestationResult[] {
  return results.filter((result) => result.status !== "valid" && result.status !== "not-promoted");
}

/** Each promoted digest (and image of an index) at each mirror: both attestations checked. */
export async function verifyAttestationTargets(
  targets: readonly SignatureTarget[],
  options: VerifyAttestationsOptions,
): Promise<AttestationResult[]> {
  const call: CallOptions = options.signal ? { signal: options.signal } : {};
  const results: AttestationResult[][] = new Array<AttestationResult[]>(targets.length);
  await runBounded(
    targets,
    options.concurrency ?? 8,
    async (target, index) => {
      results[index] = markIdenticalAcrossMirrors(await verifyTarget(target, options, call));
    },
    options.signal,
  );
  return results.flat();
}

/** Marks each verified result with whether the mirrors agree on its attestations. */
export function markIdenticalAcrossMirrors(results: readonly AttestationResult[]): AttestationResult[] {
  const groups = new Map<string, Set<string>>();
  const keyOf = (result: AttestationResult) => `${result.subject} ${result.kind}`;
  const verified = (result: AttestationResult) => result.status === "valid" || result.status === "unapproved";
  for (const result of results.filter(verified)) {
    const set = groups.get(keyOf(result)) ?? new Set<string>();
    set.add(
      result.found
        .map((entry) => entry.digest)
        .sort()
        .join(","),
    );
    groups.set(keyOf(result), set);
  }
  return results.map((result) =>
    verified(result)
      ? { ...result, identicalAcrossMirrors: (groups.get(keyOf(result))?.size ?? 0) <= 1 }
      : result,
  );
}

async function verifyTarget(
  target: SignatureTarget,
  options: VerifyAttestationsOptions,
  call: CallOptions,
): Promise<AttestationResult[]> {
  const results: AttestationResult[] = [];
  const identity = target.identities[0] ?? "";
  const every = (destination: string, status: AttestationStatus, reasons: string[]) => {
    for (const kind of ATTESTATION_KINDS) {
      results.push({
        target,
        subject: target.digest,
        role: "root",
        destination,
        identity,
        kind,
        status,
        reasons,
        found: [],
      });
    }
  };
  const present: { key: string; store: RepositoryStore }[] = [];
  for (const destination of target.destinations) {
    const store = openOnSide(options.provider, destination.location, "destination");
    try {
      if (await store.resolve(target.digest, call)) present.push({ key: destination.key, store });
      else every(destination.key, "not-promoted", []);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      every(destination.key, "unreadable", [`${destination.key}: ${describeError(error)}`]);
    }
  }
  const first = present[0];
  if (!first) return results;
  let subjects: SignatureSubject[];
  try {
    subjects = await promotedSubjects(first.store, target.digest, options.signChildren ?? true, call);
  } catch (error) {
    if (options.signal?.aborted) throw error;
    for (const { key } of present) every(key, "unreadable", [`${key}: ${describeError(error)}`]);
    return results;
  }
  const expectation = { ...options.expectation, identity };
  for (const subject of subjects) {
    for (const { key, store } of present) {
      for (const kind of ATTESTATION_KINDS) {
        const at = { target, subject: subject.digest, role: subject.role, destination: key, identity, kind };
        try {
          const check = await checkPromotionAttestation(store, subject.digest, kind, expectation, call);
          results.push({
            ...at,
            status: check.status,
            reasons: check.reasons.map((reason) => `${key}: ${reason}`),
            found: check.found,
          });
        } catch (error) {
          if (options.signal?.aborted) throw error;
          results.push({ ...at, status: "unreadable", reasons: [`${key}: ${failure(error)}`], found: [] });
        }
      }
    }
  }
  return results;
}

/** The promoted digest and, for an index, its images: what is signed and attested. */
export async function promotedSubjects(
  store: ManifestReader,
  digest: Digest,
  children: boolean,
  call: CallOptions,
): Promise<SignatureSubject[]> {
  const content = await store.getManifest(digest, call);
  if (!content) throw new Error(`${digest} vanished from ${store.name}`);
  const parsed = parseManifest(content.bytes, content.mediaType, `${store.name}@${digest}`);
  return signatureSubjects(
    digest,
    { mediaType: content.mediaType, digest: content.digest, size: content.bytes.length },
    parsed.kind === "index" ? parsed : undefined,
    children,
  ).filter((subject) => subject.sign);
}

/** The `attestations` section of the `verify --output json` document. */
export function attestationsSection(results: readonly AttestationResult[]): Record<string, unknown> {
  return {
    summary: statusCounts(
      ["valid", "missing", "invalid", "unapproved", "unreadable", "not-promoted"],
      results,
    ),
    results: results.map((result) => ({
      ...checkedPlaceFields(result),
      predicateType: ATTESTATION_PREDICATE_TYPES[result.kind],
      status: result.status,
      ...(result.reasons.length > 0 ? { reasons: result.reasons } : {}),
      ...(result.found.length > 0
        ? {
            attestations: result.found.map((entry) => ({
              digest: entry.digest,
              layout: entry.layout,
              signer: entry.signer,
              ...(entry.promotion ? { approvers: approverNames(entry.promotion) } : {}),
            })),
          }
        : {}),
      ...(result.identicalAcrossMirrors === undefined
        ? {}
        : { identicalAcrossMirrors: result.identicalAcrossMirrors }),
    })),
  };
}

function approverNames(statement: ParsedPromotionStatement): string[] {
  return recordedApprovers(statement.predicate).map((approver) => approver.name);
}
