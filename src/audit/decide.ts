import { isIndexMediaType, MAX_INDEX_DEPTH } from "../oci/index.js";
import {
  foldHostCase,
  formatDigestInTag,
  isDigestInTag,
  type Digest,
  type DigestInTag,
  type Tag,
} from "../reference/index.js";
import {
  ATTACHMENT_TAG_NAMES,
  parseAttachmentTag,
  recogniseAttachment,
  type AttachmentClass,
  type ManifestShape,
} from "../sign/index.js";
import {
  namesRegistryHost,
  repositoryStanding,
  type DesiredRepository,
  type DesiredState,
} from "./desired-state.js";
import { eventRepositoryKey, type RegistryEvent } from "./event.js";

/**
 * Whether one registry event agrees with the manifests. Pure and synchronous: the desired state,
 * the event and what has been observed come in, a judgement comes out. What the judge must know
 * about the world (the children of an index, the `subject` of a referrer, the digest of a tag, a
 * tag verified already) it reads from `Observations`; when something it needs has not been
 * observed yet, it says so instead (`{ done: false, questions }`), and the shell answers the
 * questions and asks again (observe.ts, with a `ManifestLookup`). What it needs depends on what
 * it learned a step before, and it stops asking once an explanation is found, so the questions
 * come a few at a time, in the order the reads used to be made.
 *
 * Order of events during a promotion (distribution 2.8.2, seen on loopback): blob pushes and
 * mounts (not judged), then each child manifest of an index pushed by digest, then the index by
 * digest or tag, then tags, then signature tags. A child therefore arrives before the index that
 * explains it. The judge first asks for the children of the repository's promoted
 * indexes (read from production, or from the staging source the manifests name, which holds them
 * before the promotion starts); when that cannot tell yet, a tagless manifest push is
 * `undetermined`, and the auditor holds it and asks again when later events arrive (the index
 * push, a tag push) or when its grace period ends, when it becomes a violation.
 *
 * A name or a `subject` is only a claim: a `sha256-<hex>.sig` tag, the referrers fallback tag
 * and a referrer are verified only when their content is a signature, attestation, SBOM or
 * bundle (sign/attachment-recognition.ts), never a runnable image. And an event counts only for
 * the registry the operator's configuration attributes it to (event.ts): one that nothing
 * attributes is a violation of its own, never ignored.
 */

export type Verdict = "verified" | "violation";

/** Stable rule ids, one per reason a verdict was reached; documented in docs/auditor.md. */
export type AuditRule =
  | "promoted-digest"
  | "promoted-tag"
  | "child-of-promoted-index"
  | "attached-artifact-tag"
  | "referrer-of-promoted-digest"
  | "tagged-after-push"
  | "delete"
  | "unmanaged-repository"
  | "unexpected-tag"
  | "tag-points-elsewhere"
  | "unexpected-digest"
  | "unexpected-attached-artifact"
  | "child-of-unexpected-index"
  | "not-an-attachment"
  | "unattributed-event"
  | "unjudgeable";

export type Judgement =
  | {
      readonly kind: "decided";
      readonly verdict: Verdict;
      readonly rule: AuditRule;
      readonly reason: string;
      /** The promoted index this child belongs to. */
      readonly parent?: Digest;
      /** The promoted digest a signature, attestation, SBOM or referrer is attached to. */
      readonly subject?: Digest;
    }
  /** Pulls, blobs, non-production repositories: not judged and not recorded. */
  | { readonly kind: "ignored"; readonly reason: string }
  /** A tagless manifest push nothing explains yet, or content not readable yet; final judgement later. */
  | { readonly kind: "undetermined"; readonly reason: string };

/** What the judge needs to know about a manifest. */
export interface ManifestFacts {
  readonly mediaType: string;
  /** Child manifests (index entries); empty for an image manifest. */
  readonly children: readonly Digest[];
  readonly subject?: Digest;
  /** Its media types, to tell an attachment from an image; absent when only an event told about it. */
  readonly shape?: ManifestShape;
}

