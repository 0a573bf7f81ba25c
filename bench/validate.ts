/**
 * Benchmark of `promoter validate` on the real kpromo trees in ../shared/k8sio, through the real
 * CLI in a child process (`node bin/promoter.js validate ...`), as a person or CI runs it.
 *
 *   npm run bench:validate            # builds, then 5 runs per tree
 *   BENCH_RUNS=9 npm run bench:validate
 *
 * Reports wall time (spawn to exit, so Node's start-up is included) and peak resident memory
 * (the child's `process.resourceUsage().maxRSS`, printed by a tiny --import probe at exit) for
 * each run, and the median. Targets (issue 2), on a 2-core machine: the registry.k8s.io tree
 * in under 1.5 s wall and under 300 MB peak. Exits 1 when a target is missed.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const k8sio = path.resolve(repoRoot, "../shared/k8sio");
const promoter = path.join(repoRoot, "bin/promoter.js");
const runs = Number(process.env.BENCH_RUNS ?? 5);

const TARGET_WALL_MS = 1500;
const TARGET_RSS_MB = 300;

// Runs inside the child: report peak RSS (kilobytes) on stderr as the process exits.
const RSS_PROBE = `data:text/javascript,${encodeURIComponent(
  'import { writeSync } from "node:fs"; process.on("exit", () => { const u = process.resourceUsage(); writeSync(2, `\\nbench-max-rss-kb=${u.maxRSS} bench-cpu-us=${u.userCPUTime + u.systemCPUTime}\\n`); });',
)}`;

interface Measurement {
  readonly wallMs: number;
  /** User and system CPU time of the child: less sensitive than wall time to other load. */
  readonly cpuMs: number;
  readonly rssMb: number;
  readonly status: number | null;
  readonly summary: string;
}

function runOnce(tree: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      ["--import", RSS_PROBE, promoter, "validate", "--thin-manifest-dir", tree],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (status) => {
      const wallMs = performance.now() - started;
      const rss = /bench-max-rss-kb=(\d+) bench-cpu-us=(\d+)/.exec(stderr);
      if (!rss?.[1] || !rss[2]) {
        reject(new Error(`no RSS figure from the child (status ${status}): ${stderr.slice(0, 500)}`));
        return;
      }
      const lines = stdout.trimEnd().split("\n");
      resolve({
        wallMs,
        cpuMs: Number(rss[2]) / 1000,
        rssMb: Number(rss[1]) / 1024,
        status,
        summary: lines.slice(-2).join(" | "),
      });
    });
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function benchTree(name: string, targets: boolean): Promise<boolean> {
  const tree = path.join(k8sio, name);
  if (!existsSync(tree)) {
    console.log(`${name}: skipped, ${tree} is absent`);
    return true;
  }
  console.log(
    `${name}: ${runs} runs of node bin/promoter.js validate --thin-manifest-dir ${path.relative(process.cwd(), tree)}`,
  );
  const measurements: Measurement[] = [];
  for (let i = 0; i < runs; i++) {
    const measurement = await runOnce(tree);
    measurements.push(measurement);
    console.log(
      `  run ${i + 1}: ${measurement.wallMs.toFixed(0).padStart(5)} ms wall, ${measurement.cpuMs.toFixed(0).padStart(5)} ms CPU, ${measurement.rssMb.toFixed(0).padStart(4)} MB peak RSS, exit ${measurement.status}`,
    );
  }
  const wall = median(measurements.map((m) => m.wallMs));
  const cpu = median(measurements.map((m) => m.cpuMs));
  const rss = median(measurements.map((m) => m.rssMb));
  console.log(`  result: ${measurements[0]?.summary ?? ""}`);
  console.log(
    `  median: ${wall.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms CPU, ${rss.toFixed(0)} MB peak RSS`,
  );
  if (!targets) return true;
  const wallOk = wall < TARGET_WALL_MS;
  const rssOk = rss < TARGET_RSS_MB;
  console.log(
    `  targets: wall < ${TARGET_WALL_MS} ms ${wallOk ? "met" : "MISSED"}; peak RSS < ${TARGET_RSS_MB} MB ${rssOk ? "met" : "MISSED"}`,
  );
  return wallOk && rssOk;
}

if (!existsSync(path.join(repoRoot, "dist/bundle/entry.js"))) {
  console.error("dist/ is missing: run `npm run build` first (npm run bench:validate does).");
  process.exit(2);
}
const load = os.loadavg().map((value) => value.toFixed(2));
console.log(`node ${process.version}, ${os.availableParallelism()} cores, load average ${load.join(" ")}`);
const registryOk = await benchTree("registry.k8s.io", true);
await benchTree("legacy-backfill", false);
process.exitCode = registryOk ? 0 : 1;
