import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltCli, runPromoter, STACK_LINE, type PromoterRun } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoListTags } from "../support/skopeo.js";
import { runTestGit } from "../support/test-git.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * `cip --manifest-diff-since 14d` (kpromo's time-bounded backstop) compares the manifests with
 * the branch's state 14 days ago. Commit dates are whoever committed's choice: a contributor
 * whose commits reach the branch as they are (a fast-forward, a rebase that keeps dates) can
 * date one a year back. That commit must not become "the state 14 days ago" and hide from the
 * backstop the edges it and the commits below it added (someone else's, merged three days ago):
 * an honest branch's dates grow from parent to child, so a commit is only as old as the newest
 * commit beneath it.
 */

const DAY = 86_400_000;
const images = ["v1", "v2", "v3", "v4"].map((tag) =>
  makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: `cip-scope-${tag}` }),
);

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;

function repoGit(repo: string, dated: Date, ...args: string[]): string {
  return runTestGit({ cwd: repo, home: work, dated }, ...args);
}

async function writeImages(repo: string, count: number): Promise<void> {
  const lines = images.slice(0, count).map((image, index) => `    "${image.digest}": ["v${index + 1}"]`);
  await writeFile(
    path.join(repo, "tree", "images", "web", "images.yaml"),
    ["- name: web", "  dmap:", ...lines, ""].join("\n"),
  );
}

/** main: v1 a month ago, v2 three days ago, then commits dated as `dates` say, each adding one. */
async function history(name: string, dates: readonly Date[]): Promise<string> {
  const repo = path.join(work, name);
  await mkdir(path.join(repo, "tree", "manifests", "web"), { recursive: true });
  await mkdir(path.join(repo, "tree", "images", "web"), { recursive: true });
  await writeFile(
    path.join(repo, "tree", "manifests", "web", "promoter-manifest.yaml"),
    `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prod.host}/${name}\n`,
  );
  const now = Date.now();
  repoGit(repo, new Date(now), "init", "-q", "--initial-branch", "main");
  const commits = [new Date(now - 30 * DAY), new Date(now - 3 * DAY), ...dates];
  for (const [index, dated] of commits.entries()) {
    await writeImages(repo, index + 1);
    repoGit(repo, dated, "add", "-A");
    repoGit(repo, dated, "commit", "-q", "-m", `v${index + 1}`);
  }
  return repo;
}

function cip(repo: string, args: readonly string[]): Promise<PromoterRun> {
  return runPromoter(["cip", "--thin-manifest-dir=tree", "--manifest-diff-since=14d", ...args], {
    cwd: repo,
    env: { PROMOTER_CIP_OPTIONS: "--allow-registry 127.0.0.1 --quiet" },
    allowLoopbackRegistries: false,
  });
}

function inScope(run: PromoterRun): number {
  expect(`${run.stdout}\n${run.stderr}`).not.toMatch(STACK_LINE);
  const match = /(\d+) promotion edges? in scope/.exec(run.stderr);
  expect(match, run.stderr).not.toBeNull();
  return Number(match?.[1]);
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "cip-scope-"));
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  await pushTagsWithSkopeo(
    work,
    staging.host,
    "staging/web",
    images.map((content, index) => ({ content, tag: `v${index + 1}` })),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("--manifest-diff-since with commit dates a contributor chose", () => {
  it("honest dates: the window holds the edges of the last 14 days (v2, v3)", async () => {
    const repo = await history("honest", [new Date()]);
    const run = await cip(repo, ["--parse-only"]);
    expect(run.status, run.stderr).toBe(0);
    expect(inScope(run)).toBe(2);
  });

  it("a tip dated a year back does not become the base and hide the window's edges", async () => {
    const repo = await history("forged-tip", [new Date(Date.now() - 365 * DAY)]);
    const run = await cip(repo, ["--parse-only"]);
    expect(run.status, run.stderr).toBe(0);
    expect(inScope(run)).toBe(2);
    const base = repoGit(repo, new Date(), "rev-parse", "HEAD~2").trim();
    expect(run.stderr).toContain(`(commit ${base.slice(0, 12)})`);
  });

  it("a backdated commit in the middle hides neither the edges below it nor its own: all are promoted", async () => {
    const repo = await history("forged-middle", [new Date(Date.now() - 365 * DAY), new Date()]);
    const run = await cip(repo, ["--confirm", "--sign=false"]);
    expect(run.status, run.stderr).toBe(0);
    const tags = await skopeoListTags(`docker://${prod.host}/forged-middle/web`);
    expect(tags.sort()).toEqual(["v2", "v3", "v4"]);
  });

  it("a window that cannot hold anything is refused, not run empty: a future date, a duration past a date's range", async () => {
    const repo = await history("odd-windows", []);
    for (const since of ["2099-01-01", "99999999999999d"]) {
      const run = await runPromoter(
        ["cip", "--thin-manifest-dir=tree", `--manifest-diff-since=${since}`, "--parse-only"],
        { cwd: repo, allowLoopbackRegistries: false },
      );
      expect(`${run.stdout}\n${run.stderr}`).not.toMatch(STACK_LINE);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/--manifest-diff-since .*(in the future|further than a date can)/);
    }
  });
});
