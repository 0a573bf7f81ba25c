import { describe, expect, it } from "vitest";
import type { PromotionManifest } from "./model.js";
import { parseThinManifest } from "./parse.js";
import { createManifestSet, findTagConflicts } from "./rules.js";
import { validate } from "./validate.js";
import { countManifest, destinationRegistries, mergeImages, sourceRegistry } from "./view.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;

/** A thin-tree project from registries and images text. */
function project(name: string, registries: string, images: string): PromotionManifest {
  const parsed = parseThinManifest(
    name,
    { file: `/t/manifests/${name}/promoter-manifest.yaml`, text: registries },
    { file: `/t/images/${name}/images.yaml`, text: images },
  );
  expect(parsed.findings).toEqual([]);
  if (!parsed.manifest) throw new Error("no manifest");
  return parsed.manifest;
}

function registries(source: string, ...destinations: string[]): string {
  return `registries:\n- name: ${source}\n  src: true\n${destinations.map((d) => `- name: ${d}\n`).join("")}`;
}

describe("findTagConflicts", () => {
  it("finds the same destination tag claimed by two projects whose prefixes meet", () => {
    // Project a promotes "tools/lint" under prod; project b promotes "lint" under prod/tools:
    // both land in us.gcr.io/prod/tools/lint.
    const a = project(
      "a",
      registries("gcr.io/staging-a", "us.gcr.io/prod", "eu.gcr.io/prod"),
      `- name: tools/lint\n  dmap:\n    "${D1}": ["v1", "v2"]\n`,
    );
    const b = project(
      "b",
      registries("gcr.io/staging-b", "us.gcr.io/prod/tools"),
      `- name: lint\n  dmap:\n    "${D2}": ["v1"]\n    "${D1}": ["v2"]\n`,
    );
    const conflicts = findTagConflicts([a, b]);
    expect(conflicts).toEqual([
      {
        destination: "us.gcr.io/prod/tools/lint",
        image: "tools/lint",
        tag: "v1",
        claims: [
          {
            digest: D1,
            project: "a",
            image: "tools/lint",
            position: { file: "/t/images/a/images.yaml", line: 3, column: 81 },
          },
          {
            digest: D2,
            project: "b",
            image: "lint",
            position: { file: "/t/images/b/images.yaml", line: 3, column: 81 },
          },
        ],
      },
    ]);
    // In a set, the repository belongs to b (its destination is more specific, ownership.ts):
    // a's entry is left out before tags are compared, so the conflict cannot reach production.
    const set = createManifestSet([a, b]);
    expect(set.findings).toMatchObject([
      {
        rule: "foreign-repository",
        severity: "error",
        position: { file: "/t/images/a/images.yaml", line: 1, column: 3 },
        related: [{ file: "/t/manifests/b/promoter-manifest.yaml", line: 4, column: 9 }],
      },
    ]);
    expect(set.manifests.map((manifest) => manifest.images.map((image) => image.name))).toEqual([
      [],
      ["lint"],
    ]);
  });

  it("reports one finding for a conflict repeated in every destination of a manifest", () => {
    const a = project(
      "a",
      registries("gcr.io/staging", "us.gcr.io/prod", "eu.gcr.io/prod", "asia.gcr.io/prod"),
      `- name: x\n  dmap:\n    "${D1}": ["v1"]\n- name: x\n  dmap:\n    "${D2}": ["v1"]\n    "${D3}": ["v1"]\n`,
    );
    const conflicts = findTagConflicts([a]);
    expect(conflicts.map((c) => `${c.destination}:${c.tag}`)).toEqual([
      "asia.gcr.io/prod/x:v1",
      "eu.gcr.io/prod/x:v1",
      "us.gcr.io/prod/x:v1",
    ]);
    expect(conflicts[0]?.claims.map((c) => c.digest)).toEqual([D1, D2, D3]);
    const findings = createManifestSet([a]).findings;
    expect(findings).toHaveLength(1);
    expect(findings[0]?.message).toMatch(/\(and in 2 more destinations\) is claimed by 3 different digests/);
    expect(findings[0]?.related).toHaveLength(2);
  });

  it("counts one more destination in the singular", () => {
    const a = project(
      "a",
      registries("gcr.io/staging", "us.gcr.io/prod", "eu.gcr.io/prod"),
      `- name: x\n  dmap:\n    "${D1}": ["v1"]\n- name: x\n  dmap:\n    "${D2}": ["v1"]\n`,
    );
    expect(createManifestSet([a]).findings[0]?.message).toMatch(/\(and in 1 more destination\) is claimed/);
  });

  it("accepts the same digest claimed by two projects and tags that differ", () => {
    const a = project(
      "a",
      registries("gcr.io/sa", "us.gcr.io/prod"),
      `- name: x\n  dmap:\n    "${D1}": ["v1"]\n`,
    );
    const b = project(
      "b",
      registries("gcr.io/sb", "us.gcr.io/prod"),
      `- name: x\n  dmap:\n    "${D1}": ["v1"]\n    "${D2}": ["v2"]\n`,
    );
    expect(findTagConflicts([a, b])).toEqual([]);
  });

  it("ignores the source registry: the same tag at two sources is not a destination conflict", () => {
    const a = project(
      "a",
      registries("gcr.io/s", "us.gcr.io/a"),
      `- name: x\n  dmap:\n    "${D1}": ["v1"]\n`,
    );
    const b = project(
      "b",
      registries("gcr.io/s", "us.gcr.io/b"),
      `- name: x\n  dmap:\n    "${D2}": ["v1"]\n`,
    );
    expect(findTagConflicts([a, b])).toEqual([]);
  });
});

