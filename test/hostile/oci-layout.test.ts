import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyGraphs } from "../../src/copy/index.js";
import { parseDigest, type RepositoryPath } from "../../src/reference/index.js";
import { createStoreProvider, openOnSide } from "../../src/registry/index.js";
import { expectClear, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import {
  makeImage,
  pushTagsWithSkopeo,
  writeOciLayoutDirectly,
  type TestImage,
} from "../support/test-images.js";

/**
 * Findings 6 and 7 and their class: every blob that enters an OCI layout destination is verified
 * against its digest whatever path it takes (upload, mount between repositories of one tree, a
 * blob already there), and nothing below the tree root a manifest names (`oci:DIR`) is reached
 * through a symlink, for writes or reads: repository folders, `blobs/`, `blobs/sha256`, blob
 * files, `index.json`, `oci-layout`. The tree root itself may be a symlink (the user named it).
 * Through the real CLI where the CLI reaches the code; the copy engine's mount between
 * repositories of one tree is reached through the library API (the CLI always uses the same
 * repository name on both sides).
 */

let work: string;
let outside: string;
let sentinel: string;
let registry: TestRegistry;

function image(seed: string): TestImage {
  return makeImage({ layers: 1, layerSize: 4096, mediaTypes: "oci", seed: `hostile-layout-${seed}` });
}

const hex = (digest: string) => digest.slice("sha256:".length);
const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

function layerOf(content: TestImage) {
  const layer = content.layers[0];
  if (!layer) throw new Error("no layer");
  return layer;
}

/** Flips one byte of a file in place (same size, same inode). */
async function flipByte(file: string, at = 100): Promise<void> {
  const handle = await open(file, "r+");
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

async function filesUnder(folder: string): Promise<string[]> {
  return (await readdir(folder, { recursive: true })).map(String).sort();
}

/**
 * `case/staging/<name>` holds `content` tagged v1; `case.yaml` promotes it from `oci:case/staging`
 * to `oci:case/prod` (or the given destination).
 */
async function layoutCase(
  name: string,
  content: TestImage,
  options: { image?: string; destination?: string; source?: string } = {},
): Promise<string> {
  const imageName = options.image ?? "app";
  const tree = path.join(work, name);
  await writeOciLayoutDirectly(path.join(tree, "staging", imageName), [{ content, tag: "v1" }]);
  await writeFile(
    path.join(work, `${name}.yaml`),
    [
      "registries:",
      `- name: ${options.source ?? `oci:${name}/staging`}`,
      "  src: true",
      `- name: ${options.destination ?? `oci:${name}/prod`}`,
      "images:",
      `- name: ${imageName}`,
      "  dmap:",
      `    "${content.digest}": ["v1"]`,
      "",
    ].join("\n"),
  );
  return tree;
}

function promote(name: string) {
  return runPromoter(["promote", "--manifest", `${name}.yaml`, "--confirm", "--quiet"], { cwd: work });
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "hostile-layout-"));
  outside = path.join(work, "outside");
  await mkdir(outside, { recursive: true });
  sentinel = path.join(outside, "sentinel.txt");
  await writeFile(sentinel, "outside the tree\n");
  registry = await startRegistry();
}, 120_000);

