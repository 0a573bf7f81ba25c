import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPOSITORY_ROOT, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * `promoter cip --use-prow-manifest-diff` on the real registry.k8s.io tree (75 projects, ~20k
 * digests) in a git repository: a commit that adds one image to one project plans only that
 * image's edges, and the tree's one genuine old error (ingress-nginx's 63-hex digest) is a
 * warning that does not fail the job; a commit that adds an invalid digest fails it. The
 * project the change touches is mapped onto a local registry (the real ones are not reachable);
 * every other project keeps its real registries, which no request may reach.
 */

const k8sio = process.env.IMAGE_PROMOTER_K8SIO ?? path.resolve(REPOSITORY_ROOT, "../shared/k8sio");
const present = existsSync(path.join(k8sio, "registry.k8s.io", "manifests"));
if (!present) {
  console.warn(
    `skipping the real-tree cip tests: ${k8sio}/registry.k8s.io is absent (set IMAGE_PROMOTER_K8SIO)`,
  );
}

const PROJECT = "k8s-staging-kas-network-proxy";
const INGRESS_NGINX =
  /images\/k8s-staging-ingress-nginx\/images\.yaml:152:5: warning\[invalid-digest\].*already there before this change/;

let work: string;
let repo: string;
let registry: TestRegistry;
const added = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "kas-extra" });

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: work },
  });
}

function presubmit(base: string) {
  return runPromoter(["cip", "--thin-manifest-dir=registry.k8s.io", "--use-prow-manifest-diff"], {
    cwd: repo,
    env: {
      JOB_TYPE: "presubmit",
      PULL_BASE_SHA: base,
      PROMOTER_CIP_OPTIONS: "--allow-registry 127.0.0.1 --quiet",
    },
    timeoutMs: 120_000,
  });
}

beforeAll(async () => {
  if (!present) return;
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "kpromo-k8sio-"));
  repo = path.join(work, "k8s.io");
  await cp(path.join(k8sio, "registry.k8s.io"), path.join(repo, "registry.k8s.io"), { recursive: true });
  registry = await startRegistry();
  await pushTagsWithSkopeo(work, registry.host, "staging/kas-network-proxy/extra", [
    { content: added, tag: "v9.9.9" },
  ]);
  // The project's staging and 22 mirrors, onto one local registry (one path per mirror).
  const manifest = path.join(repo, "registry.k8s.io", "manifests", PROJECT, "promoter-manifest.yaml");
  const text = (await readFile(manifest, "utf8"))
    .replace(
      /name: gcr\.io\/k8s-staging-kas-network-proxy$/m,
      `name: ${registry.host}/staging/kas-network-proxy`,
    )
    .replace(/([a-z0-9-]+)-docker\.pkg\.dev\/k8s-artifacts-prod\/images\//g, `${registry.host}/$1/`);
  await writeFile(manifest, text);
  git("init", "-q", "--initial-branch", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "registry.k8s.io as of 2024-06-06, one project on a local registry");
}, 300_000);

afterAll(async () => {
  if (!present) return;
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

describe.skipIf(!present)("cip on the real registry.k8s.io tree", () => {
  it("a commit adding one image plans only its edges; the old ingress-nginx error warns", async () => {
    const base = git("rev-parse", "HEAD").trim();
    git("checkout", "-q", "-b", "add-image");
    await appendFile(
      path.join(repo, "registry.k8s.io", "images", PROJECT, "images.yaml"),
      `- name: extra\n  dmap:\n    "${added.digest}": ["v9.9.9"]\n`,
    );
    git("commit", "-q", "-am", "kas-network-proxy: add extra v9.9.9");
    const run = await presubmit(base);
    expect(run.status, run.stderr + run.stdout.slice(-2000)).toBe(0);
    expect(run.stderr).toMatch(INGRESS_NGINX);
    expect(run.stdout).toMatch(/Plan: 22 edges: 22 to copy/);
    expect(run.stdout).not.toMatch(/pkg\.dev|gcr\.io/);
  }, 180_000);

  it("a commit adding an invalid digest fails the presubmit", async () => {
    const base = git("rev-parse", "HEAD").trim();
    await appendFile(
      path.join(repo, "registry.k8s.io", "images", PROJECT, "images.yaml"),
      `- name: typo\n  dmap:\n    "sha256:${"e".repeat(63)}": ["v1.0.0"]\n`,
    );
    git("commit", "-q", "-am", "kas-network-proxy: a typo");
    const run = await presubmit(base);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toMatch(
      /images\/k8s-staging-kas-network-proxy\/images\.yaml:\d+:5: error\[invalid-digest\]/,
    );
    expect(run.stderr).toMatch(INGRESS_NGINX);
  }, 180_000);
});
