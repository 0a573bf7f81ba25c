/**
 * Promotion benchmark against the best peer available here, `skopeo sync`, on one workload in
 * one invocation (issue 4 section 7). Everything runs on 127.0.0.1 with Debian's docker-registry.
 *
 *   npm run bench                 # builds, then 2 rounds
 *   BENCH_ROUNDS=3 npm run bench
 *   BENCH_ATTACHMENTS=copied npm run bench   # also carry staging signatures (the CLI default)
 *
 * Workload: a staging registry with 200 small images (20 of them multi-arch indexes of two
 * platform images) and 20 images of three 1 MiB layers, spread over 11 repositories, promoted to
 * three destination registries. Each round, alternating the tools on fresh destinations:
 *   promoter cold, promoter warm (everything already there),
 *   skopeo cold, skopeo warm   (`skopeo sync --all --preserve-digests`, one run per destination,
 *                               the three runs in parallel as the promoter's mirrors are).
 * Requests and bytes are read from the registries' own access logs, the same way for both tools.
 * Targets: promoter cold >= 3x faster than skopeo, warm >= 10x, each source blob read once.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { startRegistry, type TestRegistry } from "../test/support/registry-harness.js";
import { SKOPEO_PROGRAM, skopeoSyncArguments } from "../test/support/skopeo.js";
import { allBlobs } from "../test/support/test-images.js";
import {
  buildStagingImages,
  promoteManifest,
  runProgram,
  seedStaging,
  type StagingImages,
} from "./staging-workload.js";

const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
// skopeo sync copies only the tags it is given; carrying staging's signatures and SBOMs
// (the promoter's default) is extra work skopeo does not do. Like for like by default.
const attachments = process.env.BENCH_ATTACHMENTS ?? "none";

interface Workload {
  /** repository (image name) -> tag -> content */
  readonly repositories: StagingImages;
  readonly blobs: number;
  readonly blobBytes: number;
}

function buildWorkload(): Workload {
  const repositories = buildStagingImages({
    smallImages: 200,
    smallRepositories: 10,
    largeImages: 20,
    smallSeed: "s",
    largeSeed: "l",
  });
  const blobs = new Map<string, number>();
  for (const tags of repositories.values()) {
    for (const content of tags.values())
      for (const blob of allBlobs(content)) blobs.set(blob.descriptor.digest, blob.bytes.length);
  }
  return { repositories, blobs: blobs.size, blobBytes: [...blobs.values()].reduce((a, b) => a + b, 0) };
}

async function seed(staging: TestRegistry, workload: Workload): Promise<void> {
  await seedStaging(staging, workload.repositories);
}

const run = runProgram;

/** Requests (by method) and response bytes of blob GETs, from a registry's access log since `from`. */
function accessLog(
  registry: TestRegistry,
  from: number,
): { requests: number; blobBytesRead: number; byMethod: Record<string, number> } {
  const text = registry.logs().slice(from);
  const byMethod: Record<string, number> = {};
  let requests = 0;
  let blobBytesRead = 0;
  for (const match of text.matchAll(
    /"(GET|HEAD|PUT|POST|PATCH|DELETE) (\/v2\/\S*) HTTP\/[\d.]+" (\d{3}) (\d+)/g,
  )) {
    const [, method = "", url = "", , size = "0"] = match;
    requests += 1;
    byMethod[method] = (byMethod[method] ?? 0) + 1;
    if (method === "GET" && url.includes("/blobs/sha256:")) blobBytesRead += Number(size);
  }
  return { requests, blobBytesRead, byMethod };
}

interface Measurement {
  readonly tool: string;
  readonly phase: "cold" | "warm";
  readonly ms: number;
  readonly requests: number;
  readonly sourceRequests: number;
  readonly sourceBlobBytes: number;
}

async function measure(
  tool: string,
  phase: "cold" | "warm",
  staging: TestRegistry,
  mirrors: readonly TestRegistry[],
  action: () => Promise<void>,
): Promise<Measurement> {
  const marks = [staging, ...mirrors].map((registry) => registry.logs().length);
  const started = performance.now();
  await action();
  const ms = performance.now() - started;
  // Access log lines are written after the response; give the last ones a moment.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const logs = [staging, ...mirrors].map((registry, i) => accessLog(registry, marks[i] ?? 0));
  return {
    tool,
    phase,
    ms,
    requests: logs.reduce((sum, log) => sum + log.requests, 0),
    sourceRequests: logs[0]?.requests ?? 0,
    sourceBlobBytes: logs[0]?.blobBytesRead ?? 0,
  };
}

