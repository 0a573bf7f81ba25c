import { isJsonObject } from "../json-shape.js";
import { digestAlgorithm, digestHex, parseDigest, type Digest } from "../reference/index.js";

/**
 * The promotion attestation: an in-toto Statement v1 whose subject is a promoted digest and
 * whose predicate says which change approved it and who built it. Pure: records in, statement
 * bytes out, and back.
 * https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
 *
 * The predicate type and its first five fields are kpromo's promotion record
 * (`https://k8s.io/promo-tools/promotion/v1`: srcRef, dstRef, digest, timestamp, builderId in
 * protojson's camelCase), so kpromo's consumers read ours. The other fields are ours; a consumer
 * that does not know them ignores them. `review` has the shape of in-toto's human-review VCS
 * predicate (reviewers, targetTip, mergeBase, reviewLink) rather than one of our own.
 *
 * The statement is made once per digest and run, and the same bytes go to every mirror: `dstRef`
 * names the image by its canonical name (the identity signatures carry), never by one mirror.
 */

export const IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1";
export const PROMOTION_PREDICATE_TYPE = "https://k8s.io/promo-tools/promotion/v1";
/** in-toto's human-review predicate for VCS reviews; `review` follows its predicate's shape. */
export const HUMAN_REVIEW_VCS_TYPE = "https://in-toto.io/attestation/human-review/vcs/v0.1";
/** Who we are, as a URI (a package URL: the npm package and its version). */
export function promoterId(version: string): string {
  return `pkg:npm/image-promoter@${version}`;
}

/** A git commit, as the predicate names it. */
export interface CommitRecord {
  readonly sha: string;
  readonly author?: string;
  /** RFC 3339. */
  readonly time?: string;
  /** The first line of the message. */
  readonly subject?: string;
}

/** One approver: a login and, when known, a URI that stays theirs (e.g. the forge's user URL). */
export interface Approver {
  readonly name: string;
  readonly uri?: string;
}

/** Where the approvals come from, so a reader knows what vouches for them. */
export type ApprovalSource = "github-api" | "github-event";

export interface PullRequestRecord {
  readonly number: number;
  readonly url?: string;
  readonly author?: string;
  /** The tip of the pull request's branch that was reviewed. */
  readonly headSha?: string;
  /** The branch it merged into (`refs/heads/main`) and that branch's commit it was based on. */
  readonly baseRef?: string;
  readonly baseSha?: string;
  readonly approvers: readonly Approver[];
  readonly approvalSource?: ApprovalSource;
  /** RFC 3339: the last approval. */
  readonly reviewTime?: string;
}

/** The change that approved one edge. Everything but the manifest place is optional: CI decides. */
export interface ReviewRecord {
  /** The manifest file (relative to the repository root, `/`-separated) and the digest's line. */
  readonly manifest: { readonly path: string; readonly line: number };
  /** The manifests' repository (`https://github.com/org/repo`), when known. */
  readonly repository?: string;
  /** The commit that wrote the digest's line (git blame). */
  readonly addedIn?: CommitRecord;
  /** The commit promoted from: on a merge job, the merge commit. */
  readonly merge?: CommitRecord;
  readonly pullRequest?: PullRequestRecord;
}

/** Staging's build provenance, verified ("who built it"). */
export interface BuildRecord {
  /** SLSA `builder.id`. */
  readonly builderId: string;
  readonly buildType?: string;
  /** The source repository (SLSA v1 resolved dependency / v0.2 material URI). */
  readonly sourceRepository?: string;
  readonly sourceCommit?: string;
  /** The SLSA build level the provenance proves, when it does. */
  readonly slsaBuildLevel?: number;
  /** The attestation that says so: its digest (the DSSE envelope or bundle), type and signer. */
  readonly attestation: {
    readonly digest: Digest;
    readonly predicateType: string;
    readonly signer: string;
  };
}

export interface PromotionRecord {
  /** The digest this statement is about (an index or one of its images). */
  readonly digest: Digest;
  /** kpromo's `srcRef`: the staging reference, `<registry>/<image>@<digest>`. */
  readonly srcRef: string;
  /** kpromo's `dstRef`: the canonical production reference, `<identity>@<digest>`. */
  readonly dstRef: string;
  /** RFC 3339: when this run promoted it. */
  readonly timestamp: string;
  /** The promoter's version (builderId and promoter.version derive from it). */
  readonly promoterVersion: string;
  /** The index this image was promoted in, when it is a platform image of one. */
  readonly index?: Digest;
  readonly review?: ReviewRecord;
  readonly build?: BuildRecord;
}

