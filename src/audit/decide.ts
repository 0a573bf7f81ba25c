import { MAX_INDEX_DEPTH } from "../oci/index.js";
import type { Digest, Tag } from "../reference/index.js";
import { repositoryStanding, type DesiredRepository, type DesiredState } from "./desired-state.js";
import { eventRepositoryKey, type RegistryEvent } from "./event.js";

/**
 * Whether one registry event agrees with the manifests. Pure: the desired state and the event
 * come in, a judgement comes out; what the judge must know about manifest contents (the
 * children of an index, the `subject` of a referrer) it asks an injected `ManifestLookup`, and
 * tests pass an in-memory one.
 *
 * Order of events during a promotion (distribution 2.8.2, seen on loopback): blob pushes and
 * mounts (not judged), then each child manifest of an index pushed by digest, then the index by
 * digest or tag, then tags, then signature tags. A child therefore arrives before the index that
 * explains it. The judge first asks the lookup for the children of the repository's promoted
 * indexes (read from production, or from the staging source the manifests name, which holds them
 * before the promotion starts); when that cannot tell yet, a tagless manifest push is
 * `undetermined`, and the auditor holds it and asks again when later events arrive (the index
 * push, a tag push) or when its grace period ends, when it becomes a violation.
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
  /** A tagless manifest push nothing explains yet; final judgement later. */
  | { readonly kind: "undetermined"; readonly reason: string };

/** What the judge needs to know about a manifest. */
export interface ManifestFacts {
  readonly mediaType: string;
  /** Child manifests (index entries); empty for an image manifest. */
  readonly children: readonly Digest[];
  readonly subject?: Digest;
}

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

export interface JudgeOptions {
  /** The grace period is over: what cannot be explained now is a violation. */
  readonly final?: boolean;
}

/**
 * Tags of cosign's layout for artifacts attached to a digest: `sha256-<hex>.sig` (signature),
 * `.att` (attestation), `.sbom`, and the bare `sha256-<hex>` of the referrers tag-schema
 * fallback. https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#referrers-tag-schema
 */
const ATTACHED_ARTIFACT_TAG = /^(sha256)-([0-9a-f]{64})(?:\.(sig|att|sbom))?$/;

export type AttachedArtifactKind = "signature" | "attestation" | "sbom" | "referrers-index";

export function parseAttachedArtifactTag(
  tag: string,
): { readonly subject: Digest; readonly kind: AttachedArtifactKind } | undefined {
  const match = ATTACHED_ARTIFACT_TAG.exec(tag);
  if (!match) return undefined;
  const suffix = match[3];
  const kind: AttachedArtifactKind =
    suffix === "sig"
      ? "signature"
      : suffix === "att"
        ? "attestation"
        : suffix === "sbom"
          ? "sbom"
          : "referrers-index";
  return { subject: `${match[1]}:${match[2]}` as Digest, kind };
}

/** How a digest relates to what the manifests promote into a repository. */
export type PromotedRelation =
  { readonly kind: "promoted" } | { readonly kind: "child"; readonly parent: Digest };

/**
 * Whether `digest` is promoted into `repository`, directly or as a (nested) child of a promoted
 * index. Reads each promoted manifest at most once through the lookup (which caches).
 */
