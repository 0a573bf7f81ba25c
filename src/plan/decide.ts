import type { ProblemCode } from "../errors.js";
import type { TagConflict } from "../manifest/index.js";
import type { Digest, RepositoryLocation, Tag } from "../reference/index.js";
import { RepositoryKeyCache } from "../reference/index.js";
import type { PromotionEdge } from "./edge.js";
import type { Inventory, RepositoryQuestion, RepositoryReadFailure, RepositoryState } from "./inventory.js";

/**
 * Deciding each promotion edge from what the registries hold: kpromo's semantics, but isolated
 * (a refused or failed edge blocks only itself and the edges that need the same copy) and loud
 * (a missing source digest is an error, never a silent skip).
 */
export type EdgeDecision =
  /** The destination tag already points at the digest (or the digest is present, for a tagless edge). */
  | { readonly kind: "unchanged" }
  /** The digest is present at the destination; only the tag is missing: a manifest PUT. */
  | { readonly kind: "add-tag" }
  /** Neither digest nor tag at the destination; the source has the digest. */
  | { readonly kind: "copy" }
  /** The destination tag points at another digest: moving tags is refused. */
  | { readonly kind: "refused-tag-move"; readonly current: Digest }
  /** The digest is not in the source repository. */
  | { readonly kind: "missing-source" }
  /**
   * The source digest has no valid signature by a trusted key or identity (a source signature
   * policy is in force); `reason` says what was found.
   */
  | { readonly kind: "refused-source-signature"; readonly reason: string }
  /** Two manifests claim this destination tag for different digests: neither is applied. */
  | { readonly kind: "refused-conflict"; readonly conflict: TagConflict }
  /** A repository this edge needs could not be read. */
  | {
      readonly kind: "unreadable";
      readonly side: "source" | "destination";
      readonly code: ProblemCode;
      readonly message: string;
    };

export type EdgeDecisionKind = EdgeDecision["kind"];

export interface PlannedEdge {
  readonly edge: PromotionEdge;
  readonly decision: EdgeDecision;
}

/** One destination of a copy task: the repository and the tags to apply there. */
export interface PlannedDestination {
  readonly location: RepositoryLocation;
  readonly key: string;
  /** Tags to apply after the content is complete (sorted). */
  readonly tags: readonly Tag[];
  /** Whether content must be copied (false: the digest is there, only tags are added). */
  readonly needsContent: boolean;
  /** The inventory saw the repository empty (see `RepositoryObservation.empty`). */
  readonly repositoryEmpty?: boolean;
}

/** Work for the copy engine: one source digest to every destination that needs it. */
export interface PlannedCopy {
  readonly source: RepositoryLocation;
  readonly sourceKey: string;
  readonly digest: Digest;
  readonly destinations: readonly PlannedDestination[];
}

export interface PromotionPlan {
  readonly edges: readonly PlannedEdge[];
  readonly copies: readonly PlannedCopy[];
}

// Decisions without data are shared: the real tree has ~720,000 edges.
const UNCHANGED: EdgeDecision = Object.freeze({ kind: "unchanged" });
const ADD_TAG: EdgeDecision = Object.freeze({ kind: "add-tag" });
const COPY: EdgeDecision = Object.freeze({ kind: "copy" });
const MISSING_SOURCE: EdgeDecision = Object.freeze({ kind: "missing-source" });
/** Shared by destinations without tags until their first one; frozen, so never written to. */
const NO_TAGS = Object.freeze([]) as unknown as Tag[];

export interface InventoryQuestions {
  /** Destination repositories with the tags and digests their edges name. */
  readonly destinations: Map<string, { location: RepositoryLocation; question: RepositoryQuestion }>;
}

/** The first round of questions: what every destination holds of what the edges want. */
export function destinationQuestions(
  edges: Iterable<PromotionEdge>,
  keys = new RepositoryKeyCache(),
): InventoryQuestions {
  const destinations = new Map<string, { location: RepositoryLocation; question: RepositoryQuestion }>();
  for (const edge of edges) {
    const key = keys.of(edge.destination);
    let entry = destinations.get(key);
    if (!entry) {
      entry = { location: edge.destination, question: { tags: new Set(), digests: new Set() } };
      destinations.set(key, entry);
    }
    if (edge.tag !== undefined) entry.question.tags.add(edge.tag);
    entry.question.digests.add(edge.digest);
  }
  return { destinations };
}

