import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  commitAll,
  git,
  imagesYaml,
  registriesYaml,
  runPromoter,
  STACK_LINE,
  writeTree,
} from "../support/hostile-registry-policy.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { listTags } from "../support/registry-judge.js";
import { makeImage, pushTagsWithSkopeo, writeOciLayoutDirectly } from "../support/test-images.js";

/**
 * Untrusted pull requests, finding 2: one project's owners could publish into another project's
 * production repository. Two projects share a destination prefix; a pull request that edits only
 * `images/world/images.yaml` adds `- name: hello` and world's image lands in `prod/hello`, while
 * only world's owners were asked to review. A destination repository belongs to one project, and
 * an images file that names a repository of another project is an error in validate, check and
 * promote.
 */

const helloV1 = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "own-hello-1.0.0" });
const worldV1 = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "own-world-1.0.0" });
/** What world's staging pusher built and calls hello. */
const impostor = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "own-impostor" });
const lint = makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "own-lint" });

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "hostile-ownership-"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The tags of an OCI layout repository (its index.json ref.name annotations). */
async function layoutTags(directory: string): Promise<string[]> {
  if (!existsSync(path.join(directory, "index.json"))) return [];
  const index = JSON.parse(await readFile(path.join(directory, "index.json"), "utf8")) as {
    manifests: { annotations?: Record<string, string> }[];
  };
  return index.manifests
    .map((entry) => entry.annotations?.["org.opencontainers.image.ref.name"])
    .filter((tag): tag is string => tag !== undefined)
    .sort();
}

