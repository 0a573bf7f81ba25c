import type { Readable } from "node:stream";
import type { Descriptor } from "../oci/index.js";
import type { Digest, RepositoryLocation, RepositoryPath, Tag } from "../reference/index.js";

/**
 * What a repository store can do, as small roles (oras-go's `content.Fetcher`, `Pusher`,
 * `Resolver`, `registry.TagLister`, `ReferrerLister`... are the model): a repository in a registry
 * that speaks the OCI distribution spec, or a local OCI image layout directory, offers every role
 * of `RepositoryStore`; each caller asks only for the roles it uses, so what a piece of code can
 * do to a repository (write to it, or only read it) shows in its signature. A store knows where
 * it is, not which end of a promotion it is: callers that care say so with `onSide`. Deleting is
 * a role of its own that promotion never asks for. docs/decisions/0003-store-roles.md
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
 */

export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** Manifest bytes exactly as stored, with the digest they hash to and their media type. */
export interface ManifestContent {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
}

/** Which repository a store is: every role carries it, for keys and messages. */
export interface RepositoryIdentity {
  /** Where this repository lives (registry host or OCI layout directory, and path). */
  readonly location: RepositoryLocation;
  /** Display form for messages and plans: `host/repository` or `oci:DIR/repository`. */
  readonly name: string;
}

/** Checks that a manifest exists, and what it is, without reading it. */
export interface ManifestResolver extends RepositoryIdentity {
  /**
   * The descriptor a tag or digest points at (distribution: HEAD of the manifest, reading
   * `Docker-Content-Digest`, `Content-Type`, `Content-Length`), or undefined when absent.
   */
  resolve(reference: Tag | Digest, options?: CallOptions): Promise<Descriptor | undefined>;
}

/** Reads manifests. */
export interface ManifestReader extends RepositoryIdentity {
  /**
   * The manifest bytes, exactly as stored, or undefined when absent. The digest is checked
   * against the one asked for, or the one the registry announced for a tag.
   */
  getManifest(reference: Tag | Digest, options?: CallOptions): Promise<ManifestContent | undefined>;
}

/** Writes manifests: under their digest, or under a tag (which is how a tag is set). */
export interface ManifestWriter extends RepositoryIdentity {
  /**
   * Stores manifest bytes under a tag or under their digest, with `content.mediaType` as the
   * exact Content-Type. The backend checks that `content.digest` matches the bytes.
   */
  putManifest(content: ManifestContent, reference: Tag | Digest, options?: CallOptions): Promise<void>;
}

/** Checks that a blob exists. */
export interface BlobChecker extends RepositoryIdentity {
  /**
   * Whether the blob exists in this repository. An OCI layout also checks the file's bytes
   * against the digest: a file of that name with other bytes is not the blob.
   */
  hasBlob(digest: Digest, options?: CallOptions): Promise<boolean>;
}

/** Reads blobs. */
export interface BlobReader extends RepositoryIdentity {
  /**
   * A stream of the blob's bytes. The stream is verified while it flows: it fails with an
   * error (instead of ending) when the size or digest does not match `descriptor`.
   */
  openBlob(descriptor: Descriptor, options?: CallOptions): Promise<Readable>;
}

/** Writes blobs. */
export interface BlobWriter extends RepositoryIdentity {
  /**
   * Uploads a blob from a stream of exactly `descriptor.size` bytes. The destination verifies
   * the digest. Not retried at body level: a caller that wants another attempt opens a new source
   * stream (an upload restarts its session instead of replaying a body).
   */
  putBlob(descriptor: Descriptor, content: AsyncIterable<Uint8Array>, options?: CallOptions): Promise<void>;
}

/** Writes a blob by mounting it from another repository of the same registry or layout tree. */
export interface BlobMounter extends RepositoryIdentity {
  /**
   * Cross-repository mount from another repository of the same registry: true when the blob now
   * exists here, false when the registry declined (the caller then uploads).
   * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
   */
  mountBlob(descriptor: Descriptor, from: RepositoryPath, options?: CallOptions): Promise<boolean>;

  /**
   * Whether `mountBlob` from `other` can work: same registry host and backend, another
   * repository, and (for a registry) not refused for this pair earlier in the run. After a
   * `mountBlob` that answered false, this says whether the registry declined (an upload session
   * may be waiting) or refused the pair (nothing was opened).
   */
  canMountFrom(other: RepositoryIdentity): boolean;
}

