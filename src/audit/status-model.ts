import type { DesiredDigest, DesiredRepository, DesiredState, RegistryScope } from "./desired-state.js";

/**
 * The status page's pure core (docs/auditor.md, "Status page"): where each production
 * repository sits (project, image, mirror), search over the desired state, the state of one image
 * on each mirror, and the project matrix. It takes the desired state and what the auditor has
 * observed (findings, uploaded promotion reports) as data and returns data; status-page.ts reads
 * the database and answers HTTP.
 */

/** A production repository named the way people look for it. */
export interface MirrorPlace {
  /** `host/path`: the repository. */
  readonly repository: string;
  /** The registry location it is in (`us.gcr.io/k8s-artifacts-prod/kubebuilder`): one mirror. */
  readonly mirror: string;
  /** The last segment of the registry location's path (its host when it has none). */
  readonly project: string;
  /** The repository's path below the registry location. */
  readonly image: string;
  readonly desired: DesiredRepository;
}

export interface StatusIndex {
  readonly places: readonly MirrorPlace[];
  /** Project → image → its mirrors. */
  readonly projects: ReadonlyMap<string, ReadonlyMap<string, readonly MirrorPlace[]>>;
  /** Every mirror of each project, sorted. */
  readonly projectMirrors: ReadonlyMap<string, readonly string[]>;
  /** Image (path below its registry location) → every repository of that name: its mirrors. */
  readonly byImage: ReadonlyMap<string, readonly MirrorPlace[]>;
  /** Digest → repositories promoting it. */
  readonly byDigest: ReadonlyMap<string, readonly MirrorPlace[]>;
}

/** The desired digests of a repository, looked up by plain text (what a search or a database gives). */
export function wantedDigests(desired: DesiredRepository): ReadonlyMap<string, DesiredDigest> {
  return desired.digests;
}

/** The digests a tag is wanted for, looked up by plain text. */
function wantedTag(desired: DesiredRepository, tag: string): readonly string[] {
  return (desired.tags as ReadonlyMap<string, readonly string[]>).get(tag) ?? [];
}

function projectOf(scope: RegistryScope): string {
  const location = scope.location;
  if (location.kind !== "remote") return scope.key;
  const segments = location.prefix.split("/").filter((segment) => segment.length > 0);
  return segments.at(-1) ?? location.host;
}

/**
 * Indexes the desired state for the page: built once per manifest load (the registry.k8s.io tree:
 * 9,790 repositories), so a search walks plain arrays and maps.
 */
export function buildStatusIndex(state: DesiredState): StatusIndex {
  const places: MirrorPlace[] = [];
  const projects = new Map<string, Map<string, MirrorPlace[]>>();
  const projectMirrors = new Map<string, Set<string>>();
  const byDigest = new Map<string, MirrorPlace[]>();
  const byImage = new Map<string, MirrorPlace[]>();
  for (const desired of state.repositories.values()) {
    if (desired.location.kind !== "remote") continue;
    const key = desired.key;
    // registries are sorted most specific first: the first that contains it is its location.
    const scope = state.registries.find(
      (registry) =>
        registry.production && registry.location.kind === "remote" && key.startsWith(`${registry.key}/`),
    );
    if (!scope) continue;
    const place: MirrorPlace = {
      repository: key,
      mirror: scope.key,
      project: projectOf(scope),
      image: key.slice(scope.key.length + 1),
      desired,
    };
    places.push(place);
    let images = projects.get(place.project);
    if (!images) projects.set(place.project, (images = new Map<string, MirrorPlace[]>()));
    const mirrors = images.get(place.image);
    if (mirrors) mirrors.push(place);
    else images.set(place.image, [place]);
    const named = byImage.get(place.image);
    if (named) named.push(place);
    else byImage.set(place.image, [place]);
    let known = projectMirrors.get(place.project);
    if (!known) projectMirrors.set(place.project, (known = new Set()));
    known.add(place.mirror);
    for (const digest of desired.digests.keys()) {
      const holders = byDigest.get(digest);
      if (holders) holders.push(place);
      else byDigest.set(digest, [place]);
    }
  }
  const order = (a: MirrorPlace, b: MirrorPlace): number =>
    a.image.localeCompare(b.image) || a.mirror.localeCompare(b.mirror);
  places.sort(order);
  for (const named of byImage.values()) named.sort(order);
  return {
    places,
    projects,
    projectMirrors: new Map([...projectMirrors].map(([project, mirrors]) => [project, [...mirrors].sort()])),
    byImage,
    byDigest,
  };
}

/** One image version the search found: a digest with the tags the manifests give it, on its mirrors. */
export interface SearchHit {
  readonly project: string;
  readonly image: string;
  readonly digest: string;
  readonly tags: readonly string[];
  readonly mirrors: readonly MirrorPlace[];
}

export interface SearchResult {
  readonly hits: readonly SearchHit[];
  /** More matched than `limit`. */
  readonly truncated: boolean;
}

/** Most image versions one search returns. */
export const MAX_SEARCH_HITS = 50;

