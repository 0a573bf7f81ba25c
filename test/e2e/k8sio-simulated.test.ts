import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  addImageToStaging,
  resetSimulatedRequests,
  simulatedRequests,
  startSimulation,
  type Simulation,
} from "../support/k8sio-simulation.js";
import { expectClear, REPOSITORY_ROOT, requireBuiltCli, runPromoter } from "../support/promoter-process.js";

/**
 * The request counts of bench/k8sio.ts (issue 15), at the scale of one real project: the
 * registry.k8s.io tree's k8s-staging-dns (1,002 digests to 22 Artifact Registry mirrors, 22,044
 * edges), already promoted, against 23 simulated registries on 127.0.0.1 holding exactly that
 * (test/support/k8sio-simulation.ts). Through the real CLI. What is asserted is what a run asks,
 * never how long it takes (the benchmark measures that).
 */

const k8sio = process.env.IMAGE_PROMOTER_K8SIO ?? path.resolve(REPOSITORY_ROOT, "../shared/k8sio");
const tree = path.join(k8sio, "registry.k8s.io");
const present = existsSync(path.join(tree, "manifests", "k8s-staging-dns"));
if (!present) {
  console.warn(`skipping the simulated registry.k8s.io runs: ${tree} is absent (set IMAGE_PROMOTER_K8SIO)`);
}

const PROJECT = "k8s-staging-dns";
let simulation: Simulation | undefined;
let dir: string | undefined;

afterEach(async () => {
  await simulation?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  simulation = undefined;
  dir = undefined;
});

async function simulate(manifestMap: boolean, missing?: number): Promise<Simulation> {
  requireBuiltCli();
  dir = await mkdtemp(path.join(tmpdir(), "k8sio-simulated-"));
  simulation = await startSimulation(tree, dir, {
    latencyMs: 0,
    manifestMap,
    projects: [PROJECT],
    ...(missing === undefined ? {} : { missing }),
  });
  return simulation;
}

function promote(run: Simulation, ...extra: string[]) {
  return runPromoter(
    [
      "promote",
      "--thin-manifest-dir",
      run.tree,
      "--confirm",
      "--quiet",
      "--no-attestations",
      ...run.flags,
      ...extra,
    ],
    { cwd: run.tree, timeoutMs: 300_000 },
  );
}

/** Destination repositories of the project: one per image and mirror. */
function destinationRepositories(run: Simulation): number {
  let count = 0;
  for (const registry of run.registries.values()) {
    for (const name of registry.repositories.keys()) if (!name.startsWith("k8s-staging-")) count++;
  }
  return count;
}

describe.skipIf(!present)("the registry.k8s.io tree against simulated registries (one project)", () => {
  it("already promoted: one listing per destination repository with Google's map, one HEAD per edge without", async () => {
    const withMap = await simulate(true);
    expect(withMap.edges).toBe(22_044);
    expect(withMap.registries.size).toBe(23);
    const repositories = destinationRepositories(withMap);
    const run = await promote(withMap);
    expectClear(run, 0);
    expect(simulatedRequests(withMap)).toBe(repositories);
    await withMap.stop();
    simulation = undefined;

    const plain = await simulate(false);
    const plainRun = await promote(plain);
    expectClear(plainRun, 0);
    // One HEAD per edge, and a listing where a repository's first tag is not there.
    expect(simulatedRequests(plain)).toBeGreaterThanOrEqual(plain.edges);
    expect(simulatedRequests(plain)).toBeLessThanOrEqual(plain.edges + repositories);
  });

  it("a change adding one image asks about that image alone", async () => {
    const run = await simulate(true);
    const git = (...args: string[]) =>
      execFileSync("git", args, {
        cwd: run.tree,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: run.tree,
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_AUTHOR_NAME: "Test",
          GIT_AUTHOR_EMAIL: "test@example.com",
          GIT_COMMITTER_NAME: "Test",
          GIT_COMMITTER_EMAIL: "test@example.com",
        },
      });
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-q", "-m", "the tree");
    const digest = await addImageToStaging(run, PROJECT, "new-image", "v1.0.0");
    git("commit", "-q", "-am", "add one image");
    resetSimulatedRequests(run);
    const promoted = await promote(run, "--changed-since", "HEAD~1");
    expectClear(promoted, 0);
    // Per mirror: its listing, the config blob (HEAD, then its upload), the manifest and the tag,
    // with the staging image read once: about 8 requests per edge (bench/k8sio.ts measured 183),
    // nowhere near the project's 22,044 edges.
    const requests = simulatedRequests(run);
    expect(requests).toBeLessThanOrEqual(22 * 9);
    const mirrorsWithImage = [...run.registries.values()].filter(
      (registry) =>
        registry.repositories.get("k8s-artifacts-prod/images/dns/new-image")?.tags.get("v1.0.0") === digest,
    );
    expect(mirrorsWithImage).toHaveLength(22);
  });

  it("with 1% of the pairs missing, copies exactly those", async () => {
    const run = await simulate(true, 0.01);
    expect(run.missingPairs).toBeGreaterThan(0);
    const repositories = destinationRepositories(run);
    const promoted = await promote(run);
    expectClear(promoted, 0);
    const writes = [...run.registries.values()].reduce(
      (sum, registry) => sum + (registry.requests.get("PUT") ?? 0),
      0,
    );
    // Each missing pair: its manifest and its tag (PUT); the config blob is already there.
    expect(writes).toBeGreaterThanOrEqual(run.missingPairs);
    // Every pair is back: the next run only lists.
    resetSimulatedRequests(run);
    const again = await promote(run);
    expectClear(again, 0);
    expect(simulatedRequests(run)).toBe(repositories);
  });
});
