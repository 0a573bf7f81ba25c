import { existsSync } from "node:fs";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectClear, REPOSITORY_ROOT, requireBuiltCli, runPromoter } from "../support/promoter-process.js";

/**
 * Where `promoter validate` and kpromo disagree (docs/manifest-format.md, "Where we differ from
 * kpromo"), run as a user runs it (a child process of bin/promoter.js) on small thin trees:
 * test/fixtures/kpromo-strictness/accepted holds what kpromo promotes and we accept with a
 * warning; .../rejected holds what kpromo lets through but would fail at copy time, is
 * ambiguous, or writes where the file says it must not, one project per case. Then the real
 * k8s.io trees: the kept rules block nothing real, and the relaxed spellings, applied to every
 * file of them, change nothing but warnings.
 */

const fixtures = path.join(REPOSITORY_ROOT, "test/fixtures/kpromo-strictness");
const SUMMARY_LINE = /^\d+ projects?, .* promotion edges?$/m;

function findingLines(stdout: string, severity: "error" | "warning"): string[] {
  return stdout
    .split("\n")
    .filter((line) => line.includes(`: ${severity}[`))
    .map((line) => line.replace(/\]: .*$/, "]"));
}

beforeAll(() => {
  requireBuiltCli();
});

describe("validate on spellings kpromo accepts", () => {
  it("accepts them as kpromo reads them, with kpromo-spelling warnings, and plans their edges", async () => {
    const run = await runPromoter(["validate", "--thin-manifest-dir", "accepted"], { cwd: fixtures });
    expectClear(run, 0);
    expect(findingLines(run.stdout, "warning")).toEqual([
      "accepted/images/empty-document/images.yaml:4:1: warning[kpromo-spelling]",
      "accepted/manifests/empty-document/promoter-manifest.yaml:7:1: warning[kpromo-spelling]",
      "accepted/manifests/src-yes/promoter-manifest.yaml:3:8: warning[kpromo-spelling]",
      "accepted/manifests/src-yes/promoter-manifest.yaml:5:8: warning[kpromo-spelling]",
      "accepted/manifests/src-yes/promoter-manifest.yaml:7:8: warning[kpromo-spelling]",
      "accepted/manifests/trailing-slash/promoter-manifest.yaml:2:9: warning[kpromo-spelling]",
      "accepted/manifests/trailing-slash/promoter-manifest.yaml:4:9: warning[kpromo-spelling]",
    ]);
    expect(run.stdout).toContain(
      'src: Yes is read as true, as kpromo\'s YAML 1.1 reader reads it; a YAML 1.2 reader sees the string "Yes"\n    hint: Write src: true.\n',
    );
    expect(run.stdout).toContain(
      'registry name "us-docker.pkg.dev/k8s-artifacts-prod/images/trailing-slash/" ends with /: it is read as "us-docker.pkg.dev/k8s-artifacts-prod/images/trailing-slash"',
    );
    // Each project: one tagged digest to two destinations.
    expect(run.stdout).toContain(
      "3 projects, 3 images, 3 digests, 3 tags, 6 destinations, 6 promotion edges\n0 errors, 7 warnings: valid\n",
    );
  });
});

describe("validate on what kpromo lets through but is really wrong", () => {
  it("refuses each case with its rule, one error per project, and promotes the rest", async () => {
    const run = await runPromoter(["validate", "--thin-manifest-dir", "rejected"], { cwd: fixtures });
    expectClear(run, 1);
    expect(findingLines(run.stdout, "error")).toEqual([
      "rejected/images/second-document/images.yaml:4:1: error[yaml-syntax]",
      "rejected/images/upper-case-image/images.yaml:1:9: error[invalid-image-name]",
      "rejected/manifests/no-host/promoter-manifest.yaml:4:9: error[invalid-registry-name]",
      "rejected/manifests/source-as-destination/promoter-manifest.yaml:5:9: error[destination-is-source]",
      "rejected/manifests/src-empty/promoter-manifest.yaml:5:7: error[invalid-type]",
      "rejected/manifests/two-sources/promoter-manifest.yaml:4:9: error[multiple-source-registries]",
    ]);
    expect(findingLines(run.stdout, "warning")).toEqual([]);
    expect(run.stdout).toContain(
      '"k8s-artifacts-prod" is not a registry host (expected a host such as gcr.io or 127.0.0.1:5000, or oci:DIR; for Docker Hub write "docker.io/k8s-artifacts-prod/images/no-host")',
    );
    expect(run.stdout).toContain("another service-account does not make it another registry");
    // What is left: no-host and src-empty keep one destination each, source-as-destination two;
    // two-sources promotes nothing, and the refused image entries promote nothing.
    expect(run.stdout).toContain(
      "6 projects, 4 images, 4 digests, 4 tags, 10 destinations, 4 promotion edges\n6 errors, 0 warnings: invalid\n",
    );
  });
});

