import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadManifests } from "../manifest-files/index.js";
import { promotionEdges } from "../plan/index.js";
import { formatRepositoryLocation } from "../reference/index.js";
import { buildDesiredState, repositoryStanding } from "./desired-state.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const registryTree = path.resolve(repoRoot, "../shared/k8sio/registry.k8s.io");
const haveRealData = existsSync(registryTree);
if (!haveRealData) {
  console.warn(`skipping the registry.k8s.io desired-state test: ${registryTree} is absent`);
}

describe.skipIf(!haveRealData)("desired state of the registry.k8s.io tree", () => {
  it("holds exactly what promotionEdges yields, built fast and small", async () => {
    const set = await loadManifests({ thinManifestDir: registryTree });
    const started = performance.now();
    const state = buildDesiredState(set);
    const buildMs = performance.now() - started;
    let edges = 0;
    const keys = new Set<string>();
    const pairs = new Set<string>();
    const mismatches: string[] = [];
    for (const edge of promotionEdges(set)) {
      edges += 1;
      const key = formatRepositoryLocation(edge.destination);
      keys.add(key);
      const repository = state.repositories.get(key);
      // Plain checks in the loop (720,000 expect() calls take a minute); one assertion after.
      if (!repository?.digests.has(edge.digest)) mismatches.push(`${key}@${edge.digest}`);
      else if (edge.tag !== undefined && !repository.tags.get(edge.tag)?.includes(edge.digest)) {
        mismatches.push(`${key}:${edge.tag}`);
      } else if (
        edge.destination.kind === "remote" &&
        repositoryStanding(state, edge.destination.host, edge.destination.repository).kind !== "managed"
      ) {
        mismatches.push(`${key} not managed`);
      }
      pairs.add(`${key}@${edge.digest}`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    // Nothing more than the edges either.
    let statePairs = 0;
    for (const repository of state.repositories.values()) statePairs += repository.digests.size;
    expect(statePairs).toBe(pairs.size);
    expect(state.repositories.size).toBe(keys.size);
    expect(state.edgeCount).toBe(edges);
    // Sources are never production.
    for (const edge of promotionEdges(set)) {
      if (edge.source.kind !== "remote") continue;
      expect(repositoryStanding(state, edge.source.host, edge.source.repository).kind).toBe("not-production");
      break;
    }
    console.log(
      `registry.k8s.io: ${edges} edges, ${state.repositories.size} production repositories, desired state in ${buildMs.toFixed(0)} ms`,
    );
  }, 120_000);
});