/** Lists tags. */
export interface TagLister extends RepositoryIdentity {
  /** All tags, following pagination. An absent repository has no tags (not an error). */
  listTags(options?: CallOptions): Promise<Tag[]>;
  /**
   * The tags, and every manifest with its tags where the registry's listing says so in the same
   * request (Google's `manifest` map, remote/manifest-map.ts). Absent on stores that cannot.
   */
  listTagsAndManifests?(options?: CallOptions): Promise<TagListing>;
}

/** One manifest a registry's listing names (Google's `manifest` map). */
export interface ListedManifest {
  readonly tags: readonly Tag[];
  readonly mediaType?: string;
  /** `imageSizeBytes`. */
  readonly size?: number;
  /** `timeUploadedMs`, as an RFC 3339 time. */
  readonly uploaded?: string;
}

/** A tags listing, with the registry's map of its manifests when it gives one. */
export interface TagListing {
  readonly tags: readonly Tag[];
  /** Every manifest of the repository (tagged or not) by digest; only when the registry lists them. */
  readonly manifests?: ReadonlyMap<Digest, ListedManifest>;
}

/**
 * Lists the manifests held without a tag. An OCI layout's index.json lists them; the
 * distribution API cannot, so only layout stores offer this role (`listsUntaggedManifests`).
 */
export interface UntaggedManifestLister extends RepositoryIdentity {
  listUntaggedManifests(options?: CallOptions): Promise<Descriptor[]>;
}

/** Whether `store` offers `UntaggedManifestLister` (a store the provider wrapped keeps it). */
export function listsUntaggedManifests<S extends object>(store: S): store is S & UntaggedManifestLister {
  return typeof (store as Partial<UntaggedManifestLister>).listUntaggedManifests === "function";
}

/** Lists the manifests that refer to a subject. */
export interface ReferrerLister extends RepositoryIdentity {
  /**
   * Manifests whose `subject` is `digest`: the referrers API, or the tag-schema fallback index
   * (`sha256-<hex>`) where the registry lacks the API.
   * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
   */
  referrers(digest: Digest, options?: ReferrersOptions): Promise<Descriptor[]>;
}

export interface ReferrersOptions extends CallOptions {
  /** Only referrers of this artifact type. */
  readonly artifactType?: string;
  /**
   * The repository's tags as the caller listed them during this run. Where the registry has no
   * referrers API, a fallback tag (`sha256-<hex>`) not among them is taken as absent without
   * asking: a run that carries the attachments of a thousand digests lists once rather than
   * asking a thousand times for tags that are not there.
   */
  readonly listedTags?: ReadonlySet<string>;
}

/**
 * Deletes content. For tests and clean-up only: promotion never deletes, so this role is not
 * part of `RepositoryStore` and no store the provider opens offers it.
 */
export interface ContentDeleter extends RepositoryIdentity {
  /** Deletes a manifest by digest. */
  deleteManifest(digest: Digest, options?: CallOptions): Promise<void>;
  /** Deletes a blob. */
  deleteBlob(digest: Digest, options?: CallOptions): Promise<void>;
}

/** Every role a repository offers to promotion; what the store provider opens. */
export interface RepositoryStore
  extends
    ManifestResolver,
    ManifestReader,
    ManifestWriter,
    BlobChecker,
    BlobReader,
    BlobWriter,
    BlobMounter,
    TagLister,
    ReferrerLister {}

/** Opens repository stores for locations; the one place that knows registries from layouts. */
export interface RepositoryOpener {
  repository(location: RepositoryLocation): RepositoryStore;
}

/** Lists the repositories under a registry host or layout directory. */
export interface RepositoryCatalog {
  /**
   * Repository paths under a registry host or layout directory (`_catalog`, or the layout
   * directories found on disk), optionally limited to a path prefix.
   */
  catalog(
    registry: { kind: "remote"; host: string } | { kind: "oci-layout"; directory: string },
    prefix: string,
    options?: CallOptions,
  ): Promise<RepositoryPath[]>;
}

/** Opens repositories, lists them, and counts the requests made for them. */
export interface StoreProvider extends RepositoryOpener, RepositoryCatalog {
  /** Requests made so far, per host (OCI layouts count as their directory). */
  requestCounts(): ReadonlyMap<string, RequestCount>;
}

export interface RequestCount {
  total: number;
  byMethod: Record<string, number>;
  /** Set when the host failed for good during the run (see `registry-unreachable`). */
  unreachable?: { code: string; message: string; requestsNotSent: number };
  /**
   * Set when the host's quota held requests back: 429 answers, the wall time waited for it, the
   * pace it was slowed to, and requests failed unsent because it was spent for too long.
   */
  quota?: {
    throttledResponses: number;
    waitedMs: number;
    slowedToPerSecond?: number;
    refusedRequests: number;
  };
}