/** Something the judge needs to know about the world, answered by the shell (observe.ts). */
export type Question =
  /** The manifest `digest` of `repository` (or of the sources the desired state names for it). */
  | { readonly kind: "manifest"; readonly repository: DesiredRepository; readonly digest: Digest }
  /** A tag already verified in the repository that points at `digest`. */
  | { readonly kind: "verified-tag"; readonly repository: DesiredRepository; readonly digest: Digest }
  /** The digest `tag` points at, for Pub/Sub tag events that carry no digest. */
  | { readonly kind: "tag-digest"; readonly repository: DesiredRepository; readonly tag: Tag };

/** The answers to the judge's questions so far, for one decision (undefined: asked, not known). */
export class Observations {
  private readonly manifests = new Map<string, ManifestFacts | undefined>();
  private readonly verifiedTags = new Map<string, Tag | undefined>();
  private readonly tagDigests = new Map<string, Digest | undefined>();

  recordManifest(repository: DesiredRepository, digest: Digest, facts: ManifestFacts | undefined): void {
    this.manifests.set(`${repository.key}@${digest}`, facts);
  }

  recordVerifiedTag(repository: DesiredRepository, digest: Digest, tag: Tag | undefined): void {
    this.verifiedTags.set(`${repository.key}@${digest}`, tag);
  }

  recordTagDigest(repository: DesiredRepository, tag: Tag, digest: Digest | undefined): void {
    this.tagDigests.set(`${repository.key}:${tag}`, digest);
  }

  /** The facts of each manifest; throws `Unobserved` naming every one not observed yet. */
  manifestsOf(repository: DesiredRepository, digests: readonly Digest[]): (ManifestFacts | undefined)[] {
    const missing = digests.filter((digest) => !this.manifests.has(`${repository.key}@${digest}`));
    if (missing.length > 0) {
      throw new Unobserved(missing.map((digest) => ({ kind: "manifest", repository, digest })));
    }
    return digests.map((digest) => this.manifests.get(`${repository.key}@${digest}`));
  }

  manifestOf(repository: DesiredRepository, digest: Digest): ManifestFacts | undefined {
    return this.manifestsOf(repository, [digest])[0];
  }

  verifiedTagOf(repository: DesiredRepository, digest: Digest): Tag | undefined {
    const key = `${repository.key}@${digest}`;
    if (!this.verifiedTags.has(key)) throw new Unobserved([{ kind: "verified-tag", repository, digest }]);
    return this.verifiedTags.get(key);
  }

  digestOfTag(repository: DesiredRepository, tag: Tag): Digest | undefined {
    const key = `${repository.key}:${tag}`;
    if (!this.tagDigests.has(key)) throw new Unobserved([{ kind: "tag-digest", repository, tag }]);
    return this.tagDigests.get(key);
  }
}

/**
 * Thrown inside a decision that needs what has not been observed yet; `decision` turns it into
 * questions, so it never leaves this module.
 */
class Unobserved extends Error {
  readonly questions: readonly Question[];

  constructor(questions: readonly Question[]) {
    super(`${questions.length} question(s) not observed yet`);
    this.name = "Unobserved";
    this.questions = questions;
  }
}

/** A decision's outcome, or the questions to answer before it can be made. */
export type Decision<T> =
  | { readonly done: true; readonly value: T }
  | { readonly done: false; readonly questions: readonly Question[] };

function decision<T>(decide: () => T): Decision<T> {
  try {
    return { done: true, value: decide() };
  } catch (error) {
    if (error instanceof Unobserved) return { done: false, questions: error.questions };
    throw error;
  }
}

export interface JudgeOptions {
  /** The grace period is over: what cannot be explained now is a violation. */
  readonly final?: boolean;
}

/** How a digest relates to what the manifests promote into a repository. */
export type PromotedRelation =
  { readonly kind: "promoted" } | { readonly kind: "child"; readonly parent: Digest };

