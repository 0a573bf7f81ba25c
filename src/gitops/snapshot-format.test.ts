import { describe, expect, it } from "vitest";
import type { Digest, Tag } from "../reference/index.js";
import {
  dropTaglessChildren,
  filterByTags,
  inventoryCsv,
  inventoryYaml,
  kpromoSnapshotStdout,
  snapshotText,
  sortInventory,
  type InventoryImage,
} from "./snapshot-format.js";

/**
 * kpromo's registry inventory as text. The expectations are kpromo's own, copied from its tests
 * and docs (kubernetes-sigs/promo-tools), with where each comes from; kpromo keys inventories in
 * Go maps (image -> digest -> tags), written here as nested records in the fixtures' order.
 */
function inventory(map: Record<string, Record<string, string[]>>): InventoryImage[] {
  return Object.entries(map).map(([name, digests]) => ({
    name,
    digests: Object.entries(digests).map(([digest, tags]) => ({
      digest: digest as Digest,
      tags: tags as Tag[],
    })),
  }));
}

const A = `sha256:${"0".repeat(64)}`;
const B = `sha256:${"1".repeat(64)}`;
// kpromo's promoter/image/promotion/edge_test.go: testDigest1, testDigest2.
const TEST_DIGEST_1 = `sha256:${"a".repeat(64)}`;
const TEST_DIGEST_2 = `sha256:${"b".repeat(64)}`;

describe("kpromo's snapshot text", () => {
  it("YAML: kpromo's TestSnapshot 'Basic' (internal/legacy/dockerregistry/inventory_test.go before 650d61b6)", () => {
    const input = inventory({
      foo: {
        "sha256:111": ["one"],
        "sha256:fff": ["0.9", "0.5"],
        "sha256:abc": ["0.3", "0.2"],
      },
      bar: {
        "sha256:000": ["0.8", "0.5", "0.9"],
      },
    });
    expect(inventoryYaml(input)).toBe(`- name: bar
  dmap:
    "sha256:000": ["0.5", "0.8", "0.9"]
- name: foo
  dmap:
    "sha256:111": ["one"]
    "sha256:abc": ["0.2", "0.3"]
    "sha256:fff": ["0.5", "0.9"]
`);
  });

  it("CSV: the example of ToCSV's doc comment (promoter/image/registry/types.go)", () => {
    const input = inventory({ b: { [B]: [] }, a: { [A]: ["latest", "1.0"] } });
    expect(inventoryCsv(input)).toBe(
      [
        `a@${A},a:1.0`,
        `a@${A},a:latest`,
        // The comment's last line ends in "-." (the sentence's full stop); ToCSV prints "-".
        `b@${B},-`,
        "",
      ].join("\n"),
    );
  });

  it("YAML: a tagless digest is [] (ToYAML's `case 0`), images with several path components sort bytewise", () => {
    const input = inventory({
      "tools/lint": { [B]: ["2.0"] },
      tools: { [A]: [] },
      "tools-x": { [A]: ["1"] },
    });
    expect(inventoryYaml(input)).toBe(
      [
        "- name: tools",
        "  dmap:",
        `    "${A}": []`,
        "- name: tools-x",
        "  dmap:",
        `    "${A}": ["1"]`,
        "- name: tools/lint",
        "  dmap:",
        `    "${B}": ["2.0"]`,
        "",
      ].join("\n"),
    );
  });

  it("kpromo's stdout: fmt.Println adds a newline, so an empty snapshot is one empty line", () => {
    const input = inventory({ a: { [A]: ["v1"] } });
    expect(kpromoSnapshotStdout(input, "yaml")).toBe(`- name: a\n  dmap:\n    "${A}": ["v1"]\n\n`);
    expect(kpromoSnapshotStdout(input, "csv")).toBe(`a@${A},a:v1\n\n`);
    expect(kpromoSnapshotStdout([], "yaml")).toBe("\n");
    expect(kpromoSnapshotStdout([], "csv")).toBe("\n");
    // promoter snapshot: no Println line; an empty YAML snapshot is still a valid images.yaml.
    expect(snapshotText([], "yaml")).toBe("[]\n");
    expect(snapshotText([], "csv")).toBe("");
    expect(snapshotText(input, "csv")).toBe(`a@${A},a:v1\n`);
  });

  it("sorting merges repeated names, digests and tags, whatever the input order", () => {
    const sorted = sortInventory([
      { name: "b", digests: [{ digest: B as Digest, tags: ["v2" as Tag] }] },
      { name: "a", digests: [{ digest: A as Digest, tags: [] }] },
      { name: "b", digests: [{ digest: B as Digest, tags: ["v1" as Tag, "v2" as Tag] }] },
    ]);
    expect(sorted).toEqual([
      { name: "a", digests: [{ digest: A, tags: [] }] },
      { name: "b", digests: [{ digest: B, tags: ["v1", "v2"] }] },
    ]);
  });
});

describe("kpromo's FilterByTag", () => {
  it("TestFilterByTag (promoter/image/promotion/edge_test.go): the digest is kept with all its tags", () => {
    const input = inventory({ foo: { [TEST_DIGEST_1]: ["v1", "latest"], [TEST_DIGEST_2]: ["v2"] } });
    expect(filterByTags(input, ["v1"])).toEqual(inventory({ foo: { [TEST_DIGEST_1]: ["v1", "latest"] } }));
  });

  it("TestFilterByTagNoMatch: nothing, not an image without digests", () => {
    expect(filterByTags(inventory({ foo: { [TEST_DIGEST_1]: ["v1"] } }), ["nonexistent"])).toEqual([]);
  });

  it("several tags keep the digests carrying any of them; tagless digests never match; no tag filters nothing", () => {
    const input = inventory({
      foo: { [A]: ["v1"], [B]: [] },
      bar: { [B]: ["v2", "v3"] },
      baz: { [A]: ["v4"] },
    });
    expect(filterByTags(input, ["v1", "v3"])).toEqual(
      inventory({ foo: { [A]: ["v1"] }, bar: { [B]: ["v2", "v3"] } }),
    );
    expect(filterByTags(input, [])).toEqual(input);
  });
});

describe("--minimal", () => {
  it("drops tagless children of an index (kpromo's removeChildDigests), keeps tagged ones and other tagless ones", () => {
    const C = `sha256:${"2".repeat(64)}`;
    const input = inventory({ app: { [A]: ["v1"], [B]: [], [C]: [] }, lone: { [B]: [] } });
    const children = new Map([
      ["app", new Set([A, B] as Digest[])],
      ["lone", new Set([B] as Digest[])],
    ]);
    expect(dropTaglessChildren(input, (image) => children.get(image.name) ?? new Set())).toEqual(
      inventory({ app: { [A]: ["v1"], [C]: [] } }),
    );
  });
});
