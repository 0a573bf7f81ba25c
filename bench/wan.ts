/**
 * Promotion over distance (issue 19): every registry sits behind a delay line that adds
 * BENCH_LATENCY_MS (default 50) to each request, as a mirror on another continent does, and the
 * promoter and `skopeo sync` run through the same proxies in one invocation.
 *
 *   npm run bench:wan
 *   BENCH_LATENCY_MS=100 npm run bench:wan
 *   BENCH_PROMOTER_ARGS="--max-requests-per-host 32" npm run bench:wan
 *   BENCH_ONLY=promoter npm run bench:wan      # skip skopeo (no ratios)
 *
 * Workload: 1 staging registry, 3 mirrors; 44 tagged images in 5 repositories: 36 small images,
 * 4 multi-arch indexes (two platform images each) and 4 images of three 1 MiB layers; 132 edges.
 * Measured, each on fresh mirrors: the promoter cold (CLI defaults, `--report` for its phases)
 * and no-op (everything already there); skopeo "at its best": three `skopeo sync --all
 * --preserve-digests` at once, one per mirror (as a CI matrix runs them), cold and no-op.
 *
 * Requests and requests in flight are counted at the proxies (test/support/fault-proxy.ts), the
 * same way for both tools. "In flight" is the time requests spent between arriving at a proxy
 * and the end of their answer, divided by the wall time of the stretch: the average number of
 * requests in flight. Per phase it is compared with what the per-host limits allow (the
 * promoter's `--max-requests-per-host`, default 16, times the hosts the phase talks to).
 *
 * Targets (issue 19): cold >= 25x and no-op >= 50x skopeo at its best; average in flight >= 70%
 * of what the per-host limits allow in each phase; no more requests per edge than before the
 * work on it (cold 13, no-op 1.00).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { FaultProxy } from "../test/support/fault-proxy.js";
import { startRegistry, type TestRegistry } from "../test/support/registry-harness.js";
import { SKOPEO_PROGRAM, skopeoSyncArguments } from "../test/support/skopeo.js";
import {
  buildStagingImages,
  promoteManifest,
  runProgram,
  seedStaging,
  type StagingImages,
} from "./staging-workload.js";

const latencyMs = Number(process.env.BENCH_LATENCY_MS ?? 50);
const extraArgs = (process.env.BENCH_PROMOTER_ARGS ?? "").split(/\s+/).filter((arg) => arg !== "");
const perHostArg = extraArgs.indexOf("--max-requests-per-host");
const perHostLimit = perHostArg >= 0 ? Number(extraArgs[perHostArg + 1]) : 16;
const MIRRORS = 3;

type Workload = StagingImages;

function buildWorkload(): Workload {
  return buildStagingImages({
    smallImages: 40,
    smallRepositories: 4,
    largeImages: 4,
    smallSeed: "w",
    largeSeed: "wl",
  });
}

const seed = seedStaging;
const run = runProgram;

/** A registry and the delay line in front of it; tools only ever see the proxy. */
interface FarRegistry {
  readonly registry: TestRegistry;
  readonly proxy: FaultProxy;
}

async function startFar(registry?: TestRegistry): Promise<FarRegistry> {
  const started = registry ?? (await startRegistry());
  const proxy = await FaultProxy.start({ upstream: started.url, latencyMs });
  return { registry: started, proxy };
}

async function stopFar(far: FarRegistry): Promise<void> {
  await far.proxy.stop();
  await far.registry.stop();
}

