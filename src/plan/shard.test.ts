import { RepositoryKeyCache } from "../reference/index.js";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { findTagConflicts, type ManifestSet } from "../manifest/index.js";
import { loadManifests } from "../manifest-files/index.js";
import type { Digest, Tag } from "../reference/index.js";
import { decidePlan, indexConflicts, type EdgeDecision } from "./decide.js";
import { promotionEdges, type PromotionEdge } from "./edge.js";
import type { RepositoryState } from "./inventory.js";
import {
  allOfFilters,
  checkedShard,
  MAX_SHARDS,
  parseShard,
  ShardError,
  shardFilter,
  shardKeyOf,
  shardOfKey,
  type ShardKey,
} from "./shard.js";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const k8sio = path.resolve(repoRoot, "../shared/k8sio");
const fixtures = path.join(repoRoot, "test/fixtures/manifests");

describe("parseShard", () => {
  it("reads I/N with a 0-based index", () => {
    expect(parseShard("0/1")).toEqual({ index: 0, count: 1 });
    expect(parseShard("3/4")).toEqual({ index: 3, count: 4 });
    expect(parseShard(" 7/10 ")).toEqual({ index: 7, count: 10 });
  });

  it("refuses what is not a shard, saying why", () => {
    expect(() => parseShard("4/4")).toThrow(/shard index 4 is out of range: with 4 shards it is 0 to 3/);
    expect(() => parseShard("0/0")).toThrow(/number of shards must be between 1 and 10000, not 0/);
    expect(() => parseShard("1")).toThrow(/"1" is not I\/N/);
    expect(() => parseShard("-1/4")).toThrow(ShardError);
    expect(() => parseShard("1/2/3")).toThrow(ShardError);
    expect(() => parseShard("a/b")).toThrow(ShardError);
    expect(() => checkedShard(0, MAX_SHARDS + 1)).toThrow(ShardError);
  });
});

describe("shardOfKey", () => {
  it("is a stable function of the key (pinned: a change would split running Indexed Jobs)", () => {
    // The first 48 bits of sha256(key) mod N; docs/sharding.md computes the same with sha256sum.
    const pinned = [
      "us-central1-docker.pkg.dev/k8s-artifacts-prod/images/kwok/kwok",
      "k8s-artifacts-prod/images/kwok/kwok",
      "prod/app",
    ].map((key) => [shardOfKey(key, 4), shardOfKey(key, 1000)]);
    expect(pinned).toEqual([
      [2, 254],
      [2, 846],
      [2, 242],
    ]);
    for (const count of [1, 2, 3, 7, 64]) {
      const shard = shardOfKey("prod/app", count);
      expect(shard).toBeGreaterThanOrEqual(0);
      expect(shard).toBeLessThan(count);
    }
  });

  it("spreads keys evenly", () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[shardOfKey(`images/project-${i}/image`, 8)]! += 1;
    for (const count of counts) expect(count).toBeGreaterThan(850);
  });
});

