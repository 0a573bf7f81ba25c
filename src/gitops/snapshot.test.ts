import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  makeImage,
  makeIndex,
  makeReferrer,
  writeOciLayoutDirectly,
} from "../../test/support/test-images.js";
import { createManifestSet, parsePlainManifest, type ManifestSet } from "../manifest/index.js";
import type { RegistryLocation } from "../reference/index.js";
import { createStoreProvider } from "../registry/index.js";
import { takeManifestBasedSnapshot, takeSnapshot } from "./snapshot.js";

/** The snapshot readers over OCI layouts: --minimal of a manifest-based snapshot, kpromo's attachment tags. */

let dir: string;
const image = (seed: string, architecture = "amd64") =>
  makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed, platform: { architecture, os: "linux" } });
const amd64 = image("ms-amd64");
const arm64 = image("ms-arm64", "arm64");
const untaggedIndex = makeIndex([amd64, arm64], { mediaType: "oci" });
const c1 = image("ms-c1");
const c2 = image("ms-c2", "arm64");
const taggedIndex = makeIndex([c1, c2], { mediaType: "oci" });
const lone = image("ms-lone");
const signature = makeReferrer({
  subject: taggedIndex.descriptor,
  artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
  seed: "ms-sig",
});
const signatureTag = `sha256-${taggedIndex.digest.slice(7)}.sig`;

function layout(name: string): RegistryLocation {
  return { kind: "oci-layout", directory: path.join(dir, name), name: `oci:${name}` };
}

function manifests(): ManifestSet {
  const parsed = parsePlainManifest({
    file: path.join(dir, "manifest.yaml"),
    text: [
      "registries:",
      `- name: oci:${dir}/staging`,
      "  src: true",
      `- name: oci:${dir}/dest`,
      "images:",
      "- name: app",
      "  dmap:",
      `    "${untaggedIndex.digest}": []`,
      `    "${amd64.digest}": []`,
      `    "${arm64.digest}": []`,
      `    "${taggedIndex.digest}": ["v2"]`,
      `    "${c1.digest}": []`,
      `    "${lone.digest}": []`,
      "",
    ].join("\n"),
  });
  expect(parsed.findings).toEqual([]);
  return createManifestSet(parsed.manifest ? [parsed.manifest] : []);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "snapshot-lib-"));
  // The destination as promoted: an index held without a tag, a tagged one, a lone image.
  await writeOciLayoutDirectly(path.join(dir, "dest", "app"), [
    { content: untaggedIndex },
    { content: taggedIndex, tag: "v2" },
    { content: lone },
    { content: signature, tag: signatureTag },
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("takeManifestBasedSnapshot --minimal", () => {
  it("leaves out the tagless children of the indexes REF holds, tagged or listed without a tag", async () => {
    const provider = createStoreProvider({});
    try {
      const all = await takeManifestBasedSnapshot(manifests(), layout("dest"));
      expect(all.repositoriesRead).toBe(0);
      expect(all.images[0]?.digests).toHaveLength(6);
      const minimal = await takeManifestBasedSnapshot(manifests(), layout("dest"), {
        minimal: true,
        provider,
      });
      expect(minimal.repositoriesRead).toBe(1);
      // amd64 and arm64: children of the untagged index (found only by reading the digests the
      // manifest lists without tags); c1: child of the tagged index. The lone image and the
      // untagged index itself stay: promoting them is what brings them.
      expect(minimal.images).toEqual([
        {
          name: "app",
          digests: [
            { digest: untaggedIndex.digest, tags: [] },
            { digest: taggedIndex.digest, tags: ["v2"] },
            { digest: lone.digest, tags: [] },
          ].sort((a, b) => (a.digest < b.digest ? -1 : 1)),
        },
      ]);
    } finally {
      await provider.close();
    }
  });

  it("a repository REF does not hold yet leaves everything", async () => {
    const provider = createStoreProvider({});
    try {
      const snapshot = await takeManifestBasedSnapshot(manifests(), layout("nowhere"), {
        minimal: true,
        provider,
      });
      expect(snapshot.images).toEqual([]);
      const moved = await takeManifestBasedSnapshot(manifests(), layout("dest"), {
        minimal: true,
        provider,
        repositories: ["elsewhere"],
      });
      expect(moved.images).toEqual([]);
    } finally {
      await provider.close();
    }
  });
});

describe("takeSnapshot keepAttachmentTags", () => {
  it("lists signature tags as kpromo does when asked, and leaves them out (counted) by default", async () => {
    const provider = createStoreProvider({});
    try {
      const plain = await takeSnapshot(layout("dest"), { provider });
      expect(plain.attachmentTags).toBe(1);
      expect(plain.images[0]?.digests.map((entry) => entry.digest)).not.toContain(signature.digest);
      const kept = await takeSnapshot(layout("dest"), { provider, keepAttachmentTags: true });
      expect(kept.attachmentTags).toBe(0);
      expect(kept.images[0]?.digests.find((entry) => entry.digest === signature.digest)?.tags).toEqual([
        signatureTag,
      ]);
    } finally {
      await provider.close();
    }
  });
});
