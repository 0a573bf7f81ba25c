import { existsSync } from "node:fs";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AbortedError, UsageError } from "../errors.js";
import { EmptyManifestTreeError, loadManifests, ManifestIoError } from "./load.js";
import { MAX_MANIFEST_FILE_BYTES, validate, type ManifestSet } from "../manifest/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixtures = path.join(repoRoot, "test/fixtures/manifests");
const k8sio = path.resolve(repoRoot, "../shared/k8sio");
const registryTree = path.join(k8sio, "registry.k8s.io");
const legacyTree = path.join(k8sio, "legacy-backfill");

function short(set: ManifestSet, root: string): string[] {
  return set.findings.map(
    (f) =>
      `${path.relative(root, f.position.file)}:${f.position.line}:${f.position.column} ${f.severity}[${f.rule}]`,
  );
}

describe("loadManifests: thin-manifest fixture trees", () => {
  it("loads a valid tree, ignoring other files and images without a manifest", async () => {
    const root = path.join(fixtures, "valid");
    const set = await loadManifests({ thinManifestDir: "valid" }, { cwd: fixtures });
    expect(
      set.manifests.map((m) => [
        m.project,
        path.relative(root, m.file),
        m.imagesFile && path.relative(root, m.imagesFile),
      ]),
    ).toEqual([
      ["alpha", "manifests/alpha/promoter-manifest.yaml", "images/alpha/images.yaml"],
      ["beta", "manifests/beta/promoter-manifest.yaml", "images/beta/images.yaml"],
    ]);
    expect(short(set, root)).toEqual(["manifests/beta/promoter-manifest.yaml:5:1 warning[deprecated-key]"]);
    expect(validate(set).summary).toEqual({
      projects: 2,
      images: 2,
      digests: 4,
      tags: 4,
      destinations: 3,
      // alpha: controller has 4 tags, legacy 1 tagless digest -> 5 x 2 destinations; beta: none.
      edges: 10,
      errors: 0,
      warnings: 1,
    });
    const alpha = set.manifests[0];
    expect(alpha?.images[0]?.digests[0]?.tags.map((t) => t.tag)).toEqual(["v1.0.0", "3.10"]);
    expect(alpha?.registries[1]?.serviceAccount).toBe("promoter@k8s-artifacts-prod.iam.gserviceaccount.com");
  });

  it("reports a missing images file at the manifest's position", async () => {
    const root = path.join(fixtures, "missing-images");
    const set = await loadManifests({ thinManifestDir: root });
    expect(short(set, root)).toEqual(["manifests/foo/promoter-manifest.yaml:1:1 error[missing-images-file]"]);
    expect(set.manifests.map((m) => m.project)).toEqual(["foo"]);
  });

  it("reports a manifest at a nested path and loads the others", async () => {
    const root = path.join(fixtures, "nested");
    const set = await loadManifests({ thinManifestDir: root });
    expect(short(set, root)).toEqual([
      "manifests/group/inner/promoter-manifest.yaml:1:1 error[misplaced-manifest]",
    ]);
    expect(set.manifests.map((m) => m.project)).toEqual(["ok"]);
  });

  it("refuses a tree without manifests", async () => {
    await expect(loadManifests({ thinManifestDir: path.join(fixtures, "empty") })).rejects.toThrow(
      EmptyManifestTreeError,
    );
    await expect(loadManifests({ thinManifestDir: path.join(fixtures, "empty") })).rejects.toMatchObject({
      code: "no-manifests",
      message: expect.stringMatching(/no promoter-manifest\.yaml found in .*manifests/) as unknown,
    });
  });

  it("follows symbolic links to project folders and does not loop on a link to an ancestor", async () => {
    const root = path.join(fixtures, "symlinked");
    const set = await loadManifests({ thinManifestDir: root });
    expect(set.findings).toEqual([]);
    expect(set.manifests.map((m) => [m.project, path.relative(root, m.file)])).toEqual([
      ["linked", "manifests/linked/promoter-manifest.yaml"],
    ]);
    expect(set.manifests[0]?.images.map((i) => i.name)).toEqual(["app"]);
  });

  it("refuses an image that lands in another project's repository, naming its owner", async () => {
    // one promotes shared/tool to .../images, two promotes tool to .../images/shared: the
    // repository .../images/shared/tool belongs to two, whose destination is more specific.
    const root = path.join(fixtures, "conflict");
    const set = await loadManifests({ thinManifestDir: root });
    expect(short(set, root)).toEqual(["images/one/images.yaml:1:3 error[foreign-repository]"]);
    expect(set.findings[0]?.message).toMatch(
      /^image "shared\/tool" would be published to us-docker\.pkg\.dev\/k8s-artifacts-prod\/images\/shared\/tool, which belongs to project "two"/,
    );
    expect(
      set.findings[0]?.related?.map((p) => `${path.relative(root, p.file)}:${p.line}:${p.column}`),
    ).toEqual(["manifests/two/promoter-manifest.yaml:4:9"]);
  });
});