describe("views of a manifest", () => {
  it("merges repeated image names and counts edges kpromo's way", () => {
    const manifest = project(
      "a",
      registries("gcr.io/staging", "us.gcr.io/prod", "eu.gcr.io/prod", "us.gcr.io/prod"),
      `- name: x
  dmap:
    "${D1}": ["v1", "v1"]
    "${D2}": []
- name: y
  dmap:
    "${D3}": ["a"]
- name: x
  dmap:
    "${D1}": ["v2", "v1"]
`,
    );
    expect(sourceRegistry(manifest)?.name).toBe("gcr.io/staging");
    expect(destinationRegistries(manifest).map((r) => r.name)).toEqual(["us.gcr.io/prod", "eu.gcr.io/prod"]);
    expect(
      mergeImages(manifest).map((image) => [
        image.name,
        image.digests.map((d) => [d.digest, d.tags.map((t) => t.tag)]),
      ]),
    ).toEqual([
      [
        "x",
        [
          [D1, ["v1", "v2"]],
          [D2, []],
        ],
      ],
      ["y", [[D3, ["a"]]]],
    ]);
    // x: D1 has 2 tags, D2 is tagless (1 edge); y: 1 tag -> (2 + 1 + 1) x 2 destinations.
    expect(countManifest(manifest)).toEqual({ images: 2, digests: 3, tags: 3, destinations: 2, edges: 8 });
  });

  it("has no edges without exactly one valid source", () => {
    const images = `- name: x\n  dmap:\n    "${D1}": ["v1"]\n`;
    const none = parseThinManifest(
      "n",
      { file: "/t/m.yaml", text: "registries:\n- name: gcr.io/a\n- name: gcr.io/b\n" },
      { file: "/t/i.yaml", text: images },
    ).manifest;
    const two = parseThinManifest(
      "t",
      {
        file: "/t/m.yaml",
        text: "registries:\n- name: gcr.io/a\n  src: true\n- name: gcr.io/b\n  src: true\n- name: gcr.io/c\n",
      },
      { file: "/t/i.yaml", text: images },
    ).manifest;
    const invalid = parseThinManifest(
      "i",
      { file: "/t/m.yaml", text: "registries:\n- name: gcr.io/A_\n  src: true\n- name: gcr.io/c\n" },
      { file: "/t/i.yaml", text: images },
    ).manifest;
    for (const manifest of [none, two, invalid]) {
      expect(manifest).toBeDefined();
      if (manifest) expect(countManifest(manifest).edges).toBe(0);
    }
  });
});

