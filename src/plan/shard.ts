import { createHash } from "node:crypto";
import { PromoterError } from "../errors.js";
import { writtenRepositoryName, type RepositoryLocation } from "../reference/index.js";
import type { PromotionEdge } from "./edge.js";

/**
 * Sharding a promotion across N workers (a Kubernetes Indexed Job, a CI matrix): worker I of N
 * keeps the edges whose destination repository falls in shard I. The partition is by
 * destination repository, so every claim on one repository (its tags, a refused tag move, a
 * conflict) is decided by one worker, and no two workers ever write the same repository.
 *
 * The shard of a repository is a stable hash of its key: the first 48 bits of the SHA-256 of the
 * key's UTF-8 bytes, as an unsigned integer, modulo N (docs/sharding.md shows it in one shell
 * line). Two keys:
 * - `repository` (default): the destination repository as the manifest names it,
 *   `host/path/image` (host in lower case; for `oci:` the registry name as written, never the
 *   absolute directory, which differs between checkouts). Spreads the work evenly, also the
 *   mirrors of one image; each worker reads from the source what its own mirrors need.
 * - `image`: the repository's path below its registry (`path/image`). Mirrors name the same path
 *   on every host (registry.k8s.io: 22 regional hosts), so all mirrors of one image land in one
 *   shard and its source blobs are read once for all of them, as in an unsharded run; shards are
 *   less even (the unit is an image, and images differ in size).
 */
export interface Shard {
  /** 0-based. */
  readonly index: number;
  readonly count: number;
}

export const SHARD_KEYS = ["repository", "image"] as const;
export type ShardKey = (typeof SHARD_KEYS)[number];

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

/** The shard (0 to count-1) of a shard key. */
export function shardOfKey(key: string, count: number): number {
  const hex = createHash("sha256").update(key, "utf8").digest("hex");
  // 48 bits stay exact in a double; the modulo bias over at most MAX_SHARDS is below 1e-10.
  return Number.parseInt(hex.slice(0, 12), 16) % count;
}

/** The key an edge is sharded by (see the module comment). */
export function shardKeyOf(edge: PromotionEdge, by: ShardKey = "repository"): string {
  if (by === "image") return edge.destination.repository;
  return writtenRepositoryName(edge.destination, edge.destinationRegistry.name);
}

/**
 * A `planPromotion` filter keeping the edges of one shard. Edges of one repository share their
 * location object, so each repository is hashed once however many edges name it.
 */
export function shardFilter(shard: Shard, by: ShardKey = "repository"): (edge: PromotionEdge) => boolean {
  if (shard.count === 1) return () => true;
  const cache = new WeakMap<RepositoryLocation, boolean>();
  return (edge) => {
    let mine = cache.get(edge.destination);
    if (mine === undefined) {
      mine = shardOfKey(shardKeyOf(edge, by), shard.count) === shard.index;
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

/** `2/8` for messages: 0-based, as Kubernetes' completion index. */
export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}
