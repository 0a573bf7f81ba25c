import * as path from "node:path";
import { addAbortSignal, Transform, type Readable, type TransformCallback } from "node:stream";
import { silentLogger, type Logger } from "../../log.js";
import {
  INDEX_MEDIA_TYPES,
  isManifestMediaType,
  parseManifest,
  referrerDescriptor,
  referrersFallbackTag,
  type Descriptor,
  type ParsedManifest,
} from "../../oci/index.js";
import {
  digestAlgorithm,
  digestOf,
  DigestVerifier,
  formatRepositoryLocation,
  isDigest,
  isTag,
  layoutKey,
  type Digest,
  type RepositoryLocation,
  type RepositoryPath,
  type Tag,
} from "../../reference/index.js";
import { RegistryError, type RegistryErrorCode, type RegistryErrorDetails } from "../errors.js";
import type {
  CallOptions,
  ContentDeleter,
  ManifestContent,
  ReferrersOptions,
  RepositoryIdentity,
  RepositoryStore,
  UntaggedManifestLister,
} from "../store.js";
import { LayoutFiles, layoutPathProblem, throwIfAborted } from "./layout-files.js";
import {
  emptyLayoutIndex,
  findByDigest,
  findTagged,
  LayoutIndexProblem,
  parseLayoutIndex,
  serializeLayoutIndex,
  isPortableRefName,
  tagsOf,
  untaggedEntries,
  withoutDigest,
  withoutRedundantEntries,
  withoutUntagged,
  withTag,
  withUntagged,
  type LayoutIndex,
} from "./layout-index.js";
import { MAX_INDEX_JSON_BYTES, MAX_LAYOUT_MANIFEST_BYTES } from "./limits.js";
import { queueIndexChange } from "./index-update-queue.js";

export interface OciLayoutOptions {
  readonly logger?: Logger;
}

type OciLayoutLocation = Extract<RepositoryLocation, { kind: "oci-layout" }>;

/**
 * One repository of an OCI layout tree: every role of a repository store, and deleting (for tests
 * and clean-up; the store provider hands out only the `RepositoryStore` roles).
 */
export type OciLayoutRepository = RepositoryStore & ContentDeleter & UntaggedManifestLister;

/**
 * Opens one repository of an OCI layout tree: the layout directory `directory/repository`
 * (each repository is its own layout). Nothing is touched on disk until the first call; the
 * layout is created by the first write.
 */
export function openOciLayoutRepository(
  location: OciLayoutLocation,
  options: OciLayoutOptions = {},
): OciLayoutRepository {
  return new OciLayoutRepositoryStore(location, options.logger ?? silentLogger);
}

class OciLayoutRepositoryStore implements OciLayoutRepository {
  readonly location: OciLayoutLocation;
  readonly name: string;
  private readonly logger: Logger;
  private readonly files: LayoutFiles;
  /** Subjects of manifests read for `referrers`, by manifest digest (content never changes). */
  private readonly subjectCache = new Map<Digest, Digest | null>();
  /** What `warnAboutReaders` has said already. */
  private readonly warned = new Set<string>();
  /** The last index.json parsed, by file identity: a layout with many tags is parsed once per change. */
  private parsedIndex: { identity: string; index: LayoutIndex } | undefined;

  constructor(location: OciLayoutLocation, logger: Logger) {
    this.location = location;
    this.logger = logger;
    this.name = formatRepositoryLocation(location);
    const problem = layoutPathProblem(location.directory, location.repository);
    if (problem) throw this.error("layout-invalid", "open", problem);
    this.files = new LayoutFiles(location.directory, location.repository, (...args) => this.error(...args));
  }

  private error(code: RegistryErrorCode, operation: string, summary: string, cause?: unknown): RegistryError {
    return new RegistryError(
      code,
      summary,
      this.errorDetails(operation),
      cause === undefined ? undefined : { cause },
    );
  }

  private errorDetails(operation: string): RegistryErrorDetails {
    return {
      operation,
      registry: layoutKey(this.location.directory),
      repository: this.location.repository,
    };
  }

