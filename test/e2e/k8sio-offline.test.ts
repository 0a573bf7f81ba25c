import { existsSync } from "node:fs";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectClear, REPOSITORY_ROOT, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { findFreePort } from "../support/registry-harness.js";

/**
 * A dry run of the whole real registry.k8s.io tree (75 projects, 9,790 destination
 * repositories, 720,456 edges) with every registry unreachable (issue 17, item 1): each of the
 * 22 regional mirrors and the staging host is mapped onto a loopback port where nothing listens,
 * as a run without network meets them. The run must end (it used to take minutes, failing one
 * repository per mirror every few seconds), exit 1, and say once per host that it is
 * unreachable, never once per repository. The wall time is printed for docs/reliability.md,
 * not asserted.
 */

const k8sio = process.env.IMAGE_PROMOTER_K8SIO ?? path.resolve(REPOSITORY_ROOT, "../shared/k8sio");
const present = existsSync(path.join(k8sio, "registry.k8s.io", "manifests"));
if (!present) {
  console.warn(
    `skipping the offline registry.k8s.io dry run: ${k8sio}/registry.k8s.io is absent (set IMAGE_PROMOTER_K8SIO)`,
  );
}

let work: string;
/** `127.0.0.1:PORT` of each real registry host, nothing listening there. */
const closed = new Map<string, string>();

/** A loopback port where nothing listens, distinct from the others handed out. */
async function closedHost(): Promise<string> {
  const used = new Set(closed.values());
  for (;;) {
    const host = `127.0.0.1:${await findFreePort()}`;
    if (!used.has(host)) return host;
  }
}

beforeAll(async () => {
  if (!present) return;
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "k8sio-offline-"));
  const tree = path.join(work, "registry.k8s.io");
  await cp(path.join(k8sio, "registry.k8s.io"), tree, { recursive: true });
  const manifests = path.join(tree, "manifests");
  for (const project of await readdir(manifests)) {
    const file = path.join(manifests, project, "promoter-manifest.yaml");
    if (!existsSync(file)) continue;
    const text = await readFile(file, "utf8");
    let rewritten = text;
    for (const match of text.matchAll(/name: ([a-z0-9-]+-docker\.pkg\.dev|gcr\.io)\//g)) {
      const host = match[1]!;
      if (!closed.has(host)) closed.set(host, await closedHost());
    }
    for (const [host, local] of closed) rewritten = rewritten.replaceAll(`name: ${host}/`, `name: ${local}/`);
    await writeFile(file, rewritten);
  }
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!present)("the registry.k8s.io tree with every registry unreachable", () => {
  it("ends with exit 1 and one line per unreachable host", { timeout: 300_000 }, async () => {
    const run = await runPromoter(["cip", "--thin-manifest-dir=registry.k8s.io"], {
      cwd: work,
      env: { PROMOTER_CIP_OPTIONS: "--allow-registry 127.0.0.1" },
      timeoutMs: 280_000,
    });
    console.log(`offline registry.k8s.io dry run: exit ${run.status} in ${(run.ms / 1000).toFixed(1)} s`);
    expectClear(run, 1, /unreachable/);
    expect(run.stdout).toMatch(/^Plan: 720,456 edges: 720,456 unreadable/m);
    expect(run.stderr).not.toMatch(/could not read/);

    const mirrors = [...closed].filter(([host]) => host !== "gcr.io");
    expect(mirrors).toHaveLength(22);
    for (const [host, local] of mirrors) {
      const warnings = run.stderr
        .split("\n")
        .filter((line) => line.startsWith(`promoter: warn: registry host ${local} is unreachable`));
      expect(warnings, host).toHaveLength(1);
      expect(warnings[0]).toMatch(/network error: ECONNREFUSED/);
      const summaries = run.stderr
        .split("\n")
        .filter((line) => line.startsWith(`promoter promote: registry host ${local}:`));
      expect(summaries, host).toHaveLength(1);
    }
    // Nothing else in the log but the run's own notes and the tree's manifest findings.
    const others = run.stderr
      .split("\n")
      .filter((line) => line.startsWith("promoter: warn:") && !line.includes("is unreachable"));
    expect(others).toEqual([]);
  });
});
