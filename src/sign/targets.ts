import { describeError } from "../errors.js";
import { destinationRegistries, type ManifestSet } from "../manifest/index.js";
import { type PlannedEdge, type PromotionEdge } from "../plan/index.js";
import {
  parseImageReference,
  type Digest,
  type RepositoryPath,
  RepositoryKeyCache,
} from "../reference/index.js";
import { SignError } from "./errors.js";
import type { SignatureTarget, TargetDestination } from "./attachment-plan.js";

/**
 * Which digests are signed, as whom, and where their signatures go: one target per promoted
 * (source repository, digest), with every destination where the digest is (or will be after this
 * run), and the digest's other destinations that this run does not plan (`elsewhere`). Pure.
 *
 * The identity (the `docker-reference` of the payload) is the image's canonical name: the
 * configured `--sign-identity` prefix (a vanity registry such as `registry.example.io/project`)
 * followed by `/<image>`, or, without it, the manifest's first destination registry followed by
 * `/<image>`. `{image}` in the configured value is replaced instead of appended. The same name
 * goes into the signature at every mirror, so one signature serves them all.
 */

export interface TargetOptions {
  /** `--sign-identity`: a prefix, or a template with `{image}`. */
  readonly identity?: string;
  /**
   * Without `identity`: each project's canonical registry, its manifest's first destination
   * (`canonicalRegistries`). Needed when only some edges are planned (`--changed-since`,
   * `--shard`): the first planned edge may go to another mirror.
   */
  readonly canonicalRegistries?: ReadonlyMap<string, string>;
  /**
   * Whether the inventory saw `digest` as an index in the repository `repositoryKey` (undefined:
   * not seen there).
   */
  readonly isIndex?: (repositoryKey: string, digest: Digest) => boolean | undefined;
  /**
   * Every edge the manifests declare, when `edges` are only some of them: each target's
   * `elsewhere` lists the digest's destinations that are not planned, where its signature may
   * already be. The list is indexed once, on first use, and is not to change afterwards.
   */
  readonly declared?: readonly PromotionEdge[];
}

/** Each project's canonical registry for signatures: the first destination its manifest lists. */
export function canonicalRegistries(set: ManifestSet): Map<string, string> {
  const registries = new Map<string, string>();
  for (const manifest of set.manifests) {
    const first = destinationRegistries(manifest)[0];
    if (first) registries.set(manifest.project, first.name);
  }
  return registries;
}

/** The identity for an image, from the configured prefix or template. */
export function identityFor(configured: string, image: RepositoryPath): string {
  return configured.includes("{image}")
    ? configured.split("{image}").join(image)
    : `${configured.replace(/\/+$/, "")}/${image}`;
}

/** Checks a configured identity: it must make a repository reference (no tag, no digest). */
export function checkIdentity(configured: string): void {
  const sample = identityFor(configured, "image" as RepositoryPath);
  let parsed;
  try {
    parsed = parseImageReference(sample);
  } catch (error) {
    throw new SignError(
      "sign-policy",
      `--sign-identity ${JSON.stringify(configured)}: ${describeError(error)}`,
    );
  }
  if (parsed.tag !== undefined || parsed.digest !== undefined) {
    throw new SignError(
      "sign-policy",
      `--sign-identity ${JSON.stringify(configured)} must name a repository, without tag or digest`,
    );
  }
}

const PROMOTED_DECISIONS = new Set(["copy", "add-tag", "unchanged"]);