/**
 * Whether `digest` is promoted into `repository`, directly or as a (nested) child of a promoted
 * index. Asks for each promoted manifest once.
 */
export function decidePromotedRelation(
  repository: DesiredRepository,
  digest: Digest,
  observed: Observations,
): Decision<PromotedRelation | undefined> {
  return decision(() => relationOf(repository, digest, observed));
}

function relationOf(
  repository: DesiredRepository,
  digest: Digest,
  observed: Observations,
): PromotedRelation | undefined {
  if (repository.digests.has(digest)) return { kind: "promoted" };
  return promotedChild(repository, (child) => child === digest, observed)?.relation;
}

/**
 * The promoted digest, or child of a promoted index, that an attachment tag names as its subject
 * (a sha256 digest whole, a sha512 one by its first 64 hex digits: reference/digest-tag.ts).
 */
export function decidePromotedTagSubject(
  repository: DesiredRepository,
  subject: DigestInTag,
  observed: Observations,
): Decision<PromotedSubject | undefined> {
  return decision(() => tagSubjectOf(repository, subject, observed));
}

/** A promoted digest, or a child of a promoted index, and how it is promoted. */
export interface PromotedSubject {
  readonly digest: Digest;
  readonly relation: PromotedRelation;
}

function tagSubjectOf(
  repository: DesiredRepository,
  subject: DigestInTag,
  observed: Observations,
): PromotedSubject | undefined {
  if (subject.digest !== undefined) {
    const relation = relationOf(repository, subject.digest, observed);
    return relation && { digest: subject.digest, relation };
  }
  for (const digest of repository.digests.keys()) {
    if (isDigestInTag(subject, digest)) return { digest, relation: { kind: "promoted" } };
  }
  return promotedChild(repository, (child) => isDigestInTag(subject, child), observed);
}

/** The first (nested) child of a promoted index that `matches`, breadth first. */
function promotedChild(
  repository: DesiredRepository,
  matches: (child: Digest) => boolean,
  observed: Observations,
): PromotedSubject | undefined {
  let frontier: { digest: Digest; root: Digest }[] = [...repository.digests.keys()].map((root) => ({
    digest: root,
    root,
  }));
  const seen = new Set<Digest>(repository.digests.keys());
  for (let depth = 0; depth < MAX_INDEX_DEPTH && frontier.length > 0; depth += 1) {
    const next: { digest: Digest; root: Digest }[] = [];
    // One level at a time: a level's manifests are asked for together (and read in parallel).
    const levelFacts = observed.manifestsOf(
      repository,
      frontier.map((node) => node.digest),
    );
    for (const [i, node] of frontier.entries()) {
      const facts = levelFacts[i];
      if (!facts) continue;
      for (const child of facts.children) {
        // A nested child names the promoted root: that is what a person can find in a manifest.
        if (matches(child)) return { digest: child, relation: { kind: "child", parent: node.root } };
        if (!seen.has(child)) {
          seen.add(child);
          next.push({ digest: child, root: node.root });
        }
      }
    }
    frontier = next;
  }
  return undefined;
}

/** Entries of an index checked one by one for being attachments (a referrers list is short). */
export const MAX_REFERRERS_CHECKED = 1000;

/** What the content under an attached-artifact tag, or of a referrer, turned out to be. */
export type AttachmentCheck =
  | { readonly kind: "attachment"; readonly what: AttachmentClass | "referrers index" }
  | { readonly kind: "disguise"; readonly looksLike: string }
  | { readonly kind: "unknown"; readonly why: string };

/**
 * Whether manifest `digest` of `repository` is an attachment: an image manifest that
 * `recogniseAttachment` accepts, or an index (the referrers fallback) whose every entry is one.
 * `known`: its facts, when already read.
 */
export function decideAttachment(
  repository: DesiredRepository,
  digest: Digest | undefined,
  observed: Observations,
  known?: ManifestFacts,
): Decision<AttachmentCheck> {
  return decision(() => attachmentOf(repository, digest, observed, known));
}