async function main(): Promise<void> {
  const workload = buildWorkload();
  const work = await mkdtemp(path.join(tmpdir(), "bench-promote-"));
  const staging = await startRegistry();
  let edges = 0;
  try {
    console.log("seeding staging...");
    await seed(staging, workload);
    const images = [...workload.repositories]
      .map(([repository, tags]) => {
        const dmap = [...tags].map(([tag, content]) => `    "${content.digest}": ["${tag}"]`).join("\n");
        edges += tags.size * 3;
        return `- name: ${repository}\n  dmap:\n${dmap}`;
      })
      .join("\n");
    const syncYaml = `${staging.host}:\n  tls-verify: false\n  images:\n${[...workload.repositories]
      .map(
        ([repository, tags]) =>
          `    staging/${repository}:\n${[...tags.keys()].map((tag) => `      - "${tag}"`).join("\n")}`,
      )
      .join("\n")}\n`;
    await writeFile(path.join(work, "sync.yaml"), syncYaml);
    console.log(
      `workload: ${workload.repositories.size} repositories, ${[...workload.repositories.values()].reduce((a, t) => a + t.size, 0)} tagged images, ` +
        `${workload.blobs} blobs (${(workload.blobBytes / 1048576).toFixed(1)} MiB), 3 destinations, ${edges} edges\n`,
    );

    const results: Measurement[] = [];
    for (let round = 1; round <= rounds; round++) {
      // Promoter on fresh destinations.
      let mirrors = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
      const manifest = [
        "registries:",
        `- name: ${staging.host}/staging`,
        "  src: true",
        ...mirrors.map((mirror) => `- name: ${mirror.host}/prod`),
        "images:",
        images,
      ].join("\n");
      await writeFile(path.join(work, "promoter.yaml"), `${manifest}\n`);
      for (const phase of ["cold", "warm"] as const) {
        results.push(
          await measure("promoter", phase, staging, mirrors, async () => {
            const result = await promoteManifest(work, `report-${phase}.json`, [
              "--attachments",
              attachments,
            ]);
            if (process.env.BENCH_VERBOSE) {
              const report = JSON.parse(await readFile(path.join(work, `report-${phase}.json`), "utf8")) as {
                timings: unknown;
                durationMs: number;
              };
              console.log(
                `promoter ${phase}: ${JSON.stringify(report.timings)} total ${report.durationMs} ms (process ${Math.round(result.ms)} ms)`,
              );
            }
          }),
        );
      }
      await Promise.all(mirrors.map((mirror) => mirror.stop()));

      if (process.env.BENCH_ONLY === "promoter") continue;
      // skopeo sync on fresh destinations: one run per destination, in parallel.
      mirrors = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
      for (const phase of ["cold", "warm"] as const) {
        results.push(
          await measure("skopeo sync", phase, staging, mirrors, async () => {
            const runs = await Promise.all(
              mirrors.map((mirror) =>
                run(SKOPEO_PROGRAM, skopeoSyncArguments("sync.yaml", `${mirror.host}/prod`), work),
              ),
            );
            for (const result of runs)
              if (result.status !== 0)
                throw new Error(`skopeo failed (${result.status}):\n${result.output.slice(-2000)}`);
          }),
        );
      }
      await Promise.all(mirrors.map((mirror) => mirror.stop()));
      console.log(`round ${round} done`);
    }

    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
    const summary = (tool: string, phase: "cold" | "warm") => {
      const rows = results.filter((row) => row.tool === tool && row.phase === phase);
      return {
        ms: median(rows.map((row) => row.ms)),
        requests: median(rows.map((row) => row.requests)),
        sourceRequests: median(rows.map((row) => row.sourceRequests)),
        sourceBlobBytes: median(rows.map((row) => row.sourceBlobBytes)),
      };
    };
    console.log(
      `\n${"tool".padEnd(12)} ${"phase".padEnd(5)} ${"wall (median)".padStart(14)} ${"requests".padStart(9)} ${"req/edge".padStart(9)} ${"source req".padStart(11)} ${"source blob bytes".padStart(18)} ${"x blob bytes".padStart(12)}`,
    );
    const table: Record<string, ReturnType<typeof summary>> = {};
    for (const tool of ["promoter", "skopeo sync"]) {
      for (const phase of ["cold", "warm"] as const) {
        const row = summary(tool, phase);
        table[`${tool}/${phase}`] = row;
        console.log(
          `${tool.padEnd(12)} ${phase.padEnd(5)} ${`${(row.ms / 1000).toFixed(2)} s`.padStart(14)} ${String(row.requests).padStart(9)} ${(row.requests / edges).toFixed(2).padStart(9)} ${String(row.sourceRequests).padStart(11)} ${String(row.sourceBlobBytes).padStart(18)} ${(row.sourceBlobBytes / workload.blobBytes).toFixed(2).padStart(12)}`,
        );
      }
    }
    const coldRatio = (table["skopeo sync/cold"]?.ms ?? 0) / (table["promoter/cold"]?.ms ?? 1);
    const warmRatio = (table["skopeo sync/warm"]?.ms ?? 0) / (table["promoter/warm"]?.ms ?? 1);
    const readOnce = (table["promoter/cold"]?.sourceBlobBytes ?? 0) === workload.blobBytes;
    console.log(
      `\nskopeo/promoter wall-time ratio: cold ${coldRatio.toFixed(1)}x (target >= 3x), warm ${warmRatio.toFixed(1)}x (target >= 10x)`,
    );
    console.log(
      `each source blob read once by the promoter (source blob bytes = workload blob bytes): ${readOnce ? "yes" : "no"}`,
    );
    const met = coldRatio >= 3 && warmRatio >= 10 && readOnce;
    console.log(met ? "all targets met" : "TARGETS MISSED");
    process.exitCode = met ? 0 : 1;
  } finally {
    await staging.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
