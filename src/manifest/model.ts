import type { Digest, RegistryLocation, RepositoryPath, Tag } from "../reference/index.js";

/**
 * The typed model of promotion manifests (kpromo's format), with the source position of every
 * entry so each finding and each plan line can point at `file:line:col`.
 */

/** 1-based line and column in a file, as compilers print them. */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export type Severity = "error" | "warning";

/** One problem found in the manifests: printed as `file:line:col: error[rule]: message`. */
export interface Finding {
  readonly severity: Severity;
  /** Stable rule id, e.g. `invalid-digest`, `tag-conflict`. Documented in docs/manifest-format.md. */
  readonly rule: string;
  readonly message: string;
  /** How to fix it, one sentence. */
  readonly hint?: string;
  readonly position: SourcePosition;
  /** Other places involved (the other claims of a conflicting tag). */
  readonly related?: readonly SourcePosition[];
}

/** One entry of `registries:`. */
export interface RegistryEntry {
  /** The name as written, less any trailing `/` (reported as `kpromo-spelling`). */
  readonly name: string;
  /** Parsed location; undefined when the name is invalid (a finding says why). */
  readonly location: RegistryLocation | undefined;
  readonly src: boolean;
  readonly serviceAccount?: string;
  readonly position: SourcePosition;
}

/** A tag in a `dmap` value list. */
export interface TagEntry {
  readonly tag: Tag;
  readonly position: SourcePosition;
}

/** One `digest: [tags]` pair of a `dmap`. */
export interface DigestEntry {
  readonly digest: Digest;
  /** Valid tags only; invalid ones are findings. Empty for a tagless digest. */
  readonly tags: readonly TagEntry[];
  readonly position: SourcePosition;
}

/** One `{name, dmap}` entry of `images:`. The same name may appear several times (a union). */
export interface ImageEntry {
  readonly name: RepositoryPath;
  readonly digests: readonly DigestEntry[];
  readonly position: SourcePosition;
}

/**
 * One promotion manifest: a plain manifest file (registries and images together) or one project
 * of a thin-manifest tree (`manifests/<project>/promoter-manifest.yaml` with its
 * `images/<project>/images.yaml`).
 */
export interface PromotionManifest {
  /** Project directory name for thin manifests; the file name without extension for plain ones. */
  readonly project: string;
  /** The file holding `registries:`. */
  readonly file: string;
  /** The thin tree's images file; absent for plain manifests. */
  readonly imagesFile?: string;
  readonly registries: readonly RegistryEntry[];
  /** Valid entries only: entries with an invalid name, digest or tag are left out (and reported). */
  readonly images: readonly ImageEntry[];
}

/** Everything loaded from `--manifest FILE` or `--thin-manifest-dir DIR`. */
export interface ManifestSet {
  readonly manifests: readonly PromotionManifest[];
  /** Parse and rule findings for the whole set, sorted by file, line, column. */
  readonly findings: readonly Finding[];
}