function attachmentOf(
  repository: DesiredRepository,
  digest: Digest | undefined,
  observed: Observations,
  known?: ManifestFacts,
): AttachmentCheck {
  if (digest === undefined) {
    return { kind: "unknown", why: "the event names no digest and the tag could not be resolved" };
  }
  const facts = known ?? observed.manifestOf(repository, digest);
  if (facts?.shape === undefined) return { kind: "unknown", why: `${digest} could not be read` };
  if (!isIndexMediaType(facts.shape.mediaType)) {
    const recognised = recogniseAttachment(facts.shape);
    return recognised.attachment
      ? { kind: "attachment", what: recognised.kind }
      : { kind: "disguise", looksLike: recognised.looksLike };
  }
  if (facts.children.length > MAX_REFERRERS_CHECKED) {
    return {
      kind: "disguise",
      looksLike: `an index of ${facts.children.length} manifests (a referrers list is checked up to ${MAX_REFERRERS_CHECKED})`,
    };
  }
  const entries = observed.manifestsOf(repository, facts.children);
  for (const [i, entry] of entries.entries()) {
    const child = facts.children[i];
    if (entry?.shape === undefined) return { kind: "unknown", why: `its entry ${child} could not be read` };
    const recognised = recogniseAttachment(entry.shape);
    if (!recognised.attachment) {
      return { kind: "disguise", looksLike: `an index whose entry ${child} is ${recognised.looksLike}` };
    }
  }
  return { kind: "attachment", what: "referrers index" };
}

const NOT_AN_ATTACHMENT = "not a signature, attestation, SBOM or bundle";

const ATTACHMENT_NAMES: Readonly<Record<AttachmentClass | "referrers index", string>> = {
  signature: "a signature",
  attestation: "an attestation",
  sbom: "an SBOM",
  bundle: "a sigstore bundle",
  "referrers index": "a referrers index",
};

function describeTarget(event: RegistryEvent): string {
  // An unattributed event has no registry: its repository path is all there is.
  let text = event.attribution === "none" ? event.repository : eventRepositoryKey(event);
  if (event.tag !== undefined) text += `:${event.tag}`;
  if (event.digest !== undefined) text += `@${event.digest}`;
  return text;
}

function decided(
  verdict: Verdict,
  rule: AuditRule,
  reason: string,
  extra: { parent?: Digest; subject?: Digest } = {},
): Judgement {
  return { kind: "decided", verdict, rule, reason, ...extra };
}

/**
 * Why an event belongs to no registry the auditor knows, or undefined when it does. `none`: it
 * came to an endpoint that names no registry. `endpoint` naming a host no manifest names: the
 * notification URL is likely wrong, and the events would otherwise vanish as "not production".
 */
function unattributedReason(event: RegistryEvent, state: DesiredState): string | undefined {
  if (event.attribution === "none") return event.unattributed ?? "nothing attributes it to a registry";
  if (event.attribution === "endpoint" && !namesRegistryHost(state, event.host)) {
    return `it came to the notification endpoint of registry ${event.host}, which no manifest names (check the endpoint URL in the registry's notification settings)`;
  }
  return undefined;
}

/**
 * Why an event is not judged at all (pulls, blob uploads, source or unnamed repositories), or
 * undefined when it is judged. The auditor asks this before it records anything.
 */
export function ignoredReason(event: RegistryEvent, state: DesiredState): string | undefined {
  if (event.action === "pull") return "pulls are not judged";
  // Blobs are judged through the manifest that references them; a blob delete is judged.
  if (event.targetKind === "blob" && event.action !== "delete")
    return "blob events are not judged on their own";
  if (unattributedReason(event, state) !== undefined) return undefined;
  const standing = repositoryStanding(state, event.host, event.repository);
  if (standing.kind !== "not-production") return undefined;
  return standing.registry
    ? `${eventRepositoryKey(event)} is in source registry ${standing.registry.key}`
    : `${eventRepositoryKey(event)} is in no registry the manifests name`;
}