afterAll(async () => {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

describe("finding 7: nothing below the tree root is reached through a symlink", () => {
  it("a destination repository folder that is a symlink out of the tree: nothing is written there", async () => {
    const tree = await layoutCase("repo-link", image("repo-link"));
    const captured = path.join(outside, "captured-repo");
    await mkdir(captured, { recursive: true });
    await mkdir(path.join(tree, "prod"), { recursive: true });
    await symlink(captured, path.join(tree, "prod", "app"));
    expectClear(await promote("repo-link"), 1, /prod\/app: app is a symlink/);
    expect(await filesUnder(captured)).toEqual([]);
  });

  it("a folder on the way to a nested repository that is a symlink out of the tree", async () => {
    const tree = await layoutCase("folder-link", image("folder-link"), { image: "team/app" });
    const captured = path.join(outside, "captured-team");
    await mkdir(captured, { recursive: true });
    await mkdir(path.join(tree, "prod"), { recursive: true });
    await symlink(captured, path.join(tree, "prod", "team"));
    expectClear(await promote("folder-link"), 1, /prod\/team\/app: team is a symlink/);
    expect(await filesUnder(captured)).toEqual([]);
  });

  it("a destination repository that is a symlink to the staging repository of the same tree", async () => {
    const tree = await layoutCase("inside-link", image("inside-link"));
    const before = await filesUnder(path.join(tree, "staging"));
    const stagingIndex = await readFile(path.join(tree, "staging", "app", "index.json"), "utf8");
    await mkdir(path.join(tree, "prod"), { recursive: true });
    await symlink(path.join("..", "staging", "app"), path.join(tree, "prod", "app"));
    // Production would be staging: whoever pushes to staging would rewrite production.
    expectClear(await promote("inside-link"), 1, /prod\/app: app is a symlink/);
    expect(await filesUnder(path.join(tree, "staging"))).toEqual(before);
    expect(await readFile(path.join(tree, "staging", "app", "index.json"), "utf8")).toBe(stagingIndex);
  });

  it("blobs/, blobs/sha256, index.json and oci-layout that are symlinks in the destination", async () => {
    const cases: [string, (repository: string) => Promise<void>][] = [
      ["blobs", (repository) => symlink(outside, path.join(repository, "blobs"))],
      [
        "blobs/sha256",
        async (repository) => {
          await mkdir(path.join(repository, "blobs"));
          await symlink(outside, path.join(repository, "blobs", "sha256"));
        },
      ],
      ["index.json", (repository) => symlink(sentinel, path.join(repository, "index.json"))],
      ["oci-layout", (repository) => symlink(sentinel, path.join(repository, "oci-layout"))],
    ];
    for (const [what, plant] of cases) {
      const name = `link-${what.replace("/", "-")}`;
      const tree = await layoutCase(name, image(name));
      const repository = path.join(tree, "prod", "app");
      await mkdir(repository, { recursive: true });
      await plant(repository);
      const entries = await filesUnder(outside);
      expectClear(await promote(name), 1, new RegExp(`${what.replace(".", "\\.")} is a symlink`));
      expect(await filesUnder(outside), what).toEqual(entries);
      expect(await readFile(sentinel, "utf8")).toBe("outside the tree\n");
    }
  });

  it("a staging repository folder that is a symlink out of the tree is not read", async () => {
    const content = image("read-link");
    const elsewhere = path.join(outside, "elsewhere-app");
    await writeOciLayoutDirectly(elsewhere, [{ content, tag: "v1" }]);
    const tree = await layoutCase("read-link", content);
    await rm(path.join(tree, "staging", "app"), { recursive: true });
    await symlink(elsewhere, path.join(tree, "staging", "app"));
    expectClear(await promote("read-link"), 1, /staging\/app: app is a symlink/);
    await expect(lstat(path.join(tree, "prod", "app", "index.json"))).rejects.toThrow();
  });

  it("a tree root that is itself a symlink is the user's choice and works", async () => {
    const content = image("root-link");
    const real = path.join(work, "real-tree");
    await writeOciLayoutDirectly(path.join(real, "staging", "app"), [{ content, tag: "v1" }]);
    await mkdir(path.join(real, "prod"), { recursive: true });
    await symlink(real, path.join(work, "tree-link"));
    await layoutCase("root-link", content, {
      source: "oci:tree-link/staging",
      destination: "oci:tree-link/prod",
    });
    expectClear(await promote("root-link"), 0);
    const blob = await readFile(
      path.join(real, "prod", "app", "blobs", "sha256", hex(layerOf(content).descriptor.digest)),
    );
    expect(sha256(blob)).toBe(layerOf(content).descriptor.digest);
  });
});

describe("finding 6: every blob entering a layout destination is verified against its digest", () => {
  it("a blob already in the destination with other bytes is not trusted: it is replaced", async () => {
    const content = image("present-corrupt");
    const tree = await layoutCase("present-corrupt", content);
    const layer = layerOf(content);
    const repository = path.join(tree, "prod", "app");
    await mkdir(path.join(repository, "blobs", "sha256"), { recursive: true });
    await writeFile(path.join(repository, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const planted = Buffer.from(layer.bytes);
    planted[10] = (planted[10] ?? 0) ^ 0xff;
    await writeFile(path.join(repository, "blobs", "sha256", hex(layer.descriptor.digest)), planted);
    // The manifest blob too: index.json must not end up naming bytes that are not the manifest.
    await writeFile(path.join(repository, "blobs", "sha256", hex(content.digest)), "not the manifest");
    expectClear(await promote("present-corrupt"), 0);
    for (const [digest, what] of [
      [layer.descriptor.digest, "layer"],
      [content.digest, "manifest"],
    ] as const) {
      const bytes = await readFile(path.join(repository, "blobs", "sha256", hex(digest)));
      expect(sha256(bytes), what).toBe(digest);
    }
  });

  it("a staging layout blob with a flipped byte does not reach the destination", async () => {
    const content = image("flipped-layout");
    const tree = await layoutCase("flipped-layout", content);
    await flipByte(
      path.join(tree, "staging", "app", "blobs", "sha256", hex(layerOf(content).descriptor.digest)),
    );
    expectClear(await promote("flipped-layout"), 1, /hashes to|digest/);
    await expect(
      lstat(path.join(tree, "prod", "app", "blobs", "sha256", hex(layerOf(content).descriptor.digest))),
    ).rejects.toThrow();
  });

  it("a registry blob with a flipped byte does not reach a layout destination", async () => {
    const content = image("flipped-registry");
    await pushTagsWithSkopeo(work, registry.host, "staging/app", [{ content, tag: "v1" }]);
    const digest = layerOf(content).descriptor.digest;
    const data = path.join(
      registry.dataDir,
      "docker/registry/v2/blobs/sha256",
      hex(digest).slice(0, 2),
      hex(digest),
      "data",
    );
    await flipByte(data);
    await layoutCase("flipped-registry", content, { source: `${registry.host}/staging` });
    const tree = path.join(work, "flipped-registry");
    expectClear(await promote("flipped-registry"), 1, /hashes to|digest/);
    await expect(lstat(path.join(tree, "prod", "app", "blobs", "sha256", hex(digest)))).rejects.toThrow();
  });
});

describe("finding 6: the copy engine's mount between repositories of one tree (library API)", () => {
  async function copyWithinTree(tree: string, content: TestImage) {
    const provider = createStoreProvider({ homeDirectory: work, env: {} });
    try {
      const at = (repository: string) =>
        openOnSide(
          provider,
          { kind: "oci-layout", directory: tree, repository: repository as RepositoryPath },
          repository.startsWith("staging") ? "source" : "destination",
        );
      const [outcome] = await copyGraphs([
        {
          id: "mount",
          source: at("staging/app"),
          digest: parseDigest(content.digest),
          destinations: [{ store: at("prod/app"), tags: [] }],
        },
      ]);
      return outcome;
    } finally {
      await provider.close();
    }
  }

  it("a flipped byte in the staging repository is refused, not linked into production", async () => {
    const content = image("mount-flipped");
    const tree = path.join(work, "mount-flipped");
    await writeOciLayoutDirectly(path.join(tree, "staging", "app"), [{ content, tag: "v1" }]);
    const digest = layerOf(content).descriptor.digest;
    await flipByte(path.join(tree, "staging", "app", "blobs", "sha256", hex(digest)));
    const outcome = await copyWithinTree(tree, content);
    expect(outcome?.status).toBe("failed");
    await expect(lstat(path.join(tree, "prod", "app", "blobs", "sha256", hex(digest)))).rejects.toThrow();
  });

  it("a promoted blob does not change when staging's file is rewritten in place afterwards", async () => {
    const content = image("mount-shared");
    const tree = path.join(work, "mount-shared");
    await writeOciLayoutDirectly(path.join(tree, "staging", "app"), [{ content, tag: "v1" }]);
    const digest = layerOf(content).descriptor.digest;
    expect((await copyWithinTree(tree, content))?.status).toBe("copied");
    await flipByte(path.join(tree, "staging", "app", "blobs", "sha256", hex(digest)));
    const promoted = await readFile(path.join(tree, "prod", "app", "blobs", "sha256", hex(digest)));
    expect(sha256(promoted)).toBe(digest);
  });
});
