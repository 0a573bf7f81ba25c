import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  makeImage,
  makeIndex,
  makeReferrer,
  seededBytes,
  sha256Digest,
  TestMediaType,
} from "./test-images.js";

describe("test image builders", () => {
  it("are deterministic per seed", () => {
    const a = makeImage({ layers: 2, layerSize: 1000, mediaTypes: "oci", seed: 7 });
    const b = makeImage({ layers: 2, layerSize: 1000, mediaTypes: "oci", seed: 7 });
    const c = makeImage({ layers: 2, layerSize: 1000, mediaTypes: "oci", seed: 8 });
    expect(b.digest).toBe(a.digest);
    expect(c.digest).not.toBe(a.digest);
    expect(seededBytes("x", 33).equals(seededBytes("x", 33))).toBe(true);
    expect(seededBytes("x", 33)).toHaveLength(33);
  });

  it("make real tar.gz layers whose diff_ids are in the config", async () => {
    const image = makeImage({ layers: 2, layerSize: 3000, mediaTypes: "docker", seed: "tar" });
    expect(image.mediaType).toBe(TestMediaType.dockerManifest);
    const config = JSON.parse(image.config.bytes.toString()) as { rootfs: { diff_ids: string[] } };
    const directory = await mkdtemp(path.join(os.tmpdir(), "test-images-"));
    try {
      for (const [i, layer] of image.layers.entries()) {
        expect(layer.descriptor.digest).toBe(sha256Digest(layer.bytes));
        expect(config.rootfs.diff_ids[i]).toBe(sha256Digest(gunzipSync(layer.bytes)));
        const file = path.join(directory, `layer-${i}.tar.gz`);
        await writeFile(file, layer.bytes);
        // The system tar is the judge of the archive format.
        expect(execFileSync("tar", ["-tvzf", file]).toString()).toMatch(
          new RegExp(`3000 .* layer-${i}\\.bin`),
        );
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("describe manifests with their exact bytes, indexes with platforms, referrers with subject", () => {
    const amd = makeImage({ layers: 1, layerSize: 10, mediaTypes: "oci", seed: 1, indent: 2 });
    const arm = makeImage({
      layers: 1,
      layerSize: 10,
      mediaTypes: "oci",
      seed: 2,
      platform: { architecture: "arm64", os: "linux", variant: "v8" },
    });
    expect(amd.bytes.toString()).toContain('\n  "schemaVersion": 2');
    expect(amd.descriptor).toEqual({
      mediaType: amd.mediaType,
      digest: sha256Digest(amd.bytes),
      size: amd.bytes.length,
      platform: { architecture: "amd64", os: "linux" },
    });
    const index = makeIndex([amd, arm], { mediaType: "oci" });
    const document = JSON.parse(index.bytes.toString()) as { manifests: { platform: unknown }[] };
    expect(document.manifests.map((m) => m.platform)).toEqual([amd.platform, arm.platform]);
    const referrer = makeReferrer({ subject: index.descriptor, artifactType: "application/x-test", seed: 3 });
    expect(JSON.parse(referrer.bytes.toString())).toMatchObject({
      artifactType: "application/x-test",
      subject: { digest: index.digest, mediaType: index.mediaType, size: index.bytes.length },
      config: { mediaType: TestMediaType.ociEmpty, size: 2 },
    });
  });
});
