/**
 * Planning at scale (issue 8 section 3): the whole real registry.k8s.io tree (about 720,000
 * edges) planned against an in-memory inventory, for the cases "all done", "all missing" and
 * "half". Measures only the pure core (load + validate + edges + questions + decisions), in a
 * child process per case so peak memory is the case's own.
 *
 *   npm run bench:plan
 *
 * Targets on a 2-core machine: under 5 s and under 500 MB peak for the whole tree. Also runs the
 * legacy-backfill tree. Exits 1 when a target is missed.
 */
import { RepositoryKeyCache } from "../src/reference/index.js";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { findTagConflicts } from "../src/manifest/index.js";
import { loadManifests } from "../src/manifest-files/index.js";
import {
  decidePlan,
  destinationQuestions,
  indexConflicts,
  promotionEdges,
  sourceQuestions,
  countDecisions,
  type PromotionEdge,
  type RepositoryState,
} from "../src/plan/index.js";
import type { Digest, Tag } from "../src/reference/index.js";

const here = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(here), "../..");
const k8sio = path.resolve(repoRoot, "../shared/k8sio");
const TARGET_MS = 5000;
const TARGET_MB = 500;

type Case = "all-done" | "all-missing" | "half";

/** The inventory a registry would answer: built outside the timed part. */
function inventoryFor(edges: readonly PromotionEdge[], kind: Case, keys: RepositoryKeyCache) {
  const destinations = new Map<
    string,
    { kind: "observed"; tags: Map<Tag, Digest>; digests: Set<Digest>; indexes: Set<Digest> }
  >();
  const sources = new Map<string, RepositoryState>();
  let i = 0;
  for (const edge of edges) {
    const key = keys.of(edge.destination);
    let state = destinations.get(key);
    if (!state)
      destinations.set(
        key,
        (state = { kind: "observed", tags: new Map(), digests: new Set(), indexes: new Set() }),
      );
    const done = kind === "all-done" || (kind === "half" && i++ % 2 === 0);
    if (done) {
      state.digests.add(edge.digest);
      if (edge.tag !== undefined) state.tags.set(edge.tag, edge.digest);
    }
    const sourceKey = keys.of(edge.source);
    let source = sources.get(sourceKey);
    if (!source)
      sources.set(
        sourceKey,
        (source = { kind: "observed", tags: new Map(), digests: new Set(), indexes: new Set() }),
      );
    if (source.kind === "observed") (source.digests as Set<Digest>).add(edge.digest);
  }
  return { destinations: destinations as Map<string, RepositoryState>, sources };
}

async function child(tree: string, kind: Case): Promise<void> {
  const loadStarted = performance.now();
  const set = await loadManifests({ thinManifestDir: tree });
  const loadMs = performance.now() - loadStarted;
  const keys = new RepositoryKeyCache();
  const edgesStarted = performance.now();
  const edges = [...promotionEdges(set)];
  const edgesMs = performance.now() - edgesStarted;
  const inventory = inventoryFor(edges, kind, keys);
  const started = performance.now();
  const conflicts = indexConflicts(findTagConflicts(set.manifests));
  destinationQuestions(edges, keys);
  sourceQuestions(edges, inventory.destinations, conflicts, keys);
  const plan = decidePlan(edges, inventory, conflicts, keys);
  const ms = performance.now() - started;
  const counts = countDecisions(plan.edges);
  const usage = process.resourceUsage();
  const rssMb = usage.maxRSS / 1024;
  // CPU time is what the work costs; wall time also pays for whatever else the machine runs.
  const cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
  process.stdout.write(
    `${JSON.stringify({ edges: edges.length, ms, loadMs, edgesMs, cpuMs, rssMb, counts, copies: plan.copies.length })}\n`,
  );
}

function main(): void {
  if (!existsSync(k8sio)) {
    console.log(`skipped: ${k8sio} is absent (the real Kubernetes manifests)`);
    return;
  }
  let met = true;
  const loadBefore = loadavg()[0] ?? 0;
  console.log(
    `load average ${loadBefore.toFixed(2)} on ${cpus().length} cores (timings are noisy when it is above the core count)`,
  );
  for (const tree of ["registry.k8s.io", "legacy-backfill"]) {
    for (const kind of ["all-done", "all-missing", "half"] as const) {
      const started = performance.now();
      const result = spawnSync(process.execPath, [here, "--child", path.join(k8sio, tree), kind], {
        encoding: "utf8",
      });
      const wall = performance.now() - started;
      if (result.status !== 0) throw new Error(`child failed: ${result.stderr}`);
      const figures = JSON.parse(result.stdout) as {
        edges: number;
        ms: number;
        loadMs: number;
        edgesMs: number;
        cpuMs: number;
        rssMb: number;
        counts: Record<string, number>;
        copies: number;
      };
      const ok = wall < TARGET_MS && figures.rssMb < TARGET_MB;
      if (tree === "registry.k8s.io") met &&= ok;
      console.log(
        `${tree.padEnd(16)} ${kind.padEnd(12)} edges ${String(figures.edges).padStart(7)}  load ${figures.loadMs.toFixed(0).padStart(5)} ms  ` +
          `edges ${figures.edgesMs.toFixed(0).padStart(4)} ms  planning ${figures.ms.toFixed(0).padStart(5)} ms  ` +
          `whole process ${wall.toFixed(0).padStart(5)} ms (cpu ${figures.cpuMs.toFixed(0).padStart(5)} ms)  peak ${figures.rssMb.toFixed(0).padStart(4)} MB  ` +
          `copy ${figures.counts.copy ?? 0} add-tag ${figures.counts["add-tag"] ?? 0} unchanged ${figures.counts.unchanged ?? 0} ${ok ? "" : "(target missed)"}`,
      );
    }
  }
  console.log(
    `targets (registry.k8s.io, whole process incl. loading): < ${TARGET_MS} ms, < ${TARGET_MB} MB: ${met ? "met" : "MISSED"}` +
      ` (load average ${loadBefore.toFixed(2)} before, ${(loadavg()[0] ?? 0).toFixed(2)} after)`,
  );
  process.exitCode = met ? 0 : 1;
}

if (process.argv[2] === "--child")
  await child(process.argv[3] ?? "", (process.argv[4] ?? "all-done") as Case);
else main();
