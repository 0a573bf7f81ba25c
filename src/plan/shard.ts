import { createHash } from "node:crypto";
import { PromoterError } from "../errors.js";
import type { RepositoryLocation } from "../reference/index.js";
import type { PromotionEdge } from "./edge.js";

/**
 * Sharding a promotion across N workers (a Kubernetes Indexed Job, a CI matrix): worker I of N
 * keeps the edges whose destination repository falls in shard I. The partition is by
 * destination repository, so every claim on one repository (its tags, a refused tag move, a
 * conflict) is decided by one worker, and no two workers ever write the same repository.
 *
 * The key hashed is the destination repository's path *within its registry* (`images/foo/bar`,
 * without the host). Mirrors name the same path on every host (registry.k8s.io has 22 regional
 * hosts with identical paths), so all mirrors of one image land in the same shard: its source is
 * read once and fans out to all of them, as in an unsharded run. A destination repository is a
 * single path, so it is never split between shards.
 *
 * The hash is stable across versions, platforms and runs: the first 48 bits of the SHA-256 of the
 * path's UTF-8 bytes, as an unsigned integer, modulo N (docs/sharding.md).
 */
export interface Shard {
  /** 0-based. */
  readonly index: number;
  readonly count: number;
}

/** More shards than this is surely a typo (and each one reads the manifests). */
export const MAX_SHARDS = 10_000;

/** A shard that cannot be: `3/2`, `-1/4`, `x/y`. */
export class ShardError extends PromoterError {
  constructor(message: string) {
    super("invalid-shard", message);
  }
}

/** Parses `I/N` (0-based I). */
export function parseShard(text: string): Shard {
  const match = /^(\d{1,6})\/(\d{1,6})$/.exec(text.trim());
  if (!match)
    throw new ShardError(`${JSON.stringify(text)} is not I/N (for example 0/4: the first of 4 shards)`);
  return checkedShard(Number(match[1]), Number(match[2]));
}

/** A shard from its parts, checking 0 <= index < count <= MAX_SHARDS. */
export function checkedShard(index: number, count: number): Shard {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new ShardError(`the number of shards must be between 1 and ${MAX_SHARDS}, not ${count}`);
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new ShardError(
      `shard index ${index} is out of range: with ${count} shards it is 0 to ${count - 1}`,
    );
  }
  return { index, count };
}

/** The shard (0 to count-1) a destination repository path belongs to. */
export function shardOfRepository(repositoryPath: string, count: number): number {
  const hex = createHash("sha256").update(repositoryPath, "utf8").digest("hex");
  // 48 bits stay exact in a double; the modulo bias over at most MAX_SHARDS is below 1e-10.
  return Number.parseInt(hex.slice(0, 12), 16) % count;
}

/**
 * A `planPromotion` filter keeping the edges of one shard. Edges share their location objects,
 * so each repository is hashed once however many edges name it.
 */
export function shardFilter(shard: Shard): (edge: PromotionEdge) => boolean {
  if (shard.count === 1) return () => true;
  const cache = new WeakMap<RepositoryLocation, boolean>();
  return (edge) => {
    let mine = cache.get(edge.destination);
    if (mine === undefined) {
      mine = shardOfRepository(edge.destination.repository, shard.count) === shard.index;
      cache.set(edge.destination, mine);
    }
    return mine;
  };
}

/** Edge filters combined: an edge is kept when every given filter keeps it. */
export function allOfFilters(
  ...filters: readonly (((edge: PromotionEdge) => boolean) | undefined)[]
): ((edge: PromotionEdge) => boolean) | undefined {
  const present = filters.filter(
    (filter): filter is (edge: PromotionEdge) => boolean => filter !== undefined,
  );
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  return (edge) => present.every((filter) => filter(edge));
}

/** `shard 2/8` for messages (1-based would confuse: Kubernetes' completion index is 0-based). */
export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}
