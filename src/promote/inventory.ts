import { describeError, isPromoterError } from "../errors.js";
import type { Logger } from "../log.js";
import { isIndexMediaType } from "../oci/index.js";
import type { RepositoryQuestion, RepositoryState } from "../plan/index.js";
import type { Digest, RepositoryLocation, Tag } from "../reference/index.js";
import {
  openOnSide,
  tagsOfManifestMap,
  type ManifestResolver,
  type RepositoryOpener,
  type Side,
  type TagLister,
} from "../registry/index.js";
import { runBounded } from "../concurrency/index.js";

/**
 * Reading what the plan needs, and nothing more: for each repository an edge touches, where the
 * wanted tags point and whether the wanted digests exist, using only standard API calls.
 * A HEAD of a tag answers with its digest (Docker-Content-Digest), so a repository where
 * everything is already promoted costs one request per tag and nothing more. When the first tag
 * asked for is absent, the repository is probably new or behind: one tags-list request then
 * replaces the HEADs of every absent tag (a new repository costs two requests, not one per tag).
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#checking-if-content-exists-in-the-registry
 */

/** Repositories read at once by default (see `observeRepositories`). */
export const DEFAULT_REPOSITORIES_IN_PROGRESS = 512;

/**
 * Tags (or digests) of one repository asked at once. Room enough that the transport's per-host
 * limits are what bounds them (issue 19: 8 left a warm run over distance at 40% of those limits).
 */
export const REQUESTS_PER_REPOSITORY = 64;

/** With fewer wanted tags than this, listing cannot save a request: HEAD each one. */
export const TAG_LIST_MIN_TAGS = 3;

/** What an edge on an unreachable host says; the host's cause is reported once, per host. */
export const UNREACHABLE_HOST_MESSAGE = "registry host unreachable (its cause is reported once, by host)";

export interface ObserveOptions {
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Requests in flight across all repositories; per-host limits apply below this. */
  readonly concurrency?: number;
  /** Which registries list their manifests with their tags (Google's): asked that way first. */
  readonly manifestMaps?: ManifestMapHints;
}

/**
 * Which registry hosts answer a tags listing with the `manifest` map (registry/remote/
 * manifest-map.ts): expected for Google's hosts (and those the operator names), then learned
 * from each answer, so a host that turns out not to give it is asked as any other, and one that
 * gives it unasked is listed first from then on.
 */
export class ManifestMapHints {
  private readonly learned = new Map<string, boolean>();

  constructor(private readonly expected: (host: string) => boolean = () => false) {}

  listFirst(host: string): boolean {
    return this.learned.get(host) ?? this.expected(host);
  }

  learn(host: string, offered: boolean): void {
    this.learned.set(host, offered);
  }
}

export async function observeRepositories(
  questions: ReadonlyMap<string, { location: RepositoryLocation; question: RepositoryQuestion }>,
  provider: RepositoryOpener,
  side: Side,
  options: ObserveOptions = {},
): Promise<Map<string, RepositoryState>> {
  const results = new Map<string, RepositoryState>();
  // One queue of small jobs (one request each) over all repositories keeps every host busy. The
  // per-host limits of the transport (host-limits.ts) bound the requests; this bounds only the
  // repositories being read at once, and must not be what holds the hosts back: 23 hosts at 16
  // requests each want 368 in flight (issue 15: 16 here left 8 of them busy on average).
  const entries = [...questions];
  await runBounded(
    entries,
    options.concurrency ?? DEFAULT_REPOSITORIES_IN_PROGRESS,
    async ([key, { location, question }]) => {
      const store = openOnSide(provider, location, side);
      results.set(key, await observeRepository(store, question, options));
    },
  );
  return results;
}