export async function promotedRelation(
  repository: DesiredRepository,
  digest: Digest,
  lookup: ManifestLookup,
): Promise<PromotedRelation | undefined> {
  if (repository.digests.has(digest)) return { kind: "promoted" };
  let frontier: { digest: Digest; root: Digest }[] = [...repository.digests.keys()].map((root) => ({
    digest: root,
    root,
  }));
  const seen = new Set<Digest>(repository.digests.keys());
  for (let depth = 0; depth < MAX_INDEX_DEPTH && frontier.length > 0; depth += 1) {
    const next: { digest: Digest; root: Digest }[] = [];
    // One level at a time, in parallel: the lookup limits and caches the reads.
    const levelFacts = await Promise.all(frontier.map((node) => lookup.manifest(repository, node.digest)));
    for (const [i, node] of frontier.entries()) {
      const facts = levelFacts[i];
      if (!facts) continue;
      for (const child of facts.children) {
        // A nested child names the promoted root: that is what a person can find in a manifest.
        if (child === digest) return { kind: "child", parent: node.root };
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

function describeTarget(event: RegistryEvent): string {
  let text = eventRepositoryKey(event);
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

/** Judges one event against the desired state. */
export async function judgeEvent(
  event: RegistryEvent,
  state: DesiredState,
  lookup: ManifestLookup,
  options: JudgeOptions = {},
): Promise<Judgement> {
  if (event.action === "pull") return { kind: "ignored", reason: "pulls are not judged" };
  const standing = repositoryStanding(state, event.host, event.repository);
  if (standing.kind === "not-production") {
    return {
      kind: "ignored",
      reason: standing.registry
        ? `${eventRepositoryKey(event)} is in source registry ${standing.registry.key}`
        : `${eventRepositoryKey(event)} is in no registry the manifests name`,
    };
  }
  const target = describeTarget(event);
  if (event.action === "delete") {
    return decided("violation", "delete", `deleted ${target}: production content is never deleted`);
  }
  // Blobs are judged through the manifest that references them.
  if (event.targetKind === "blob")
    return { kind: "ignored", reason: "blob events are not judged on their own" };
  if (standing.kind === "unmanaged") {
    return decided(
      "violation",
      "unmanaged-repository",
      `pushed ${target}: no manifest promotes into ${eventRepositoryKey(event)} (production registry ${standing.registry.key})`,
    );
  }
  const repository = standing.repository;
  let digest = event.digest;
  if (digest === undefined && event.tag !== undefined) {
    digest = await lookup.resolveTag?.(repository, event.tag);
  }
  if (event.tag !== undefined) return judgeTagPush(event.tag, digest, target, repository, lookup);
  if (digest === undefined) {
    return decided("violation", "unexpected-digest", `pushed ${target} without a digest to judge`);
  }
  return judgeDigestPush(digest, target, repository, lookup, options);
}

async function judgeTagPush(
  tag: Tag,
  digest: Digest | undefined,
  target: string,
  repository: DesiredRepository,
  lookup: ManifestLookup,
): Promise<Judgement> {
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
  const attached = parseAttachedArtifactTag(tag);
  if (attached) {
    const relation = await promotedRelation(repository, attached.subject, lookup);
    if (relation) {
      const of =
        relation.kind === "promoted"
          ? `promoted digest ${attached.subject}`
          : `${attached.subject}, child of promoted index ${relation.parent}`;
      return decided("verified", "attached-artifact-tag", `${attached.kind} tag ${tag} of ${of}`, {
        subject: attached.subject,
        ...(relation.kind === "child" ? { parent: relation.parent } : {}),
      });
    }
    return decided(
      "violation",
      "unexpected-attached-artifact",
      `pushed ${target}: ${attached.kind} tag of ${attached.subject}, which no manifest promotes into ${repository.key}`,
      { subject: attached.subject },
    );
  }
  const also =
    digest !== undefined && repository.digests.has(digest) ? " (the digest is promoted, the tag is not)" : "";
  return decided("violation", "unexpected-tag", `pushed ${target}: no manifest asks for tag ${tag}${also}`);
}

async function judgeDigestPush(
  digest: Digest,
  target: string,
  repository: DesiredRepository,
  lookup: ManifestLookup,
  options: JudgeOptions,
): Promise<Judgement> {
  if (repository.digests.has(digest)) {
    return decided("verified", "promoted-digest", `${digest} is promoted into ${repository.key}`);
  }
  // Cheapest explanations first: a tag seen already, then the manifest's own subject (one read),
  // then the children of every promoted index of the repository (one read per promoted digest).
  const tag = lookup.verifiedTagFor(repository.key, digest);
  if (tag !== undefined) {
    return decided("verified", "tagged-after-push", `${digest} was then tagged ${tag}, which is verified`);
  }
  const facts = await lookup.manifest(repository, digest);
  if (facts?.subject !== undefined) {
    const subjectRelation = await promotedRelation(repository, facts.subject, lookup);
    if (subjectRelation) {
      return decided(
        "verified",
        "referrer-of-promoted-digest",
        `${digest} is a referrer whose subject ${facts.subject} is promoted`,
        {
          subject: facts.subject,
          ...(subjectRelation.kind === "child" ? { parent: subjectRelation.parent } : {}),
        },
      );
    }
  }
  const relation = await promotedRelation(repository, digest, lookup);
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
  const subjectNote =
    facts?.subject !== undefined ? ` (its subject ${facts.subject} is not promoted either)` : "";
  return decided(
    "violation",
    "unexpected-digest",
    `pushed ${target}: no manifest promotes this digest, and it is no child of a promoted index, referrer or attached artifact${subjectNote}`,
  );
}