describe("loadManifests: plain manifests", () => {
  it("resolves oci: registries against the manifest's folder", async () => {
    const set = await loadManifests({ manifest: path.join(fixtures, "plain/oci-manifest.yaml") });
    expect(set.findings).toEqual([]);
    expect(set.manifests[0]?.project).toBe("oci-manifest");
    expect(set.manifests[0]?.registries.map((r) => [r.name, r.location])).toEqual([
      [
        "oci:./staging",
        { kind: "oci-layout", name: "oci:./staging", directory: path.join(fixtures, "plain/staging") },
      ],
      ["oci:../prod", { kind: "oci-layout", name: "oci:../prod", directory: path.join(fixtures, "prod") }],
    ]);
  });

  it("reports invalid entries with absolute file positions", async () => {
    const file = path.join(fixtures, "plain/invalid.yaml");
    const set = await loadManifests({ manifest: "plain/invalid.yaml" }, { cwd: fixtures });
    expect(short(set, fixtures)).toEqual([
      "plain/invalid.yaml:8:5 error[invalid-digest]",
      "plain/invalid.yaml:9:89 error[invalid-tag]",
    ]);
    expect(set.findings[0]?.position.file).toBe(file);
  });
});

describe("loadManifests: I/O errors", () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), "promoter-load-"));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("throws ManifestIoError for a missing manifest file or directory", async () => {
    await expect(loadManifests({ manifest: "nope.yaml" }, { cwd: scratch })).rejects.toMatchObject({
      code: "manifest-io",
      message: "cannot read manifest file nope.yaml: no such file or directory",
    });
    await expect(loadManifests({ thinManifestDir: "nope" }, { cwd: scratch })).rejects.toMatchObject({
      code: "manifest-io",
      message: "thin-manifest directory nope does not exist",
    });
    await expect(loadManifests({ thinManifestDir: scratch })).rejects.toThrow(ManifestIoError);
    await expect(
      loadManifests({ thinManifestDir: "plain/invalid.yaml" }, { cwd: fixtures }),
    ).rejects.toMatchObject({
      code: "manifest-io",
      message: "thin-manifest directory plain/invalid.yaml is not a directory",
    });
  });

  it("reports a folder where a tree's file belongs as refused-file, and loads the rest", async () => {
    const root = path.join(scratch, "folder-for-file");
    await mkdir(path.join(root, "manifests/foo"), { recursive: true });
    await mkdir(path.join(root, "images/foo/images.yaml"), { recursive: true });
    await writeFile(path.join(root, "manifests/foo/promoter-manifest.yaml"), "registries: []\n");
    const set = await loadManifests({ thinManifestDir: root });
    expect(short(set, root)).toEqual([
      "images/foo/images.yaml:1:1 error[refused-file]",
      "manifests/foo/promoter-manifest.yaml:1:1 error[no-source-registry]",
    ]);
    expect(set.findings[0]?.message).toBe("it is a directory, not a regular file; it was not read");
    expect(set.manifests.map((m) => m.project)).toEqual(["foo"]);
  });

  it("reports links out of the tree as refused-file without reading behind them", async () => {
    const root = path.join(scratch, "links-out");
    const outside = path.join(scratch, "outside");
    await mkdir(path.join(outside, "project"), { recursive: true });
    await writeFile(path.join(outside, "secret.yaml"), "outside-secret\n");
    await writeFile(path.join(outside, "project", "promoter-manifest.yaml"), "outside-secret\n");
    for (const project of ["a", "b"]) {
      await mkdir(path.join(root, "manifests", project), { recursive: true });
      await mkdir(path.join(root, "images", project), { recursive: true });
    }
    await symlink(path.join(outside, "secret.yaml"), path.join(root, "manifests/a/promoter-manifest.yaml"));
    await writeFile(path.join(root, "manifests/b/promoter-manifest.yaml"), "registries: []\n");
    await symlink(path.join(outside, "secret.yaml"), path.join(root, "images/b/images.yaml"));
    await symlink(path.join(outside, "project"), path.join(root, "manifests/c"));
    // Never read, so never refused: a link out that is neither a manifest nor a folder.
    await symlink(path.join(outside, "secret.yaml"), path.join(root, "manifests/README.md"));
    const set = await loadManifests({ thinManifestDir: root });
    expect(short(set, root)).toEqual([
      "images/b/images.yaml:1:1 error[refused-file]",
      "manifests/a/promoter-manifest.yaml:1:1 error[refused-file]",
      "manifests/b/promoter-manifest.yaml:1:1 error[no-source-registry]",
      "manifests/c:1:1 error[refused-file]",
    ]);
    expect(JSON.stringify(set)).not.toContain("outside-secret");
    expect(set.manifests.map((m) => m.project)).toEqual(["b"]);
  });

  it("refuses a plain manifest linked out of its folder, and follows one that stays in it", async () => {
    const folder = path.join(scratch, "plain-links");
    await mkdir(path.join(folder, "..data"), { recursive: true });
    await writeFile(path.join(folder, "..data", "manifest.yaml"), "registries: []\nimages: []\n");
    await symlink("..data/manifest.yaml", path.join(folder, "inside.yaml"));
    await writeFile(path.join(scratch, "secret.yaml"), "outside-secret\n");
    await symlink(path.join(scratch, "secret.yaml"), path.join(folder, "outside.yaml"));
    const inside = await loadManifests({ manifest: path.join(folder, "inside.yaml") });
    expect(inside.findings.map((finding) => finding.rule)).toEqual(["no-source-registry"]);
    expect(inside.manifests.map((manifest) => manifest.project)).toEqual(["inside"]);
    const outside = await loadManifests({ manifest: path.join(folder, "outside.yaml") });
    expect(outside.findings).toMatchObject([
      {
        rule: "refused-file",
        message: "it leads outside the folder of the manifest file through a symbolic link; it was not read",
      },
    ]);
  });

  it("refuses a file above the size limit without reading it", async () => {
    const file = path.join(scratch, "huge.yaml");
    await writeFile(file, "");
    const { truncate } = await import("node:fs/promises");
    await truncate(file, MAX_MANIFEST_FILE_BYTES + 1);
    const started = performance.now();
    const set = await loadManifests({ manifest: file });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(set.findings).toMatchObject([{ rule: "yaml-limit", position: { file, line: 1, column: 1 } }]);
  });

  it("refuses a file that is not UTF-8, saying where the first bad byte is", async () => {
    const file = path.join(scratch, "latin1.yaml");
    // "é" in Latin-1 (0xe9) inside a comment on line 2, after 10 characters.
    await writeFile(
      file,
      Buffer.concat([Buffer.from("registries: []\n# caf\u00e9 ok "), Buffer.from([0xe9]), Buffer.from("\n")]),
    );
    const set = await loadManifests({ manifest: file });
    expect(set.manifests).toEqual([]);
    expect(set.findings).toMatchObject([
      {
        rule: "yaml-syntax",
        position: { file, line: 2, column: 11 },
        message: "the file is not UTF-8 text (byte 0xe9 at line 2, column 11); YAML files are UTF-8",
      },
    ]);
  });

  it("needs exactly one input and stops when aborted", async () => {
    await expect(loadManifests({})).rejects.toThrow(UsageError);
    await expect(loadManifests({ manifest: "a", thinManifestDir: "b" })).rejects.toThrow(UsageError);
    const controller = new AbortController();
    controller.abort();
    await expect(
      loadManifests({ thinManifestDir: path.join(fixtures, "valid") }, { signal: controller.signal }),
    ).rejects.toThrow(AbortedError);
  });
});