describe("two projects sharing a destination prefix (OCI layouts in the tree)", () => {
  let repo: string;
  /** Line of `- name: hello` in world's images file after the pull request. */
  const worldHelloLine = 4;

  beforeAll(async () => {
    repo = await mkdtemp(path.join(work, "shared-"));
    await writeOciLayoutDirectly(path.join(repo, "staging", "hello", "hello"), [
      { content: helloV1, tag: "v1.0.0" },
    ]);
    await writeOciLayoutDirectly(path.join(repo, "staging", "world", "world"), [
      { content: worldV1, tag: "v1.0.0" },
    ]);
    await writeOciLayoutDirectly(path.join(repo, "staging", "world", "hello"), [
      { content: impostor, tag: "v1.0.1" },
    ]);
    await writeTree(repo, {
      ".gitignore": "/staging/\n/prod/\n",
      "manifests/hello/promoter-manifest.yaml": registriesYaml("oci:../../staging/hello", ["oci:../../prod"]),
      "manifests/world/promoter-manifest.yaml": registriesYaml("oci:../../staging/world", ["oci:../../prod"]),
      "images/hello/images.yaml": imagesYaml([{ name: "hello", digest: helloV1.digest, tags: ["v1.0.0"] }]),
      "images/world/images.yaml": imagesYaml([{ name: "world", digest: worldV1.digest, tags: ["v1.0.0"] }]),
    });
    commitAll(repo, "Two projects share the production prefix", true);
    const seeded = await runPromoter(repo, ["promote", "--thin-manifest-dir", ".", "--confirm", "--quiet"]);
    expect(seeded.stderr).toBe("");
    expect(seeded.status).toBe(0);

    // The pull request: only world's images file changes.
    git(repo, "switch", "-q", "-c", "pr");
    await writeTree(repo, {
      "images/world/images.yaml": imagesYaml([
        { name: "world", digest: worldV1.digest, tags: ["v1.0.0"] },
        { name: "hello", digest: impostor.digest, tags: ["v1.0.1"] },
      ]),
    });
    commitAll(repo, "world: also publish hello");
    expect(git(repo, "diff", "--name-only", "main", "pr").trim()).toBe("images/world/images.yaml");
  });

  it("validate reports world's entry at its line", async () => {
    const run = await runPromoter(repo, ["validate", "--thin-manifest-dir", "."]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`images/world/images.yaml:${worldHelloLine}:3: error[`);
  });

  it("check --base fails the pull request on world's file", async () => {
    const run = await runPromoter(repo, ["check", "--base", "main", "--thin-manifest-dir", ".", "--quiet"]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/FAIL {2}Manifest validation/);
    expect(run.stdout).toContain(`images/world/images.yaml:${worldHelloLine}:3`);
  });

  it("promote --confirm after the merge does not publish world's image as hello", async () => {
    const run = await runPromoter(repo, ["promote", "--thin-manifest-dir", ".", "--confirm", "--quiet"]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(await layoutTags(path.join(repo, "prod", "hello"))).toEqual(["v1.0.0"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`images/world/images.yaml:${worldHelloLine}:3: error[`);
  });
});

describe("an image name that reaches into another project's deeper destination", () => {
  it("is an error for the project with the shorter prefix only", async () => {
    const repo = await mkdtemp(path.join(work, "nested-"));
    await writeOciLayoutDirectly(path.join(repo, "staging", "tools", "lint"), [{ content: lint, tag: "v1" }]);
    await writeOciLayoutDirectly(path.join(repo, "staging", "world", "tools", "lint"), [
      { content: impostor, tag: "v2" },
    ]);
    await writeTree(repo, {
      // tools owns everything below prod/tools; world promotes to prod.
      "manifests/tools/promoter-manifest.yaml": registriesYaml("oci:../../staging/tools", [
        "oci:../../prod/tools",
      ]),
      "manifests/world/promoter-manifest.yaml": registriesYaml("oci:../../staging/world", ["oci:../../prod"]),
      "images/tools/images.yaml": imagesYaml([{ name: "lint", digest: lint.digest, tags: ["v1"] }]),
      "images/world/images.yaml": imagesYaml([{ name: "tools/lint", digest: impostor.digest, tags: ["v2"] }]),
    });
    const validate = await runPromoter(repo, ["validate", "--thin-manifest-dir", "."]);
    expect(validate.status).toBe(1);
    expect(validate.stdout).toContain("images/world/images.yaml:1:3: error[");
    expect(validate.stdout).not.toContain("images/tools/images.yaml:1:3: error[");

    const promote = await runPromoter(repo, ["promote", "--thin-manifest-dir", ".", "--confirm", "--quiet"]);
    expect(promote.status).toBe(1);
    expect(await layoutTags(path.join(repo, "prod", "tools", "lint"))).toEqual(["v1"]);
  });
});

describe("one place, however an oci: destination names it", () => {
  /**
   * Ownership compared `oci:` destinations by the directory as written. A pull request that
   * edits world's images file also commits `world-prod` (the folder world's registries file
   * names, which only the promotion creates) as a symbolic link to `prod`: world's destination
   * is then hello's, under another name, and world's `- name: hello` landed in `prod/hello`.
   * Destinations are compared where they really are (links resolved), so the two projects share
   * one prefix and the entry is an error.
   */
  it("a destination that is a symbolic link to another project's folder is that folder", async () => {
    const repo = await mkdtemp(path.join(work, "linked-"));
    await writeOciLayoutDirectly(path.join(repo, "staging", "hello", "hello"), [
      { content: helloV1, tag: "v1.0.0" },
    ]);
    await writeOciLayoutDirectly(path.join(repo, "staging", "world", "hello"), [
      { content: impostor, tag: "v1.0.1" },
    ]);
    await writeTree(repo, {
      ".gitignore": "/staging/\n/prod/\n",
      "manifests/hello/promoter-manifest.yaml": registriesYaml("oci:../../staging/hello", ["oci:../../prod"]),
      "manifests/world/promoter-manifest.yaml": registriesYaml("oci:../../staging/world", [
        "oci:../../world-prod",
      ]),
      "images/hello/images.yaml": imagesYaml([{ name: "hello", digest: helloV1.digest, tags: ["v1.0.0"] }]),
      "images/world/images.yaml": "[]\n",
    });
    commitAll(repo, "Two projects, two production folders", true);
    const seeded = await runPromoter(repo, ["promote", "--thin-manifest-dir", ".", "--confirm", "--quiet"]);
    expect(seeded.status).toBe(0);

    git(repo, "switch", "-q", "-c", "pr");
    await symlink("prod", path.join(repo, "world-prod"));
    await writeTree(repo, {
      "images/world/images.yaml": imagesYaml([{ name: "hello", digest: impostor.digest, tags: ["v1.0.1"] }]),
    });
    commitAll(repo, "world: publish hello");

    const validate = await runPromoter(repo, ["validate", "--thin-manifest-dir", "."]);
    expect(validate.stderr).not.toMatch(STACK_LINE);
    expect(validate.status).toBe(1);
    expect(validate.stdout).toMatch(/images\/world\/images\.yaml:1:3: error\[disputed-repository\]/);

    const check = await runPromoter(repo, ["check", "--base", "main", "--thin-manifest-dir", ".", "--quiet"]);
    expect(check.stderr).not.toMatch(STACK_LINE);
    expect(check.status).toBe(1);
    expect(check.stdout).toContain("images/world/images.yaml:1:3");

    const promote = await runPromoter(repo, ["promote", "--thin-manifest-dir", ".", "--confirm", "--quiet"]);
    expect(promote.stderr).not.toMatch(STACK_LINE);
    expect(promote.status).toBe(1);
    expect(await layoutTags(path.join(repo, "prod", "hello"))).toEqual(["v1.0.0"]);
  });

  // Held already by the paths' normalisation; kept so that comparing by real path keeps it.
  it("a destination written another way (./prod/., a detour through ..) is the same folder", async () => {
    const repo = await mkdtemp(path.join(work, "spelled-"));
    await writeOciLayoutDirectly(path.join(repo, "staging", "world", "hello"), [
      { content: impostor, tag: "v1.0.1" },
    ]);
    await writeTree(repo, {
      "manifests/hello/promoter-manifest.yaml": registriesYaml("oci:../../staging/hello", ["oci:../../prod"]),
      "manifests/world/promoter-manifest.yaml": registriesYaml("oci:../../staging/world", [
        "oci:./../../images/../prod/.",
      ]),
      "images/hello/images.yaml": imagesYaml([{ name: "hello", digest: helloV1.digest, tags: ["v1.0.0"] }]),
      "images/world/images.yaml": imagesYaml([{ name: "hello", digest: impostor.digest, tags: ["v1.0.1"] }]),
    });
    const validate = await runPromoter(repo, ["validate", "--thin-manifest-dir", "."]);
    expect(validate.stdout + validate.stderr).toMatch(
      /images\/world\/images\.yaml:1:3: error\[disputed-repository\]/,
    );
    expect(validate.status).toBe(1);
  });
});

describe("two projects sharing a destination prefix on a registry", () => {
  let staging: TestRegistry;
  let prod: TestRegistry;
  let repo: string;
  let allow: string[];

  beforeAll(async () => {
    [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
    allow = ["--allow-registry", staging.host, "--allow-registry", prod.host];
    repo = await mkdtemp(path.join(work, "registry-"));
    await pushTagsWithSkopeo(repo, staging.host, "staging/hello/hello", [
      { content: helloV1, tag: "v1.0.0" },
    ]);
    await pushTagsWithSkopeo(repo, staging.host, "staging/world/hello", [
      { content: impostor, tag: "v1.0.1" },
    ]);
    await pushTagsWithSkopeo(repo, prod.host, "prod/hello", [{ content: helloV1, tag: "v1.0.0" }]);
    await writeTree(repo, {
      "manifests/hello/promoter-manifest.yaml": registriesYaml(`${staging.host}/staging/hello`, [
        `${prod.host}/prod`,
      ]),
      "manifests/world/promoter-manifest.yaml": registriesYaml(`${staging.host}/staging/world`, [
        `${prod.host}/prod`,
      ]),
      "images/hello/images.yaml": imagesYaml([{ name: "hello", digest: helloV1.digest, tags: ["v1.0.0"] }]),
      "images/world/images.yaml": "[]\n",
    });
    commitAll(repo, "Two projects share the production prefix", true);
    git(repo, "switch", "-q", "-c", "pr");
    await writeTree(repo, {
      "images/world/images.yaml": imagesYaml([{ name: "hello", digest: impostor.digest, tags: ["v1.0.1"] }]),
    });
    commitAll(repo, "world: publish hello");
  });

  afterAll(async () => {
    await Promise.all([staging.stop(), prod.stop()]);
  });

  it("check fails and promote does not publish prod/hello:v1.0.1", async () => {
    const check = await runPromoter(repo, [
      "check",
      "--base",
      "main",
      "--thin-manifest-dir",
      ".",
      "--quiet",
      ...allow,
    ]);
    expect(check.stderr).not.toMatch(STACK_LINE);
    expect(check.status).toBe(1);
    expect(check.stdout).toContain("images/world/images.yaml:1:3");

    const promote = await runPromoter(repo, [
      "promote",
      "--thin-manifest-dir",
      ".",
      "--confirm",
      "--quiet",
      ...allow,
    ]);
    expect(promote.stderr).not.toMatch(STACK_LINE);
    expect(await listTags(prod.url, "prod/hello")).toEqual(["v1.0.0"]);
    expect(promote.status).toBe(1);
  });
});

/**
 * The real tree sits at ../shared/k8sio beside the repository (as in src/manifest-files/load.test.ts);
 * IMAGE_PROMOTER_K8SIO names another place (a git worktree elsewhere).
 */
const k8sio = process.env.IMAGE_PROMOTER_K8SIO ?? path.resolve(import.meta.dirname, "../../../shared/k8sio");
const realTree = path.join(k8sio, "registry.k8s.io");

describe.skipIf(!existsSync(path.join(realTree, "manifests")))(
  "the real registry.k8s.io tree (../shared/k8sio)",
  () => {
    it("has no ownership or registry-policy finding: its one error is the digest cut short", async () => {
      const run = await runPromoter(
        work,
        ["validate", "--thin-manifest-dir", realTree, "--output", "json"],
        {},
        120_000,
      );
      const document = JSON.parse(run.stdout) as { findings: { rule: string; severity: string }[] };
      const errors = document.findings.filter((finding) => finding.severity === "error");
      expect(errors.map((finding) => finding.rule)).toEqual(["invalid-digest"]);
    });
  },
);

if (!existsSync(path.join(realTree, "manifests"))) {
  console.warn(`skipping the real-tree ownership test: ${realTree} is absent (set IMAGE_PROMOTER_K8SIO)`);
}
