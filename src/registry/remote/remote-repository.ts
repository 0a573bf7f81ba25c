import type { Readable } from "node:stream";
import { referrerDescriptor, type Descriptor } from "../../oci/index.js";
import {
  formatRepositoryLocation,
  type Digest,
  type RepositoryLocation,
  type RepositoryPath,
  type Tag,
} from "../../reference/index.js";
import type {
  CallOptions,
  ContentDeleter,
  ManifestContent,
  ReferrersOptions,
  RepositoryIdentity,
  RepositoryStore,
  TagListing,
} from "../store.js";
import type { Clock } from "../transport/clock.js";
import { deleteScope } from "../auth/scope.js";
import { mountBlob, mountPair, uploadBlob } from "./blob-upload.js";
import { hasBlob, openBlob } from "./blobs.js";
import type { RegistryEndpoint } from "./endpoint.js";
import { listTags, listTagsAndManifests } from "./listing.js";
import { getManifest, putManifest, resolveManifest } from "./manifests.js";
import { addToReferrersFallback, listReferrers, subjectOf } from "./referrers.js";
import { RepositoryClient } from "./repository-client.js";

/**
 * A repository in a registry that speaks the OCI distribution spec v1.1: every role of a
 * repository store, and deleting (for tests and clean-up; the provider's stores do not offer it).
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
 */
export class RemoteRepository implements RepositoryStore, ContentDeleter {
  readonly location: RepositoryLocation;
  readonly name: string;
  private readonly client: RepositoryClient;

  constructor(
    readonly endpoint: RegistryEndpoint,
    repository: RepositoryPath,
    private readonly clock: Clock,
  ) {
    this.location = { kind: "remote", host: endpoint.host, repository };
    this.name = formatRepositoryLocation(this.location);
    this.client = new RepositoryClient(endpoint, repository);
  }

  get repository(): RepositoryPath {
    return this.client.repository;
  }

  resolve(reference: Tag | Digest, options?: CallOptions): Promise<Descriptor | undefined> {
    return resolveManifest(this.client, reference, options);
  }

  getManifest(reference: Tag | Digest, options?: CallOptions): Promise<ManifestContent | undefined> {
    return getManifest(this.client, reference, options);
  }

  async putManifest(content: ManifestContent, reference: Tag | Digest, options?: CallOptions): Promise<void> {
    const { subjectProcessed } = await putManifest(this.client, content, reference, options);
    if (subjectProcessed) return;
    // A registry without the referrers API: keep the tag-schema index of the subject up to date.
    // https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject
    const withSubject = subjectOf(content);
    if (!withSubject) return;
    await addToReferrersFallback(
      this.client,
      withSubject.subject.digest,
      referrerDescriptor(content, withSubject.manifest),
      options,
    );
  }

  hasBlob(digest: Digest, options?: CallOptions): Promise<boolean> {
    return hasBlob(this.client, digest, options);
  }

  openBlob(descriptor: Descriptor, options?: CallOptions): Promise<Readable> {
    return openBlob(this.client, descriptor, options);
  }

  putBlob(descriptor: Descriptor, content: AsyncIterable<Uint8Array>, options?: CallOptions): Promise<void> {
    return uploadBlob(this.client, descriptor, content, this.clock.now(), options);
  }

  mountBlob(descriptor: Descriptor, from: RepositoryPath, options?: CallOptions): Promise<boolean> {
    return mountBlob(this.client, descriptor, from, this.clock.now(), options);
  }

  canMountFrom(other: RepositoryIdentity): boolean {
    return (
      other instanceof RemoteRepository &&
      other.endpoint.origin === this.endpoint.origin &&
      other.repository !== this.repository &&
      !this.endpoint.refusedMounts.has(mountPair(other.repository, this.repository))
    );
  }

  listTags(options?: CallOptions): Promise<Tag[]> {
    return listTags(this.client, options);
  }

  listTagsAndManifests(options?: CallOptions): Promise<TagListing> {
    return listTagsAndManifests(this.client, options);
  }

  referrers(digest: Digest, options: ReferrersOptions = {}): Promise<Descriptor[]> {
    const { artifactType, listedTags, ...callOptions } = options;
    return listReferrers(this.client, digest, artifactType, callOptions, listedTags);
  }

  deleteManifest(digest: Digest, options?: CallOptions): Promise<void> {
    return this.delete("delete manifest", `manifests/${digest}`, options);
  }

  deleteBlob(digest: Digest, options?: CallOptions): Promise<void> {
    return this.delete("delete blob", `blobs/${digest}`, options);
  }

  /** DELETE; an absent manifest or blob is already what was asked for. */
  private async delete(operation: string, path: string, options?: CallOptions): Promise<void> {
    const { request, response } = await this.client.send(
      operation,
      {
        method: "DELETE",
        url: this.endpoint.url(this.client.path(path)),
        scopes: [deleteScope(this.repository)],
      },
      options,
    );
    if (
      response.status === 202 ||
      response.status === 200 ||
      response.status === 204 ||
      response.status === 404
    ) {
      await response.discard();
      return;
    }
    throw await this.client.fail(response, request);
  }
}