/** A repository an edge needs that was not read, or could not be. */
function unreadable(side: "source" | "destination", state: RepositoryReadFailure | undefined): EdgeDecision {
  return state
    ? { kind: "unreadable", side, code: state.code, message: state.message }
    : { kind: "unreadable", side, code: "not-observed", message: "repository was not read" };
}

/** Destination-only decision; `copy` still needs the source checked. */
function decideAtDestination(edge: PromotionEdge, state: RepositoryState | undefined): EdgeDecision {
  if (state?.kind !== "observed") return unreadable("destination", state);
  if (edge.tag !== undefined) {
    const current = state.tags.get(edge.tag);
    if (current !== undefined)
      return current === edge.digest ? UNCHANGED : { kind: "refused-tag-move", current };
    return state.digests.has(edge.digest) ? ADD_TAG : COPY;
  }
  return state.digests.has(edge.digest) ? UNCHANGED : COPY;
}

/** A `copy` decided at the destination, checked against what the source holds. */
function decideAtSource(edge: PromotionEdge, state: RepositoryState | undefined): EdgeDecision {
  if (state?.kind !== "observed") return unreadable("source", state);
  return state.digests.has(edge.digest) ? COPY : MISSING_SOURCE;
}

/**
 * Tag conflicts (as `findTagConflicts` reports them) by destination repository, then tag: a
 * lookup per edge without building a string per edge.
 */
export type ConflictIndex = ReadonlyMap<string, ReadonlyMap<Tag, TagConflict>>;

export function indexConflicts(conflicts: readonly TagConflict[]): ConflictIndex {
  const index = new Map<string, Map<Tag, TagConflict>>();
  for (const conflict of conflicts) {
    let byTag = index.get(conflict.destination);
    if (!byTag) index.set(conflict.destination, (byTag = new Map<Tag, TagConflict>()));
    byTag.set(conflict.tag, conflict);
  }
  return index;
}

function conflictOf(
  conflicts: ConflictIndex,
  destinationKey: string,
  tag: Tag | undefined,
): TagConflict | undefined {
  return tag === undefined || conflicts.size === 0 ? undefined : conflicts.get(destinationKey)?.get(tag);
}

/**
 * Second round: the source repositories and digests that must be checked because some
 * destination needs a copy. Edges whose destinations are all done never ask the source.
 */
export function sourceQuestions(
  edges: readonly PromotionEdge[],
  destinations: Inventory,
  conflicts: ConflictIndex,
  keys = new RepositoryKeyCache(),
): Map<string, { location: RepositoryLocation; question: RepositoryQuestion }> {
  const sources = new Map<string, { location: RepositoryLocation; question: RepositoryQuestion }>();
  for (const edge of edges) {
    const destinationKey = keys.of(edge.destination);
    if (conflictOf(conflicts, destinationKey, edge.tag)) continue;
    if (decideAtDestination(edge, destinations.get(destinationKey)).kind !== "copy") continue;
    const key = keys.of(edge.source);
    let entry = sources.get(key);
    if (!entry) {
      entry = { location: edge.source, question: { tags: new Set(), digests: new Set() } };
      sources.set(key, entry);
    }
    entry.question.digests.add(edge.digest);
  }
  return sources;
}

/** Key of a source policy verdict: the source repository and the digest. */
export function sourceVerdictKey(sourceKey: string, digest: Digest): string {
  return `${sourceKey}@${digest}`;
}

/**
 * Decides every edge and groups the work into copy tasks. Pure: the inventories hold everything
 * observed (destinations, and the sources asked in the second round). They are kept apart
 * because one repository can be a destination of one project and the source of another.
 * `sourceRefusals` (by `sourceVerdictKey`) refuses the copies and added tags of source digests
 * that fail a signature policy, with the reason.
 */