function resourceName(digest: Digest): Record<string, string> {
  return { [digestAlgorithm(digest)]: digestHex(digest) };
}

function commitDescriptor(name: string, commit: CommitRecord | string): Record<string, unknown> {
  const sha = typeof commit === "string" ? commit : commit.sha;
  return { name, digest: { gitCommit: sha } };
}

function withoutUndefined(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

/** The git URI of a file at a commit (SPDX download-location style), when the repository is known. */
export function manifestUri(review: ReviewRecord): string | undefined {
  if (review.repository === undefined) return undefined;
  const at = approvingCommit(review);
  return `git+${review.repository}${at === undefined ? "" : `@${at}`}#${review.manifest.path}`;
}

/**
 * The commit whose manifest names the digest: the merge commit (else the commit that wrote the
 * line), and only when the line is in a commit at all. A line only the work tree holds (changed
 * before the run) is in no commit, and HEAD's manifest does not name it.
 */
function approvingCommit(review: ReviewRecord): string | undefined {
  if (review.addedIn === undefined) return undefined;
  return review.merge?.sha ?? review.addedIn.sha;
}

/**
 * Whether the record shows the digest's line reviewed: it is in a commit, and the pull request
 * that brought that commit has an approver recorded (the VSA's `REVIEWED_LEVEL`).
 */
export function shownReviewed(review: ReviewRecord | undefined): boolean {
  return review?.addedIn !== undefined && (review.pullRequest?.approvers.length ?? 0) > 0;
}

/**
 * The VSA's `policy`: the manifest that approved the digest, and the commit it was approved in
 * (`approvingCommit`). Without a known repository the URI is the manifest's path in the tree (a
 * relative reference).
 */
export function verificationPolicy(review: ReviewRecord): { uri: string; gitCommit?: string } {
  const gitCommit = approvingCommit(review);
  return {
    uri: manifestUri(review) ?? review.manifest.path,
    ...(gitCommit === undefined ? {} : { gitCommit }),
  };
}

function reviewPredicate(review: ReviewRecord): Record<string, unknown> {
  const pr = review.pullRequest;
  return withoutUndefined({
    manifest: withoutUndefined({
      path: review.manifest.path,
      line: review.manifest.line,
      uri: manifestUri(review),
    }),
    repository: review.repository,
    addedIn: review.addedIn ? withoutUndefined({ ...review.addedIn }) : undefined,
    merge: review.merge ? withoutUndefined({ ...review.merge }) : undefined,
    pullRequest: pr
      ? withoutUndefined({
          number: pr.number,
          url: pr.url,
          author: pr.author,
          approvalSource: pr.approvalSource,
        })
      : undefined,
    // in-toto human-review VCS: reviewers, targetTip (base branch and its tip), mergeBase, link.
    humanReview: pr
      ? withoutUndefined({
          predicateType: HUMAN_REVIEW_VCS_TYPE,
          reviewers: pr.approvers.map((approver) => withoutUndefined({ ...approver })),
          subject: pr.headSha === undefined ? undefined : commitDescriptor("head", pr.headSha),
          targetTip:
            review.merge === undefined ? undefined : commitDescriptor(pr.baseRef ?? "", review.merge),
          mergeBase: pr.baseSha === undefined ? undefined : commitDescriptor(pr.baseRef ?? "", pr.baseSha),
          reviewLink: pr.url,
          reviewTime: pr.reviewTime,
        })
      : undefined,
  });
}

function buildPredicate(build: BuildRecord): Record<string, unknown> {
  return withoutUndefined({
    builderId: build.builderId,
    buildType: build.buildType,
    sourceRepository: build.sourceRepository,
    sourceCommit: build.sourceCommit,
    slsaBuildLevel: build.slsaBuildLevel,
    attestation: { ...build.attestation },
  });
}

/** The statement's JSON object (its bytes: `promotionStatementBytes`). */
export function promotionStatement(record: PromotionRecord): Record<string, unknown> {
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [{ name: record.dstRef.replace(/@.*$/, ""), digest: resourceName(record.digest) }],
    predicateType: PROMOTION_PREDICATE_TYPE,
    predicate: withoutUndefined({
      srcRef: record.srcRef,
      dstRef: record.dstRef,
      digest: record.digest,
      timestamp: record.timestamp,
      builderId: promoterId(record.promoterVersion),
      promoter: { id: promoterId(record.promoterVersion), version: record.promoterVersion },
      index: record.index,
      review: record.review ? reviewPredicate(record.review) : undefined,
      build: record.build ? buildPredicate(record.build) : undefined,
    }),
  };
}

