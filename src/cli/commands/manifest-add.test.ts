import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { makeImage, makeIndex, writeOciLayoutDirectly } from "../../../test/support/test-images.js";
import { runCli } from "../main.js";

/** `promoter manifest add` on thin trees whose staging registry is an OCI layout tree. */

const repoRoot = path.resolve(import.meta.dirname, "../../..");
const realTree = path.resolve(repoRoot, "../shared/k8sio/registry.k8s.io");
const haveRealTree = existsSync(realTree);
if (!haveRealTree) console.warn(`skipping manifest add tests on real files: ${realTree} is absent`);

const single = makeImage({ layers: 1, layerSize: 128, mediaTypes: "oci", seed: "add-single" });
const amd64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "add-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "add-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const other = makeImage({ layers: 1, layerSize: 128, mediaTypes: "oci", seed: "add-other" });

let dir: string;

async function run(...args: string[]) {
  const capture = captureIO({ cwd: dir });
  const status = await runCli(args, capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

/** `promoter manifest add --thin-manifest-dir tree --project <project> --image <image> ...rest`. */
function addToManifest(project: string, image: string, ...rest: string[]) {
  return run(
    "manifest",
    "add",
    "--thin-manifest-dir",
    "tree",
    "--project",
    project,
    "--image",
    image,
    ...rest,
    // The layouts are beside the tree, outside it: the operator allows them.
    "--allow-registry",
    "oci:staging",
    "--allow-registry",
    "oci:prod",
  );
}

function git(...args: string[]): string {
  return execFileSync("git", args, {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir },
  });
}

/** `git diff --numstat` of the working tree: [added, deleted] lines per file. */
function numstat(): Record<string, [number, number]> {
  const result: Record<string, [number, number]> = {};
  for (const line of git("diff", "--numstat").trim().split("\n")) {
    if (!line) continue;
    const [added, deleted, file] = line.split("\t");
    if (file) result[file] = [Number(added), Number(deleted)];
  }
  return result;
}

function addedLines(): string[] {
  return git("diff", "-U0")
    .split("\n")
    .filter((line) => line.startsWith("+") && !line.startsWith("+++"))
    .map((line) => line.slice(1));
}

async function writeProject(project: string, images: string): Promise<void> {
  await mkdir(path.join(dir, "tree", "manifests", project), { recursive: true });
  await mkdir(path.join(dir, "tree", "images", project), { recursive: true });
  await writeFile(
    path.join(dir, "tree", "manifests", project, "promoter-manifest.yaml"),
    `registries:\n- name: oci:../../../staging\n  src: true\n- name: oci:../../../prod\n`,
  );
  await writeFile(path.join(dir, "tree", "images", project, "images.yaml"), images);
}

function commitAll(): void {
  git("init", "-q");
  git("add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base");
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "manifest-add-"));
  await writeOciLayoutDirectly(path.join(dir, "staging", "app"), [
    { content: single, tag: "v1.0.0" },
    { content: multi, tag: "v2.0.0" },
    { content: multi, tag: "build-42" },
    { content: other, tag: "v3.0.0" },
  ]);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const IMAGES = `# Images of the demo project.

- name: app   # the main image
  dmap:
    # the first release
    "${single.digest}": ["v1.0.0"]

- name: zeta
  dmap:
    sha256:${"a".repeat(64)}:
    - "1.0"
`;

