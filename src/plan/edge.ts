import {
  countManifest,
  destinationRegistries,
  mergeImages,
  sourceRegistry,
  type ManifestSet,
  type RegistryEntry,
  type SourcePosition,
} from "../manifest/index.js";
import {
  repositoryIn,
  type Digest,
  type RepositoryLocation,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";

/**
 * Promotion edges: the unit of work of a promotion, kpromo's `PromotionEdge`. One edge is one
 * (image, digest, tag) x destination; a tagless digest is one edge per destination.
 */
export interface PromotionEdge {
  readonly project: string;
  readonly image: RepositoryPath;
  readonly digest: Digest;
  /** Absent for a tagless digest (the digest is copied without a tag). */
  readonly tag?: Tag;
  readonly source: RepositoryLocation;
  readonly destination: RepositoryLocation;
  readonly sourceRegistry: RegistryEntry;
  readonly destinationRegistry: RegistryEntry;
  /** Where the tag is written, or the digest for a tagless edge. */
  readonly position: SourcePosition;
  /** Where the digest is written (its `dmap` key); absent on a tagless edge, whose `position` it is. */
  readonly digestPosition?: SourcePosition;
}

/**
 * Every edge of the set, manifest by manifest (in the set's order), image by image in order of
 * first appearance. Repeated image names are merged (a union) and each (digest, tag) is yielded
 * once per destination. Manifests without exactly one valid source yield nothing (their
 * findings say why). Edges of one (registry, image) share their RepositoryLocation objects:
 * the real registry.k8s.io tree has ~720,000 edges.
 */
export function* promotionEdges(set: ManifestSet): Generator<PromotionEdge> {
  for (const manifest of set.manifests) {
    const source = sourceRegistry(manifest);
    if (!source) continue;
    const destinations = destinationRegistries(manifest);
    if (destinations.length === 0) continue;
    for (const image of mergeImages(manifest)) {
      const sourceLocation = repositoryIn(source.location, image.name);
      const targets = destinations.map((registry) => ({
        registry,
        location: repositoryIn(registry.location, image.name),
      }));
      for (const digest of image.digests) {
        if (digest.tags.length === 0) {
          for (const target of targets) {
            yield {
              project: manifest.project,
              image: image.name,
              digest: digest.digest,
              source: sourceLocation,
              destination: target.location,
              sourceRegistry: source,
              destinationRegistry: target.registry,
              position: digest.position,
            };
          }
          continue;
        }
        for (const tag of digest.tags) {
          for (const target of targets) {
            yield {
              project: manifest.project,
              image: image.name,
              digest: digest.digest,
              tag: tag.tag,
              source: sourceLocation,
              destination: target.location,
              sourceRegistry: source,
              destinationRegistry: target.registry,
              position: tag.position,
              digestPosition: digest.position,
            };
          }
        }
      }
    }
  }
}

/** The number of edges `promotionEdges` yields, without making them. */
export function countEdges(set: ManifestSet): number {
  let edges = 0;
  for (const manifest of set.manifests) edges += countManifest(manifest).edges;
  return edges;
}