export function statementBytes(statement: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(statement));
}

/** What a reader (verify, explain) gets back from a promotion statement. */
export interface ParsedPromotionStatement {
  readonly subjectName: string;
  readonly digest: Digest;
  readonly srcRef: string;
  readonly dstRef: string;
  readonly timestamp: string;
  readonly builderId: string;
  readonly promoterVersion?: string;
  readonly index?: Digest;
  /** The predicate as it is (its approvers and author are read by `recordedApprovers`/`recordedAuthor`). */
  readonly predicate: Record<string, unknown>;
}

export type StatementParse<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** An in-toto Statement v1 of `predicateType` about `subject`, or a reason it is not one. */
export function parseStatement(
  payload: Uint8Array,
  predicateType: string,
  subject: Digest,
): StatementParse<{ subjectName: string; predicate: Record<string, unknown> }> {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return { ok: false, reason: "the statement is not JSON" };
  }
  if (!isJsonObject(document) || document._type !== IN_TOTO_STATEMENT_V1) {
    return { ok: false, reason: `not an in-toto ${IN_TOTO_STATEMENT_V1} statement` };
  }
  if (document.predicateType !== predicateType) {
    return { ok: false, reason: `predicate type ${String(document.predicateType)}, not ${predicateType}` };
  }
  if (!isJsonObject(document.predicate)) return { ok: false, reason: "the statement has no predicate" };
  const subjects = Array.isArray(document.subject) ? document.subject : [];
  const algorithm = digestAlgorithm(subject);
  const named = subjects.find(
    (entry): entry is Record<string, unknown> =>
      isJsonObject(entry) && isJsonObject(entry.digest) && entry.digest[algorithm] === digestHex(subject),
  );
  if (!named) return { ok: false, reason: `the statement is not about ${subject}` };
  return {
    ok: true,
    value: { subjectName: typeof named.name === "string" ? named.name : "", predicate: document.predicate },
  };
}

function stringField(object: Record<string, unknown>, name: string): string | undefined {
  const value = object[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** A promotion statement about `subject`, with kpromo's fields present and consistent. */
export function parsePromotionStatement(
  payload: Uint8Array,
  subject: Digest,
): StatementParse<ParsedPromotionStatement> {
  const statement = parseStatement(payload, PROMOTION_PREDICATE_TYPE, subject);
  if (!statement.ok) return statement;
  const { predicate, subjectName } = statement.value;
  const srcRef = stringField(predicate, "srcRef");
  const dstRef = stringField(predicate, "dstRef");
  const timestamp = stringField(predicate, "timestamp");
  const builderId = stringField(predicate, "builderId");
  if (!srcRef || !dstRef || !timestamp || !builderId) {
    return { ok: false, reason: "the promotion record lacks srcRef, dstRef, timestamp or builderId" };
  }
  if (predicate.digest !== subject) {
    return {
      ok: false,
      reason: `the promotion record's digest is ${String(predicate.digest)}, not ${subject}`,
    };
  }
  const promoter = isJsonObject(predicate.promoter) ? predicate.promoter : {};
  let index: Digest | undefined;
  try {
    index = typeof predicate.index === "string" ? parseDigest(predicate.index) : undefined;
  } catch {
    return { ok: false, reason: "the promotion record's index is not a digest" };
  }
  const promoterVersion = stringField(promoter, "version");
  return {
    ok: true,
    value: {
      subjectName,
      digest: subject,
      srcRef,
      dstRef,
      timestamp,
      builderId,
      ...(promoterVersion === undefined ? {} : { promoterVersion }),
      ...(index === undefined ? {} : { index }),
      predicate,
    },
  };
}

/** The approvers a promotion predicate records (human-review `reviewers`), by name. */
export function recordedApprovers(predicate: Record<string, unknown>): Approver[] {
  const review = isJsonObject(predicate.review) ? predicate.review : {};
  const human = isJsonObject(review.humanReview) ? review.humanReview : {};
  const reviewers = Array.isArray(human.reviewers) ? human.reviewers : [];
  return reviewers.flatMap((entry): Approver[] => {
    if (!isJsonObject(entry) || typeof entry.name !== "string" || entry.name === "") return [];
    return [{ name: entry.name, ...(typeof entry.uri === "string" ? { uri: entry.uri } : {}) }];
  });
}

/** The pull request's author a promotion predicate records. */
export function recordedAuthor(predicate: Record<string, unknown>): string | undefined {
  const review = isJsonObject(predicate.review) ? predicate.review : {};
  const pr = isJsonObject(review.pullRequest) ? review.pullRequest : {};
  return stringField(pr, "author");
}
