import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { mergeImages, parseThinManifest, type PromotionManifest } from "../manifest/index.js";
import type { Digest, RepositoryPath, Tag } from "../reference/index.js";
import { addToImagesFile, checkImagesFileEditable, ImagesFileEditError } from "./images-file.js";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const realTree = path.resolve(repoRoot, "../shared/k8sio");
const haveRealTree = existsSync(realTree);
if (!haveRealTree) {
  console.warn(`skipping the real-tree images.yaml edit tests: ${realTree} is absent`);
}

const D = (n: number): Digest => `sha256:${String(n).repeat(64).slice(0, 64)}` as Digest;
const image = (name: string) => name as RepositoryPath;
const tags = (...names: string[]) => names as Tag[];

/** Line-level difference: the lines removed from `before` and added in `after` (one hunk). */
function hunk(before: string, after: string): { removed: string[]; added: string[] } {
  const a = before.split("\n");
  const b = after.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  return { removed: a.slice(start, endA), added: b.slice(start, endB) };
}

const REGISTRIES = {
  file: "promoter-manifest.yaml",
  text: "registries:\n- name: gcr.io/staging\n  src: true\n- name: gcr.io/prod\n",
};

function parsedImages(text: string): PromotionManifest {
  const parsed = parseThinManifest("p", REGISTRIES, { file: "images.yaml", text });
  if (!parsed.manifest) throw new Error("no manifest");
  return parsed.manifest;
}

/** Every (image, digest, tag) the file promotes, as strings; tagless digests as `image@digest`. */
function triples(text: string): Set<string> {
  return readModel(text).triples;
}

/** The model as triples, and the number of findings, from one parse. */
function readModel(text: string): { triples: Set<string>; findings: number } {
  const parsed = parseThinManifest("p", REGISTRIES, { file: "images.yaml", text });
  if (!parsed.manifest) throw new Error("no manifest");
  const result = new Set<string>();
  for (const merged of mergeImages(parsed.manifest)) {
    for (const digest of merged.digests) {
      result.add(`${merged.name}@${digest.digest}`);
      for (const tag of digest.tags) result.add(`${merged.name}@${digest.digest}:${tag.tag}`);
    }
  }
  return { triples: result, findings: parsed.findings.length };
}