  /** index.json as data; an empty index when the layout or the file does not exist yet. */
  private async readIndex(operation: string): Promise<LayoutIndex> {
    const read = await this.files.readCappedUnlessKnown(
      this.files.indexJsonPath(),
      MAX_INDEX_JSON_BYTES,
      operation,
      this.parsedIndex?.identity,
    );
    if (read === undefined) return emptyLayoutIndex();
    if (read.bytes === undefined && this.parsedIndex) return this.parsedIndex.index;
    try {
      const index = parseLayoutIndex(read.bytes ?? new Uint8Array());
      this.parsedIndex = { identity: read.identity, index };
      return index;
    } catch (error) {
      if (error instanceof LayoutIndexProblem) throw this.error("layout-invalid", operation, error.message);
      throw error;
    }
  }

  /**
   * Read-modify-write of index.json, serialised per layout and batched with concurrent changes,
   * written atomically. Resolves once the change is on disk.
   */
  private updateIndex(
    operation: string,
    change: (index: LayoutIndex) => LayoutIndex | undefined,
  ): Promise<void> {
    return queueIndexChange(this.files.root, change, async (apply) => {
      const before = await this.readIndex(operation);
      const after = withoutRedundantEntries(apply(before));
      if (after === before) return;
      const identity = await this.files.writeAtomic(this.files.indexJsonPath(), serializeLayoutIndex(after));
      this.parsedIndex = { identity, index: after };
    });
  }

  /** Reads a manifest blob (capped) and checks it hashes to its name. */
  private async readManifestBlob(digest: Digest, operation: string): Promise<Buffer | undefined> {
    const bytes = await this.files.readCapped(
      this.files.blobPath(digest),
      MAX_LAYOUT_MANIFEST_BYTES,
      operation,
    );
    if (bytes === undefined) return undefined;
    const actual = digestOf(bytes, digestAlgorithm(digest));
    if (actual !== digest) {
      throw this.error(
        "registry-digest-mismatch",
        operation,
        `blob ${digest} in the layout hashes to ${actual}`,
      );
    }
    return bytes;
  }

  /**
   * `readManifestBlob` for a digest asked for by name. A file of that name that index.json does
   * not list and whose bytes do not hash to it (a partial copy by another tool) is not the
   * manifest: it counts as absent, with a warning, and is replaced when the manifest is written
   * here. A listed one is an error: index.json says the layout holds that manifest.
   */
  private async readStrayableManifestBlob(
    digest: Digest,
    listed: boolean,
    operation: string,
  ): Promise<Buffer | undefined> {
    try {
      return await this.readManifestBlob(digest, operation);
    } catch (error) {
      const mismatch = error instanceof RegistryError && error.code === "registry-digest-mismatch";
      if (listed || !mismatch) {
        throw error;
      }
      this.logger.log(
        "warn",
        "a manifest file in the OCI layout does not match its digest; it is not that manifest, and a write replaces it",
        {
          layout: this.name,
          digest,
        },
      );
      return undefined;
    }
  }

  private checkReference(reference: string, operation: string): Tag | Digest {
    if (isDigest(reference) || isTag(reference)) return reference;
    throw this.error(
      "layout-invalid",
      operation,
      `${JSON.stringify(reference)} is neither a tag nor a digest`,
    );
  }

  async resolve(reference: Tag | Digest, options: CallOptions = {}): Promise<Descriptor | undefined> {
    return (await this.find(reference, "resolve", options))?.descriptor;
  }

  /** The descriptor and bytes of a manifest by tag or digest. */
  private async find(
    reference: Tag | Digest,
    operation: string,
    options: CallOptions,
  ): Promise<{ descriptor: Descriptor; bytes: Buffer } | undefined> {
    throwIfAborted(options.signal, operation);
    const checked = this.checkReference(reference, operation);
    const index = await this.readIndex(operation);
    if (isDigest(checked)) {
      const entry = findByDigest(index, checked);
      const bytes = await this.readStrayableManifestBlob(checked, entry !== undefined, operation);
      if (bytes === undefined) {
        if (entry)
          throw this.error("layout-invalid", operation, `index.json lists ${checked}, which has no blob`);
        return undefined;
      }
      // Children of an index are only blobs: their media type comes from the document itself.
      const mediaType = entry?.descriptor.mediaType ?? this.manifestMediaTypeOf(bytes, checked);
      if (mediaType === undefined) return undefined;
      return { descriptor: { mediaType, digest: checked, size: bytes.length }, bytes };
    }
    const entry = findTagged(index, checked);
    if (!entry) return undefined;
    const { mediaType, digest, size } = entry.descriptor;
    const bytes = await this.readManifestBlob(digest, operation);
    if (bytes === undefined) {
      throw this.error("layout-invalid", operation, `tag ${checked} points at ${digest}, which has no blob`);
    }
    if (bytes.length !== size) {
      throw this.error(
        "registry-digest-mismatch",
        operation,
        `tag ${checked}: blob ${digest} has ${bytes.length} bytes, index.json says ${size}`,
      );
    }
    return { descriptor: { mediaType, digest, size }, bytes };
  }

