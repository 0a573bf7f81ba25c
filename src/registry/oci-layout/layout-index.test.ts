import { describe, expect, it } from "vitest";
import { digestOf, type Tag } from "../../reference/index.js";
import type { Descriptor } from "../../oci/index.js";
import {
  emptyLayoutIndex,
  findTagged,
  isPortableRefName,
  LayoutIndexProblem,
  parseLayoutIndex,
  REF_NAME_ANNOTATION,
  refNameProblem,
  serializeLayoutIndex,
  tagsOf,
  untaggedEntries,
  withoutDigest,
  withoutRedundantEntries,
  withoutUntagged,
  withTag,
  withUntagged,
} from "./layout-index.js";

const manifest = (seed: string): Descriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: digestOf(seed),
  size: seed.length,
});
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const decode = (bytes: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(bytes));

describe("index.json model", () => {
  it("keeps unknown fields of the file and of entries when written back", () => {
    const a = manifest("a");
    const parsed = parseLayoutIndex(
      encode({
        schemaVersion: 2,
        annotations: { "com.example.kept": "yes" },
        manifests: [{ ...a, platform: { os: "linux", architecture: "amd64" }, "x-extra": 1 }],
      }),
    );
    const written = decode(serializeLayoutIndex(withUntagged(parsed, manifest("b")))) as Record<
      string,
      unknown
    >;
    expect(written).toEqual({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      annotations: { "com.example.kept": "yes" },
      manifests: [
        { ...a, platform: { os: "linux", architecture: "amd64" }, "x-extra": 1 },
        { ...manifest("b") },
      ],
    });
  });

  it("moves tags, adds untagged entries once, removes by digest", () => {
    const a = manifest("a");
    const b = manifest("b");
    let index = withTag(emptyLayoutIndex(), a, "v1" as Tag);
    index = withTag(index, a, "v2" as Tag);
    index = withTag(index, b, "v1" as Tag);
    expect(findTagged(index, "v1" as Tag)?.descriptor.digest).toBe(b.digest);
    expect(tagsOf(index)).toEqual(["v1", "v2"]);
    expect(withUntagged(index, a)).toBe(index); // already listed (tagged v2)
    index = withUntagged(index, manifest("c"));
    expect(index.entries).toHaveLength(3);
    index = withoutDigest(index, a.digest);
    expect(tagsOf(index)).toEqual(["v1"]);
    expect(index.entries[0]?.raw).toEqual({ ...b, annotations: { [REF_NAME_ANNOTATION]: "v1" } });
  });

  it("treats the last of duplicate tag entries as the tag", () => {
    const index = parseLayoutIndex(
      encode({
        schemaVersion: 2,
        manifests: [
          { ...manifest("a"), annotations: { [REF_NAME_ANNOTATION]: "t" } },
          { ...manifest("b"), annotations: { [REF_NAME_ANNOTATION]: "t" } },
        ],
      }),
    );
    expect(findTagged(index, "t" as Tag)?.descriptor.digest).toBe(digestOf("b"));
    expect(tagsOf(index)).toEqual(["t"]);
  });

  it.each([
    ["not JSON", new TextEncoder().encode("{"), /not UTF-8 JSON/],
    ["not an object", encode([1]), /JSON object/],
    ["schemaVersion 1", encode({ schemaVersion: 1, manifests: [] }), /schemaVersion 1/],
    ["manifests not a list", encode({ schemaVersion: 2, manifests: {} }), /must be a list/],
    ["a bad size", encode({ schemaVersion: 2, manifests: [{ ...manifest("a"), size: -1 }] }), /size/],
  ])("refuses %s", (_name, bytes, reason) => {
    expect(() => parseLayoutIndex(bytes)).toThrow(LayoutIndexProblem);
    expect(() => parseLayoutIndex(bytes)).toThrow(reason);
  });

  it.each([
    ["v1.0", undefined],
    ["example.com/app:1.0", undefined],
    ["", /empty/],
    ["../x", /path segment/],
    ["a/./b", /path segment/],
    ["/abs", /looks like a path/],
    ["a\\b", /looks like a path/],
    ["a\nb", /control characters/],
  ])("ref.name %j", (name, problem) => {
    if (problem === undefined) expect(refNameProblem(name)).toBeUndefined();
    else expect(refNameProblem(name)).toMatch(problem);
  });

  it("names a digest instead of listing it twice: the untagged entry goes when a tag is added", () => {
    const a = manifest("a");
    let index = withUntagged(emptyLayoutIndex(), a);
    index = withTag(index, a, "v1" as Tag);
    index = withTag(index, a, "v2" as Tag);
    expect(index.entries.map((entry) => entry.refName ?? null)).toEqual(["v1", "v2"]);
    expect(withUntagged(index, a)).toBe(index);
  });

  it("drops the untagged entries of an index's children, not their tagged ones", () => {
    const child = manifest("child");
    const tagged = manifest("tagged-child");
    let index = withUntagged(withUntagged(emptyLayoutIndex(), child), tagged);
    index = withTag(index, tagged, "t" as Tag);
    const after = withoutUntagged(index, new Set([child.digest, tagged.digest]));
    expect(after.entries.map((entry) => [entry.descriptor.digest, entry.refName ?? null])).toEqual([
      [tagged.digest, "t"],
    ]);
    expect(withoutUntagged(after, new Set([child.digest]))).toBe(after);
  });

  it("repairs an index.json this promoter wrote before (every tagged digest also untagged)", () => {
    const a = manifest("a");
    const b = manifest("b");
    const c = manifest("c");
    const old = parseLayoutIndex(
      encode({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          a,
          { ...a, annotations: { [REF_NAME_ANNOTATION]: "1.0" } },
          { ...a, annotations: { [REF_NAME_ANNOTATION]: "1.0.0" } },
          b,
          b,
          { ...c, annotations: { [REF_NAME_ANNOTATION]: "x" } },
          { ...a, annotations: { [REF_NAME_ANNOTATION]: "x" } },
        ],
      }),
    );
    const repaired = withoutRedundantEntries(old);
    expect(repaired.entries.map((entry) => [entry.descriptor.digest, entry.refName ?? null])).toEqual([
      [a.digest, "1.0"],
      [a.digest, "1.0.0"],
      [b.digest, null],
      [a.digest, "x"],
    ]);
    // What the reader saw before the repair, it sees after.
    for (const tag of ["1.0", "1.0.0", "x"] as Tag[]) {
      expect(findTagged(repaired, tag)?.descriptor.digest).toBe(findTagged(old, tag)?.descriptor.digest);
    }
    expect(untaggedEntries(repaired).map((entry) => entry.descriptor.digest)).toEqual([b.digest]);
    expect(withoutRedundantEntries(repaired)).toBe(repaired);
  });

  it.each([
    ["v0.1.0", true],
    ["1.0", true],
    ["latest", true],
    ["v1_2", true],
    ["a--b", true],
    ["sha256-abc.sig", true],
    ["_x", false],
    ["v1-", false],
    ["a..b", false],
    ["a___b", false],
  ])("tag %j fits the ref.name grammar: %s", (tag, portable) => {
    expect(isPortableRefName(tag)).toBe(portable);
  });

  it("counts an entry named by something that is no tag among the untagged ones", () => {
    const index = parseLayoutIndex(
      encode({
        schemaVersion: 2,
        manifests: [
          { ...manifest("a"), annotations: { [REF_NAME_ANNOTATION]: "1.0" } },
          { ...manifest("b"), annotations: { [REF_NAME_ANNOTATION]: "example.com/app:1.0" } },
          manifest("c"),
        ],
      }),
    );
    expect(tagsOf(index)).toEqual(["1.0"]);
    expect(untaggedEntries(index).map((entry) => entry.descriptor.digest)).toEqual([
      digestOf("b"),
      digestOf("c"),
    ]);
  });
});