describe("addToImagesFile", () => {
  it("adds a tag to a flow list, keeping its quoting and spacing", () => {
    const text = `- name: a\n  dmap:\n    "${D(1)}": ["v1"]   # first\n    "${D(2)}": [ 'v2', 'v2.0' ]\n`;
    const one = addToImagesFile(text, "f", [{ image: image("a"), digest: D(1), tags: tags("v1.0") }]);
    expect(one.text).toBe(
      `- name: a\n  dmap:\n    "${D(1)}": ["v1", "v1.0"]   # first\n    "${D(2)}": [ 'v2', 'v2.0' ]\n`,
    );
    expect(one.changes).toEqual([
      { image: "a", digest: D(1), addedTags: ["v1.0"], addedDigest: false, addedImage: false, line: 3 },
    ]);
    const two = addToImagesFile(text, "f", [{ image: image("a"), digest: D(2), tags: tags("v2.0.0") }]);
    expect(hunk(text, two.text)).toEqual({
      removed: [`    "${D(2)}": [ 'v2', 'v2.0' ]`],
      added: [`    "${D(2)}": [ 'v2', 'v2.0', 'v2.0.0' ]`],
    });
  });

  it("fills an empty list and a null value", () => {
    const text = `- name: a\n  dmap:\n    "${D(1)}": []\n    "${D(2)}":\n    "${D(3)}": ~\n`;
    const result = addToImagesFile(text, "f", [
      { image: image("a"), digest: D(1), tags: tags("v1") },
      { image: image("a"), digest: D(2), tags: tags("v2") },
      { image: image("a"), digest: D(3), tags: tags("v3", "v3.0") },
    ]);
    expect(result.text).toBe(
      `- name: a\n  dmap:\n    "${D(1)}": ["v1"]\n    "${D(2)}": ["v2"]\n    "${D(3)}": ["v3", "v3.0"]\n`,
    );
  });

  it("adds a tag to a block list as a new line in the same style", () => {
    const text = `- name: a\n  dmap:\n    sha256:${"1".repeat(64)}:\n    - 1.0.0\n    - "1.0"\n# next\n- name: b\n  dmap: {}\n`;
    const result = addToImagesFile(text, "f", [{ image: image("a"), digest: D(1), tags: tags("1") }]);
    expect(hunk(text, result.text)).toEqual({ removed: [], added: [`    - "1"`] });
    expect(result.changes[0]?.line).toBe(6);
  });

  it("adds a digest after the last one of the first entry, in its neighbours' style", () => {
    const text =
      `# header\n\n- name: a\n  dmap:\n    sha256:${"1".repeat(64)}:\n    - v1\n    # a comment inside\n\n` +
      `- name: b\n  dmap:\n    "${D(2)}": [ "v2" ]\n- name: a\n  dmap:\n    "${D(3)}": ["v3"]\n`;
    const toA = addToImagesFile(text, "f", [{ image: image("a"), digest: D(4), tags: tags("v4", "v4.0") }]);
    expect(hunk(text, toA.text)).toEqual({
      removed: [],
      added: [`    sha256:${"4".repeat(64)}:`, "    - v4", "    - v4.0"],
    });
    expect(toA.text.split("\n")[6]).toBe(`    sha256:${"4".repeat(64)}:`);
    const toB = addToImagesFile(text, "f", [{ image: image("b"), digest: D(5), tags: [] }]);
    expect(hunk(text, toB.text)).toEqual({ removed: [], added: [`    "${D(5)}": []`] });
    const toBTagged = addToImagesFile(text, "f", [{ image: image("b"), digest: D(5), tags: tags("v5") }]);
    expect(hunk(text, toBTagged.text).added).toEqual([`    "${D(5)}": [ "v5" ]`]);
  });

  it("adds tags where the digest already is, even in a later entry of the same image", () => {
    const text = `- name: a\n  dmap:\n    "${D(1)}": ["v1"]\n- name: a\n  dmap:\n    "${D(2)}": ["v2"]\n`;
    const result = addToImagesFile(text, "f", [
      { image: image("a"), digest: D(2), tags: tags("v2", "v2.1") },
    ]);
    expect(hunk(text, result.text)).toEqual({
      removed: [`    "${D(2)}": ["v2"]`],
      added: [`    "${D(2)}": ["v2", "v2.1"]`],
    });
    expect(result.changes[0]?.addedTags).toEqual(["v2.1"]);
  });

  it("changes nothing when everything asked for is already listed (idempotent)", () => {
    const text = `- name: a\n  dmap:\n    "${D(1)}": ["v1"]\n- name: a\n  dmap:\n    "${D(1)}": ["v2"]\n`;
    const result = addToImagesFile(text, "f", [
      { image: image("a"), digest: D(1), tags: tags("v2", "v1") },
      { image: image("a"), digest: D(1), tags: [] },
    ]);
    expect(result.text).toBe(text);
    expect(result.changes).toEqual([]);
  });

  it("adds a new image in name order above the next entry's comments, or at the end", () => {
    const text = `- name: alpha\n  dmap:\n    "${D(1)}": ["v1"]\n\n# gamma images\n- name: gamma\n  dmap:\n    "${D(2)}": ["v2"]\n`;
    const result = addToImagesFile(text, "f", [{ image: image("beta"), digest: D(3), tags: tags("v3") }]);
    expect(result.text).toBe(
      `- name: alpha\n  dmap:\n    "${D(1)}": ["v1"]\n\n- name: beta\n  dmap:\n    "${D(3)}": ["v3"]\n# gamma images\n- name: gamma\n  dmap:\n    "${D(2)}": ["v2"]\n`,
    );
    expect(result.changes[0]).toMatchObject({ addedImage: true, addedDigest: true, line: 5 });
    const last = addToImagesFile(text, "f", [{ image: image("zeta"), digest: D(3), tags: [] }]);
    expect(hunk(text, last.text)).toEqual({
      removed: [],
      added: ["- name: zeta", "  dmap:", `    "${D(3)}": []`],
    });
    const unsorted = `- name: b\n  dmap:\n    "${D(1)}": ["v1"]\n- name: a\n  dmap:\n    "${D(2)}": ["v2"]`;
    const appended = addToImagesFile(unsorted, "f", [{ image: image("aa"), digest: D(3), tags: tags("x") }]);
    expect(appended.text).toBe(`${unsorted}\n- name: aa\n  dmap:\n    "${D(3)}": ["x"]\n`);
  });

  it("writes into empty and comment-only files, and into dmaps without digests", () => {
    expect(addToImagesFile("", "f", [{ image: image("a"), digest: D(1), tags: tags("v1") }]).text).toBe(
      `- name: a\n  dmap:\n    "${D(1)}": ["v1"]\n`,
    );
    expect(
      addToImagesFile("# nothing yet\n", "f", [{ image: image("a"), digest: D(1), tags: [] }]).text,
    ).toBe(`# nothing yet\n- name: a\n  dmap:\n    "${D(1)}": []\n`);
    const empty = `- name: a\n  dmap:\n- name: b\n  dmap: ~\n- name: c\n  dmap: {}\n- name: d\n`;
    const result = addToImagesFile(empty, "f", [
      { image: image("a"), digest: D(1), tags: tags("v1") },
      { image: image("b"), digest: D(2), tags: tags("v2") },
      { image: image("c"), digest: D(3), tags: tags("v3") },
      { image: image("d"), digest: D(4), tags: tags("v4") },
    ]);
    expect(result.text).toBe(
      `- name: a\n  dmap:\n    "${D(1)}": ["v1"]\n- name: b\n  dmap:\n    "${D(2)}": ["v2"]\n` +
        `- name: c\n  dmap: {"${D(3)}": ["v3"]}\n- name: d\n  dmap:\n    "${D(4)}": ["v4"]\n`,
    );
  });

  it("keeps CRLF line ends and adds a final newline only where it writes after the last line", () => {
    const text = `- name: a\r\n  dmap:\r\n    "${D(1)}": ["v1"]`;
    const result = addToImagesFile(text, "f", [{ image: image("a"), digest: D(2), tags: tags("v2") }]);
    expect(result.text).toBe(`- name: a\r\n  dmap:\r\n    "${D(1)}": ["v1"]\r\n    "${D(2)}": ["v2"]\r\n`);
  });

  it("quotes a plain-style tag that YAML would read as null", () => {
    const text = `- name: a\n  dmap:\n    "${D(1)}": [v1]\n`;
    const result = addToImagesFile(text, "f", [
      { image: image("a"), digest: D(1), tags: tags("null", "v2") },
    ]);
    expect(result.text).toContain(`[v1, "null", v2]`);
    expect(triples(result.text)).toContain(`a@${D(1)}:null`);
  });

  it("refuses shapes it does not edit", () => {
    expect(() => addToImagesFile("[]\n", "f", [{ image: image("a"), digest: D(1), tags: [] }])).toThrow(
      ImagesFileEditError,
    );
    expect(() => addToImagesFile("- name: [\n", "f", [])).toThrow(/not valid YAML/);
    expect(() => addToImagesFile("- {name: a}\n", "f", [])).toThrow(/block mapping/);
  });
});

