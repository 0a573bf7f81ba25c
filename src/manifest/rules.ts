import { quoteExcerpt } from "../excerpt.js";
import { plural } from "../output/quantities.js";
import {
  formatRepositoryLocation,
  repositoryIn,
  sameRegistryLocation,
  type Digest,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import { comparePositions, formatPosition, makeFinding, sortFindings } from "./finding.js";
import type { Finding, ManifestSet, PromotionManifest, RegistryEntry, SourcePosition } from "./model.js";
import { applyRepositoryOwnership } from "./ownership.js";
import { applyRegistryPolicy, type RegistryPolicy } from "./registry-policy.js";
import { destinationRegistries } from "./view.js";

/**
 * Rules that need a whole manifest or the whole set (entry-level rules, such as invalid digests,
 * are found while parsing). Pure: manifests in, findings out.
 */

/** Source and destination rules of one manifest. */
export function registryFindings(manifest: PromotionManifest): Finding[] {
  const findings: Finding[] = [];
  const sources = manifest.registries.filter((registry) => registry.src);
  const first = sources[0];
  if (!first) {
    const at = manifest.registries[0]?.position ?? { file: manifest.file, line: 1, column: 1 };
    findings.push(
      makeFinding(
        "no-source-registry",
        at,
        manifest.registries.length === 0
          ? `project ${quoteExcerpt(manifest.project)} lists no registries`
          : `project ${quoteExcerpt(manifest.project)} has no registry with src: true`,
      ),
    );
  }
  for (const extra of sources.slice(1)) {
    findings.push(
      makeFinding(
        "multiple-source-registries",
        extra.position,
        `registry ${quoteExcerpt(extra.name)} is a second source in project ${quoteExcerpt(manifest.project)} (the first is ${quoteExcerpt(first?.name ?? "")})`,
        first ? { related: [first.position] } : {},
      ),
    );
  }
  const seen: RegistryEntry[] = [];
  for (const registry of manifest.registries) {
    const location = registry.location;
    if (registry.src || !location) continue;
    const source = sources.find(
      (candidate) => candidate.location !== undefined && sameRegistryLocation(candidate.location, location),
    );
    if (source) {
      // kpromo compares whole entries, so a copy of the source with src: false (whatever its
      // service-account) becomes a destination there: it would write the tags into the source.
      const account =
        registry.serviceAccount === source.serviceAccount
          ? ""
          : "; another service-account does not make it another registry";
      findings.push(
        makeFinding(
          "destination-is-source",
          registry.position,
          `destination ${quoteExcerpt(registry.name)} is the source registry of project ${quoteExcerpt(manifest.project)}${account}`,
          { related: [source.position] },
        ),
      );
      continue;
    }
    const earlier = seen.find((kept) => kept.location && sameRegistryLocation(kept.location, location));
    if (earlier) {
      findings.push(
        makeFinding(
          "duplicate-registry",
          registry.position,
          `destination ${quoteExcerpt(registry.name)} is listed twice`,
          {
            related: [earlier.position],
          },
        ),
      );
      continue;
    }
    seen.push(registry);
  }
  return findings;
}

/** One place that asks for a destination tag. */
export interface TagClaim {
  readonly digest: Digest;
  readonly position: SourcePosition;
  readonly project: string;
  /** The image name as the claiming manifest writes it. */
  readonly image: RepositoryPath;
}

/**
 * A destination tag that two or more different digests claim. `destination` is the repository
 * key `formatRepositoryLocation(repositoryIn(registry.location, image))`; `image` is the image
 * name of the first claim (manifests with different registry prefixes can meet in one
 * repository under different image names; each claim keeps its own).
 */
export interface TagConflict {
  readonly destination: string;
  readonly image: RepositoryPath;
  readonly tag: Tag;
  /** Every place that claims the tag, sorted by position; at least two distinct digests. */
  readonly claims: readonly TagClaim[];
}

/** The distinct digests that claim a conflicting tag, in order of their first claim. */
export function conflictDigests(conflict: TagConflict): Digest[] {
  return [...new Set(conflict.claims.map((claim) => claim.digest))];
}

interface ClaimGroup {
  readonly claims: Map<Tag, TagClaim[]>;
  /** Conflicts inside the group alone, computed once for all its destinations. */
  internal: [Tag, TagClaim[]][] | undefined;
}

function conflictingTags(claims: ReadonlyMap<Tag, readonly TagClaim[]>): [Tag, TagClaim[]][] {
  const result: [Tag, TagClaim[]][] = [];
  for (const [tag, list] of claims) {
    const firstDigest = list[0]?.digest;
    if (list.some((claim) => claim.digest !== firstDigest)) {
      result.push([tag, [...list].sort((a, b) => comparePositions(a.position, b.position))]);
    }
  }
  return result;
}

/**
 * Every destination `registry/image:tag` claimed by more than one digest across all manifests.
 * The same digest claimed twice is fine. Work is per (manifest, image) and per destination
 * repository, never per edge: the real tree has ~720,000 edges but ~30,000 repositories.
 */
export function findTagConflicts(manifests: readonly PromotionManifest[]): TagConflict[] {
  const groupsByDestination = new Map<string, ClaimGroup[]>();
  for (const manifest of manifests) {
    const destinations = destinationRegistries(manifest);
    if (destinations.length === 0) continue;
    const groups = new Map<RepositoryPath, ClaimGroup>();
    for (const image of manifest.images) {
      let group = groups.get(image.name);
      if (!group) {
        group = { claims: new Map(), internal: undefined };
        groups.set(image.name, group);
      }
      for (const entry of image.digests) {
        for (const tag of entry.tags) {
          const claim: TagClaim = {
            digest: entry.digest,
            position: tag.position,
            project: manifest.project,
            image: image.name,
          };
          const list = group.claims.get(tag.tag);
          if (list) list.push(claim);
          else group.claims.set(tag.tag, [claim]);
        }
      }
    }
    for (const [image, group] of groups) {
      if (group.claims.size === 0) continue;
      for (const destination of destinations) {
        const key = formatRepositoryLocation(repositoryIn(destination.location, image));
        const list = groupsByDestination.get(key);
        if (!list) groupsByDestination.set(key, [group]);
        else if (!list.includes(group)) list.push(group);
      }
    }
  }

  const conflicts: TagConflict[] = [];
  for (const [destination, groups] of groupsByDestination) {
    let found: [Tag, TagClaim[]][];
    const [only] = groups;
    if (groups.length === 1 && only) {
      only.internal ??= conflictingTags(only.claims);
      found = only.internal;
    } else {
      const merged = new Map<Tag, TagClaim[]>();
      for (const group of groups) {
        for (const [tag, list] of group.claims) {
          const existing = merged.get(tag);
          if (existing) existing.push(...list);
          else merged.set(tag, [...list]);
        }
      }
      found = conflictingTags(merged);
    }
    for (const [tag, claims] of found) {
      const [first] = claims;
      if (first) conflicts.push({ destination, image: first.image, tag, claims });
    }
  }
  conflicts.sort((a, b) =>
    a.destination < b.destination
      ? -1
      : a.destination > b.destination
        ? 1
        : a.tag < b.tag
          ? -1
          : a.tag > b.tag
            ? 1
            : 0,
  );
  return conflicts;
}

/**
 * One finding per set of conflicting claims: a manifest with 22 destinations produces 22
 * conflicts with the same claims, which are one mistake in the file.
 */
export function tagConflictFindings(conflicts: readonly TagConflict[]): Finding[] {
  const grouped = new Map<string, { conflict: TagConflict; destinations: string[] }>();
  for (const conflict of conflicts) {
    const signature = conflict.claims
      .map((claim) => `${formatPosition(claim.position)}@${claim.digest}`)
      .join("|");
    const key = `${conflict.tag}|${signature}`;
    const group = grouped.get(key);
    if (group) group.destinations.push(conflict.destination);
    else grouped.set(key, { conflict, destinations: [conflict.destination] });
  }
  const findings: Finding[] = [];
  for (const { conflict, destinations } of grouped.values()) {
    const digests = conflictDigests(conflict);
    const projects = [...new Set(conflict.claims.map((claim) => claim.project))];
    const where =
      destinations.length === 1 ? "" : ` (and in ${plural(destinations.length - 1, "more destination")})`;
    const across = projects.length > 1 ? ` across projects ${projects.join(", ")}` : "";
    const [first, ...rest] = conflict.claims;
    if (!first) continue;
    findings.push(
      makeFinding(
        "tag-conflict",
        first.position,
        `${destinations[0] ?? conflict.destination}:${conflict.tag}${where} is claimed by ${digests.length} different digests${across}: ${digests.join(", ")}`,
        { related: rest.map((claim) => claim.position) },
      ),
    );
  }
  return findings;
}

/** All manifest- and set-level rules. */
export function checkManifests(manifests: readonly PromotionManifest[]): Finding[] {
  const findings: Finding[] = [];
  for (const manifest of manifests) findings.push(...registryFindings(manifest));
  findings.push(...tagConflictFindings(findTagConflicts(manifests)));
  return findings;
}

export interface ManifestSetOptions {
  /**
   * Which registries the manifests may name; without it every valid name is used (the library's
   * default; the CLI always passes one). See registry-policy.ts.
   */
  readonly registryPolicy?: RegistryPolicy;
  /**
   * Where an `oci:` directory really is (symbolic links resolved), so that repository ownership
   * sees one folder under two names as one; default: as written. The loaders pass the real one.
   */
  readonly realDirectory?: (directory: string) => string;
}

/**
 * A complete ManifestSet: manifests sorted by project (then file), and the given parse findings
 * together with every rule finding, sorted; image entries that name another project's repository
 * (ownership.ts) and registries the policy refuses (registry-policy.ts) are left out. Loaders
 * build sets with this; so can programs that make manifests in memory.
 */
export function createManifestSet(
  manifests: readonly PromotionManifest[],
  parseFindings: readonly Finding[] = [],
  options: ManifestSetOptions = {},
): ManifestSet {
  const sorted = [...manifests].sort((a, b) =>
    a.project < b.project ? -1 : a.project > b.project ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : 0,
  );
  // Ownership is judged on every destination the registries files name, before the policy
  // leaves some out: refusing a registry never hands its repositories to another project.
  const owned = applyRepositoryOwnership(
    sorted,
    options.realDirectory ? { realDirectory: options.realDirectory } : {},
  );
  const policed = options.registryPolicy
    ? applyRegistryPolicy(owned.manifests, options.registryPolicy)
    : { manifests: owned.manifests, findings: [] };
  return {
    manifests: policed.manifests,
    findings: sortFindings([
      ...parseFindings,
      ...owned.findings,
      ...policed.findings,
      ...checkManifests(policed.manifests),
    ]),
  };
}
