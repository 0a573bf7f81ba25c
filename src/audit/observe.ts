/**
 * The observing half of a judgement: the decisions of decide.ts are synchronous and say what
 * they need to know; this asks a `ManifestLookup` (registries and the findings database in the
 * auditor, memory in tests), records the answers and decides again, until the decision is made.
 * The questions of one step are asked together (a level of an index tree is read in parallel).
 */
import type { Digest, DigestInTag, Tag } from "../reference/index.js";
import {
  decideAttachment,
  decideEvent,
  decidePromotedRelation,
  decidePromotedTagSubject,
  Observations,
  type AttachmentCheck,
  type Decision,
  type JudgeOptions,
  type Judgement,
  type ManifestFacts,
  type PromotedRelation,
  type Question,
} from "./decide.js";
import type { DesiredRepository, DesiredState } from "./desired-state.js";
import type { RegistryEvent } from "./event.js";

export interface ManifestLookup {
  /**
   * The manifest `digest` as stored in `repository` or, when not there (yet), in the sources the
   * desired state names for it; undefined when it cannot be read.
   */
  manifest(repository: DesiredRepository, digest: Digest): Promise<ManifestFacts | undefined>;
  /**
   * A tag already verified in `repository` that points at `digest`: a signature manifest
   * pushed by digest and then tagged is explained by its tag.
   */
  verifiedTagFor(repositoryKey: string, digest: Digest): Tag | undefined;
  /** The digest a tag points at, for Pub/Sub tag events that carry no digest. */
  resolveTag?(repository: DesiredRepository, tag: Tag): Promise<Digest | undefined>;
}

/** Answers `questions` with `lookup` into `observed`. */
async function observe(
  questions: readonly Question[],
  lookup: ManifestLookup,
  observed: Observations,
): Promise<void> {
  await Promise.all(
    questions.map(async (question) => {
      switch (question.kind) {
        case "manifest":
          observed.recordManifest(
            question.repository,
            question.digest,
            await lookup.manifest(question.repository, question.digest),
          );
          return;
        case "verified-tag":
          observed.recordVerifiedTag(
            question.repository,
            question.digest,
            lookup.verifiedTagFor(question.repository.key, question.digest),
          );
          return;
        case "tag-digest":
          observed.recordTagDigest(
            question.repository,
            question.tag,
            await lookup.resolveTag?.(question.repository, question.tag),
          );
          return;
      }
    }),
  );
}

/** Decides, answering the decision's questions with `lookup` until it is made. */
async function decideObserving<T>(
  lookup: ManifestLookup,
  decide: (observed: Observations) => Decision<T>,
): Promise<T> {
  const observed = new Observations();
  for (;;) {
    const outcome = decide(observed);
    if (outcome.done) return outcome.value;
    await observe(outcome.questions, lookup, observed);
  }
}

/** Judges one event against the desired state (decide.ts), reading what it needs through `lookup`. */
export function judgeEvent(
  event: RegistryEvent,
  state: DesiredState,
  lookup: ManifestLookup,
  options: JudgeOptions = {},
): Promise<Judgement> {
  return decideObserving(lookup, (observed) => decideEvent(event, state, observed, options));
}

/**
 * Whether `digest` is promoted into `repository`, directly or as a (nested) child of a promoted
 * index. Reads each promoted manifest at most once through the lookup (which caches).
 */
export function promotedRelation(
  repository: DesiredRepository,
  digest: Digest,
  lookup: ManifestLookup,
): Promise<PromotedRelation | undefined> {
  return decideObserving(lookup, (observed) => decidePromotedRelation(repository, digest, observed));
}

/**
 * The promoted digest, or child of a promoted index, that an attachment tag names as its subject
 * (a sha256 digest whole, a sha512 one by its first 64 hex digits: reference/digest-tag.ts).
 */
export function promotedTagSubject(
  repository: DesiredRepository,
  subject: DigestInTag,
  lookup: ManifestLookup,
): Promise<{ readonly digest: Digest; readonly relation: PromotedRelation } | undefined> {
  return decideObserving(lookup, (observed) => decidePromotedTagSubject(repository, subject, observed));
}

/**
 * Whether manifest `digest` of `repository` is an attachment: an image manifest that
 * `recogniseAttachment` accepts, or an index (the referrers fallback) whose every entry is one.
 * `known`: its facts, when already read.
 */
export function checkAttachment(
  repository: DesiredRepository,
  digest: Digest | undefined,
  lookup: ManifestLookup,
  known?: ManifestFacts,
): Promise<AttachmentCheck> {
  return decideObserving(lookup, (observed) => decideAttachment(repository, digest, observed, known));
}