  /** The media type of bytes that parse as a manifest or index, else undefined (a plain blob). */
  private manifestMediaTypeOf(bytes: Uint8Array, digest: Digest): string | undefined {
    try {
      return parseManifest(bytes, undefined, `${this.name}@${digest}`).mediaType;
    } catch {
      return undefined;
    }
  }

  async getManifest(
    reference: Tag | Digest,
    options: CallOptions = {},
  ): Promise<ManifestContent | undefined> {
    const found = await this.find(reference, "get manifest", options);
    if (!found) return undefined;
    return { digest: found.descriptor.digest, mediaType: found.descriptor.mediaType, bytes: found.bytes };
  }

  async putManifest(
    content: ManifestContent,
    reference: Tag | Digest,
    options: CallOptions = {},
  ): Promise<void> {
    const operation = "put manifest";
    throwIfAborted(options.signal, operation);
    const checked = this.checkReference(reference, operation);
    if (content.bytes.byteLength > MAX_LAYOUT_MANIFEST_BYTES) {
      throw this.error(
        "registry-too-large",
        operation,
        `manifest ${content.digest} is ${content.bytes.byteLength} bytes, above ${MAX_LAYOUT_MANIFEST_BYTES}`,
      );
    }
    const actual = digestOf(content.bytes, digestAlgorithm(content.digest));
    if (actual !== content.digest) {
      throw this.error(
        "registry-digest-mismatch",
        operation,
        `manifest bytes hash to ${actual}, not ${content.digest}`,
      );
    }
    if (isDigest(checked) && checked !== content.digest) {
      throw this.error(
        "registry-digest-mismatch",
        operation,
        `manifest ${content.digest} put under digest ${checked}`,
      );
    }
    if (!isManifestMediaType(content.mediaType)) {
      throw this.error("layout-invalid", operation, `unsupported manifest media type ${content.mediaType}`);
    }
    const manifest = parseManifest(content.bytes, content.mediaType, `${this.name}@${content.digest}`);
    await this.checkReferencedContent(manifest, content.digest, operation);

    await this.files.ensureLayout(digestAlgorithm(content.digest), operation);
    // A file of that name with other bytes is replaced: index.json must name these bytes.
    if (!(await this.holdsVerifiedBlob(content.digest, options.signal, operation))) {
      await this.files.writeBlob(
        content.digest,
        content.bytes.byteLength,
        [content.bytes],
        options.signal,
        operation,
      );
    }
    const descriptor: Descriptor = {
      mediaType: content.mediaType,
      digest: content.digest,
      size: content.bytes.byteLength,
    };
    throwIfAborted(options.signal, operation);
    // The children of an index are reachable through it: their untagged entries (written when
    // each child was copied, before its index) go, so index.json lists what was promoted.
    const children = new Set(
      manifest.kind === "index" ? manifest.manifests.map((child) => child.digest) : [],
    );
    await this.updateIndex(operation, (index) =>
      withoutUntagged(
        isDigest(checked) ? withUntagged(index, descriptor) : withTag(index, descriptor, checked),
        children,
      ),
    );
    this.warnAboutReaders(content.mediaType, checked);
    this.logger.log("debug", "stored manifest in OCI layout", {
      layout: this.name,
      digest: content.digest,
      reference: checked,
    });
  }