describe.skipIf(!existsSync(registryTree))("the real registry.k8s.io tree (../shared/k8sio)", () => {
  let set: ManifestSet;
  beforeAll(async () => {
    set = await loadManifests({ thinManifestDir: registryTree });
  });

  it("loads all 75 projects", () => {
    expect(set.manifests).toHaveLength(75);
    expect(set.manifests.every((m) => m.registries.filter((r) => r.src).length === 1)).toBe(true);
  });

  it("reports the one genuinely invalid entry, and no other error", () => {
    const errors = set.findings.filter((f) => f.severity === "error");
    expect(short({ manifests: [], findings: errors }, registryTree)).toEqual([
      "images/k8s-staging-ingress-nginx/images.yaml:152:5 error[invalid-digest]",
    ]);
    expect(errors[0]?.message).toBe(
      'invalid digest "sha256:23eb4b1775fbaa2adca55c73cf0341e1224d6308689b6f4b3aa1523312eb81c" in image "e2e-test-httpbin": sha256 needs 64 hex digits, found 63',
    );
  });

  it("warns about the deprecated imagesPath keys and the null dmaps", () => {
    const warnings = set.findings.filter((f) => f.severity === "warning");
    expect(short({ manifests: [], findings: warnings }, registryTree)).toEqual([
      "images/k8s-staging-sig-storage/images.yaml:259:3 warning[empty-dmap]",
      "images/k8s-staging-sig-storage/images.yaml:261:3 warning[empty-dmap]",
      "manifests/k8s-staging-jobset/promoter-manifest.yaml:49:1 warning[deprecated-key]",
      "manifests/k8s-staging-kueue/promoter-manifest.yaml:49:1 warning[deprecated-key]",
      "manifests/k8s-staging-lws/promoter-manifest.yaml:49:1 warning[deprecated-key]",
      "manifests/k8s-staging-scheduler-plugins/promoter-manifest.yaml:49:1 warning[deprecated-key]",
    ]);
  });

  it("counts about 720,000 promotion edges", () => {
    const { summary } = validate(set);
    expect(summary).toMatchObject({ projects: 75, errors: 1, warnings: 6 });
    expect(summary.edges).toBe(720_456);
    expect(summary.digests).toBe(20_016);
  });
});