/** Judges one event against the desired state, or says what must be observed first. */
export function decideEvent(
  event: RegistryEvent,
  state: DesiredState,
  observed: Observations,
  options: JudgeOptions = {},
): Decision<Judgement> {
  return decision(() => judgeWithHost(event, state, observed, options));
}

function judgeWithHost(
  event: RegistryEvent,
  state: DesiredState,
  observed: Observations,
  options: JudgeOptions,
): Judgement {
  const judgement = judgeAttributedEvent(event, state, observed, options);
  // The Host header is the pusher's choice: shown, so a disguise is visible, never trusted.
  const told = event.requestHost === undefined ? undefined : foldHostCase(event.requestHost);
  if (
    judgement.kind === "decided" &&
    judgement.verdict === "violation" &&
    told !== undefined &&
    told !== event.host
  ) {
    return {
      ...judgement,
      reason: `${judgement.reason} (the pusher called the registry ${JSON.stringify(told)})`,
    };
  }
  return judgement;
}

function judgeAttributedEvent(
  event: RegistryEvent,
  state: DesiredState,
  observed: Observations,
  options: JudgeOptions,
): Judgement {
  const ignored = ignoredReason(event, state);
  if (ignored !== undefined) return { kind: "ignored", reason: ignored };
  const target = describeTarget(event);
  const unattributed = unattributedReason(event, state);
  if (unattributed !== undefined) {
    return decided("violation", "unattributed-event", `${event.action} ${target}: ${unattributed}`);
  }
  if (event.action === "delete") {
    return decided("violation", "delete", `deleted ${target}: production content is never deleted`);
  }
  const standing = repositoryStanding(state, event.host, event.repository);
  if (standing.kind !== "managed") {
    const registry = standing.kind === "unmanaged" ? ` (production registry ${standing.registry.key})` : "";
    return decided(
      "violation",
      "unmanaged-repository",
      `pushed ${target}: no manifest promotes into ${eventRepositoryKey(event)}${registry}`,
    );
  }
  const repository = standing.repository;
  let digest = event.digest;
  if (digest === undefined && event.tag !== undefined) {
    digest = observed.digestOfTag(repository, event.tag);
  }
  if (event.tag !== undefined) return judgeTagPush(event.tag, digest, target, repository, observed, options);
  if (digest === undefined) {
    return decided("violation", "unexpected-digest", `pushed ${target} without a digest to judge`);
  }
  return judgeDigestPush(digest, target, repository, observed, options);
}

function judgeTagPush(
  tag: Tag,
  digest: Digest | undefined,
  target: string,
  repository: DesiredRepository,
  observed: Observations,
  options: JudgeOptions,
): Judgement {
  const claims = repository.tags.get(tag);
  if (claims) {
    if (digest !== undefined && claims.includes(digest)) {
      return decided("verified", "promoted-tag", `tag ${tag} -> ${digest} is in the manifests`);
    }
    return decided(
      "violation",
      "tag-points-elsewhere",
      `pushed ${target}: the manifests want ${tag} -> ${claims.join(" or ")}`,
    );
  }
  const attached = parseAttachmentTag(tag);
  if (attached) {
    const kind = ATTACHMENT_TAG_NAMES[attached.kind];
    const found = tagSubjectOf(repository, attached.subject, observed);
    if (!found) {
      return decided(
        "violation",
        "unexpected-attached-artifact",
        `pushed ${target}: ${kind} tag of ${formatDigestInTag(attached.subject)}, which no manifest promotes into ${repository.key}`,
        attached.subject.digest === undefined ? {} : { subject: attached.subject.digest },
      );
    }
    const { digest: subject, relation } = found;
    const of =
      relation.kind === "promoted"
        ? `promoted digest ${subject}`
        : `${subject}, child of promoted index ${relation.parent}`;
    const links = {
      subject,
      ...(relation.kind === "child" ? { parent: relation.parent } : {}),
    };
    const check = attachmentOf(repository, digest, observed);
    switch (check.kind) {
      case "attachment":
        return decided(
          "verified",
          "attached-artifact-tag",
          `${kind} tag ${tag} of ${of}, holding ${ATTACHMENT_NAMES[check.what]}`,
          links,
        );
      case "disguise":
        return decided(
          "violation",
          "not-an-attachment",
          `pushed ${target}: the ${kind} tag of ${of} holds ${check.looksLike}, ${NOT_AN_ATTACHMENT}`,
          links,
        );
      case "unknown":
        if (!options.final)
          return { kind: "undetermined", reason: `what ${tag} holds is not known yet: ${check.why}` };
        return decided(
          "violation",
          "not-an-attachment",
          `pushed ${target}: could not tell whether the ${kind} tag of ${of} holds an attachment: ${check.why}`,
          links,
        );
    }
  }
  const also =
    digest !== undefined && repository.digests.has(digest) ? " (the digest is promoted, the tag is not)" : "";
  return decided("violation", "unexpected-tag", `pushed ${target}: no manifest asks for tag ${tag}${also}`);
}

