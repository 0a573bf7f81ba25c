import { existsSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadManifests } from "../manifest-files/index.js";
import type { PromotionManifest } from "./model.js";
import { applyRepositoryOwnership } from "./ownership.js";
import { parsePlainManifest, parseThinManifest } from "./parse.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

function project(name: string, source: string, destinations: string[], images: string[]): PromotionManifest {
  const registries = `registries:\n- name: ${source}\n  src: true\n${destinations.map((d) => `- name: ${d}\n`).join("")}`;
  const list = images
    .map((image, index) => `- name: ${image}\n  dmap:\n    "${index % 2 ? D2 : D1}": ["v${index}"]\n`)
    .join("");
  const parsed = parseThinManifest(
    name,
    { file: `/t/manifests/${name}/promoter-manifest.yaml`, text: registries },
    { file: `/t/images/${name}/images.yaml`, text: list || "[]\n" },
  );
  if (!parsed.manifest) throw new Error("no manifest");
  return parsed.manifest;
}

const summary = (manifests: readonly PromotionManifest[]) =>
  Object.fromEntries(
    manifests.map((manifest) => [manifest.project, manifest.images.map((image) => image.name)]),
  );

describe("applyRepositoryOwnership", () => {
  it("lets projects that share a destination list different images", () => {
    const hello = project("hello", "gcr.io/s-hello", ["us.gcr.io/prod", "eu.gcr.io/prod"], ["hello"]);
    const world = project("world", "gcr.io/s-world", ["us.gcr.io/prod", "eu.gcr.io/prod"], ["world"]);
    const result = applyRepositoryOwnership([hello, world]);
    expect(result.findings).toEqual([]);
    expect(result.manifests).toEqual([hello, world]);
  });

  it("refuses, for every claimant, an image two projects sharing a destination both list", () => {
    const hello = project("hello", "gcr.io/s-hello", ["us.gcr.io/prod", "eu.gcr.io/prod"], ["hello"]);
    const world = project("world", "gcr.io/s-world", ["us.gcr.io/prod"], ["world", "hello"]);
    const result = applyRepositoryOwnership([hello, world]);
    expect(summary(result.manifests)).toEqual({ hello: [], world: ["world"] });
    expect(
      result.findings.map((finding) => [finding.rule, finding.position.file, finding.position.line]),
    ).toEqual([
      ["disputed-repository", "/t/images/hello/images.yaml", 1],
      ["disputed-repository", "/t/images/world/images.yaml", 4],
    ]);
    expect(result.findings[1]?.message).toBe(
      'image "hello" would be published to us.gcr.io/prod/hello, which projects "hello" and "world" each list under a destination they share: a repository belongs to one project, so no project is promoted there until only one lists it',
    );
    expect(result.findings[1]?.related).toEqual([
      { file: "/t/images/hello/images.yaml", line: 1, column: 3 },
    ]);
  });

  it("gives a repository below a more specific destination to its project only", () => {
    const tools = project("tools", "gcr.io/s-tools", ["us.gcr.io/prod/tools"], ["lint"]);
    const world = project(
      "world",
      "gcr.io/s-world",
      ["us.gcr.io/prod", "eu.gcr.io/prod"],
      ["tools/lint", "tools", "world"],
    );
    const result = applyRepositoryOwnership([tools, world]);
    // "tools" itself is the repository us.gcr.io/prod/tools, named by tools' destination.
    expect(summary(result.manifests)).toEqual({ tools: ["lint"], world: ["world"] });
    expect(result.findings.map((finding) => finding.rule)).toEqual([
      "foreign-repository",
      "foreign-repository",
    ]);
    expect(result.findings[0]?.message).toMatch(
      /^image "tools\/lint" would be published to us\.gcr\.io\/prod\/tools\/lint, which belongs to project "tools": its destination us\.gcr\.io\/prod\/tools is more specific than this project's us\.gcr\.io\/prod;/,
    );
    expect(result.findings[0]?.related).toEqual([
      { file: "/t/manifests/tools/promoter-manifest.yaml", line: 4, column: 9 },
    ]);
  });

  it("compares places, not spellings: Docker Hub's aliases, :443, oci: directories", () => {
    const a = project("a", "gcr.io/s-a", ["docker.io/org", "registry.example.com:443/x"], ["app"]);
    const b = project("b", "gcr.io/s-b", ["index.docker.io/org", "registry.example.com/x"], ["app"]);
    expect(applyRepositoryOwnership([a, b]).findings.map((finding) => finding.message)).toEqual([
      expect.stringMatching(
        /docker\.io\/org\/app \(and 1 more destination\), which projects "a" and "b"/,
      ) as unknown,
      expect.stringMatching(
        /index\.docker\.io\/org\/app \(and 1 more destination\), which projects "a" and "b"/,
      ) as unknown,
    ]);
    const c = project("c", "gcr.io/s-c", ["oci:../../prod"], ["app"]);
    const d = project("d", "gcr.io/s-d", ["oci:/t/prod"], ["app"]);
    expect(applyRepositoryOwnership([c, d]).findings.map((finding) => finding.rule)).toEqual([
      "disputed-repository",
      "disputed-repository",
    ]);
  });

  it("a manifest without one usable source claims nothing, but keeps its prefix", () => {
    const broken = parseThinManifest(
      "broken",
      {
        file: "/t/manifests/broken/promoter-manifest.yaml",
        text: "registries:\n- name: us.gcr.io/prod/broken\n",
      },
      { file: "/t/images/broken/images.yaml", text: `- name: app\n  dmap:\n    "${D1}": []\n` },
    ).manifest!;
    const other = project("other", "gcr.io/s-other", ["us.gcr.io/prod"], ["broken/app", "app"]);
    const result = applyRepositoryOwnership([broken, other]);
    expect(summary(result.manifests)).toEqual({ broken: ["app"], other: ["app"] });
    expect(result.findings.map((finding) => finding.rule)).toEqual(["foreign-repository"]);
  });

  it("a plain manifest owns its repositories, even with nested destinations", () => {
    const parsed = parsePlainManifest({
      file: "/t/app.yaml",
      text: `registries:\n- name: gcr.io/s\n  src: true\n- name: us.gcr.io/prod\n- name: us.gcr.io/prod/tools\nimages:\n- name: tools/lint\n  dmap:\n    "${D1}": []\n`,
    });
    const result = applyRepositoryOwnership([parsed.manifest!]);
    expect(result.findings).toEqual([]);
  });
});

const repoRoot = path.resolve(import.meta.dirname, "../..");
const k8sio = process.env.IMAGE_PROMOTER_K8SIO ?? path.resolve(repoRoot, "../shared/k8sio");
const registryTree = path.join(k8sio, "registry.k8s.io");

describe.skipIf(!existsSync(registryTree))(
  "ownership on the real registry.k8s.io tree (../shared/k8sio)",
  () => {
    it("finds no repository of one project named by another", async () => {
      const set = await loadManifests({ thinManifestDir: registryTree });
      const rules = new Set(set.findings.map((finding) => finding.rule));
      expect(rules.has("foreign-repository")).toBe(false);
      expect(rules.has("disputed-repository")).toBe(false);
    });
  },
);
