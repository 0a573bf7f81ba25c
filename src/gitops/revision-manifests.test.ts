import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadManifests } from "../manifest-files/index.js";
import { GitCommandError } from "./git.js";
import { loadManifestsAtRevision } from "./revision-manifests.js";

let dir: string;
const D = `sha256:${"a".repeat(64)}`;

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir },
  }).trim();
}

async function write(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
  await writeFile(path.join(dir, file), text);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "revision-manifests-"));
  git("init", "-q", "-b", "main");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadManifestsAtRevision", () => {
  it("reads a thin tree in a subfolder as it was, with the working copy's file names and oci: places", async () => {
    const registries =
      "registries:\n- name: oci:../../../layouts/staging\n  src: true\n- name: oci:../../../layouts/prod\n";
    await write("deploy/tree/manifests/a/promoter-manifest.yaml", registries);
    await write("deploy/tree/images/a/images.yaml", `- name: app\n  dmap:\n    "${D}": ["v1"]\n`);
    await write("deploy/tree/manifests/b/promoter-manifest.yaml", registries);
    await write("deploy/tree/manifests/nested/deeper/promoter-manifest.yaml", registries);
    await write("deploy/tree/manifests/README.md", "not a manifest\n");
    git("add", "-A");
    git("commit", "-q", "-m", "base");
    await write("deploy/tree/images/a/images.yaml", "[]\n");

    const base = await loadManifestsAtRevision({ thinManifestDir: "tree" }, "HEAD", {
      cwd: path.join(dir, "deploy"),
    });
    const head = await loadManifests({ thinManifestDir: "tree" }, { cwd: path.join(dir, "deploy") });
    expect(base.commit).toBe(git("rev-parse", "HEAD"));
    expect(base.set.manifests.map((manifest) => manifest.project)).toEqual(["a", "b"]);
    const [a] = base.set.manifests;
    expect(a?.file).toBe(head.manifests[0]?.file);
    expect(a?.imagesFile).toBe(head.manifests[0]?.imagesFile);
    expect(a?.registries.map((registry) => registry.location)).toEqual(
      head.manifests[0]?.registries.map((registry) => registry.location),
    );
    expect(a?.images.map((image) => image.name)).toEqual(["app"]);
    expect(head.manifests[0]?.images).toEqual([]);
    // b has no images file: the same finding as the loader's.
    expect(base.set.findings.map((finding) => finding.rule)).toContain("missing-images-file");
    expect(base.files.get(path.join(dir, "deploy/tree/images/a/images.yaml"))).toContain(D);
  });

  it("reads a plain manifest; a file or tree absent at the revision is an empty set", async () => {
    await write("other.txt", "x\n");
    git("add", "-A");
    git("commit", "-q", "-m", "first");
    await write(
      "promoter.yaml",
      `registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/p\nimages:\n- name: app\n  dmap:\n    "${D}": []\n`,
    );
    git("add", "-A");
    git("commit", "-q", "-m", "second");
    const now = await loadManifestsAtRevision({ manifest: "promoter.yaml" }, "HEAD", { cwd: dir });
    expect(now.set.manifests[0]?.images).toHaveLength(1);
    expect(now.set.manifests[0]?.file).toBe(path.join(dir, "promoter.yaml"));
    const before = await loadManifestsAtRevision({ manifest: "promoter.yaml" }, "HEAD~1", { cwd: dir });
    expect(before.set.manifests).toEqual([]);
    const noTree = await loadManifestsAtRevision({ thinManifestDir: "missing/tree" }, "HEAD", { cwd: dir });
    expect(noTree.set).toEqual({ manifests: [], findings: [] });
  });

  it("refuses unknown revisions, option-like revisions and folders outside the work tree", async () => {
    await write("x", "x\n");
    git("add", "-A");
    git("commit", "-q", "-m", "first");
    await expect(loadManifestsAtRevision({ manifest: "x" }, "nope", { cwd: dir })).rejects.toThrow(
      /unknown revision "nope"/,
    );
    await expect(loadManifestsAtRevision({ manifest: "x" }, "--all", { cwd: dir })).rejects.toThrow(
      GitCommandError,
    );
    const outside = await mkdtemp(path.join(tmpdir(), "outside-"));
    try {
      await expect(loadManifestsAtRevision({ manifest: "m.yaml" }, "HEAD", { cwd: outside })).rejects.toThrow(
        GitCommandError,
      );
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("reads only regular files: links and submodules are reported as unread, never followed", async () => {
    const registries = "registries:\n- name: gcr.io/s\n  src: true\n- name: gcr.io/p\n";
    await write("shared/images.yaml", `- name: app\n  dmap:\n    "${D}": ["v1"]\n`);
    await write("tree/manifests/linked/promoter-manifest.yaml", registries);
    await write("tree/manifests/folder/promoter-manifest.yaml", registries);
    await write("tree/manifests/plain/promoter-manifest.yaml", registries);
    await write("tree/images/plain/images.yaml", `- name: app\n  dmap:\n    "${D}": ["v1"]\n`);
    await mkdir(path.join(dir, "tree/images/linked"), { recursive: true });
    await symlink("../../../shared/images.yaml", path.join(dir, "tree/images/linked/images.yaml"));
    await symlink("../../shared", path.join(dir, "tree/images/folder"));
    await symlink("shared/images.yaml", path.join(dir, "plain.yaml"));
    git("add", "-A");
    git("commit", "-q", "-m", "links");
    const commit = git("rev-parse", "HEAD");
    git("update-index", "--add", "--cacheinfo", `160000,${commit},tree/images/sub`);
    await write("tree/manifests/sub/promoter-manifest.yaml", registries);
    git("add", "tree/manifests/sub");
    git("commit", "-q", "-m", "a submodule");

    const base = await loadManifestsAtRevision({ thinManifestDir: "tree" }, "HEAD", { cwd: dir });
    expect(base.unread.map((finding) => [path.relative(dir, finding.position.file), finding.rule])).toEqual([
      ["tree/images/folder", "git-entry"],
      ["tree/images/linked/images.yaml", "git-entry"],
      ["tree/images/sub", "git-entry"],
    ]);
    expect(base.unread.map((finding) => finding.message).join("\n")).toMatch(
      /symbolic link.*\n.*symbolic link.*\n.*submodule/s,
    );
    // Only the regular images file was read; the link's target path never parsed as YAML.
    expect([...base.files.keys()].map((file) => path.relative(dir, file)).sort()).toEqual([
      "tree/images/plain/images.yaml",
      "tree/manifests/folder/promoter-manifest.yaml",
      "tree/manifests/linked/promoter-manifest.yaml",
      "tree/manifests/plain/promoter-manifest.yaml",
      "tree/manifests/sub/promoter-manifest.yaml",
    ]);

    // A plain manifest that is a link in the working copy is read where it is, not where it points.
    const plain = await loadManifestsAtRevision({ manifest: "plain.yaml" }, "HEAD", { cwd: dir });
    expect(plain.set.manifests).toEqual([]);
    expect(plain.unread.map((finding) => finding.message)).toEqual([
      expect.stringMatching(/^a symbolic link at HEAD/),
    ]);
  });
});
