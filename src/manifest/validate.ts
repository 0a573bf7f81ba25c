import { countBySeverity } from "./finding.js";
import type { Finding, ManifestSet } from "./model.js";
import { countManifest } from "./view.js";

/**
 * What `promoter validate` reports: the counts below are documented in docs/manifest-format.md
 * ("Summary"). Images, digests and tags are counted after merging repeated image names, once
 * per manifest.
 */
export interface ValidationSummary {
  /** Manifests loaded (thin-tree projects, or 1 for a plain manifest). */
  readonly projects: number;
  /** Distinct image names per manifest. */
  readonly images: number;
  /** Distinct (image, digest) pairs per manifest. */
  readonly digests: number;
  /** Distinct (image, digest, tag) triples per manifest. */
  readonly tags: number;
  /** Usable destination registries per manifest (valid, not the source, each once). */
  readonly destinations: number;
  /** Promotion edges: (image, digest, tag) x destination; a tagless digest counts once per destination. */
  readonly edges: number;
  readonly errors: number;
  readonly warnings: number;
}

export interface ValidationResult {
  /** True when there is no error (warnings do not fail). */
  readonly ok: boolean;
  /** Every finding of the set, sorted by file, line and column. */
  readonly findings: readonly Finding[];
  readonly summary: ValidationSummary;
}

/** Summarises a set built by `loadManifests` or `createManifestSet` (which hold all findings). */
export function validate(set: ManifestSet): ValidationResult {
  let images = 0;
  let digests = 0;
  let tags = 0;
  let destinations = 0;
  let edges = 0;
  for (const manifest of set.manifests) {
    const counts = countManifest(manifest);
    images += counts.images;
    digests += counts.digests;
    tags += counts.tags;
    destinations += counts.destinations;
    edges += counts.edges;
  }
  const { errors, warnings } = countBySeverity(set.findings);
  return {
    ok: errors === 0,
    findings: set.findings,
    summary: { projects: set.manifests.length, images, digests, tags, destinations, edges, errors, warnings },
  };
}