/**
 * The real trees sit at ../shared/k8sio beside the repository (as in
 * src/manifest-files/load.test.ts); IMAGE_PROMOTER_K8SIO names another place (a git worktree).
 */
const k8sio = process.env.IMAGE_PROMOTER_K8SIO ?? path.resolve(REPOSITORY_ROOT, "../shared/k8sio");
const REAL_TREES = ["registry.k8s.io", "legacy-backfill"] as const;
const realTreesPresent = REAL_TREES.every((tree) => existsSync(path.join(k8sio, tree, "manifests")));
const INGRESS_NGINX_DIGEST =
  'images/k8s-staging-ingress-nginx/images.yaml:152:5: error[invalid-digest]: invalid digest "sha256:23eb4b1775fbaa2adca55c73cf0341e1224d6308689b6f4b3aa1523312eb81c"';

const SOURCE = /^( *)src: true$/gm;
const REGISTRY_NAME = /^(- name: )((?:[a-z]+\.)?gcr\.io\/\S*|[a-z0-9-]+-docker\.pkg\.dev\/\S*)$/gm;

/**
 * Every YAML file of a tree rewritten with the spellings kpromo accepts and we warn about:
 * `src: yes`, registry names with a trailing `/`, an empty document at the end. Returns how
 * many it wrote, one warning each.
 */
async function respell(root: string): Promise<number> {
  let respellings = 0;
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".yaml")) continue;
    const file = path.join(entry.parentPath, entry.name);
    const text = await readFile(file, "utf8");
    const respelt = text
      .replace(SOURCE, (_line, indent: string) => {
        respellings += 1;
        return `${indent}src: yes`;
      })
      .replace(REGISTRY_NAME, (_line, key: string, name: string) => {
        respellings += 1;
        return `${key}${name}/`;
      });
    await writeFile(file, `${respelt}${respelt.endsWith("\n") ? "" : "\n"}---\n`);
    // In a comment-only file ("# No images yet") the --- starts the one document there is.
    if (/^[^#\s]/m.test(text)) respellings += 1;
  }
  return respellings;
}

describe.skipIf(!realTreesPresent)("the real k8s.io trees (../shared/k8sio)", () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "kpromo-strictness-"));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it.each(REAL_TREES)(
    "%s: no kept rule blocks a real manifest, and kpromo's spellings change nothing but warnings",
    async (tree) => {
      const original = await runPromoter(["validate", "--thin-manifest-dir", tree], {
        cwd: k8sio,
        timeoutMs: 120_000,
      });
      const expectedErrors = tree === "registry.k8s.io" ? [`${tree}/${INGRESS_NGINX_DIGEST}`] : [];
      expectClear(original, expectedErrors.length === 0 ? 0 : 1);
      const errors = (stdout: string) => stdout.split("\n").filter((line) => line.includes(": error["));
      expect(errors(original.stdout).map((line) => line.replace(/ in image .*$/, ""))).toEqual(
        expectedErrors,
      );
      expect(original.stdout).not.toContain("kpromo-spelling");

      await cp(path.join(k8sio, tree), path.join(work, tree), { recursive: true });
      const respellings = await respell(path.join(work, tree));
      const respelt = await runPromoter(["validate", "--thin-manifest-dir", tree], {
        cwd: work,
        timeoutMs: 120_000,
      });
      expectClear(respelt, original.status ?? -1);
      expect(errors(respelt.stdout)).toEqual(errors(original.stdout));
      // The same projects, images, digests, tags, destinations and edges.
      expect(SUMMARY_LINE.exec(respelt.stdout)?.[0]).toBe(SUMMARY_LINE.exec(original.stdout)?.[0]);
      // Each respelling is one warning, beside the tree's own warnings.
      const warnings = findingLines(respelt.stdout, "warning");
      expect(warnings.filter((line) => line.endsWith("[kpromo-spelling]"))).toHaveLength(respellings);
      expect(warnings.filter((line) => !line.endsWith("[kpromo-spelling]"))).toEqual(
        findingLines(original.stdout, "warning"),
      );
      // Every project's source, and more: the respelling reached the registries files.
      expect(respellings).toBeGreaterThan(tree === "registry.k8s.io" ? 75 * 22 : 3);
    },
    240_000,
  );
});

if (!realTreesPresent) {
  console.warn(
    `skipping the real-tree strictness tests: ${k8sio} lacks registry.k8s.io/ or legacy-backfill/ (set IMAGE_PROMOTER_K8SIO)`,
  );
}
