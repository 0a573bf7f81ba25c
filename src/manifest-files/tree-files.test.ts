import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManifestTree, TreeFileRefusedError, type TreeFileRead } from "./tree-files.js";

let scratch: string;
let root: string;
let outside: string;
let tree: ManifestTree;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "promoter-tree-files-"));
  root = path.join(scratch, "tree");
  outside = path.join(scratch, "outside");
  await mkdir(path.join(root, "images", "p"), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, "secret.yaml"), "outside\n");
  tree = await ManifestTree.at(root);
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const text = (read: TreeFileRead): string | TreeFileRead =>
  read.kind === "bytes" ? read.bytes.toString("utf8") : read;
const read = (file: string, maxBytes = 1024) => tree.read(path.join(root, file), { maxBytes });

describe("ManifestTree.read", () => {
  it("reads a regular file, and one behind a link that stays inside the tree", async () => {
    await writeFile(path.join(root, "plain.yaml"), "- name: a\n");
    await symlink("../../plain.yaml", path.join(root, "images", "p", "linked.yaml"));
    expect(text(await read("plain.yaml"))).toBe("- name: a\n");
    expect(text(await read("images/p/linked.yaml"))).toBe("- name: a\n");
    await expect(read("empty.yaml")).rejects.toMatchObject({ code: "ENOENT" });
    await writeFile(path.join(root, "empty.yaml"), "");
    expect(text(await read("empty.yaml"))).toBe("");
  });

  it("refuses a link out of the tree, directly or through a linked folder", async () => {
    await symlink(path.join(outside, "secret.yaml"), path.join(root, "out.yaml"));
    await symlink(outside, path.join(root, "images", "out"));
    expect(await read("out.yaml")).toEqual({ kind: "refused", refusal: { reason: "outside-tree" } });
    expect(await read("images/out/secret.yaml")).toEqual({
      kind: "refused",
      refusal: { reason: "outside-tree" },
    });
  });

  it("refuses folders and FIFOs without opening them", async () => {
    await mkdir(path.join(root, "folder.yaml"));
    execFileSync("mkfifo", [path.join(root, "fifo.yaml")]);
    expect(await read("folder.yaml")).toEqual({
      kind: "refused",
      refusal: { reason: "not-a-file", kind: "directory" },
    });
    // Opening a FIFO for reading would wait for a writer; this returns at once.
    expect(await read("fifo.yaml")).toEqual({
      kind: "refused",
      refusal: { reason: "not-a-file", kind: "FIFO" },
    });
  });

  it("refuses a file above the limit without reading it", async () => {
    await writeFile(path.join(root, "big.yaml"), "");
    await truncate(path.join(root, "big.yaml"), 4096);
    expect(await read("big.yaml", 1000)).toEqual({
      kind: "refused",
      refusal: { reason: "too-large", size: 4096, limit: 1000 },
    });
  });

  it.skipIf(!existsSync("/proc/self/status"))(
    "refuses a file whose content is not the size it reports (/proc)",
    async () => {
      const proc = await ManifestTree.at("/proc/self");
      expect(await proc.read("/proc/self/status", { maxBytes: 1 << 20 })).toEqual({
        kind: "refused",
        refusal: { reason: "unstable" },
      });
    },
  );
});

describe("ManifestTree.writeAtomically", () => {
  it("creates a missing file and its folders inside the tree", async () => {
    const file = path.join(root, "images", "new", "images.yaml");
    await tree.writeAtomically(file, "# new\n");
    expect(await readFile(file, "utf8")).toBe("# new\n");
    expect(await readdir(path.dirname(file))).toEqual(["images.yaml"]);
  });

  it("writes a link inside the tree at its target, with the target's mode", async () => {
    const target = path.join(root, "shared.yaml");
    await writeFile(target, "# old\n");
    await chmod(target, 0o640);
    const link = path.join(root, "images", "p", "images.yaml");
    await symlink("../../shared.yaml", link);
    await tree.writeAtomically(link, "# edited\n");
    expect(await readFile(target, "utf8")).toBe("# edited\n");
    expect((await stat(target)).mode & 0o777).toBe(0o640);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
  });

  it("refuses a link out of the tree, a link to a missing file and a folder linked out", async () => {
    const victim = path.join(outside, "victim.yaml");
    await writeFile(victim, "# victim\n");
    await mkdir(path.join(root, "images", "w"));
    await symlink(victim, path.join(root, "images", "w", "out.yaml"));
    await symlink(path.join(outside, "created.yaml"), path.join(root, "images", "w", "dangling.yaml"));
    await symlink(outside, path.join(root, "images", "linked-out"));
    const refusal = (file: string) =>
      tree.writeAtomically(path.join(root, file), "# written\n").then(
        () => undefined,
        (error: unknown) => (error instanceof TreeFileRefusedError ? error.refusal : error),
      );
    expect(await refusal("images/w/out.yaml")).toEqual({ reason: "outside-tree" });
    expect(await refusal("images/w/dangling.yaml")).toEqual({ reason: "dangling-link" });
    expect(await refusal("images/linked-out/images.yaml")).toEqual({ reason: "outside-tree" });
    expect(await refusal("images/linked-out/deeper/images.yaml")).toEqual({ reason: "outside-tree" });
    expect(await readFile(victim, "utf8")).toBe("# victim\n");
    expect((await readdir(outside)).sort()).toEqual(["secret.yaml", "victim.yaml"]);
  });

  it("never follows a link planted where a temporary file could be named", async () => {
    const file = path.join(root, "images", "p", "planted.yaml");
    await writeFile(file, "# before\n");
    const victim = path.join(outside, "planted-victim.yaml");
    await writeFile(victim, "# victim\n");
    // The name a writer using the process id would have picked.
    await symlink(victim, path.join(root, "images", "p", `.planted.yaml.${process.pid}.tmp`));
    await tree.writeAtomically(file, "# after\n");
    expect(await readFile(file, "utf8")).toBe("# after\n");
    expect(await readFile(victim, "utf8")).toBe("# victim\n");
    const leftovers = (await readdir(path.dirname(file))).filter((name) => name.endsWith(".tmp"));
    expect(leftovers).toEqual([`.planted.yaml.${process.pid}.tmp`]);
  });
});
