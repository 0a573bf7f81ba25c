import { describeError, isPromoterError } from "../errors.js";
import type { Logger } from "../log.js";
import { isIndexMediaType } from "../oci/index.js";
import type { RepositoryQuestion, RepositoryState } from "../plan/index.js";
import type { Digest, RepositoryLocation, Tag } from "../reference/index.js";
import type { RepositoryStore, Side, StoreProvider } from "../registry/index.js";
import { runBounded } from "./bounded.js";

/**
 * Reading what the plan needs, and nothing more: for each repository an edge touches, where the
 * wanted tags point and whether the wanted digests exist, using only standard API calls.
 * A HEAD of a tag answers with its digest (Docker-Content-Digest), so a repository where
 * everything is already promoted costs one request per tag. Listing tags first pays off only
 * when many tags are wanted and some may be missing, so it is used above a threshold.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#checking-if-content-exists-in-the-registry
 */

/** At or above this many wanted tags in one repository, one tags-list request replaces the HEADs of absent tags. */
export const TAG_LIST_THRESHOLD = 32;

export interface ObserveOptions {
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Requests in flight across all repositories; per-host limits apply below this. */
  readonly concurrency?: number;
}

export async function observeRepositories(
  questions: ReadonlyMap<string, { location: RepositoryLocation; question: RepositoryQuestion }>,
  provider: StoreProvider,
  side: Side,
  options: ObserveOptions = {},
): Promise<Map<string, RepositoryState>> {
  const results = new Map<string, RepositoryState>();
  // One queue of small jobs (one request each) over all repositories keeps every host busy.
  const entries = [...questions];
  await runBounded(entries, options.concurrency ?? 16, async ([key, { location, question }]) => {
    const store = provider.repository(location, side);
    results.set(key, await observeRepository(store, question, options));
  });
  return results;
}

export async function observeRepository(
  store: RepositoryStore,
  question: RepositoryQuestion,
  options: ObserveOptions = {},
): Promise<RepositoryState> {
  const signal = options.signal;
  const tags = new Map<Tag, Digest>();
  const digests = new Set<Digest>();
  const indexes = new Set<Digest>();
  try {
    let candidates: Iterable<Tag> = question.tags;
    if (question.tags.size >= TAG_LIST_THRESHOLD) {
      const listed = new Set(await store.listTags({ ...(signal ? { signal } : {}) }));
      candidates = [...question.tags].filter((tag) => listed.has(tag));
    }
    await runBounded([...candidates], 8, async (tag) => {
      const descriptor = await store.resolve(tag, { ...(signal ? { signal } : {}) });
      if (descriptor) {
        tags.set(tag, descriptor.digest);
        digests.add(descriptor.digest);
        if (isIndexMediaType(descriptor.mediaType)) indexes.add(descriptor.digest);
      }
    });
    const unknown = [...question.digests].filter((digest) => !digests.has(digest));
    await runBounded(unknown, 8, async (digest) => {
      const descriptor = await store.resolve(digest, { ...(signal ? { signal } : {}) });
      if (descriptor) {
        digests.add(digest);
        if (isIndexMediaType(descriptor.mediaType)) indexes.add(digest);
      }
    });
    return { kind: "observed", tags, digests, indexes };
  } catch (error) {
    if (signal?.aborted) throw error;
    options.logger?.log("warn", `could not read ${store.name}`, { error: describeError(error) });
    return {
      kind: "unreadable",
      code: isPromoterError(error) ? error.code : "internal",
      message: describeError(error),
    };
  }
}