export function decidePlan(
  edges: readonly PromotionEdge[],
  inventory: { readonly destinations: Inventory; readonly sources: Inventory },
  conflicts: ConflictIndex,
  keys = new RepositoryKeyCache(),
  sourceRefusals?: ReadonlyMap<string, string>,
): PromotionPlan {
  const planned: PlannedEdge[] = new Array<PlannedEdge>(edges.length);
  // sourceKey -> digest -> destinationKey -> destination, built in place (the planned
  // destinations themselves, so nothing is copied afterwards: the real tree has ~440,000).
  const work = new Map<
    string,
    { location: RepositoryLocation; digests: Map<Digest, Map<string, MutableDestination>> }
  >();
  const tagLists = new TagLists();

  // for-of over an array allocates nothing per step; entries() made a pair per edge.
  let next = 0;
  for (const edge of edges) {
    const i = next++;
    const destinationKey = keys.of(edge.destination);
    const conflict = conflictOf(conflicts, destinationKey, edge.tag);
    let decision: EdgeDecision = conflict
      ? { kind: "refused-conflict", conflict }
      : decideAtDestination(edge, inventory.destinations.get(destinationKey));
    if (decision.kind !== "copy" && decision.kind !== "add-tag") {
      planned[i] = { edge, decision };
      continue;
    }
    const sourceKey = keys.of(edge.source);
    if (decision.kind === "copy") decision = decideAtSource(edge, inventory.sources.get(sourceKey));
    if ((decision.kind === "copy" || decision.kind === "add-tag") && sourceRefusals !== undefined) {
      const reason = sourceRefusals.get(sourceVerdictKey(sourceKey, edge.digest));
      if (reason !== undefined) decision = { kind: "refused-source-signature", reason };
    }
    planned[i] = { edge, decision };
    if (decision.kind !== "copy" && decision.kind !== "add-tag") continue;

    let bySource = work.get(sourceKey);
    if (!bySource) {
      bySource = { location: edge.source, digests: new Map() };
      work.set(sourceKey, bySource);
    }
    let byDigest = bySource.digests.get(edge.digest);
    if (!byDigest) {
      byDigest = new Map();
      bySource.digests.set(edge.digest, byDigest);
    }
    let destination = byDigest.get(destinationKey);
    if (!destination) {
      const state = inventory.destinations.get(destinationKey);
      destination = {
        location: edge.destination,
        key: destinationKey,
        tags: NO_TAGS,
        needsContent: false,
        repositoryEmpty: state?.kind === "observed" && state.empty === true,
      };
      byDigest.set(destinationKey, destination);
    }
    if (decision.kind === "copy") destination.needsContent = true;
    if (edge.tag !== undefined && !destination.tags.includes(edge.tag)) {
      destination.tags = tagLists.with(destination.tags, edge.tag);
    }
  }

  const copies: PlannedCopy[] = [];
  for (const [sourceKey, bySource] of [...work].sort(compareByKey)) {
    for (const [digest, byDestination] of [...bySource.digests].sort(compareByKey)) {
      const destinations = [...byDestination.values()].sort(compareDestinations);
      for (const destination of destinations) destination.tags = tagLists.sorted(destination.tags);
      copies.push({ source: bySource.location, sourceKey, digest, destinations });
    }
  }
  return { edges: planned, copies };
}

/**
 * The tag lists of planned destinations, shared: the mirrors of one digest (22 to 66 in the real
 * tree) get the same tags in the same order, so one list serves them all instead of one array
 * per destination (~720,000 in the real tree). Lists are never changed once handed out: adding a
 * tag gives another list.
 */
class TagLists {
  private readonly next = new WeakMap<readonly Tag[], Map<Tag, Tag[]>>();
  private readonly sortedLists = new WeakMap<readonly Tag[], Tag[]>();

  /** The list of `tags` followed by `tag`. */
  with(tags: readonly Tag[], tag: Tag): Tag[] {
    let byTag = this.next.get(tags);
    if (!byTag) this.next.set(tags, (byTag = new Map<Tag, Tag[]>()));
    let list = byTag.get(tag);
    if (!list) byTag.set(tag, (list = [...tags, tag].slice()));
    return list;
  }

  /** `tags` sorted, itself when it already is. */
  sorted(tags: Tag[]): Tag[] {
    if (tags.length < 2) return tags;
    let sorted = this.sortedLists.get(tags);
    if (!sorted) {
      sorted = tags.slice().sort();
      this.sortedLists.set(tags, sorted);
    }
    return sorted;
  }
}

type MutableDestination = { -readonly [K in keyof PlannedDestination]: PlannedDestination[K] } & {
  tags: Tag[];
};

function compareDestinations(a: PlannedDestination, b: PlannedDestination): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function compareByKey<T>(a: readonly [string, T], b: readonly [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Counts of decisions by kind, for summaries. */
export function countDecisions(edges: readonly PlannedEdge[]): Record<EdgeDecisionKind, number> {
  const counts: Record<EdgeDecisionKind, number> = {
    unchanged: 0,
    "add-tag": 0,
    copy: 0,
    "refused-tag-move": 0,
    "missing-source": 0,
    "refused-conflict": 0,
    "refused-source-signature": 0,
    unreadable: 0,
  };
  for (const { decision } of edges) counts[decision.kind] += 1;
  return counts;
}