  /**
   * What other tools will not read, said once per layout and kind: containers/image 5.23
   * (skopeo 1.9.3, podman 4.3.1) skips index.json entries of Docker media types when a name is
   * given, umoci and oci-image-tool read only OCI types; a tag outside the ref.name grammar is
   * refused by skopeo. The bytes are promoted as they are (converting would change the digest).
   */
  private warnAboutReaders(mediaType: string, reference: Tag | Digest): void {
    if (mediaType.startsWith("application/vnd.docker.") && !this.warned.has("docker")) {
      this.warned.add("docker");
      this.logger.log(
        "warn",
        "a Docker-typed manifest in an OCI layout: skopeo 1.9 and podman 4.3 find it only as the layout's one manifest (oci:DIR/REPO without a tag), umoci and oci-image-tool not at all; the digest is kept, so it is not converted (for those readers, build the image with OCI media types, e.g. buildah push --format oci)",
        { layout: this.name, mediaType },
      );
    }
    if (isTag(reference) && !isPortableRefName(reference) && !this.warned.has(reference)) {
      this.warned.add(reference);
      this.logger.log(
        "warn",
        "this tag is outside the OCI ref.name grammar; skopeo and podman cannot name it in the layout",
        { layout: this.name, tag: reference },
      );
    }
  }

  /**
   * As a registry does (MANIFEST_BLOB_UNKNOWN), refuse a manifest whose config, layers or child
   * manifests are missing: a layout with dangling references is broken for every reader.
   * Layers with `urls` (foreign layers) may live elsewhere.
   */
  private async checkReferencedContent(
    manifest: ParsedManifest,
    digest: Digest,
    operation: string,
  ): Promise<void> {
    const needed =
      manifest.kind === "index"
        ? manifest.manifests
        : [
            manifest.config,
            ...manifest.layers.filter((layer) => layer.urls === undefined || layer.urls.length === 0),
          ];
    for (const descriptor of needed) {
      if ((await this.files.blobSize(descriptor.digest, operation)) === undefined) {
        const what = manifest.kind === "index" ? "child manifest" : "blob";
        throw new RegistryError(
          "registry-not-found",
          `manifest ${digest} references ${what} ${descriptor.digest}, which the layout does not have`,
          { ...this.errorDetails(operation), registryCodes: ["MANIFEST_BLOB_UNKNOWN"] },
        );
      }
    }
  }

  /**
   * Whether the layout holds the blob with the right bytes. A file of that name whose bytes do
   * not hash to it (a partial copy by another tool, a file rewritten in place) is not the blob:
   * it is reported and treated as absent, so the copy writes the real one over it.
   */
  private async holdsVerifiedBlob(
    digest: Digest,
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<boolean> {
    const check = await this.files.verifiedBlobSize(digest, signal, operation);
    if (check.state === "corrupt") {
      this.logger.log(
        "warn",
        "a blob file in the OCI layout does not match its digest; it will be replaced",
        {
          layout: this.name,
          digest,
          ...(check.actual ? { actual: check.actual } : {}),
        },
      );
    }
    return check.state === "verified";
  }

  async hasBlob(digest: Digest, options: CallOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal, "has blob");
    return this.holdsVerifiedBlob(digest, options.signal, "has blob");
  }

  async openBlob(descriptor: Descriptor, options: CallOptions = {}): Promise<Readable> {
    const operation = "open blob";
    throwIfAborted(options.signal, operation);
    const opened = await this.files.openBlobFile(descriptor.digest, operation);
    if (opened === undefined) {
      throw this.error("registry-not-found", operation, `blob ${descriptor.digest} is not in the layout`);
    }
    const { stream: source, size } = opened;
    if (size !== descriptor.size) {
      source.destroy();
      throw this.error(
        "registry-digest-mismatch",
        operation,
        `blob ${descriptor.digest} has ${size} bytes, the descriptor says ${descriptor.size}`,
      );
    }
    if (options.signal?.aborted === true) {
      // Aborted while the file was opened: refused like an abort before it.
      source.destroy();
      throwIfAborted(options.signal, operation);
    }
    const verified = source.pipe(this.verifyingStream(descriptor, operation));
    source.on("error", (error) => verified.destroy(error));
    // An abort destroys the stream with an error; a caller that has not started reading yet has
    // no listener for it, and an unheard 'error' would end the process. Readers still get it.
    verified.on("error", () => undefined);
    if (options.signal) addAbortSignal(options.signal, verified);
    verified.on("close", () => source.destroy());
    return verified;
  }

