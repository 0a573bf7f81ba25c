import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { ALLOW_LOOPBACK_REGISTRIES } from "../support/local-registries.js";
import { FaultProxy, seededUnit, type FaultRule } from "../support/fault-proxy.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import {
  endStateProblems,
  listTags,
  scanForIncompleteTags,
  seedRegistry,
} from "../support/registry-judge.js";
import { skopeoInspectRaw } from "../support/skopeo.js";
import { makeImage, makeIndex, type TestContent } from "../support/test-images.js";

/**
 * Promotion under faults (issue 8, section 1): real registries (distribution 2.8.2) behind the
 * fault-injecting proxy, the promoter as a user runs it, and an independent judge (plain HTTP,
 * and skopeo) reading the registries directly, not through the proxies.
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");
const cli = path.join(repoRoot, "bin", "promoter.js");
/** Seed of every random choice in this file; change it to explore other fault patterns. */
const SEED = Number(process.env.FAULT_SEED ?? 8);

let work: string;
let dockerConfig: string;
let staging: TestRegistry;
const mirrors: TestRegistry[] = [];
let stagingProxy: FaultProxy;
const mirrorProxies: FaultProxy[] = [];

/** Destination registry names as the manifest writes them (through the proxies). */
const PREFIXES = ["prod", "prod", "mirror/deep"] as const;

interface WorkloadImage {
  readonly name: string;
  readonly content: TestContent;
  readonly tags: readonly string[];
}

/** Small images: single-platform ones, a multi-arch index, and a tagless digest. */
function workload(prefix: string, count: number, layerSize = 8 * 1024): WorkloadImage[] {
  const images: WorkloadImage[] = [];
  for (let i = 0; i < count; i++) {
    const platform = (architecture: string) =>
      makeImage({
        layers: 2,
        layerSize,
        mediaTypes: "oci",
        seed: `${prefix}-${i}-${architecture}`,
        platform: { architecture, os: "linux" },
      });
    const content =
      i % 4 === 0
        ? makeIndex([platform("amd64"), platform("arm64")], { mediaType: "oci" })
        : platform("amd64");
    images.push({ name: `${prefix}/app-${i}`, content, tags: i % 3 === 0 ? [`v${i}`, "latest"] : [`v${i}`] });
  }
  return images;
}

function manifestYaml(images: readonly WorkloadImage[], tagless: readonly WorkloadImage[] = []): string {
  const lines = [
    "registries:",
    `- name: ${stagingProxy.host}/staging`,
    "  src: true",
    ...mirrorProxies.map((proxy, i) => `- name: ${proxy.host}/${PREFIXES[i]}`),
    "images:",
  ];
  for (const image of images) {
    lines.push(
      `- name: ${image.name}`,
      "  dmap:",
      `    "${image.content.digest}": [${image.tags.map((t) => `"${t}"`).join(", ")}]`,
    );
  }
  for (const image of tagless)
    lines.push(`- name: ${image.name}`, "  dmap:", `    "${image.content.digest}": []`);
  return `${lines.join("\n")}\n`;
}

async function seed(images: readonly WorkloadImage[]): Promise<void> {
  for (const image of images) {
    await seedRegistry(staging.url, `staging/${image.name}`, [{ content: image.content, tags: image.tags }]);
  }
}

/** Problems of the end state at mirror `i`, judged directly against the registry. */
async function mirrorProblems(
  i: number,
  images: readonly WorkloadImage[],
  tagless: readonly WorkloadImage[] = [],
): Promise<string[]> {
  const problems: string[] = [];
  for (const image of images) {
    const tags = Object.fromEntries(image.tags.map((tag) => [tag, image.content]));
    problems.push(...(await endStateProblems(mirrors[i]!.url, `${PREFIXES[i]}/${image.name}`, tags)));
  }
  for (const image of tagless) {
    problems.push(
      ...(await endStateProblems(mirrors[i]!.url, `${PREFIXES[i]}/${image.name}`, {}, [image.content])),
    );
  }
  return problems;
}