interface Window {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

interface Measurement {
  readonly label: string;
  readonly ms: number;
  readonly requests: number;
  readonly windows: readonly Window[];
  readonly marks: readonly number[];
}

/** Runs `action`, counting the requests it makes at every proxy. */
async function measure(
  label: string,
  proxies: readonly FaultProxy[],
  action: () => Promise<void>,
): Promise<Measurement> {
  const marks = proxies.map((proxy) => proxy.spans.length);
  const started = performance.now();
  await action();
  const ended = performance.now();
  const requests = proxies.reduce((sum, proxy, i) => sum + proxy.spans.length - (marks[i] ?? 0), 0);
  return {
    label,
    ms: ended - started,
    requests,
    windows: [{ name: "whole run", from: started, to: ended }],
    marks,
  };
}

interface PromoterReport {
  readonly timings: Record<string, number>;
}

/**
 * The promoter's phases on the proxies' clock. A pipelined promotion (promote --confirm) times
 * each phase from the start of the run until its last part ended (the phases overlap), so each
 * window starts at the run's first request. Planning is pure work without requests: not shown.
 */
function phaseWindows(
  proxies: readonly FaultProxy[],
  marks: readonly number[],
  report: PromoterReport,
): Window[] {
  const first = Math.min(
    ...proxies.flatMap((proxy, i) => proxy.spans.slice(marks[i] ?? 0).map((span) => span.start)),
  );
  const windows: Window[] = [];
  for (const [name, ms] of Object.entries(report.timings)) {
    if (!name.endsWith("Ms") || name === "planMs") continue;
    if (ms >= 1) windows.push({ name: `..${name.slice(0, -2)}`, from: first, to: first + ms });
  }
  return windows;
}

function describeWindows(
  proxies: readonly FaultProxy[],
  names: readonly string[],
  windows: readonly Window[],
): string[] {
  return windows.map((window) => {
    const perHost = proxies.map((proxy) => ({
      requests: proxy.requestsBetween(window.from, window.to),
      inFlight: proxy.averageInFlight(window.from, window.to),
    }));
    const busyHosts = perHost.filter((host) => host.requests > 0).length;
    const inFlight = perHost.reduce((sum, host) => sum + host.inFlight, 0);
    const allowed = busyHosts * perHostLimit;
    const hosts = perHost
      .map((host, i) => `${names[i]} ${host.requests} req/${host.inFlight.toFixed(1)}`)
      .join(", ");
    return (
      `  ${window.name.padEnd(10)} ${`${((window.to - window.from) / 1000).toFixed(2)} s`.padStart(8)}` +
      `  in flight ${inFlight.toFixed(1).padStart(5)} of ${allowed} allowed (${allowed > 0 ? ((100 * inFlight) / allowed).toFixed(0) : "-"}%)` +
      `  [${hosts}]`
    );
  });
}

async function main(): Promise<void> {
  const workload = buildWorkload();
  const images = [...workload.values()].reduce((sum, tags) => sum + tags.size, 0);
  const edges = images * MIRRORS;
  const work = await mkdtemp(path.join(tmpdir(), "bench-wan-"));
  const staging = await startFar();
  const names = ["staging", ...Array.from({ length: MIRRORS }, (_, i) => `mirror${i + 1}`)];
  const results: Measurement[] = [];
  try {
    console.log(
      `machine: ${cpus().length} cores, load average ${loadavg()
        .map((load) => load.toFixed(2))
        .join(" ")}; ${latencyMs} ms added per request`,
    );
    console.log("seeding staging (directly, not through its delay line)...");
    await seed(staging.registry, workload);
    console.log(
      `workload: ${workload.size} repositories, ${images} tagged images, ${MIRRORS} mirrors, ${edges} edges\n`,
    );

    // The promoter, cold then no-op, on fresh mirrors.
    let mirrors = await Promise.all(Array.from({ length: MIRRORS }, () => startFar()));
    let proxies = [staging.proxy, ...mirrors.map((mirror) => mirror.proxy)];
    const manifest = [
      "registries:",
      `- name: ${staging.proxy.host}/staging`,
      "  src: true",
      ...mirrors.map((mirror) => `- name: ${mirror.proxy.host}/prod`),
      "images:",
      ...[...workload].map(
        ([repository, tags]) =>
          `- name: ${repository}\n  dmap:\n${[...tags].map(([tag, content]) => `    "${content.digest}": ["${tag}"]`).join("\n")}`,
      ),
    ].join("\n");
    await writeFile(path.join(work, "promoter.yaml"), `${manifest}\n`);
    for (const phase of ["cold", "no-op"] as const) {
      const reportFile = `report-${phase}.json`;
      const measured = await measure(`promoter ${phase}`, proxies, async () => {
        await promoteManifest(work, reportFile, extraArgs);
      });
      const report = JSON.parse(await readFile(path.join(work, reportFile), "utf8")) as PromoterReport;
      if (process.env.BENCH_TRACE) {
        // Every request of the run, by host, on the proxies' clock (for looking at what waited).
        const trace = proxies.map((proxy, i) => ({
          host: names[i],
          spans: proxy.spans.slice(measured.marks[i] ?? 0),
        }));
        await writeFile(`${process.env.BENCH_TRACE}-${phase}.json`, JSON.stringify(trace));
      }
      const withPhases = {
        ...measured,
        windows: [...measured.windows, ...phaseWindows(proxies, measured.marks, report)],
      };
      results.push(withPhases);
      printMeasurement(proxies, names, withPhases, edges);
    }
    await Promise.all(mirrors.map(stopFar));

    if (process.env.BENCH_ONLY !== "promoter") {
      // skopeo at its best: one sync per mirror, all at once, on fresh mirrors.
      mirrors = await Promise.all(Array.from({ length: MIRRORS }, () => startFar()));
      proxies = [staging.proxy, ...mirrors.map((mirror) => mirror.proxy)];
      const syncYaml = `${staging.proxy.host}:\n  tls-verify: false\n  images:\n${[...workload]
        .map(
          ([repository, tags]) =>
            `    staging/${repository}:\n${[...tags.keys()].map((tag) => `      - "${tag}"`).join("\n")}`,
        )
        .join("\n")}\n`;
      await writeFile(path.join(work, "sync.yaml"), syncYaml);
      for (const phase of ["cold", "no-op"] as const) {
        const measured = await measure(`skopeo ${phase}`, proxies, async () => {
          const runs = await Promise.all(
            mirrors.map((mirror) =>
              run(SKOPEO_PROGRAM, skopeoSyncArguments("sync.yaml", `${mirror.proxy.host}/prod`), work),
            ),
          );
          for (const result of runs)
            if (result.status !== 0)
              throw new Error(`skopeo failed (${result.status}):\n${result.output.slice(-2000)}`);
        });
        results.push(measured);
        printMeasurement(proxies, names, measured, edges);
      }
      await Promise.all(mirrors.map(stopFar));
    }

    const ms = (label: string) => results.find((row) => row.label === label)?.ms;
    const ratio = (phase: string) => {
      const ours = ms(`promoter ${phase}`);
      const theirs = ms(`skopeo ${phase}`);
      return ours && theirs ? theirs / ours : undefined;
    };
    const cold = ratio("cold");
    const noop = ratio("no-op");
    console.log(
      `\nskopeo at its best / promoter: cold ${cold?.toFixed(1) ?? "-"}x (target >= 25x), no-op ${noop?.toFixed(1) ?? "-"}x (target >= 50x)`,
    );
    console.log(
      `machine load average after the run: ${loadavg()
        .map((load) => load.toFixed(2))
        .join(" ")}`,
    );
    const met = cold !== undefined && noop !== undefined && cold >= 25 && noop >= 50;
    console.log(met ? "ratio targets met" : "RATIO TARGETS MISSED");
    process.exitCode = met ? 0 : 1;
  } finally {
    await stopFar(staging);
    await rm(work, { recursive: true, force: true });
  }
}

function printMeasurement(
  proxies: readonly FaultProxy[],
  names: readonly string[],
  measurement: Measurement,
  edges: number,
): void {
  console.log(
    `${measurement.label}: ${(measurement.ms / 1000).toFixed(2)} s, ${measurement.requests} requests (${(measurement.requests / edges).toFixed(2)} per edge)`,
  );
  for (const line of describeWindows(proxies, names, measurement.windows)) console.log(line);
}

await main();
