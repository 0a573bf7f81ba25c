/**
 * The promotion workload the benchmarks share (bench/promote.ts, bench/wan.ts): small OCI images
 * spread over a few repositories, every tenth a two-platform index, plus a `large` repository of
 * images with three 1 MiB layers; and the staging registry seeded with it.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseRegistryLocation, parseRepositoryPath, repositoryIn } from "../src/reference/index.js";
import { createStoreProvider } from "../src/registry/index.js";
import { allowingLoopbackRegistries } from "../test/support/local-registries.js";
import type { TestRegistry } from "../test/support/registry-harness.js";
import { makeImage, makeIndex, pushToStore, type TestContent } from "../test/support/test-images.js";

/** repository (image name) -> tag -> content */
export type StagingImages = Map<string, Map<string, TestContent>>;

export interface WorkloadShape {
  /** Small images (2 KiB layer), spread round-robin over `smallRepositories`. */
  readonly smallImages: number;
  readonly smallRepositories: number;
  /** Images of three 1 MiB layers in the `large` repository. */
  readonly largeImages: number;
  /** Seed prefixes, so that each benchmark's content is its own. */
  readonly smallSeed: string;
  readonly largeSeed: string;
}

export function buildStagingImages(shape: WorkloadShape): StagingImages {
  const repositories: StagingImages = new Map();
  const add = (repository: string, tag: string, content: TestContent) => {
    let tags = repositories.get(repository);
    if (!tags) repositories.set(repository, (tags = new Map<string, TestContent>()));
    tags.set(tag, content);
  };
  const small = (seed: string, architecture = "amd64") =>
    makeImage({
      layers: 1,
      layerSize: 2048,
      mediaTypes: "oci",
      seed,
      platform: { architecture, os: "linux" },
    });
  for (let i = 0; i < shape.smallImages; i++) {
    const repository = `small-${i % shape.smallRepositories}`;
    const tag = `v${Math.floor(i / shape.smallRepositories)}.0.0`;
    const seed = `${shape.smallSeed}${i}`;
    add(
      repository,
      tag,
      i % 10 === 0
        ? makeIndex([small(`${seed}a`), small(`${seed}b`, "arm64")], { mediaType: "oci" })
        : small(seed),
    );
  }
  for (let i = 0; i < shape.largeImages; i++) {
    add(
      "large",
      `v${i}.0.0`,
      makeImage({ layers: 3, layerSize: 1024 * 1024, mediaTypes: "oci", seed: `${shape.largeSeed}${i}` }),
    );
  }
  return repositories;
}

/** Pushes every image to `<staging>/staging/<repository>:<tag>` with the project's client. */
export async function seedStaging(staging: TestRegistry, images: StagingImages): Promise<void> {
  const provider = createStoreProvider();
  const location = parseRegistryLocation(`${staging.host}/staging`);
  for (const [repository, tags] of images) {
    const store = provider.repository(repositoryIn(location, parseRepositoryPath(repository)));
    for (const [tag, content] of tags) await pushToStore(store, content, [tag]);
  }
  await provider.close();
}

/** Runs a program to its end: its exit status, its output (stdout and stderr), its wall time. */
export function runProgram(
  program: string,
  args: string[],
  cwd: string,
): Promise<{ ms: number; status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(program, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (status) => {
      resolve({ ms: performance.now() - started, status, output });
    });
  });
}

const promoterBin = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..", "bin", "promoter.js");

/**
 * `promoter promote --manifest promoter.yaml --confirm --quiet --report REPORT` in `work`, with
 * the benchmark's loopback registries allowed (as the tests allow them) and `extraArgs`; throws
 * with the promoter's output when it fails, else gives its wall time and output.
 */
export async function promoteManifest(
  work: string,
  reportFile: string,
  extraArgs: readonly string[] = [],
): Promise<{ ms: number; output: string }> {
  const args = ["promote", "--manifest", "promoter.yaml", "--confirm", "--quiet", "--report", reportFile];
  const result = await runProgram(
    process.execPath,
    [promoterBin, ...allowingLoopbackRegistries([...args, ...extraArgs])],
    work,
  );
  if (result.status !== 0) throw new Error(`promoter failed (${result.status}):\n${result.output}`);
  return result;
}