function judgeDigestPush(
  digest: Digest,
  target: string,
  repository: DesiredRepository,
  observed: Observations,
  options: JudgeOptions,
): Judgement {
  if (repository.digests.has(digest)) {
    return decided("verified", "promoted-digest", `${digest} is promoted into ${repository.key}`);
  }
  // Cheapest explanations first: a tag seen already, then the manifest's own subject (one read),
  // then the children of every promoted index of the repository (one read per promoted digest).
  const tag = observed.verifiedTagOf(repository, digest);
  if (tag !== undefined) {
    return decided("verified", "tagged-after-push", `${digest} was then tagged ${tag}, which is verified`);
  }
  const facts = observed.manifestOf(repository, digest);
  /** Set when the subject is promoted but the content is no attachment: the finding says so. */
  let disguise: { readonly reason: string; readonly subject: Digest; readonly parent?: Digest } | undefined;
  if (facts?.subject !== undefined) {
    const subjectRelation = relationOf(repository, facts.subject, observed);
    if (subjectRelation) {
      const links = {
        subject: facts.subject,
        ...(subjectRelation.kind === "child" ? { parent: subjectRelation.parent } : {}),
      };
      const check = attachmentOf(repository, digest, observed, facts);
      if (check.kind === "attachment") {
        return decided(
          "verified",
          "referrer-of-promoted-digest",
          `${digest} is a referrer (${ATTACHMENT_NAMES[check.what]}) whose subject ${facts.subject} is promoted`,
          links,
        );
      }
      disguise = {
        reason:
          check.kind === "disguise"
            ? `its subject ${facts.subject} is promoted, but it is ${check.looksLike}, ${NOT_AN_ATTACHMENT}`
            : `its subject ${facts.subject} is promoted, but whether it is an attachment could not be told: ${check.why}`,
        ...links,
      };
    }
  }
  const relation = relationOf(repository, digest, observed);
  if (relation?.kind === "child") {
    return decided(
      "verified",
      "child-of-promoted-index",
      `${digest} is a child manifest of promoted index ${relation.parent}`,
      { parent: relation.parent },
    );
  }
  if (!options.final) {
    return {
      kind: "undetermined",
      reason: `${digest} is not (yet) explained by a promoted index, referrer or tag`,
    };
  }
  if (disguise) {
    const { reason, ...links } = disguise;
    return decided("violation", "not-an-attachment", `pushed ${target}: ${reason}`, links);
  }
  const subjectNote =
    facts?.subject !== undefined ? ` (its subject ${facts.subject} is not promoted either)` : "";
  return decided(
    "violation",
    "unexpected-digest",
    `pushed ${target}: no manifest promotes this digest, and it is no child of a promoted index, referrer or attached artifact${subjectNote}`,
  );
}
