import type { Readable } from "node:stream";
import type { Descriptor } from "../oci/index.js";
import type { Digest, RepositoryLocation, RepositoryPath, Tag } from "../reference/index.js";

/**
 * The storage interface every backend implements: a repository in a registry that speaks the
 * OCI distribution spec, or a local OCI image layout directory. The copy engine, inventory,
 * snapshot, signing and auditor see only this interface.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
 */

/** Which end of a promotion a store is: errors name it so a person knows where to look. */
export type Side = "source" | "destination";

export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** Manifest bytes exactly as stored, with the digest they hash to and their media type. */
export interface ManifestContent {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
}

export interface RepositoryStore {
  /** Where this repository lives (registry host or OCI layout directory, and path). */
  readonly location: RepositoryLocation;
  /** Display form for messages and plans: `host/repository` or `oci:DIR/repository`. */
  readonly name: string;
  readonly side: Side;

  /**
   * The descriptor a tag or digest points at (distribution: HEAD of the manifest, reading
   * `Docker-Content-Digest`, `Content-Type`, `Content-Length`), or undefined when absent.
   */
  resolve(reference: Tag | Digest, options?: CallOptions): Promise<Descriptor | undefined>;

  /**
   * The manifest bytes, exactly as stored, or undefined when absent. The digest is checked
   * against the one asked for, or the one the registry announced for a tag.
   */
  getManifest(reference: Tag | Digest, options?: CallOptions): Promise<ManifestContent | undefined>;

  /**
   * Stores manifest bytes under a tag or under their digest, with `content.mediaType` as the
   * exact Content-Type. The backend checks that `content.digest` matches the bytes.
   */
  putManifest(content: ManifestContent, reference: Tag | Digest, options?: CallOptions): Promise<void>;

  /**
   * Whether the blob exists in this repository. An OCI layout also checks the file's bytes
   * against the digest: a file of that name with other bytes is not the blob.
   */
  hasBlob(digest: Digest, options?: CallOptions): Promise<boolean>;

  /**
   * A stream of the blob's bytes. The stream is verified while it flows: it fails with an
   * error (instead of ending) when the size or digest does not match `descriptor`.
   */
  openBlob(descriptor: Descriptor, options?: CallOptions): Promise<Readable>;

  /**
   * Uploads a blob from a stream of exactly `descriptor.size` bytes. The destination verifies
   * the digest. Not retried at body level: a caller that wants another attempt opens a new source
   * stream (an upload restarts its session instead of replaying a body).
   */
  putBlob(descriptor: Descriptor, content: AsyncIterable<Uint8Array>, options?: CallOptions): Promise<void>;

  /**
   * Cross-repository mount from another repository of the same registry: true when the blob now
   * exists here, false when the registry declined (the caller then uploads).
   * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
   */
  mountBlob(descriptor: Descriptor, from: RepositoryPath, options?: CallOptions): Promise<boolean>;

  /** Whether `mountBlob` from `other` can work (same registry host, same backend). */
  canMountFrom(other: RepositoryStore): boolean;

  /** All tags, following pagination. An absent repository has no tags (not an error). */
  listTags(options?: CallOptions): Promise<Tag[]>;

  /**
   * Manifests whose `subject` is `digest`: the referrers API, or the tag-schema fallback index
   * (`sha256-<hex>`) where the registry lacks the API.
   * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
   */
  referrers(
    digest: Digest,
    options?: CallOptions & { readonly artifactType?: string },
  ): Promise<Descriptor[]>;

  /** Deletes a manifest by digest. For tests and clean-up; promotion never deletes. */
  deleteManifest(digest: Digest, options?: CallOptions): Promise<void>;
  /** Deletes a blob. For tests and clean-up; promotion never deletes. */
  deleteBlob(digest: Digest, options?: CallOptions): Promise<void>;
}

/** Opens repository stores for locations; the one place that knows registries from layouts. */
export interface StoreProvider {
  repository(location: RepositoryLocation, side: Side): RepositoryStore;
  /**
   * Repository paths under a registry host or layout directory (`_catalog`, or the layout
   * directories found on disk), optionally limited to a path prefix.
   */
  catalog(
    registry: { kind: "remote"; host: string } | { kind: "oci-layout"; directory: string },
    prefix: string,
    options?: CallOptions,
  ): Promise<RepositoryPath[]>;
  /** Requests made so far, per host (OCI layouts count as their directory). */
  requestCounts(): ReadonlyMap<string, RequestCount>;
}

export interface RequestCount {
  total: number;
  byMethod: Record<string, number>;
}