export function signatureTargets(
  edges: readonly PlannedEdge[],
  options: TargetOptions = {},
): SignatureTarget[] {
  const keys = new RepositoryKeyCache();
  interface Group {
    first: PlannedEdge;
    identities: string[];
    projects: Set<string>;
    destinations: Map<string, TargetDestination>;
    copied: boolean;
  }
  // By source repository, then digest: no key string made per edge (the real registry.k8s.io
  // tree has ~720,000), and groups in the order they first appear.
  const groups = new Map<string, Map<Digest, Group>>();
  const ordered: Group[] = [];
  for (const planned of edges) {
    const { edge, decision } = planned;
    const sourceKey = keys.of(edge.source);
    let bySource = groups.get(sourceKey);
    if (!bySource) groups.set(sourceKey, (bySource = new Map<Digest, Group>()));
    let group = bySource.get(edge.digest);
    if (!group) {
      group = { first: planned, identities: [], projects: new Set(), destinations: new Map(), copied: false };
      bySource.set(edge.digest, group);
      ordered.push(group);
    }
    // The first edge of each project names the identity: edges go to destinations in the order
    // the manifest lists them, so its destination is the manifest's first.
    if (!group.projects.has(edge.project)) {
      group.projects.add(edge.project);
      const configured =
        options.identity ?? options.canonicalRegistries?.get(edge.project) ?? edge.destinationRegistry.name;
      const identity = identityFor(configured, edge.image);
      if (!group.identities.includes(identity)) group.identities.push(identity);
    }
    if (!PROMOTED_DECISIONS.has(decision.kind)) continue;
    if (decision.kind === "copy") group.copied = true;
    const key = keys.of(edge.destination);
    if (!group.destinations.has(key)) {
      group.destinations.set(key, {
        location: edge.destination,
        key,
        registry: edge.destinationRegistry.name,
      });
    }
  }
  const declared = declaredDestinations(options.declared ?? []);
  const targets: SignatureTarget[] = [];
  for (const group of ordered) {
    if (group.destinations.size === 0) continue;
    const { edge } = group.first;
    const sourceKey = keys.of(edge.source);
    const destinations = [...group.destinations.values()].sort(byKey);
    const elsewhere = [...(declared.get(sourceKey)?.get(edge.digest)?.values() ?? [])]
      .filter((destination) => !group.destinations.has(destination.key))
      .sort(byKey);
    let rootIsIndex: boolean | undefined;
    for (const key of [...destinations.map((destination) => destination.key), sourceKey]) {
      rootIsIndex = options.isIndex?.(key, edge.digest);
      if (rootIsIndex !== undefined) break;
    }
    targets.push({
      project: edge.project,
      image: edge.image,
      source: edge.source,
      sourceKey,
      digest: edge.digest,
      identities: group.identities,
      destinations,
      ...(elsewhere.length > 0 ? { elsewhere } : {}),
      copied: group.copied,
      ...(rootIsIndex === undefined ? {} : { rootIsIndex }),
      position: edge.digestPosition ?? edge.position,
    });
  }
  return targets;
}

function byKey(a: TargetDestination, b: TargetDestination): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

type DeclaredIndex = Map<string, Map<Digest, Map<string, TargetDestination>>>;

/**
 * Indexes already built, by the edge list they index: a pipelined promotion asks for the targets
 * of each repository group against the whole run's declared edges, and indexing ~720,000 edges
 * again for each of thousands of groups was most of a registry.k8s.io no-op run's CPU.
 */
const declaredIndexes = new WeakMap<readonly PromotionEdge[], DeclaredIndex>();

/** The destinations the manifests declare for each promoted (source repository, digest). */
function declaredDestinations(edges: readonly PromotionEdge[]): DeclaredIndex {
  const known = declaredIndexes.get(edges);
  if (known) return known;
  const keys = new RepositoryKeyCache();
  // By source repository, then digest, as the groups of `signatureTargets`.
  const declared = new Map<string, Map<Digest, Map<string, TargetDestination>>>();
  for (const edge of edges) {
    const sourceKey = keys.of(edge.source);
    let bySource = declared.get(sourceKey);
    if (!bySource) declared.set(sourceKey, (bySource = new Map<Digest, Map<string, TargetDestination>>()));
    let destinations = bySource.get(edge.digest);
    if (!destinations) {
      destinations = new Map();
      bySource.set(edge.digest, destinations);
    }
    const key = keys.of(edge.destination);
    if (!destinations.has(key)) {
      destinations.set(key, { location: edge.destination, key, registry: edge.destinationRegistry.name });
    }
  }
  declaredIndexes.set(edges, declared);
  return declared;
}