describe("validate", () => {
  it("summarises a set and fails only on errors", () => {
    const a = project(
      "a",
      registries("gcr.io/staging", "us.gcr.io/prod", "eu.gcr.io/prod"),
      `- name: x\n  dmap:\n    "${D1}": ["v1", "latest"]\n    "${D2}": []\n`,
    );
    const warned = parseThinManifest(
      "b",
      {
        file: "/t/manifests/b/promoter-manifest.yaml",
        text: `${registries("gcr.io/sb", "us.gcr.io/prod")}imagesPath: x\n`,
      },
      { file: "/t/images/b/images.yaml", text: "- name: empty\n  dmap: {}\n" },
    );
    const set = createManifestSet(warned.manifest ? [warned.manifest, a] : [a], warned.findings);
    expect(set.manifests.map((m) => m.project)).toEqual(["a", "b"]);
    const result = validate(set);
    expect(result.ok).toBe(true);
    expect(result.summary).toEqual({
      projects: 2,
      images: 2,
      digests: 2,
      tags: 2,
      destinations: 3,
      edges: 6,
      errors: 0,
      warnings: 2,
    });
    const bad = createManifestSet(
      [a],
      [...warned.findings, ...createManifestSet([project("c", "registries: []\n", "")]).findings],
    );
    expect(validate(bad).ok).toBe(false);
  });
});

/**
 * Thin manifests that kpromo promotes without complaint (it does not validate them), but whose
 * promotion would not be what the file says: still refused here (docs/manifest-format.md,
 * "Where we differ from kpromo").
 */
describe("registry rules kept where kpromo is laxer", () => {
  const images = `- name: x\n  dmap:\n    "${D1}": ["v1"]\n`;

  it("refuses a second src: true in a thin manifest instead of promoting into it", () => {
    // kpromo takes the first source and, comparing whole entries, makes the second one a
    // destination: it would write into a registry the file calls a source.
    const parsed = parseThinManifest(
      "two",
      {
        file: "/t/manifests/two/promoter-manifest.yaml",
        text: "registries:\n- name: gcr.io/a\n  src: true\n- name: gcr.io/b\n  src: true\n- name: us.gcr.io/prod\n",
      },
      { file: "/t/images/two/images.yaml", text: images },
    );
    const set = createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
    expect(set.findings).toMatchObject([
      {
        rule: "multiple-source-registries",
        severity: "error",
        position: { line: 4, column: 9 },
        related: [{ line: 2, column: 9 }],
      },
    ]);
    const manifest = set.manifests[0];
    if (!manifest) throw new Error("no manifest");
    expect(destinationRegistries(manifest).map((r) => r.name)).toEqual(["us.gcr.io/prod"]);
    expect(countManifest(manifest).edges).toBe(0);
  });

  it("refuses a destination that is the source under another service account, and keeps the others", () => {
    const parsed = parseThinManifest(
      "self",
      {
        file: "/t/manifests/self/promoter-manifest.yaml",
        text: [
          "registries:",
          "- name: gcr.io/staging",
          "  src: true",
          "  service-account: reader@staging.iam.gserviceaccount.com",
          "- name: gcr.io/staging",
          "  service-account: writer@prod.iam.gserviceaccount.com",
          "- name: us.gcr.io/prod",
          "",
        ].join("\n"),
      },
      { file: "/t/images/self/images.yaml", text: images },
    );
    const set = createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
    expect(set.findings.map((f) => [f.rule, f.severity, f.position.line, f.message])).toEqual([
      [
        "destination-is-source",
        "error",
        5,
        'destination "gcr.io/staging" is the source registry of project "self"; another service-account does not make it another registry',
      ],
    ]);
    const manifest = set.manifests[0];
    if (!manifest) throw new Error("no manifest");
    expect(destinationRegistries(manifest).map((r) => r.name)).toEqual(["us.gcr.io/prod"]);
    expect(countManifest(manifest).edges).toBe(1);
  });

  it("says nothing of service accounts when the copy of the source has the same one", () => {
    const manifest = project("same", registries("gcr.io/staging", "gcr.io/staging"), images);
    expect(createManifestSet([manifest]).findings.map((f) => f.message)).toEqual([
      'destination "gcr.io/staging" is the source registry of project "same"',
    ]);
  });
});