async function realImagesFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const tree of ["registry.k8s.io", "legacy-backfill"]) {
    const imagesDir = path.join(realTree, tree, "images");
    for (const project of await readdir(imagesDir)) {
      const file = path.join(imagesDir, project, "images.yaml");
      if (existsSync(file)) files.push(file);
    }
  }
  return files.sort();
}

describe.skipIf(!haveRealTree)("images.yaml edits on the real k8s.io tree", () => {
  it("reads every real file, and a no-op edit writes it back byte-identical", async () => {
    const files = await realImagesFiles();
    expect(files.length).toBeGreaterThan(70);
    for (const file of files) {
      const text = await readFile(file, "utf8");
      checkImagesFileEditable(text, file);
      // Everything the first and last entries already list, asked for again.
      const manifest = parsedImages(text);
      const again = [manifest.images[0], manifest.images[manifest.images.length - 1]].flatMap((entry) =>
        (entry?.digests ?? []).slice(0, 3).map((digest) => ({
          image: entry?.name ?? image("x"),
          digest: digest.digest,
          tags: digest.tags.map((tag) => tag.tag),
        })),
      );
      const result = addToImagesFile(text, file, again);
      expect(result.changes, file).toEqual([]);
      expect(result.text === text, file).toBe(true);
    }
  }, 120_000);

  it("adds a digest, a tag and an image to copies of real files: only those lines change", async () => {
    const files = await realImagesFiles();
    for (const file of files) {
      const text = await readFile(file, "utf8");
      const manifest = parsedImages(text);
      const { triples: before, findings } = readModel(text);
      const first = manifest.images[0];
      const newDigest = `sha256:${"e".repeat(64)}` as Digest;

      // A new image.
      const withImage = addToImagesFile(text, file, [
        { image: image("zz-new-image"), digest: newDigest, tags: tags("v9.9.9") },
      ]);
      const imageHunk = hunk(text, withImage.text);
      expect(imageHunk.removed, file).toEqual([]);
      expect(imageHunk.added.length, file).toBe(3);
      expect(setDifference(triples(withImage.text), before), file).toEqual(
        new Set([`zz-new-image@${newDigest}`, `zz-new-image@${newDigest}:v9.9.9`]),
      );
      if (!first) continue;

      // A new digest for the first image.
      const withDigest = addToImagesFile(text, file, [
        { image: first.name, digest: newDigest, tags: tags("v9.9.9", "v9.9") },
      ]);
      const digestHunk = hunk(text, withDigest.text);
      expect(digestHunk.removed, file).toEqual([]);
      expect(digestHunk.added.length, file).toBeGreaterThanOrEqual(1);
      expect(setDifference(triples(withDigest.text), before), file).toEqual(
        new Set([
          `${first.name}@${newDigest}`,
          `${first.name}@${newDigest}:v9.9.9`,
          `${first.name}@${newDigest}:v9.9`,
        ]),
      );

      // A new tag on an existing digest: one line changes (flow) or one is added (block).
      const existing = first.digests[0];
      if (!existing) continue;
      const withTag = addToImagesFile(text, file, [
        { image: first.name, digest: existing.digest, tags: tags("v9.9.9-new") },
      ]);
      const tagHunk = hunk(text, withTag.text);
      expect(tagHunk.removed.length, file).toBeLessThanOrEqual(1);
      expect(tagHunk.added.length, file).toBe(1);
      const after = readModel(withTag.text);
      expect(setDifference(after.triples, before), file).toEqual(
        new Set([`${first.name}@${existing.digest}:v9.9.9-new`]),
      );
      expect(after.findings, file).toBe(findings);
    }
  }, 180_000);
});

function setDifference(a: ReadonlySet<string>, b: ReadonlySet<string>): Set<string> {
  return new Set([...a].filter((entry) => !b.has(entry)));
}
