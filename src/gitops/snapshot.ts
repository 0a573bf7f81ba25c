import { PromoterError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { isIndexMediaType, MAX_INDEX_DEPTH, parseManifest } from "../oci/index.js";
import { runBounded } from "../concurrency/index.js";
import {
  formatRegistryLocation,
  formatRepositoryLocation,
  isRepositoryPath,
  remoteRepositoryKey,
  repositoryIn,
  repositoryPathProblem,
  type Digest,
  type RegistryLocation,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import {
  tagsOfManifestMap,
  openOnSide,
  RegistryError,
  type ManifestReader,
  type ManifestResolver,
  type RepositoryCatalog,
  type RepositoryOpener,
  type TagLister,
  listsUntaggedManifests,
} from "../registry/index.js";
import { parseAttachmentTag } from "../sign/index.js";
import type { ManifestSet } from "../manifest/index.js";
import { manifestBasedInventory } from "./manifest-snapshot.js";
import {
  dropTaglessChildren,
  filterByTags,
  type InventoryDigest,
  type InventoryImage,
} from "./snapshot-format.js";

/**
 * `promoter snapshot`: what a registry path (or OCI layout tree) holds, as the images.yaml that
 * would promote exactly that. This is how an existing production registry is brought under
 * manifests. Repositories come from `_catalog` or are named; each repository's tags are listed
 * and resolved, and the children of every index are listed too (as digests without tags).
 *
 * Limits of the distribution API, stated in the help: a registry cannot list manifests that no
 * tag points at, so a tagless digest is found only as a child of a tagged index. Signature,
 * attestation and SBOM tags (`sha256-<hex>.sig|.att|.sbom`) and referrers fallback tags
 * (`sha256-<hex>`) are attachments of images, not images, and are left out.
 */

/** Tags resolved at once in one repository. */
const TAG_CONCURRENCY = 8;

/**
 * `no-catalog`: the registry does not list repositories; `invalid-repository`: a bad --repository;
 * `snapshot-not-found`: what was asked for is not there (a path no repository is under, a named
 * repository without tags, a tag in none of the repositories). An empty answer would read as
 * "nothing is promoted there" and become an empty images.yaml.
 */
export class SnapshotError extends PromoterError {
  declare readonly code: SnapshotErrorCode;

  // Not useless: it narrows the codes a SnapshotError accepts (a class is not generic in its `code`, so
  // that `instanceof` narrows `code` to its union rather than to any).
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor
  constructor(code: SnapshotErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export type SnapshotErrorCode = "no-catalog" | "invalid-repository" | "snapshot-not-found";

export interface SnapshotOptions {
  readonly provider: RepositoryOpener & RepositoryCatalog;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Repositories to read, relative to the location, instead of listing `_catalog`. */
  readonly repositories?: readonly string[];
  /** Keep only digests that carry one of these tags. */
  readonly tags?: readonly Tag[];
  /** Leave out tagless digests that are children of an index in the same repository. */
  readonly minimal?: boolean;
  /**
   * Keep signature, attestation, SBOM and referrers fallback tags as images, as kpromo's snapshot
   * does (it lists every tag); by default they are left out and counted.
   */
  readonly keepAttachmentTags?: boolean;
  /** Repositories read at once. */
  readonly concurrency?: number;
}

export interface SnapshotDigest extends InventoryDigest {
  readonly digest: Digest;
  /** Sorted; empty for a digest found only as a child of an index. */
  readonly tags: readonly Tag[];
  readonly mediaType: string;
}

export interface SnapshotImage extends InventoryImage {
  /** The repository path relative to the snapshot location: the image name for a manifest. */
  readonly name: RepositoryPath;
  /** Sorted by digest. */
  readonly digests: readonly SnapshotDigest[];
}

export interface Snapshot {
  /** Sorted by name; repositories with nothing to list are left out. */
  readonly images: readonly SnapshotImage[];
  readonly repositories: number;
  /** Signature, attestation, SBOM and referrers tags left out. */
  readonly attachmentTags: number;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function listRepositories(
  location: RegistryLocation,
  options: SnapshotOptions,
): Promise<RepositoryPath[]> {
  const call = options.signal ? { signal: options.signal } : {};
  if (options.repositories && options.repositories.length > 0) {
    return [...new Set(options.repositories)].map((name) => {
      const problem = repositoryPathProblem(name);
      if (problem)
        throw new SnapshotError(
          "invalid-repository",
          `invalid repository ${JSON.stringify(name)}: ${problem}`,
        );
      return name as RepositoryPath;
    });
  }
  if (location.kind === "oci-layout") {
    return options.provider.catalog({ kind: "oci-layout", directory: location.directory }, "", call);
  }
  let paths: RepositoryPath[];
  try {
    paths = await options.provider.catalog({ kind: "remote", host: location.host }, location.prefix, call);
  } catch (error) {
    if (
      error instanceof RegistryError &&
      error.code !== "registry-network" &&
      error.code !== "registry-timeout" &&
      error.code !== "registry-unreachable"
    ) {
      throw new SnapshotError(
        "no-catalog",
        `${location.host} does not list its repositories (_catalog: ${error.summary}); name them with --repository NAME`,
        { cause: error },
      );
    }
    throw error;
  }
  const prefix = location.prefix === "" ? "" : `${location.prefix}/`;
  const names: RepositoryPath[] = [];
  for (const repository of paths) {
    if (!repository.startsWith(prefix)) {
      // The prefix itself is a repository: it has no name below the location.
      options.logger?.log(
        "warn",
        `${remoteRepositoryKey(location.host, repository)} is the snapshot path itself, not an image below it; snapshot its parent to include it`,
      );
      continue;
    }
    const name = repository.slice(prefix.length);
    if (isRepositoryPath(name)) names.push(name);
  }
  if (names.length === 0 && location.prefix !== "" && !paths.includes(location.prefix)) {
    throw new SnapshotError(
      "snapshot-not-found",
      `no repository under ${remoteRepositoryKey(location.host, location.prefix)}: check the path (the registry lists repositories by their full path)`,
    );
  }
  return names;
}

/** What one repository holds: each digest with its tags, its media type and whether an index lists it. */
interface RepositoryContents {
  readonly found: ReadonlyMap<Digest, { tags: Set<Tag>; mediaType: string; child: boolean }>;
  readonly attachmentTags: number;
}

/**
 * Reads one repository: its tags, resolved, and the children of every index among them (and
 * among `roots`, digests that may be held without a tag), to the copy's nesting limit.
 */
async function observeRepository(
  store: TagLister & ManifestResolver & ManifestReader,
  options: Pick<SnapshotOptions, "signal" | "keepAttachmentTags">,
  roots: readonly Digest[] = [],
): Promise<RepositoryContents> {
  const call = options.signal ? { signal: options.signal } : {};
  // Google's registries list every manifest (tagged or not) with the tags: no HEAD per tag, and
  // the untagged digests too (remote/manifest-map.ts).
  const listing = store.listTagsAndManifests
    ? await store.listTagsAndManifests(call)
    : { tags: await store.listTags(call) };
  const allTags = listing.tags;
  const kept = (tag: Tag) => options.keepAttachmentTags === true || parseAttachmentTag(tag) === undefined;
  const tags = allTags.filter(kept);
  const found = new Map<Digest, { tags: Set<Tag>; mediaType: string; child: boolean }>();
  const resolved: { tag: Tag; digest: Digest; mediaType: string }[] = [];
  const settled = new Set<Tag>();
  if (listing.manifests) {
    const byTag = tagsOfManifestMap(listing.manifests);
    for (const [digest, listed] of listing.manifests) {
      if (listed.mediaType === undefined) continue;
      const own = listed.tags.filter((tag) => byTag.get(tag) === digest && kept(tag));
      for (const tag of own) settled.add(tag);
      // An attachment (a `.sig` or `.att` manifest) is left out with its tags.
      if (own.length === 0 && listed.tags.length > 0) continue;
      found.set(digest, { tags: new Set(own), mediaType: listed.mediaType, child: false });
    }
  }
  await runBounded(
    tags.filter((tag) => !settled.has(tag)),
    TAG_CONCURRENCY,
    async (tag) => {
      const descriptor = await store.resolve(tag, call);
      // A tag deleted between the listing and now is simply not there.
      if (descriptor) resolved.push({ tag, digest: descriptor.digest, mediaType: descriptor.mediaType });
    },
    options.signal,
  );
  for (const { tag, digest, mediaType } of resolved) {
    const entry = found.get(digest);
    if (entry) entry.tags.add(tag);
    else found.set(digest, { tags: new Set([tag]), mediaType, child: false });
  }
  // An OCI layout also lists manifests held by digest only (index.json entries without a name).
  if (listsUntaggedManifests(store)) {
    for (const { digest, mediaType } of await store.listUntaggedManifests(call)) {
      if (!found.has(digest)) found.set(digest, { tags: new Set(), mediaType, child: false });
    }
  }
  // Children of indexes: the platform images a tagless digest entry promotes on its own.
  // `depth`: how far below the tagged root the children of `digest` sit (a copy's limit).
  const visited = new Set<Digest>();
  const visit = async (digest: Digest, depth: number): Promise<void> => {
    if (visited.has(digest) || depth > MAX_INDEX_DEPTH) return;
    visited.add(digest);
    const content = await store.getManifest(digest, call);
    if (!content) return;
    const parsed = parseManifest(content.bytes, content.mediaType, `${store.name}@${digest}`);
    if (parsed.kind !== "index") return;
    for (const child of parsed.manifests) {
      const entry = found.get(child.digest);
      if (entry) entry.child = true;
      else found.set(child.digest, { tags: new Set(), mediaType: child.mediaType, child: true });
      if (isIndexMediaType(child.mediaType)) await visit(child.digest, depth + 1);
    }
  };
  const indexes = [...found]
    .filter(([, entry]) => isIndexMediaType(entry.mediaType))
    .map(([digest]) => digest);
  for (const digest of indexes) await visit(digest, 1);
  // A root already found is a tagged manifest or a child: read above if it is an index.
  const unseen = roots.filter((digest) => !found.has(digest));
  await runBounded(unseen, TAG_CONCURRENCY, (digest) => visit(digest, 1), options.signal);
  return { found, attachmentTags: allTags.length - tags.length };
}

/** Reads what one repository holds: tagged digests, and the children of indexes. */
async function readRepository(
  store: TagLister & ManifestResolver & ManifestReader,
  options: SnapshotOptions,
): Promise<{ digests: SnapshotDigest[]; attachmentTags: number }> {
  const { found, attachmentTags } = await observeRepository(store, options);
  const digests: SnapshotDigest[] = [];
  for (const [digest, entry] of found) {
    if (options.minimal && entry.tags.size === 0 && entry.child) continue;
    digests.push({ digest, tags: [...entry.tags].sort(compareText), mediaType: entry.mediaType });
  }
  digests.sort((a, b) => compareText(a.digest, b.digest));
  // kpromo's FilterByTag: a digest is kept, with all its tags, when it carries one of them.
  const [kept] = filterByTags([{ name: "", digests }], options.tags ?? []);
  return { digests: kept ? [...kept.digests] : [], attachmentTags };
}

/** Reads the repositories under `location` (a registry path or an `oci:` tree with an absolute directory). */
export async function takeSnapshot(location: RegistryLocation, options: SnapshotOptions): Promise<Snapshot> {
  const logger = options.logger ?? silentLogger;
  const names = await listRepositories(location, options);
  logger.log("info", "reading repositories", { repositories: names.length });
  const images: SnapshotImage[] = [];
  let attachmentTags = 0;
  await runBounded(
    names,
    options.concurrency ?? 4,
    async (name) => {
      const store = openOnSide(options.provider, repositoryIn(location, name), "source");
      const read = await readRepository(store, options);
      attachmentTags += read.attachmentTags;
      if (read.digests.length > 0) images.push({ name, digests: read.digests });
    },
    options.signal,
  );
  images.sort((a, b) => compareText(a.name, b.name));
  if (options.repositories && options.repositories.length > 0) {
    const listed = new Set(images.map((image) => image.name as string));
    const empty = names.filter((name) => !listed.has(name));
    if (empty.length > 0 && (options.tags ?? []).length === 0) {
      throw new SnapshotError(
        "snapshot-not-found",
        `${empty.map((name) => formatRepositoryLocation(repositoryIn(location, name))).join(", ")}: no tags (the repository is absent or empty)`,
      );
    }
  }
  const missingTags = (options.tags ?? []).filter(
    (tag) => !images.some((image) => image.digests.some((digest) => digest.tags.includes(tag))),
  );
  if (missingTags.length > 0) {
    throw new SnapshotError(
      "snapshot-not-found",
      `${missingTags.map((tag) => `tag ${tag}`).join(", ")} in none of the ${names.length === 1 ? "repository" : `${names.length} repositories`} read under ${formatRegistryLocation(location)}`,
    );
  }
  return { images, repositories: names.length, attachmentTags };
}

export interface ManifestSnapshotOptions {
  /** Needed only with `minimal`: the registry is read then, and only then. */
  readonly provider?: RepositoryOpener;
  readonly signal?: AbortSignal;
  /** Keep only these images (paths below the location). */
  readonly repositories?: readonly string[];
  /** kpromo's FilterByTag, for one or more tags (kpromo applies it only to registry snapshots). */
  readonly tags?: readonly Tag[];
  /**
   * Leave out tagless digests that the registry holds as children of an index in the same
   * repository (kpromo's `--minimal-snapshot`, which reads the registry for it).
   */
  readonly minimal?: boolean;
  /** Repositories read at once with `minimal`. */
  readonly concurrency?: number;
}

export interface ManifestSnapshot {
  /** Sorted as kpromo sorts. */
  readonly images: readonly InventoryImage[];
  /** Repositories of the registry read (`minimal`); 0 otherwise. */
  readonly repositoriesRead: number;
}

/**
 * kpromo's `--manifest-based-snapshot-of`: what the manifests would promote into `location`
 * (`manifestBasedInventory`), filtered by `tags`, and with `minimal` without the tagless
 * digests that `location` already holds as children of an index of the same image. Reads
 * nothing unless `minimal`.
 */
export async function takeManifestBasedSnapshot(
  set: ManifestSet,
  location: RegistryLocation,
  options: ManifestSnapshotOptions = {},
): Promise<ManifestSnapshot> {
  let images = manifestBasedInventory(set, location);
  const named = options.repositories ?? [];
  if (named.length > 0) {
    for (const name of named) {
      const problem = repositoryPathProblem(name);
      if (problem)
        throw new SnapshotError(
          "invalid-repository",
          `invalid repository ${JSON.stringify(name)}: ${problem}`,
        );
    }
    const wanted = new Set(named);
    images = images.filter((image) => wanted.has(image.name));
  }
  images = filterByTags(images, options.tags ?? []);
  if (!options.minimal) return { images, repositoriesRead: 0 };
  const provider = options.provider;
  if (!provider) throw new TypeError("takeManifestBasedSnapshot: minimal needs a provider");
  const children = new Map<string, ReadonlySet<Digest>>();
  const candidates = images.filter((image) => image.digests.some((entry) => entry.tags.length === 0));
  await runBounded(
    candidates,
    options.concurrency ?? 4,
    async (image) => {
      const store = openOnSide(provider, repositoryIn(location, image.name as RepositoryPath), "source");
      const roots = image.digests.filter((entry) => entry.tags.length === 0).map((entry) => entry.digest);
      const { found } = await observeRepository(
        store,
        options.signal ? { signal: options.signal } : {},
        roots,
      );
      children.set(
        image.name,
        new Set([...found].filter(([, entry]) => entry.child).map(([digest]) => digest)),
      );
    },
    options.signal,
  );
  images = dropTaglessChildren(images, (image) => children.get(image.name) ?? new Set());
  return { images, repositoriesRead: candidates.length };
}
