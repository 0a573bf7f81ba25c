import { describe, expect, it } from "vitest";
import { createManifestSet, parsePlainManifest, type ManifestSet } from "../manifest/index.js";
import { parseRegistryLocation, type RegistryLocation } from "../reference/index.js";
import { manifestBasedInventory, repositoryBelow } from "./manifest-snapshot.js";
import { inventoryYaml } from "./snapshot-format.js";

/** kpromo's --manifest-based-snapshot-of (EdgesToRegInvImage), from the manifests alone. */

// kpromo's promoter/image/promotion/edge_test.go: testDigest1, testDigest2.
const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;
const D3 = `sha256:${"c".repeat(64)}`;

function plain(text: string): ManifestSet {
  const parsed = parsePlainManifest({ file: "/t/manifest.yaml", text });
  expect(parsed.findings.filter((finding) => finding.severity === "error")).toEqual([]);
  return createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
}

function location(name: string): RegistryLocation {
  return parseRegistryLocation(name);
}

describe("manifestBasedInventory", () => {
  it("kpromo's TestEdgesToRegInvImage: only edges into the registry, tags of one digest together", () => {
    // The test's edges: foo:v1 and foo:v2 -> us.gcr.io/prod, bar:latest -> eu.gcr.io/prod only.
    const set = plain(`registries:
- name: gcr.io/staging
  src: true
- name: us.gcr.io/prod
images:
- name: foo
  dmap:
    "${D1}": ["v1", "v2"]
`);
    const other = plain(`registries:
- name: gcr.io/staging
  src: true
- name: eu.gcr.io/prod
images:
- name: bar
  dmap:
    "${D2}": ["latest"]
`);
    const both = createManifestSet([...set.manifests, ...other.manifests], []);
    expect(manifestBasedInventory(both, location("us.gcr.io/prod"))).toEqual([
      { name: "foo", digests: [{ digest: D1, tags: ["v1", "v2"] }] },
    ]);
  });

  it("a destination below the registry gives its images under the sub-path; the source is no destination", () => {
    const set = plain(`registries:
- name: gcr.io/staging
  src: true
- name: us.gcr.io/prod
- name: us.gcr.io/prod/sub
- name: us.gcr.io/prodx
images:
- name: app
  dmap:
    "${D1}": ["v1"]
    "${D2}": []
`);
    expect(inventoryYaml(manifestBasedInventory(set, location("us.gcr.io/prod")))).toBe(
      [
        "- name: app",
        "  dmap:",
        `    "${D1}": ["v1"]`,
        `    "${D2}": []`,
        "- name: sub/app",
        "  dmap:",
        `    "${D1}": ["v1"]`,
        `    "${D2}": []`,
        "",
      ].join("\n"),
    );
    // Whole path components: us.gcr.io/prodx is not below us.gcr.io/prod (kpromo's string
    // prefix would list it as "x/app").
    expect(manifestBasedInventory(set, location("us.gcr.io/prod/sub")).map((image) => image.name)).toEqual([
      "app",
    ]);
    expect(manifestBasedInventory(set, location("us.gcr.io")).map((image) => image.name)).toEqual([
      "prod/app",
      "prod/sub/app",
      "prodx/app",
    ]);
    expect(manifestBasedInventory(set, location("gcr.io/staging"))).toEqual([]);
  });

  it("one digest listed with and without tags keeps its tags; a tag listed twice is printed once", () => {
    // Repeated image entries are merged (one project owns a destination repository).
    const set = plain(`registries:
- name: gcr.io/staging
  src: true
- name: us.gcr.io/prod
images:
- name: app
  dmap:
    "${D1}": ["v1"]
    "${D3}": []
- name: app
  dmap:
    "${D1}": ["v1", "v1.0"]
    "${D3}": ["v3"]
`);
    expect(manifestBasedInventory(set, location("us.gcr.io/prod"))).toEqual([
      {
        name: "app",
        digests: [
          { digest: D1, tags: ["v1", "v1.0"] },
          { digest: D3, tags: ["v3"] },
        ],
      },
    ]);
  });
});

describe("repositoryBelow", () => {
  it("matches hosts and whole path components, and OCI layout directories", () => {
    const repo = (host: string, repository: string) =>
      ({ kind: "remote", host, repository }) as Parameters<typeof repositoryBelow>[1];
    expect(repositoryBelow(location("r.io/a"), repo("r.io", "a/b/c"))).toBe("b/c");
    expect(repositoryBelow(location("r.io/a"), repo("r.io", "ab/c"))).toBeUndefined();
    expect(repositoryBelow(location("r.io/a"), repo("s.io", "a/c"))).toBeUndefined();
    expect(repositoryBelow(location("r.io"), repo("r.io", "a/c"))).toBe("a/c");
    const layout = { kind: "oci-layout", directory: "/srv/mirror/", name: "oci:/srv/mirror" } as const;
    const inLayout = (directory: string, repository: string) =>
      ({ kind: "oci-layout", directory, repository }) as Parameters<typeof repositoryBelow>[1];
    expect(repositoryBelow(layout, inLayout("/srv/mirror", "app"))).toBe("app");
    expect(repositoryBelow(layout, inLayout("/srv/mirror/eu", "app"))).toBe("eu/app");
    expect(repositoryBelow(layout, inLayout("/srv/mirrors", "app"))).toBeUndefined();
    expect(repositoryBelow(layout, repo("r.io", "app"))).toBeUndefined();
  });
});
