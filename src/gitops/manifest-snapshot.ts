import { findTagConflicts, type ManifestSet } from "../manifest/index.js";
import { promotionEdges } from "../plan/index.js";
import {
  layoutKey,
  RepositoryKeyCache,
  type Digest,
  type RegistryLocation,
  type RepositoryLocation,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import { sortInventory, type InventoryImage } from "./snapshot-format.js";

/**
 * A manifest-based snapshot (kpromo's `--manifest-based-snapshot-of`, `EdgesToRegInvImage`):
 * what the manifests would promote into one registry path, as the inventory a snapshot of it
 * would show once promoted, without asking any registry. Pure.
 */

/**
 * The repository path of `repository` below `registry`, or undefined when it is not below it.
 * Path components are compared whole: `gcr.io/foo` holds `gcr.io/foo/bar/app` (`bar/app`), not
 * `gcr.io/foobar/app` (kpromo's string prefix would say `bar/app`).
 */
export function repositoryBelow(
  registry: RegistryLocation,
  repository: RepositoryLocation,
): RepositoryPath | undefined {
  if (registry.kind === "remote") {
    if (repository.kind !== "remote" || repository.host !== registry.host) return undefined;
    if (registry.prefix === "") return repository.repository;
    const prefix = `${registry.prefix}/`;
    return repository.repository.startsWith(prefix)
      ? (repository.repository.slice(prefix.length) as RepositoryPath)
      : undefined;
  }
  if (repository.kind !== "oci-layout") return undefined;
  const root = layoutKey(registry.directory);
  const directory = layoutKey(repository.directory);
  if (directory === root) return repository.repository;
  return directory.startsWith(`${root}/`)
    ? (`${directory.slice(root.length + 1)}/${repository.repository}` as RepositoryPath)
    : undefined;
}

/**
 * Every (image, digest, tag) the manifests promote into `registry`, keyed by the image's path
 * below it (a destination `registry/sub` contributes `sub/<image>`), sorted as kpromo sorts. A
 * digest listed with tags in one place and without in another keeps its tags (kpromo's result
 * depends on map order there). What a promotion would not write is left out, as it is from the
 * plan: a tag that manifests claim for different digests (the tag-conflict rule; kpromo refuses
 * the whole run), entries that do not parse, manifests without one valid source.
 */
export function manifestBasedInventory(set: ManifestSet, registry: RegistryLocation): InventoryImage[] {
  const images = new Map<RepositoryPath, Map<Digest, Set<Tag>>>();
  const namesOf = new Map<RepositoryLocation, RepositoryPath | undefined>();
  const conflicts = new Set(
    findTagConflicts(set.manifests).map((conflict) => `${conflict.destination}:${conflict.tag}`),
  );
  const keys = new RepositoryKeyCache();
  for (const edge of promotionEdges(set)) {
    // Edges of one (registry, image) share their location object: one comparison per repository.
    let name = namesOf.get(edge.destination);
    if (!namesOf.has(edge.destination)) {
      name = repositoryBelow(registry, edge.destination);
      namesOf.set(edge.destination, name);
    }
    if (name === undefined) continue;
    if (
      edge.tag !== undefined &&
      conflicts.size > 0 &&
      conflicts.has(`${keys.of(edge.destination)}:${edge.tag}`)
    )
      continue;
    let digests = images.get(name);
    if (!digests) images.set(name, (digests = new Map<Digest, Set<Tag>>()));
    let tags = digests.get(edge.digest);
    if (!tags) digests.set(edge.digest, (tags = new Set()));
    if (edge.tag !== undefined) tags.add(edge.tag);
  }
  return sortInventory(
    [...images].map(([name, digests]) => ({
      name,
      digests: [...digests].map(([digest, tags]) => ({ digest, tags: [...tags] })),
    })),
  );
}