async function promoter(args: string[]) {
  const capture = captureIO({ cwd: work, env: { DOCKER_CONFIG: dockerConfig, HOME: work } });
  const status = await runCli([...args, ...ALLOW_LOOPBACK_REGISTRIES], capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

function allProxies(): FaultProxy[] {
  return [stagingProxy, ...mirrorProxies];
}

beforeAll(async () => {
  if (!existsSync(path.join(repoRoot, "dist", "cli", "entry.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before the end-to-end fault tests");
  }
  work = await mkdtemp(path.join(tmpdir(), "faults-e2e-"));
  dockerConfig = path.join(work, "docker");
  await mkdir(dockerConfig);
  await writeFile(path.join(dockerConfig, "config.json"), "{}");
  const started = await Promise.all([startRegistry(), startRegistry(), startRegistry(), startRegistry()]);
  staging = started[0]!;
  mirrors.push(...started.slice(1));
  stagingProxy = await FaultProxy.start({ upstream: staging.url, seed: SEED });
  for (const mirror of mirrors)
    mirrorProxies.push(await FaultProxy.start({ upstream: mirror.url, seed: SEED }));
}, 120_000);

afterAll(async () => {
  // Whatever beforeAll managed to start (it may have failed half-way).
  const proxies: (FaultProxy | undefined)[] = allProxies();
  const registries: (TestRegistry | undefined)[] = [staging, ...mirrors];
  for (const proxy of proxies) await proxy?.stop();
  await Promise.all(registries.flatMap((registry) => (registry ? [registry.stop()] : [])));
  if (work) await rm(work, { recursive: true, force: true });
});

/** About 5% of requests fail, in every way the proxy knows; a few more are slow. */
function flakyRules(): FaultRule[] {
  return [
    { name: "503", probability: 0.025, fault: { kind: "status", status: 503 } },
    { name: "429 Retry-After", probability: 0.01, fault: { kind: "status", status: 429, retryAfter: "1" } },
    { name: "reset", probability: 0.01, fault: { kind: "reset" } },
    {
      name: "lost answer",
      method: ["PUT", "PATCH"],
      probability: 0.015,
      fault: { kind: "status", status: 502, when: "after" },
    },
    { name: "reset mid-body", method: "GET", probability: 0.01, fault: { kind: "reset-mid-body" } },
    { name: "truncated body", method: "GET", probability: 0.01, fault: { kind: "truncate" } },
    {
      name: "wrong bytes",
      method: "GET",
      path: /\/(blobs|manifests)\/sha256:/,
      probability: 0.015,
      fault: { kind: "corrupt" },
    },
    { name: "slow", probability: 0.01, fault: { kind: "delay", ms: 200 } },
  ];
}

describe("promotion through faults", () => {
  it("completes with the correct end state when about 5% of requests fail", async () => {
    const images = workload("flaky", 12);
    const tagless = workload("flaky-tagless", 1);
    await seed([...images, ...tagless.map((image) => ({ ...image, tags: [] }))]);
    await writeFile(path.join(work, "flaky.yaml"), manifestYaml(images, tagless));
    for (const proxy of allProxies()) proxy.setRules(flakyRules(), SEED);

    const run = await promoter([
      "promote",
      "--manifest",
      "flaky.yaml",
      "--confirm",
      "--quiet",
      "--report",
      "flaky.json",
    ]);
    const faults = allProxies().map((proxy) => proxy.faultCounts());
    const requests = allProxies().reduce((sum, proxy) => sum + proxy.requestCount, 0);
    const failed = faults.reduce(
      (sum, counts) =>
        sum + Object.entries(counts).reduce((n, [name, count]) => n + (name === "slow" ? 0 : count), 0),
      0,
    );
    for (const proxy of allProxies()) proxy.setRules([]);
    expect(run.status, `${run.err}\n${run.out}`).toBe(0);
    // The faults did happen, at about the intended rate, in several kinds.
    expect(failed / requests).toBeGreaterThan(0.02);
    expect(failed / requests).toBeLessThan(0.1);
    const kinds = new Set(faults.flatMap((counts) => Object.keys(counts)));
    expect(kinds.size).toBeGreaterThanOrEqual(5);

    for (let i = 0; i < mirrors.length; i++) expect(await mirrorProblems(i, images, tagless)).toEqual([]);
    // skopeo agrees on the digests.
    const sample = images[0]!;
    const raw = await skopeoInspectRaw(
      `docker://${mirrors[2]!.host}/${PREFIXES[2]}/${sample.name}:${sample.tags[0]}`,
    );
    expect(raw.digest).toBe(sample.content.digest);
    const report = JSON.parse(await readFile(path.join(work, "flaky.json"), "utf8")) as {
      edges: { outcome: string }[];
    };
    expect(new Set(report.edges.map((edge) => edge.outcome))).toEqual(new Set(["copied"]));
    process.stdout.write(
      `faults: ${failed} of ${requests} requests failed (${((100 * failed) / requests).toFixed(1)}%): ${JSON.stringify(faults)}\n`,
    );
  }, 180_000);

  it("completes every other mirror when one fails every request, reports it, exits 1; a later run completes it", async () => {
    const images = workload("outage", 6);
    await seed(images);
    await writeFile(path.join(work, "outage.yaml"), manifestYaml(images));
    const down = mirrorProxies[1]!;
    down.setRules([{ name: "down", fault: { kind: "status", status: 503 } }]);

    const run = await promoter([
      "promote",
      "--manifest",
      "outage.yaml",
      "--confirm",
      "--quiet",
      "--report",
      "outage.json",
    ]);
    expect(run.status, run.err).toBe(1);
    expect(await mirrorProblems(0, images)).toEqual([]);
    expect(await mirrorProblems(2, images)).toEqual([]);
    // Nothing reached the failing mirror's registry, and the run says which one failed.
    expect((await mirrorProblems(1, images)).length).toBeGreaterThan(0);
    const report = JSON.parse(await readFile(path.join(work, "outage.json"), "utf8")) as {
      edges: { destination: string; outcome: string }[];
    };
    const byOutcome = new Map<string, Set<string>>();
    for (const edge of report.edges) {
      const host = edge.destination.split("/")[0]!;
      byOutcome.set(edge.outcome, (byOutcome.get(edge.outcome) ?? new Set()).add(host));
    }
    expect(byOutcome.get("failed")).toEqual(new Set([down.host]));
    expect(byOutcome.get("copied")).toEqual(new Set([mirrorProxies[0]!.host, mirrorProxies[2]!.host]));
    expect(run.out).toContain(down.host);
    expect(run.out).toMatch(/HTTP 503/);
    expect(`${run.out}${run.err}`).not.toMatch(/\n\s+at .+\(.*\.[jt]s:\d+:\d+\)/); // no stack trace

    down.setRules([]);
    const again = await promoter([
      "promote",
      "--manifest",
      "outage.yaml",
      "--confirm",
      "--quiet",
      "--output",
      "json",
    ]);
    expect(again.status, again.err).toBe(0);
    const document = JSON.parse(again.out) as { summary: { outcomes: Record<string, number> } };
    const edgesPerMirror = images.reduce((sum, image) => sum + image.tags.length, 0);
    expect(document.summary.outcomes.copied).toBe(edgesPerMirror);
    expect(document.summary.outcomes.unchanged).toBe(2 * edgesPerMirror);
    for (let i = 0; i < mirrors.length; i++) expect(await mirrorProblems(i, images)).toEqual([]);
  }, 180_000);

  it("survives SIGKILL at random moments, 20+ times: never a tag on an incomplete image, complete at the end", async () => {
    const KILLS = Number(process.env.KILLS ?? 20);
    const MAX_RUNS = 40;
    const images = workload("killed", 3 + MAX_RUNS / 2, 16 * 1024);
    await seed(images);
    const repositories = (i: number) => images.map((image) => `${PREFIXES[i]}/${image.name}`);

    // A second client scans the destinations, directly, for the whole time.
    const scan = { running: true, passes: 0, tagsSeen: 0, problems: [] as string[] };
    const complete = mirrors.map(() => new Set<string>());
    const scanner = (async () => {
      while (scan.running) {
        for (let i = 0; i < mirrors.length; i++) {
          const { problems, tags } = await scanForIncompleteTags(
            mirrors[i]!.url,
            repositories(i),
            complete[i],
          );
          scan.problems.push(...problems);
          scan.tagsSeen += tags;
        }
        scan.passes += 1;
      }
    })();

    // The "random moment" is the k-th request the promoter sends (to staging or a mirror):
    // SIGKILL goes out as that request arrives, so the promoter dies with it in flight. Counting
    // requests instead of milliseconds lands kills at the same points of the work on a quiet
    // machine and on a loaded one.
    const env = { ...process.env, DOCKER_CONFIG: dockerConfig, HOME: work };
    const runOnce = (manifest: string, killAtRequest?: number, concurrency = "2") =>
      new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; requests: number }>(
        (resolve) => {
          const started = performance.now();
          let requests = 0;
          const child = spawn(
            process.execPath,
            [
              cli,
              "promote",
              "--manifest",
              manifest,
              "--confirm",
              "--quiet",
              "--concurrency",
              concurrency,
              ...ALLOW_LOOPBACK_REGISTRIES,
            ],
            { cwd: work, env, stdio: "ignore" },
          );
          const unsubscribe = allProxies().map((proxy) =>
            proxy.onRequest(() => {
              requests += 1;
              if (requests === killAtRequest) child.kill("SIGKILL");
            }),
          );
          child.on("exit", (code, signal) => {
            for (const stop of unsubscribe) stop();
            resolve({ code, signal, ms: performance.now() - started, requests });
          });
        },
      );
    const tagsInPlace = async () => {
      let count = 0;
      for (let i = 0; i < mirrors.length; i++) {
        for (const repository of repositories(i))
          count += (await listTags(mirrors[i]!.url, repository)).length;
      }
      return count;
    };

    // Every other re-run is given one more image, so every kill lands on real work
    // (inventory, blobs, manifests or tags) while earlier images are tagged. With few transfers
    // in flight (--concurrency 2) images complete one after another, so kills also land between
    // and during tag writes, not only while blobs move.
    await writeFile(path.join(work, "killed.yaml"), manifestYaml(images.slice(0, 2)));
    const first = await runOnce("killed.yaml");
    expect(first.code).toBe(0);
    // Kills are spread over the requests a whole run would send: a run that finishes first
    // resets the estimate, a kill that left no new tag stretches it (the backlog grew).
    let typicalRequests = first.requests;
    const kills: number[] = [];
    const finished: number[] = [];
    const tagsAfterRun: number[] = [];
    for (let i = 0; kills.length < KILLS && i < MAX_RUNS; i++) {
      await writeFile(path.join(work, "killed.yaml"), manifestYaml(images.slice(0, 3 + Math.floor(i / 2))));
      const target = 1 + Math.floor(typicalRequests * 1.1 * seededUnit(`${SEED}|kill|${i}`));
      const before = tagsAfterRun.at(-1) ?? 0;
      const result = await runOnce("killed.yaml", target);
      tagsAfterRun.push(await tagsInPlace());
      if (result.signal === "SIGKILL") {
        kills.push(target);
        if (tagsAfterRun.at(-1) === before) typicalRequests = Math.round(typicalRequests * 1.25);
      } else {
        finished.push(result.requests);
        typicalRequests = result.requests;
      }
      if (process.env.KILL_TRACE) {
        process.stdout.write(
          `run ${i}: kill at request ${target}: ${result.signal ?? `exit ${result.code}`} after ${result.requests} requests, ${Math.round(result.ms)} ms; ${tagsAfterRun.at(-1)} tags; ${scan.passes} scans\n`,
        );
      }
    }
    await writeFile(path.join(work, "killed.yaml"), manifestYaml(images));
    const final = await runOnce("killed.yaml", undefined, "8");
    scan.running = false;
    await scanner;

    expect(kills.length).toBeGreaterThanOrEqual(KILLS);
    expect(final.code).toBe(0);
    expect(scan.problems).toEqual([]);
    expect(scan.passes).toBeGreaterThan(5);
    // Killed runs did real work: tags appeared between kills.
    expect(new Set(tagsAfterRun).size).toBeGreaterThan(3);
    for (let i = 0; i < mirrors.length; i++) expect(await mirrorProblems(i, images)).toEqual([]);
    const expectedTags = 3 * images.reduce((sum, image) => sum + image.tags.length, 0);
    process.stdout.write(
      `kill loop: ${kills.length} SIGKILLs at requests ${kills.join(" ")}; ${finished.length} re-runs finished first; ` +
        `tags in place after each run: ${tagsAfterRun.join(" ")} of ${expectedTags}; ${scan.passes} scanner passes ` +
        `(${scan.tagsSeen} tag checks, ${scan.problems.length} problems); final run ${Math.round(final.ms)} ms\n`,
    );
  }, 300_000);
});