export async function observeRepository(
  store: ManifestResolver & TagLister,
  question: RepositoryQuestion,
  options: ObserveOptions = {},
): Promise<RepositoryState> {
  const signal = options.signal;
  const tags = new Map<Tag, Digest>();
  const digests = new Set<Digest>();
  const indexes = new Set<Digest>();
  try {
    const call = signal ? { signal } : {};
    const present = (digest: Digest, mediaType: string): void => {
      digests.add(digest);
      if (isIndexMediaType(mediaType)) indexes.add(digest);
    };
    const resolveTag = async (tag: Tag): Promise<boolean> => {
      const descriptor = await store.resolve(tag, call);
      if (!descriptor) return false;
      tags.set(tag, descriptor.digest);
      present(descriptor.digest, descriptor.mediaType);
      return true;
    };
    const host = store.location.kind === "remote" ? store.location.host : undefined;
    const hints = options.manifestMaps;
    /** The tags listing (with the map where the registry gives it); what it settles is settled. */
    const list = async (): Promise<ReadonlySet<Tag>> => {
      const listing = store.listTagsAndManifests
        ? await store.listTagsAndManifests(call)
        : { tags: await store.listTags(call) };
      if (host !== undefined && store.listTagsAndManifests)
        hints?.learn(host, listing.manifests !== undefined);
      listingSeen.empty = listing.tags.length === 0 && (listing.manifests?.size ?? 0) === 0;
      if (listing.manifests) {
        for (const [tag, digest] of tagsOfManifestMap(listing.manifests)) {
          const mediaType = listing.manifests.get(digest)?.mediaType;
          if (!question.tags.has(tag) || mediaType === undefined) continue;
          tags.set(tag, digest);
          present(digest, mediaType);
        }
        for (const digest of question.digests) {
          const mediaType = listing.manifests.get(digest)?.mediaType;
          if (mediaType !== undefined) present(digest, mediaType);
        }
        // What the map names is known; a digest it does not list is not in the repository.
        mapped = listing.manifests;
      }
      return new Set(listing.tags);
    };
    let mapped: ReadonlyMap<Digest, unknown> | undefined;
    // Set inside `list` (a closure, which control-flow analysis does not follow).
    const listingSeen = { empty: false };
    let candidates = [...question.tags];
    if (host !== undefined && store.listTagsAndManifests && hints?.listFirst(host)) {
      const listed = await list();
      candidates = candidates.filter((tag) => listed.has(tag) && !tags.has(tag));
    } else if (candidates.length >= TAG_LIST_MIN_TAGS) {
      const [first, ...rest] = candidates as [Tag, ...Tag[]];
      if (await resolveTag(first)) {
        candidates = rest;
      } else {
        const listed = await list();
        candidates = rest.filter((tag) => listed.has(tag) && !tags.has(tag));
      }
    }
    await runBounded(candidates, REQUESTS_PER_REPOSITORY, async (tag) => {
      await resolveTag(tag);
    });
    const unknown = [...question.digests].filter(
      (digest) => !digests.has(digest) && (mapped === undefined || mapped.has(digest)),
    );
    await runBounded(unknown, REQUESTS_PER_REPOSITORY, async (digest) => {
      const descriptor = await store.resolve(digest, call);
      if (descriptor) present(digest, descriptor.mediaType);
    });
    const empty = listingSeen.empty && tags.size === 0 && digests.size === 0;
    return { kind: "observed", tags, digests, indexes, ...(empty ? { empty: true as const } : {}) };
  } catch (error) {
    if (signal?.aborted) throw error;
    // An unreachable host is reported once, with its cause, when it fails and after the result;
    // not again for each of its repositories, so the plan groups its edges like any other.
    if (isPromoterError(error) && error.code === "registry-unreachable") {
      return { kind: "unreadable", code: error.code, message: UNREACHABLE_HOST_MESSAGE };
    }
    options.logger?.log("warn", `could not read ${store.name}`, { error: describeError(error) });
    return {
      kind: "unreadable",
      code: isPromoterError(error) ? error.code : "internal",
      message: describeError(error),
    };
  }
}
