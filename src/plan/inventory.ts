import type { ProblemCode } from "../errors.js";
import type { Digest, Tag } from "../reference/index.js";

/**
 * What was observed in one repository: where the wanted tags point and which wanted digests are
 * present. Only what the plan needs is asked for (see promote/inventory.ts); a tag absent from
 * `tags` was looked for and not found.
 */
export interface RepositoryObservation {
  readonly kind: "observed";
  readonly tags: ReadonlyMap<Tag, Digest>;
  readonly digests: ReadonlySet<Digest>;
  /**
   * The observed digests that are image indexes (the rest are single manifests), from the media
   * type the registry announced. Signing reads only these to find their child images.
   */
  readonly indexes?: ReadonlySet<Digest>;
  /**
   * A tags listing answered with nothing (no tags, and no manifests where the registry lists them
   * with the tags): the copy engine need not check for anything there before writing it. Absent
   * when the repository was not listed. Tagless manifests some registries do not list may still
   * be there: then the copy writes them again, costing bytes, not correctness.
   */
  readonly empty?: true;
}

/** The repository could not be read (the registry failed or refused); its edges fail. */
export interface RepositoryReadFailure {
  readonly kind: "unreadable";
  readonly code: ProblemCode;
  readonly message: string;
}

export type RepositoryState = RepositoryObservation | RepositoryReadFailure;

/**
 * Observed state keyed by repository display name (`formatRepositoryLocation`). Sources and
 * destinations share the map: a repository is the same whichever side asks.
 */
export type Inventory = ReadonlyMap<string, RepositoryState>;

/** What to observe in one repository: the tags and digests its edges mention. */
export interface RepositoryQuestion {
  readonly tags: Set<Tag>;
  readonly digests: Set<Digest>;
}