  /** Passes bytes through, failing instead of ending when size or digest do not match. */
  private verifyingStream(descriptor: Descriptor, operation: string): Transform {
    const verifier = new DigestVerifier(descriptor.digest);
    const fail = (summary: string): RegistryError =>
      this.error("registry-digest-mismatch", operation, summary);
    return new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        if (verifier.bytesSeen + chunk.byteLength > descriptor.size) {
          callback(fail(`blob ${descriptor.digest} is longer than ${descriptor.size} bytes`));
          return;
        }
        verifier.update(chunk);
        callback(null, chunk);
      },
      flush(callback: TransformCallback) {
        if (verifier.bytesSeen !== descriptor.size) {
          callback(
            fail(`blob ${descriptor.digest} has ${verifier.bytesSeen} bytes, expected ${descriptor.size}`),
          );
          return;
        }
        const actual = verifier.finish();
        if (actual !== descriptor.digest) {
          callback(fail(`blob ${descriptor.digest} hashes to ${actual}`));
          return;
        }
        callback();
      },
    });
  }

  async putBlob(
    descriptor: Descriptor,
    content: AsyncIterable<Uint8Array>,
    options: CallOptions = {},
  ): Promise<void> {
    const operation = "put blob";
    throwIfAborted(options.signal, operation);
    await this.files.ensureLayout(digestAlgorithm(descriptor.digest), operation);
    await this.files.writeBlob(descriptor.digest, descriptor.size, content, options.signal, operation);
    this.logger.log("debug", "stored blob in OCI layout", { layout: this.name, digest: descriptor.digest });
  }

  /**
   * A "mount" between repositories of one tree is a local copy, checked against the digest like
   * any blob that enters the layout. Never a hard link: the destination would share its inode with
   * the source repository, and whoever writes the source (a staging pusher) could change a
   * promoted blob in place afterwards.
   */
  async mountBlob(descriptor: Descriptor, from: RepositoryPath, options: CallOptions = {}): Promise<boolean> {
    const operation = "mount blob";
    throwIfAborted(options.signal, operation);
    const problem = layoutPathProblem(this.location.directory, from);
    if (problem) throw this.error("layout-invalid", operation, `mount source: ${problem}`);
    if (from === this.location.repository) return this.hasBlob(descriptor.digest, options);
    const source = new OciLayoutRepositoryStore(
      { kind: "oci-layout", directory: this.location.directory, repository: from },
      this.logger,
    );
    const sourceSize = await source.files.blobSize(descriptor.digest, operation);
    if (sourceSize === undefined || sourceSize !== descriptor.size) return false;
    if (await this.holdsVerifiedBlob(descriptor.digest, options.signal, operation)) return true;
    await this.files.ensureLayout(digestAlgorithm(descriptor.digest), operation);
    const opened = await source.files.openBlobFile(descriptor.digest, operation);
    if (opened === undefined) return false;
    try {
      // writeBlob checks size and digest as the bytes go through.
      await this.files.writeBlob(
        descriptor.digest,
        descriptor.size,
        opened.stream,
        options.signal,
        operation,
      );
    } finally {
      opened.stream.destroy();
    }
    this.logger.log("debug", "copied blob between OCI layouts of one tree", {
      from,
      to: this.name,
      digest: descriptor.digest,
    });
    return true;
  }

  canMountFrom(other: RepositoryIdentity): boolean {
    // By location, not by class: the store provider may hand out wrapped (counting) stores.
    return (
      other.location.kind === "oci-layout" &&
      path.resolve(other.location.directory) === path.resolve(this.location.directory)
    );
  }

  async listTags(options: CallOptions = {}): Promise<Tag[]> {
    throwIfAborted(options.signal, "list tags");
    return tagsOf(await this.readIndex("list tags"));
  }

  /**
   * The manifests index.json lists without a tag (promoted by digest only, written by a tool
   * without a name, or named by something that is no tag), each once, in file order. A registry
   * cannot list these; a layout can.
   */
  async listUntaggedManifests(options: CallOptions = {}): Promise<Descriptor[]> {
    throwIfAborted(options.signal, "list manifests");
    const index = await this.readIndex("list manifests");
    const seen = new Set<Digest>();
    const found: Descriptor[] = [];
    for (const entry of untaggedEntries(index)) {
      const { mediaType, digest, size } = entry.descriptor;
      if (!isManifestMediaType(mediaType) || seen.has(digest)) continue;
      seen.add(digest);
      found.push({ mediaType, digest, size });
    }
    return found;
  }

  // `listedTags` saves round trips to a remote registry; reading index.json costs none.
  async referrers(digest: Digest, options: ReferrersOptions = {}): Promise<Descriptor[]> {
    const operation = "referrers";
    throwIfAborted(options.signal, operation);
    const index = await this.readIndex(operation);
    const found = new Map<Digest, Descriptor>();
    for (const entry of index.entries) {
      throwIfAborted(options.signal, operation);
      const candidate = entry.descriptor;
      if (!isManifestMediaType(candidate.mediaType) || found.has(candidate.digest)) continue;
      const referrer = await this.referrerOf(candidate, digest, operation);
      if (referrer) found.set(referrer.digest, referrer);
    }
    // Referrers pushed to a registry without the API, then copied here, sit in a tagged index.
    const fallback = findTagged(index, referrersFallbackTag(digest));
    if (fallback && INDEX_MEDIA_TYPES.has(fallback.descriptor.mediaType)) {
      const bytes = await this.readManifestBlob(fallback.descriptor.digest, operation);
      if (bytes) {
        const parsed = parseManifest(bytes, fallback.descriptor.mediaType, `${this.name} referrers tag`);
        if (parsed.kind === "index") {
          for (const descriptor of parsed.manifests) {
            if (!found.has(descriptor.digest)) found.set(descriptor.digest, descriptor);
          }
        }
      }
    }
    const all = [...found.values()];
    return options.artifactType === undefined
      ? all
      : all.filter((descriptor) => descriptor.artifactType === options.artifactType);
  }

  /**
   * The referrers-API descriptor of `candidate` when its `subject` is `subject`: artifactType
   * (or, for an image manifest without one, its config media type) and its annotations.
   * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
   */
  private async referrerOf(
    candidate: Descriptor,
    subject: Digest,
    operation: string,
  ): Promise<Descriptor | undefined> {
    const cached = this.subjectCache.get(candidate.digest);
    if (cached !== undefined && cached !== subject) return undefined;
    const bytes = await this.readManifestBlob(candidate.digest, operation);
    if (bytes === undefined) return undefined;
    let manifest: ParsedManifest;
    try {
      manifest = parseManifest(bytes, candidate.mediaType, `${this.name}@${candidate.digest}`);
    } catch {
      this.subjectCache.set(candidate.digest, null);
      return undefined;
    }
    this.subjectCache.set(candidate.digest, manifest.subject?.digest ?? null);
    if (manifest.subject?.digest !== subject) return undefined;
    return referrerDescriptor({ mediaType: manifest.mediaType, digest: candidate.digest, bytes }, manifest);
  }

  async deleteManifest(digest: Digest, options: CallOptions = {}): Promise<void> {
    const operation = "delete manifest";
    throwIfAborted(options.signal, operation);
    const found = { listed: false };
    await this.updateIndex(operation, (index) => {
      found.listed = findByDigest(index, digest) !== undefined;
      return found.listed ? withoutDigest(index, digest) : undefined;
    });
    // Only manifests: a digest that names a layer must not delete the layer.
    const bytes = await this.files
      .readCapped(this.files.blobPath(digest), MAX_LAYOUT_MANIFEST_BYTES, operation)
      .catch(() => undefined);
    const isManifest = bytes !== undefined && this.manifestMediaTypeOf(bytes, digest) !== undefined;
    const removed =
      (found.listed || isManifest) && (await this.files.removeFile(this.files.blobPath(digest)));
    if (!found.listed && !removed) {
      throw this.error("registry-not-found", operation, `manifest ${digest} is not in the layout`);
    }
    this.subjectCache.delete(digest);
  }

  async deleteBlob(digest: Digest, options: CallOptions = {}): Promise<void> {
    const operation = "delete blob";
    throwIfAborted(options.signal, operation);
    if (
      (await this.files.blobSize(digest, operation)) === undefined ||
      !(await this.files.removeFile(this.files.blobPath(digest)))
    ) {
      throw this.error("registry-not-found", operation, `blob ${digest} is not in the layout`);
    }
  }
}