/** A multiset of edges: `destination|digest|tag` -> how many times. */
function edgeKeys(edges: Iterable<PromotionEdge>, keys: RepositoryKeyCache): Map<string, number> {
  const counts = new Map<string, number>();
  for (const edge of edges) {
    const key = `${keys.of(edge.destination)}|${edge.digest}|${edge.tag ?? ""}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Checks that the N shards of `set` are disjoint, together equal the whole set of edges, keep
 * every destination repository whole and the mirrors of one image path together, and that each
 * edge gets the same decision in its shard's plan as in the whole plan. Problems are collected
 * and asserted once (an expect per edge would take minutes on the real tree).
 */
function checkPartition(
  set: ManifestSet,
  count: number,
  by: ShardKey,
): { edges: number; perShard: number[] } {
  const keys = new RepositoryKeyCache();
  const all = [...promotionEdges(set)];
  const whole = edgeKeys(all, keys);
  const seen = new Map<string, number>();
  const repositoryShard = new Map<string, number>();
  const pathShard = new Map<string, number>();
  const perShard: number[] = [];
  const problems: string[] = [];

  const inventory = halfDoneInventory(all, keys);
  const conflicts = indexConflicts(findTagConflicts(set.manifests));
  const wholeDecisions = decisionsByKey(decidePlan(all, inventory, conflicts, keys).edges, keys);

  for (let index = 0; index < count; index++) {
    const mine = all.filter(shardFilter({ index, count }, by));
    perShard.push(mine.length);
    for (const [key, n] of edgeKeys(mine, keys)) {
      if (seen.has(key)) problems.push(`${key} is in two shards`);
      seen.set(key, n);
    }
    for (const edge of mine) {
      const repository = keys.of(edge.destination);
      if ((repositoryShard.get(repository) ?? index) !== index) problems.push(`${repository} is split`);
      repositoryShard.set(repository, index);
      if (by === "image" && (pathShard.get(edge.destination.repository) ?? index) !== index) {
        problems.push(`the mirrors of ${edge.destination.repository} are split`);
      }
      pathShard.set(edge.destination.repository, index);
    }
    for (const [key, decision] of decisionsByKey(decidePlan(mine, inventory, conflicts, keys).edges, keys)) {
      const expected = wholeDecisions.get(key);
      if (JSON.stringify(decision) !== JSON.stringify(expected)) {
        problems.push(`${key}: ${decision.kind} in shard ${index}, ${expected?.kind} in the whole plan`);
      }
    }
  }
  expect(problems.slice(0, 10)).toEqual([]);
  expect(seen).toEqual(whole);
  expect(perShard.reduce((sum, n) => sum + n, 0)).toBe(all.length);
  // Both halves of the inventory were exercised.
  const kinds = new Set([...wholeDecisions.values()].map((decision) => decision.kind));
  if (all.length > 20) expect([...kinds].sort()).toEqual(expect.arrayContaining(["copy", "unchanged"]));
  return { edges: all.length, perShard };
}

function halfDoneInventory(edges: readonly PromotionEdge[], keys: RepositoryKeyCache) {
  interface Observed {
    kind: "observed";
    tags: Map<Tag, Digest>;
    digests: Set<Digest>;
  }
  const empty = (): Observed => ({ kind: "observed", tags: new Map(), digests: new Set() });
  const destinations = new Map<string, Observed>();
  const done = new Map<string, boolean>();
  const sources = new Map<string, Observed>();
  for (const edge of edges) {
    const key = keys.of(edge.destination);
    let state = destinations.get(key);
    if (!state) {
      destinations.set(key, (state = empty()));
      done.set(key, done.size % 2 === 0);
    }
    if (done.get(key)) {
      state.digests.add(edge.digest);
      if (edge.tag !== undefined) state.tags.set(edge.tag, edge.digest);
    }
    const sourceKey = keys.of(edge.source);
    let source = sources.get(sourceKey);
    if (!source) sources.set(sourceKey, (source = empty()));
    source.digests.add(edge.digest);
  }
  return {
    destinations: destinations as Map<string, RepositoryState>,
    sources: sources as Map<string, RepositoryState>,
  };
}

function decisionsByKey(
  planned: readonly { edge: PromotionEdge; decision: EdgeDecision }[],
  keys: RepositoryKeyCache,
): Map<string, EdgeDecision> {
  return new Map(
    planned.map(({ edge, decision }) => [
      `${keys.of(edge.destination)}|${edge.digest}|${edge.tag ?? ""}`,
      decision,
    ]),
  );
}

describe("shardFilter", () => {
  it("partitions the fixture trees: disjoint shards that together are the whole plan", async () => {
    for (const tree of ["valid", "conflict", "nested"]) {
      const set = await loadManifests({ thinManifestDir: path.join(fixtures, tree) });
      for (const by of ["repository", "image"] as const) {
        for (const count of [1, 2, 3, 5]) checkPartition(set, count, by);
      }
    }
  });

  it("keys remote repositories by host and path, layouts by the registry name as written", () => {
    const remote = {
      image: "kwok",
      destination: {
        kind: "remote",
        host: "us-central1-docker.pkg.dev",
        repository: "k8s-artifacts-prod/images/kwok/kwok",
      },
      destinationRegistry: { name: "us-central1-docker.pkg.dev/k8s-artifacts-prod/images/kwok" },
    } as unknown as PromotionEdge;
    expect(shardKeyOf(remote)).toBe("us-central1-docker.pkg.dev/k8s-artifacts-prod/images/kwok/kwok");
    expect(shardKeyOf(remote, "image")).toBe("k8s-artifacts-prod/images/kwok/kwok");
    // The absolute directory differs between checkouts; the name in the manifest does not.
    const layout = {
      image: "team/app",
      destination: { kind: "oci-layout", directory: "/home/ci/run-17/mirror/", repository: "team/app" },
      destinationRegistry: { name: "oci:mirror/" },
    } as unknown as PromotionEdge;
    expect(shardKeyOf(layout)).toBe("oci:mirror/team/app");
    expect(shardKeyOf(layout, "image")).toBe("team/app");
  });

  it("keeps everything with one shard, and combines with another filter", () => {
    const edge = { destination: { kind: "remote", host: "a", repository: "x" } } as unknown as PromotionEdge;
    expect(shardFilter({ index: 0, count: 1 })(edge)).toBe(true);
    expect(allOfFilters(undefined, undefined)).toBeUndefined();
    const never = () => false;
    expect(allOfFilters(never, undefined)).toBe(never);
    expect(allOfFilters(() => true, shardFilter({ index: 0, count: 1 }))!(edge)).toBe(true);
    expect(allOfFilters(() => true, never)!(edge)).toBe(false);
  });

  it.skipIf(!existsSync(k8sio))(
    "partitions the real registry.k8s.io tree into disjoint shards that together are the whole plan",
    async () => {
      const set = await loadManifests({ thinManifestDir: path.join(k8sio, "registry.k8s.io") });
      const byRepository = checkPartition(set, 4, "repository");
      expect(byRepository.edges).toBeGreaterThan(700_000);
      // ~9,800 repositories: even shards.
      for (const n of byRepository.perShard) expect(n / byRepository.edges).toBeGreaterThan(0.23);
      // ~450 image paths, some much bigger than others: no shard is empty or holds most of it.
      const byImage = checkPartition(set, 3, "image");
      for (const n of byImage.perShard) expect(n / byImage.edges).toBeGreaterThan(0.2);
    },
    120_000,
  );
});

if (!existsSync(k8sio)) {
  it.skip(`real-tree sharding test skipped: ${k8sio} (the real Kubernetes manifests) is absent`);
}
