import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listOciLayoutRepositories } from "./index.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oci-layout-catalog-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function layout(repository: string): Promise<void> {
  await mkdir(path.join(root, repository, "blobs", "sha256"), { recursive: true });
  await writeFile(path.join(root, repository, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
}

describe("listOciLayoutRepositories", () => {
  it("finds nested layouts, sorted, below an optional prefix", async () => {
    await layout("b/app");
    await layout("a");
    await layout("a/nested");
    await layout("team/x/y");
    await mkdir(path.join(root, "empty/folder"), { recursive: true });
    // A folder named like a repository inside blobs/ is never a repository.
    await layout("a/blobs/fake");
    expect(await listOciLayoutRepositories(root, "")).toEqual(["a", "a/nested", "b/app", "team/x/y"]);
    expect(await listOciLayoutRepositories(root, "team")).toEqual(["team/x/y"]);
    expect(await listOciLayoutRepositories(root, "a")).toEqual(["a", "a/nested"]);
    expect(await listOciLayoutRepositories(root, "absent")).toEqual([]);
    expect(await listOciLayoutRepositories(path.join(root, "no-such-dir"), "")).toEqual([]);
  });

  it("skips folders that are not repository names and does not follow symlinks", async () => {
    await layout("good");
    await layout("Bad-Upper");
    const outside = await mkdtemp(path.join(os.tmpdir(), "oci-layout-catalog-outside-"));
    try {
      await mkdir(path.join(outside, "secret"), { recursive: true });
      await writeFile(path.join(outside, "secret", "oci-layout"), "{}");
      await symlink(outside, path.join(root, "link"));
      expect(await listOciLayoutRepositories(root, "")).toEqual(["good"]);
      // A prefix through a symlink is refused, not listed.
      await expect(listOciLayoutRepositories(root, "link")).rejects.toMatchObject({
        code: "layout-invalid",
        message: expect.stringMatching(/link is a symlink/) as unknown,
      });
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("refuses relative directories and invalid prefixes", async () => {
    await expect(listOciLayoutRepositories("relative", "")).rejects.toMatchObject({ code: "layout-invalid" });
    await expect(listOciLayoutRepositories(root, "../up")).rejects.toMatchObject({ code: "layout-invalid" });
    await expect(listOciLayoutRepositories(root, "a\0b")).rejects.toMatchObject({ code: "layout-invalid" });
  });
});