/**
 * Image versions matching `query`: a digest (`sha256:abc...` or at least 7 hex digits of it), a
 * tag (exact), or part of an image name (`kube-apiserver`, `kubebuilder/kube-rbac-proxy`), or
 * `image:tag`. Newest digests are not known to the desired state, so hits come in image order.
 */
export function searchStatus(index: StatusIndex, query: string, limit = MAX_SEARCH_HITS): SearchResult {
  const text = query.trim().toLowerCase();
  if (text.length === 0) return { hits: [], truncated: false };
  const hits: SearchHit[] = [];
  let truncated = false;
  const seen = new Set<string>();
  const add = (place: MirrorPlace, digest: string): boolean => {
    // One hit per image version, on every mirror of that name (registry locations of one image
    // may sit under different paths: us.gcr.io/k8s-artifacts-prod, asia-docker.pkg.dev/.../images).
    const id = `${place.image}\u0000${digest}`;
    if (seen.has(id)) return true;
    if (hits.length >= limit) {
      truncated = true;
      return false;
    }
    seen.add(id);
    const mirrors = index.byImage.get(place.image) ?? [place];
    const holding = mirrors.filter((mirror) => wantedDigests(mirror.desired).has(digest));
    hits.push({
      project: place.project,
      image: place.image,
      digest,
      tags: [...(wantedDigests(place.desired).get(digest)?.tags ?? [])].sort(),
      mirrors: holding,
    });
    return true;
  };

  const hex = /^(?:sha256:)?([0-9a-f]{7,64})$/.exec(text)?.[1];
  if (hex !== undefined) {
    const exact = index.byDigest.get(`sha256:${hex}`);
    if (exact) {
      for (const place of exact) if (!add(place, `sha256:${hex}`)) break;
      return { hits, truncated };
    }
    for (const [digest, holders] of index.byDigest) {
      if (!digest.startsWith(`sha256:${hex}`)) continue;
      for (const place of holders) if (!add(place, digest)) return { hits, truncated };
    }
    if (hits.length > 0 || text.startsWith("sha256:")) return { hits, truncated };
  }

  const colon = text.lastIndexOf(":");
  const namePart = colon > 0 ? text.slice(0, colon) : text;
  const tagPart = colon > 0 ? text.slice(colon + 1) : undefined;
  for (const place of index.places) {
    const nameMatches = place.image.includes(namePart) || place.repository.includes(namePart);
    if (tagPart !== undefined) {
      if (!nameMatches) continue;
      for (const digest of wantedTag(place.desired, tagPart))
        if (!add(place, digest)) return { hits, truncated };
      continue;
    }
    // A bare word is a tag of any image, or part of an image name.
    for (const digest of wantedTag(place.desired, text)) if (!add(place, digest)) return { hits, truncated };
    if (!nameMatches) continue;
    for (const [digest, wanted] of place.desired.digests) {
      if (wanted.tags.length === 0) continue;
      if (!add(place, digest)) return { hits, truncated };
    }
  }
  return { hits, truncated };
}

/** What the auditor has seen of one digest in one repository. */
export interface DigestEvidence {
  /** A verified push of the digest, or a report edge that copied, tagged or found it there. */
  readonly present: boolean;
  /** The earliest verified push, or report that found it there (ISO time). */
  readonly firstSeen: string | null;
  /** Tags seen pointing at it (verified pushes and report edges). */
  readonly tags: readonly string[];
  /** A `sha256-<hex>.sig` tag (or sigstore referrer) recorded as an attachment of it. */
  readonly signature: boolean;
  /** A `sha256-<hex>.att` tag recorded as an attachment of it. */
  readonly attestation: boolean;
  /** The latest report edge into this repository for the digest that did not succeed. */
  readonly problem: string | null;
  /** The change and approvers of the latest report that promoted it here. */
  readonly change: string | null;
  readonly approvedBy: readonly string[];
  /** An unacknowledged violation in the repository about this digest. */
  readonly violation: boolean;
}

export const NO_EVIDENCE: DigestEvidence = {
  present: false,
  firstSeen: null,
  tags: [],
  signature: false,
  attestation: false,
  problem: null,
  change: null,
  approvedBy: [],
  violation: false,
};

/** A matrix cell's colour: every promoted digest seen / some / none / a violation there. */
export type CellState = "complete" | "partial" | "missing" | "violation";

/**
 * The state of one image on one mirror, from the evidence of each of its promoted digests;
 * `violated`: the repository has an unacknowledged violation (whatever its digest).
 */
export function cellState(
  place: MirrorPlace,
  evidence: (digest: string) => DigestEvidence,
  violated = false,
): CellState {
  let present = 0;
  let violation = violated;
  for (const digest of place.desired.digests.keys()) {
    const seen = evidence(digest);
    if (seen.present) present += 1;
    if (seen.violation) violation = true;
  }
  if (violation) return "violation";
  if (present === place.desired.digests.size) return "complete";
  return present === 0 ? "missing" : "partial";
}

/** The outcomes of a report edge that leave the digest in the destination. */
export const PRESENT_OUTCOMES: ReadonlySet<string> = new Set(["copied", "tagged", "unchanged"]);
