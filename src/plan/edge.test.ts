import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createManifestSet, parseThinManifest, type ManifestSet } from "../manifest/index.js";
import { loadManifests } from "../manifest-files/index.js";
import { formatRepositoryLocation } from "../reference/index.js";
import { countEdges, promotionEdges } from "./edge.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

function setOf(...projects: [name: string, registries: string, images: string][]): ManifestSet {
  const manifests = [];
  const findings = [];
  for (const [name, registries, images] of projects) {
    const parsed = parseThinManifest(
      name,
      { file: `/t/manifests/${name}/promoter-manifest.yaml`, text: registries },
      { file: `/t/images/${name}/images.yaml`, text: images },
    );
    if (parsed.manifest) manifests.push(parsed.manifest);
    findings.push(...parsed.findings);
  }
  return createManifestSet(manifests, findings);
}

const REGISTRIES = `registries:
- name: gcr.io/staging
  src: true
- name: us.gcr.io/prod/foo
- name: oci:/srv/mirror
`;

describe("promotionEdges", () => {
  it("yields one edge per (image, digest, tag) and destination, and one per destination for a tagless digest", () => {
    const set = setOf([
      "foo",
      REGISTRIES,
      `- name: app
  dmap:
    "${D1}": ["v1", "v2"]
    "${D2}": []
- name: app
  dmap:
    "${D1}": ["v2", "v3"]
`,
    ]);
    const edges = [...promotionEdges(set)];
    expect(
      edges.map((e) => `${formatRepositoryLocation(e.destination)}:${e.tag ?? "-"}@${e.digest.slice(7, 8)}`),
    ).toEqual([
      "us.gcr.io/prod/foo/app:v1@1",
      "oci:/srv/mirror/app:v1@1",
      "us.gcr.io/prod/foo/app:v2@1",
      "oci:/srv/mirror/app:v2@1",
      "us.gcr.io/prod/foo/app:v3@1",
      "oci:/srv/mirror/app:v3@1",
      "us.gcr.io/prod/foo/app:-@2",
      "oci:/srv/mirror/app:-@2",
    ]);
    expect(countEdges(set)).toBe(edges.length);
    const first = edges[0];
    expect(first).toMatchObject({
      project: "foo",
      image: "app",
      digest: D1,
      tag: "v1",
      source: { kind: "remote", host: "gcr.io", repository: "staging/app" },
      destination: { kind: "remote", host: "us.gcr.io", repository: "prod/foo/app" },
      sourceRegistry: { name: "gcr.io/staging", src: true },
      destinationRegistry: { name: "us.gcr.io/prod/foo" },
      position: { file: "/t/images/foo/images.yaml", line: 3, column: 81 },
    });
    // A tagless edge has no tag property and points at its digest.
    const tagless = edges[6];
    expect(tagless && "tag" in tagless).toBe(false);
    expect(tagless?.position).toEqual({ file: "/t/images/foo/images.yaml", line: 4, column: 5 });
    // Locations are shared per (registry, image), not made per edge.
    expect(edges[2]?.source).toBe(first?.source);
    expect(edges[2]?.destination).toBe(first?.destination);
    expect(edges[3]?.destination).toBe(edges[1]?.destination);
  });

  it("yields nothing for manifests without exactly one valid source", () => {
    const images = `- name: app\n  dmap:\n    "${D1}": ["v1"]\n`;
    const set = setOf(
      ["none", "registries:\n- name: gcr.io/a\n- name: gcr.io/b\n", images],
      [
        "two",
        "registries:\n- name: gcr.io/a\n  src: true\n- name: gcr.io/b\n  src: true\n- name: gcr.io/c\n",
        images,
      ],
      ["ok", "registries:\n- name: gcr.io/a\n  src: true\n- name: gcr.io/a\n- name: gcr.io/c\n", images],
    );
    expect(
      [...promotionEdges(set)].map((e) => `${e.project} ${formatRepositoryLocation(e.destination)}`),
    ).toEqual(["ok gcr.io/c/app"]);
    expect(countEdges(set)).toBe(1);
  });
});

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const registryTree = path.resolve(repoRoot, "../shared/k8sio/registry.k8s.io");

describe.skipIf(!existsSync(registryTree))("promotionEdges on the real registry.k8s.io tree", () => {
  it("yields as many edges as countEdges says, sharing locations", async () => {
    const set = await loadManifests({ thinManifestDir: registryTree });
    const destinations = new Set<object>();
    let count = 0;
    for (const edge of promotionEdges(set)) {
      count += 1;
      destinations.add(edge.destination);
    }
    expect(count).toBe(countEdges(set));
    expect(count).toBe(720_456);
    // One object per destination repository, not one per edge.
    expect(destinations.size).toBeLessThan(40_000);
  });
});
