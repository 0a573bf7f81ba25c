import {
  formatRegistryLocation,
  type Digest,
  type RegistryLocation,
  type RepositoryPath,
} from "../reference/index.js";
import type { PromotionManifest, RegistryEntry, SourcePosition, TagEntry } from "./model.js";

/**
 * Read-only views of one manifest that rules, summaries and the planner share, so that "which
 * registry is the source" and "what does an image promote" are decided in one place.
 */

/** A registry entry whose name parsed. */
export type UsableRegistry = RegistryEntry & { readonly location: RegistryLocation };

function isUsable(registry: RegistryEntry): registry is UsableRegistry {
  return registry.location !== undefined;
}

interface RegistryRoles {
  readonly source: UsableRegistry | undefined;
  readonly destinations: readonly UsableRegistry[];
}

// Manifests are immutable; rules, summaries and edges all ask for the roles of the same objects.
const rolesCache = new WeakMap<PromotionManifest, RegistryRoles>();

function registryRoles(manifest: PromotionManifest): RegistryRoles {
  const cached = rolesCache.get(manifest);
  if (cached) return cached;
  const sources = manifest.registries.filter((registry) => registry.src);
  const only = sources.length === 1 ? sources[0] : undefined;
  const taken = new Set<string>();
  for (const source of sources) if (source.location) taken.add(formatRegistryLocation(source.location));
  const destinations: UsableRegistry[] = [];
  for (const registry of manifest.registries) {
    if (registry.src || !isUsable(registry)) continue;
    const key = formatRegistryLocation(registry.location);
    if (taken.has(key)) continue;
    taken.add(key);
    destinations.push(registry);
  }
  const roles = { source: only && isUsable(only) ? only : undefined, destinations };
  rolesCache.set(manifest, roles);
  return roles;
}

/** The source registry when the manifest has exactly one `src: true` entry and its name is valid. */
export function sourceRegistry(manifest: PromotionManifest): UsableRegistry | undefined {
  return registryRoles(manifest).source;
}

/**
 * The destinations images are promoted to: valid, not a source, each place once (first entry
 * wins). Rules report the entries left out.
 */
export function destinationRegistries(manifest: PromotionManifest): readonly UsableRegistry[] {
  return registryRoles(manifest).destinations;
}

/** One digest of an image after merging all entries of the same name. */
export interface MergedDigest {
  readonly digest: Digest;
  /** Where the digest is first listed. */
  readonly position: SourcePosition;
  /** Each tag once, at its first position; empty for a tagless digest. */
  readonly tags: readonly TagEntry[];
}

/** All entries of one image name in a manifest, merged (kpromo treats repeated names as a union). */
export interface MergedImage {
  readonly name: RepositoryPath;
  readonly position: SourcePosition;
  readonly digests: readonly MergedDigest[];
}

/** The manifest's images by name, in order of first appearance. */
export function mergeImages(manifest: PromotionManifest): MergedImage[] {
  const byName = new Map<RepositoryPath, { position: SourcePosition; digests: Map<Digest, MergedDigest> }>();
  for (const image of manifest.images) {
    let merged = byName.get(image.name);
    if (!merged) {
      merged = { position: image.position, digests: new Map() };
      byName.set(image.name, merged);
    }
    for (const entry of image.digests) {
      const earlier = merged.digests.get(entry.digest);
      // Most digests are listed once with distinct tags: keep the parsed entry as it is.
      const tags = earlier ? [...earlier.tags, ...entry.tags] : entry.tags;
      merged.digests.set(entry.digest, {
        digest: entry.digest,
        position: earlier ? earlier.position : entry.position,
        tags: hasRepeatedTag(tags) ? uniqueTags(tags) : tags,
      });
    }
  }
  const images: MergedImage[] = [];
  for (const [name, merged] of byName) {
    images.push({ name, position: merged.position, digests: [...merged.digests.values()] });
  }
  return images;
}

function hasRepeatedTag(tags: readonly TagEntry[]): boolean {
  if (tags.length < 2) return false;
  if (tags.length === 2) return tags[0]?.tag === tags[1]?.tag;
  return new Set(tags.map((entry) => entry.tag)).size !== tags.length;
}

function uniqueTags(tags: readonly TagEntry[]): TagEntry[] {
  const seen = new Set<string>();
  return tags.filter((entry) => (seen.has(entry.tag) ? false : (seen.add(entry.tag), true)));
}

/** Counts of one manifest, for summaries; `edges` is what `promotionEdges` yields for it. */
export interface ManifestCounts {
  readonly images: number;
  readonly digests: number;
  readonly tags: number;
  readonly destinations: number;
  readonly edges: number;
}

/**
 * An edge is one (image, digest, tag) x destination; a tagless digest is one edge per
 * destination. A manifest without exactly one valid source has no edges.
 */
export function countManifest(manifest: PromotionManifest, images = mergeImages(manifest)): ManifestCounts {
  const destinations = destinationRegistries(manifest).length;
  const promotes = sourceRegistry(manifest) !== undefined;
  let digests = 0;
  let tags = 0;
  let edges = 0;
  for (const image of images) {
    digests += image.digests.length;
    for (const digest of image.digests) {
      tags += digest.tags.length;
      if (promotes) edges += Math.max(1, digest.tags.length) * destinations;
    }
  }
  return { images: images.length, digests, tags, destinations, edges };
}