describe.skipIf(!existsSync(legacyTree))("the real legacy-backfill tree (../shared/k8sio)", () => {
  it("loads the 3 MB frozen manifest with its tagless digests and latest tags", async () => {
    const set = await loadManifests({ thinManifestDir: legacyTree });
    expect(set.findings).toEqual([]);
    const { summary } = validate(set);
    expect(summary).toMatchObject({
      projects: 1,
      images: 484,
      digests: 32_422,
      tags: 23_897,
      destinations: 3,
    });
    expect(summary.edges).toBe(97_959);
    const tagless = set.manifests[0]?.images
      .flatMap((i) => i.digests)
      .filter((d) => d.tags.length === 0).length;
    // Every edge is a tag or a tagless digest, times 3 destinations.
    expect(tagless).toBe(8_756);
    expect(summary.edges).toBe(3 * (summary.tags + 8_756));
    const latest = set.manifests[0]?.images
      .flatMap((i) => i.digests.flatMap((d) => d.tags))
      .filter((t) => t.tag === "latest");
    expect(latest?.length).toBeGreaterThan(0);
  });
});

if (!existsSync(registryTree) || !existsSync(legacyTree)) {
  console.warn(
    `skipping real-data manifest tests: ${k8sio} is absent (it holds kpromo trees from kubernetes/k8s.io)`,
  );
}
