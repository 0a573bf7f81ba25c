import {
  countManifest,
  destinationRegistries,
  mergeImages,
  sourceRegistry,
  type ManifestSet,
} from "../manifest/index.js";
import {
  formatRegistryLocation,
  formatRepositoryLocation,
  remoteRepositoryKey,
  repositoryIn,
  type Digest,
  type RegistryLocation,
  type RepositoryLocation,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import { identityFor } from "../sign/index.js";

/**
 * What production should hold, built from the promotion manifests: per production repository,
 * the digests the manifests promote there and where each tag must point. Pure and built once
 * per manifest load; the auditor judges every event against it and reconcile compares it with
 * what registries hold.
 */

export interface DesiredDigest {
  /** Tags the manifests put on this digest in this repository (may be empty: a tagless digest). */
  readonly tags: Tag[];
  /** Where the digest is promoted from: lookups may read its manifest there before it arrives. */
  readonly sources: RepositoryLocation[];
}

export interface DesiredRepository {
  /** `formatRepositoryLocation`: `host/path` or `oci:DIR/path`. */
  readonly key: string;
  readonly location: RepositoryLocation;
  readonly digests: ReadonlyMap<Digest, DesiredDigest>;
  /**
   * Tag -> the digest(s) manifests ask for. More than one digest is a tag conflict: the promoter
   * applies neither, so a push of any of them is still one a manifest asked for.
   */
  readonly tags: ReadonlyMap<Tag, readonly Digest[]>;
  /** The image's path below its registry location (the manifest's image name). */
  readonly image?: RepositoryPath;
  /**
   * The canonical name signatures and attestations of its digests name, as promote signs
   * without `--sign-identity`: the manifest's first destination registry and the image
   * (sign/targets.ts). The first manifest's when two promote into one repository.
   */
  readonly identity?: string;
}

/** A registry location named by the manifests, and whether it is production (`src` not set). */
export interface RegistryScope {
  /** `formatRegistryLocation`: `host/prefix` or `oci:DIR` (the resolved directory). */
  readonly key: string;
  readonly location: RegistryLocation;
  readonly production: boolean;
}

export interface DesiredState {
  readonly repositories: ReadonlyMap<string, DesiredRepository>;
  /** Every remote registry location the manifests name, most specific first. */
  readonly registries: readonly RegistryScope[];
  /** Number of edges the state was built from, for logs and metrics. */
  readonly edgeCount: number;
}

/** What one image of one manifest promotes: the same for each of its destinations. */
interface ImageContent {
  readonly digests: Map<Digest, DesiredDigest>;
  readonly tags: Map<Tag, Digest[]>;
}

interface RepositoryUnderConstruction {
  readonly key: string;
  readonly location: RepositoryLocation;
  readonly image: RepositoryPath;
  readonly identity: string;
  content: ImageContent;
  /** Whether `content` is shared with other repositories (the mirrors of one image). */
  shared: boolean;
}

function addToContent(
  content: ImageContent,
  digest: Digest,
  tags: readonly Tag[],
  source: RepositoryLocation,
): void {
  let wanted = content.digests.get(digest);
  if (!wanted) {
    wanted = { tags: [], sources: [] };
    content.digests.set(digest, wanted);
  }
  // The mirrors of one image share their source location object: compare keys only for others.
  if (!wanted.sources.includes(source)) {
    const sourceKey = formatRepositoryLocation(source);
    if (!wanted.sources.some((known) => formatRepositoryLocation(known) === sourceKey))
      wanted.sources.push(source);
  }
  for (const tag of tags) {
    if (!wanted.tags.includes(tag)) wanted.tags.push(tag);
    const claims = content.tags.get(tag);
    if (!claims) content.tags.set(tag, [digest]);
    else if (!claims.includes(digest)) claims.push(digest);
  }
}

function copyContent(content: ImageContent): ImageContent {
  const digests = new Map<Digest, DesiredDigest>();
  for (const [digest, wanted] of content.digests) {
    digests.set(digest, { tags: [...wanted.tags], sources: [...wanted.sources] });
  }
  const tags = new Map<Tag, Digest[]>();
  for (const [tag, claims] of content.tags) tags.set(tag, [...claims]);
  return { digests, tags };
}

/**
 * Builds the desired state from a manifest set, with exactly the edges `promotionEdges(set)`
 * yields (the same source and destination rules, from the manifest layer's views), but grouped:
 * every mirror of an image holds the same digests and tags, so the mirrors share one content
 * object. On the registry.k8s.io tree (720,000 edges, 9,790 production repositories) that is
 * what keeps the state small. Only destinations are production; a source repository's events
 * are not judged.
 */
export function buildDesiredState(set: ManifestSet): DesiredState {
  const scopes = new Map<string, RegistryScope>();
  for (const manifest of set.manifests) {
    for (const registry of manifest.registries) {
      if (!registry.location) continue;
      const key = formatRegistryLocation(registry.location);
      const existing = scopes.get(key);
      // A location that is a destination anywhere is production: auditing more is the safe side.
      const production = !registry.src || (existing?.production ?? false);
      scopes.set(key, { key, location: registry.location, production });
    }
  }
  const registries = [...scopes.values()].sort((a, b) => b.key.length - a.key.length);

  const building = new Map<string, RepositoryUnderConstruction>();
  let edgeCount = 0;
  for (const manifest of set.manifests) {
    const source = sourceRegistry(manifest);
    const destinations = destinationRegistries(manifest);
    if (!source || destinations.length === 0) continue;
    const images = mergeImages(manifest);
    edgeCount += countManifest(manifest, images).edges;
    for (const image of images) {
      // An image without digests has no edges: its repository is not promoted into.
      if (image.digests.length === 0) continue;
      const sourceLocation = repositoryIn(source.location, image.name);
      const content: ImageContent = { digests: new Map(), tags: new Map() };
      const identity = identityFor(destinations[0]?.name ?? "", image.name);
      for (const entry of image.digests) {
        addToContent(
          content,
          entry.digest,
          entry.tags.map((tagEntry) => tagEntry.tag),
          sourceLocation,
        );
      }
      for (const destination of destinations) {
        const location = repositoryIn(destination.location, image.name);
        const key = formatRepositoryLocation(location);
        const existing = building.get(key);
        if (!existing) {
          building.set(key, { key, location, image: image.name, identity, content, shared: true });
          continue;
        }
        // Two manifests (or two names) promote into one repository: merge into its own copy.
        if (existing.shared) {
          existing.content = copyContent(existing.content);
          existing.shared = false;
        }
        for (const [digest, wanted] of content.digests) {
          for (const wantedSource of wanted.sources)
            addToContent(existing.content, digest, wanted.tags, wantedSource);
        }
      }
    }
  }
  const repositories = new Map<string, DesiredRepository>();
  for (const entry of building.values()) {
    repositories.set(entry.key, {
      key: entry.key,
      location: entry.location,
      digests: entry.content.digests,
      tags: entry.content.tags,
      image: entry.image,
      identity: entry.identity,
    });
  }
  return { repositories, registries, edgeCount };
}

/** Where a repository seen in an event stands with respect to the manifests. */
export type RepositoryStanding =
  /** A production repository the manifests promote into. */
  | { readonly kind: "managed"; readonly repository: DesiredRepository }
  /** Under a production registry location, but no manifest promotes anything into it. */
  | { readonly kind: "unmanaged"; readonly registry: RegistryScope }
  /** A source (staging) location, or a registry the manifests do not name. */
  | { readonly kind: "not-production"; readonly registry?: RegistryScope };

/**
 * Classifies `host/path` by the most specific registry location that contains it, so a staging
 * prefix nested under a production host stays staging and vice versa. `host` as events carry it
 * (lower case).
 */
export function repositoryStanding(state: DesiredState, host: string, path: string): RepositoryStanding {
  const key = remoteRepositoryKey(host, path);
  const managed = state.repositories.get(key);
  if (managed?.location.kind === "remote") {
    return { kind: "managed", repository: managed };
  }
  const scope = state.registries.find(
    (registry) =>
      registry.location.kind === "remote" && (key === registry.key || key.startsWith(`${registry.key}/`)),
  );
  if (scope?.production) return { kind: "unmanaged", registry: scope };
  return scope ? { kind: "not-production", registry: scope } : { kind: "not-production" };
}

/** Whether any registry location of the manifests (production or source) is on `host`. */
export function namesRegistryHost(state: DesiredState, host: string): boolean {
  return state.registries.some(
    (registry) => registry.location.kind === "remote" && registry.location.host === host,
  );
}

/** Production repositories (remote and layout) in a stable order, for reconcile. */
export function productionRepositories(state: DesiredState): DesiredRepository[] {
  return [...state.repositories.values()].sort((a, b) => a.key.localeCompare(b.key));
}