describe("promoter manifest add", () => {
  it("adds the staging digest of a tag as one line, then finds nothing to do", async () => {
    await writeProject("demo", IMAGES);
    commitAll();
    const first = await addToManifest("demo", "app", "--tag", "v2.0.0");
    expect(first.status, first.err).toBe(0);
    expect(first.out).toBe(`tree/images/demo/images.yaml:7: added ${multi.digest} to app, tags v2.0.0\n`);
    expect(numstat()).toEqual({ "tree/images/demo/images.yaml": [1, 0] });
    expect(addedLines()).toEqual([`    "${multi.digest}": ["v2.0.0"]`]);
    const text = await readFile(path.join(dir, "tree/images/demo/images.yaml"), "utf8");

    const again = await addToManifest("demo", "app", "--tag", "v2.0.0");
    expect(again.status).toBe(0);
    expect(again.out).toContain("already lists app@");
    expect(again.out).toContain("nothing to change");
    expect(await readFile(path.join(dir, "tree/images/demo/images.yaml"), "utf8")).toBe(text);

    // The layouts are beside the tree, outside it: the operator allows them.
    const validated = await run(
      "validate",
      "--thin-manifest-dir",
      "tree",
      "--allow-registry",
      "oci:staging",
      "--allow-registry",
      "oci:prod",
    );
    expect(validated.status, validated.out).toBe(0);
  });

  it("sets production tags on a digest, lists a digest without a tag, adds new images in order", async () => {
    await writeProject("demo", IMAGES);
    commitAll();
    const tagged = await addToManifest(
      "demo",
      "app",
      "--digest",
      single.digest,
      "--tag",
      "v1.0",
      "--tag",
      "v1",
    );
    expect(tagged.status, tagged.err).toBe(0);
    expect(numstat()).toEqual({ "tree/images/demo/images.yaml": [1, 1] });
    expect(addedLines()).toEqual([`    "${single.digest}": ["v1.0.0", "v1.0", "v1"]`]);

    const tagless = await addToManifest("demo", "app", "--digest", amd64.digest);
    expect(tagless.status, tagless.err).toBe(0);
    expect(tagless.out).toContain("(no tag)");
    expect(addedLines()).toContain(`    "${amd64.digest}": []`);

    await writeOciLayoutDirectly(path.join(dir, "staging", "middle"), [{ content: other, tag: "v9" }]);
    const image = await addToManifest("demo", "middle", "--tag", "v9");
    expect(image.status, image.err).toBe(0);
    const text = await readFile(path.join(dir, "tree/images/demo/images.yaml"), "utf8");
    expect(text).toContain(`\n- name: middle\n  dmap:\n    "${other.digest}": ["v9"]\n- name: zeta\n`);
    expect(numstat()["tree/images/demo/images.yaml"]).toEqual([5, 1]);
  });

  it("refuses latest, tags that point elsewhere in any project, and what staging does not have", async () => {
    await writeProject("demo", IMAGES);
    await writeProject("other", `- name: app\n  dmap:\n    "${other.digest}": ["v2.0.0", "v4"]\n`);
    commitAll();
    const latest = await addToManifest("demo", "app", "--tag", "latest");
    expect(latest.status).toBe(1);
    expect(latest.err).toContain('tag "latest" is refused');

    // Both projects list app under the destination they share: the repository has no single
    // owner (disputed-repository), so nothing is added to it.
    const disputed = await addToManifest("demo", "app", "--tag", "v2.0.0");
    expect(disputed.status).toBe(1);
    expect(disputed.err).toMatch(/prod\/app, which projects "demo" and "other" each list/);
    expect(numstat()).toEqual({});

    // A tag that already points at another digest of the project (other lists another image now).
    await writeFile(
      path.join(dir, "tree", "images", "other", "images.yaml"),
      `- name: tool\n  dmap:\n    "${other.digest}": ["v2.0.0", "v4"]\n`,
    );
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-am", "other: tool");
    const moved = await addToManifest("demo", "app", "--digest", multi.digest, "--tag", "v1.0.0");
    expect(moved.status).toBe(1);
    expect(moved.err).toMatch(
      /prod\/app:v1\.0\.0 already points at sha256:\S+ at \S*tree\/images\/demo\/images\.yaml:6:\d+ \(project demo\)/,
    );
    expect(numstat()).toEqual({});

    const missing = await addToManifest("demo", "app", "--tag", "v7");
    expect(missing.status).toBe(1);
    expect(missing.err).toContain("tag v7 is not in the staging repository");
    const unknownDigest = await addToManifest("demo", "app", "--digest", `sha256:${"b".repeat(64)}`);
    expect(unknownDigest.status).toBe(1);
    expect(numstat()).toEqual({});
  });

  it("reports usage problems with exit status 2", async () => {
    await writeProject("demo", IMAGES);
    const base = ["manifest", "add", "--thin-manifest-dir", "tree"];
    expect((await run(...base, "--project", "nope", "--image", "app", "--tag", "v1")).status).toBe(2);
    expect((await run(...base, "--project", "demo", "--image", "app")).status).toBe(2);
    expect((await run(...base, "--project", "demo", "--image", "App", "--tag", "v1")).status).toBe(2);
    expect((await run(...base, "--project", "demo", "--image", "app", "--digest", "sha256:12")).status).toBe(
      2,
    );
    expect((await run("manifest", "add", "--project", "demo", "--image", "app", "--tag", "v1")).status).toBe(
      2,
    );
  });

  it("--dry-run writes nothing; a read-only file keeps its mode when written", async () => {
    await writeProject("demo", IMAGES);
    const file = path.join(dir, "tree/images/demo/images.yaml");
    const dry = await addToManifest("demo", "app", "--tag", "v3.0.0", "--dry-run");
    expect(dry.status).toBe(0);
    expect(dry.out).toContain("would add");
    expect(await readFile(file, "utf8")).toBe(IMAGES);
    await chmod(file, 0o640);
    const real = await addToManifest("demo", "app", "--tag", "v3.0.0");
    expect(real.status).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o640);
  });
});

describe.skipIf(!haveRealTree)("promoter manifest add on copies of real images.yaml files", () => {
  it.each([
    ["k8s-staging-kubebuilder", "kube-rbac-proxy"],
    ["k8s-staging-kops", "dns-controller"],
    ["k8s-staging-kubernetes", "kube-apiserver"],
  ])("%s: adding %s shows only the added lines in git diff", async (project, image) => {
    await writeOciLayoutDirectly(path.join(dir, "staging", image), [
      { content: multi, tag: "v99.0.0" },
      { content: single, tag: "v99.0.1" },
    ]);
    const real = await readFile(path.join(realTree, "images", project, "images.yaml"), "utf8");
    await writeProject(project, real);
    commitAll();
    const added = await addToManifest(project, image, "--tag", "v99.0.0");
    expect(added.status, added.err).toBe(0);
    const stats = numstat()[`tree/images/${project}/images.yaml`];
    expect(stats?.[1]).toBe(0);
    expect(addedLines().join("\n")).toContain(multi.digest);
    expect(addedLines().join("\n")).toContain("v99.0.0");

    const tag = await addToManifest(project, image, "--tag", "v99.0.1");
    expect(tag.status, tag.err).toBe(0);
    const after = numstat()[`tree/images/${project}/images.yaml`];
    expect(after?.[1]).toBe(0);
    expect(after?.[0]).toBeGreaterThan(stats?.[0] ?? 0);
    // Everything else of the file is still there, in order.
    const text = await readFile(path.join(dir, "tree/images", project, "images.yaml"), "utf8");
    const kept = text
      .split("\n")
      .filter(
        (line) => !line.includes("v99.0") && !line.includes(multi.digest) && !line.includes(single.digest),
      );
    expect(kept.join("\n")).toBe(real.split("\n").join("\n"));
  });
});
