/**
 * The client against a real registry: Debian's docker-registry (CNCF distribution 2.8.2) on
 * 127.0.0.1 without auth, judged by skopeo. One registry for the whole file.
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../../../test/support/registry-harness.js";
import { skopeoCopy, skopeoInspectRaw } from "../../../test/support/skopeo.js";
import {
  allBlobs,
  allManifests,
  makeImage,
  makeIndex,
  makeReferrer,
  writeOciLayoutDirectly,
  type TestContent,
} from "../../../test/support/test-images.js";
import { MediaType, referrersFallbackTag, type Descriptor } from "../../oci/index.js";
import { parseRepositoryPath, parseTag, type RegistryHost, type Tag } from "../../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../provider.js";
import type { RepositoryStore } from "../store.js";
import { remoteDeleter } from "../../../test/support/content-deleter.js";

let registry: TestRegistry;
let provider: RegistryStoreProvider;
let scratch: string;

beforeAll(async () => {
  registry = await startRegistry();
  // No credential sources: this registry is open, and the user's own files must not matter.
  provider = createStoreProvider({ credentialSources: [], listingPageSize: 2 });
  scratch = await mkdtemp(path.join(os.tmpdir(), "distribution-test-"));
});

afterAll(async () => {
  await provider.close();
  await registry.stop();
  await rm(scratch, { recursive: true, force: true });
});

function repository(name: string): RepositoryStore {
  return provider.repository({
    kind: "remote",
    host: registry.host as RegistryHost,
    repository: parseRepositoryPath(name),
  });
}

async function* bytesOf(buffer: Buffer): AsyncGenerator<Uint8Array> {
  await Promise.resolve();
  yield buffer;
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Pushes every blob and manifest of `content` (children first), tagging the top. */
async function push(store: RepositoryStore, content: TestContent, tag: string): Promise<void> {
  for (const blob of allBlobs(content)) {
    if (!(await store.hasBlob(blob.descriptor.digest))) {
      await store.putBlob(blob.descriptor, bytesOf(blob.bytes));
    }
  }
  for (const manifest of allManifests(content)) {
    const reference = manifest === content ? parseTag(tag) : manifest.digest;
    await store.putManifest(
      { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
      reference,
    );
  }
}

describe("distribution 2.8.2", () => {
  it("round-trips OCI and Docker images and indexes byte for byte, as skopeo sees them", async () => {
    const ociImages = ["amd64", "arm64"].map((architecture) =>
      makeImage({
        layers: 2,
        layerSize: 3000,
        mediaTypes: "oci",
        seed: `oci-${architecture}`,
        platform: { architecture, os: "linux" },
        indent: 2,
      }),
    );
    const dockerImages = ["amd64", "arm64"].map((architecture) =>
      makeImage({
        layers: 1,
        layerSize: 2000,
        mediaTypes: "docker",
        seed: `docker-${architecture}`,
        platform: { architecture, os: "linux" },
      }),
    );
    const cases: [string, TestContent][] = [
      ["oci-image", ociImages[0]!],
      ["docker-image", dockerImages[0]!],
      ["oci-index", makeIndex(ociImages, { mediaType: "oci", indent: 3 })],
      ["docker-list", makeIndex(dockerImages, { mediaType: "docker" })],
    ];
    const store = repository("round/trip");
    for (const [tag, content] of cases) {
      await push(store, content, tag);
      const read = await store.getManifest(parseTag(tag));
      expect(read?.digest).toBe(content.digest);
      expect(read?.mediaType).toBe(content.mediaType);
      expect(Buffer.from(read!.bytes).equals(content.bytes)).toBe(true);
      expect(await store.resolve(parseTag(tag))).toEqual({
        mediaType: content.mediaType,
        digest: content.digest,
        size: content.bytes.length,
      });
      const judged = await skopeoInspectRaw(`docker://${registry.host}/round/trip:${tag}`);
      expect(judged.digest).toBe(content.digest);
    }
    const layer = ociImages[0]!.layers[0]!;
    const stream = await store.openBlob(layer.descriptor);
    expect((await readAll(stream)).equals(layer.bytes)).toBe(true);
    expect((await store.listTags()).sort()).toEqual(cases.map(([tag]) => tag).sort());
  });

  it("reads an image that skopeo copied in, verifying every blob", async () => {
    const image = makeImage({ layers: 3, layerSize: 5000, mediaTypes: "oci", seed: "from-skopeo" });
    const index = makeIndex([image], { mediaType: "oci" });
    const layout = path.join(scratch, "skopeo-source");
    await writeOciLayoutDirectly(layout, [{ content: index, tag: "v1" }]);
    await skopeoCopy(`oci:${layout}:v1`, `docker://${registry.host}/by/skopeo:v1`);

    const store = repository("by/skopeo");
    const top = await store.getManifest(parseTag("v1"));
    expect(top?.digest).toBe(index.digest);
    const child = await store.getManifest(image.digest);
    expect(Buffer.from(child!.bytes).equals(image.bytes)).toBe(true);
    for (const blob of allBlobs(image)) {
      const bytes = await readAll(await store.openBlob(blob.descriptor));
      expect(bytes.equals(blob.bytes)).toBe(true);
    }
  });

  it("mounts a blob from another repository, and uploads through the session when the mount is declined", async () => {
    const image = makeImage({ layers: 1, layerSize: 4000, mediaTypes: "oci", seed: "mount" });
    await push(repository("mount/source"), image, "v1");
    const target = repository("mount/target");
    const layer = image.layers[0]!.descriptor as Descriptor;
    const before = provider.requestCounts().get(registry.host)?.byMethod.POST ?? 0;
    expect(await target.mountBlob(layer, parseRepositoryPath("mount/source"))).toBe(true);
    expect(await target.hasBlob(layer.digest)).toBe(true);

    // The config is not in "mount/elsewhere": 202, and putBlob uses that session (no new POST).
    const config = image.config.descriptor as Descriptor;
    expect(await target.mountBlob(config, parseRepositoryPath("mount/elsewhere"))).toBe(false);
    await target.putBlob(config, bytesOf(image.config.bytes));
    expect(await target.hasBlob(config.digest)).toBe(true);
    expect(provider.requestCounts().get(registry.host)?.byMethod.POST).toBe(before + 2);
  });

  it("lists many tags (distribution does not paginate them) and paginates the catalog", async () => {
    const image = makeImage({ layers: 1, layerSize: 100, mediaTypes: "oci", seed: "tags" });
    const store = repository("many/tags");
    await push(store, image, "t0");
    const tags: Tag[] = [parseTag("t0")];
    for (let i = 1; i < 60; i++) {
      const tag = parseTag(`t${i}`);
      tags.push(tag);
      await store.putManifest({ digest: image.digest, mediaType: image.mediaType, bytes: image.bytes }, tag);
    }
    const tagRequests = () => provider.requestCounts().get(registry.host)?.byMethod.GET ?? 0;
    const beforeTags = tagRequests();
    expect((await store.listTags()).sort()).toEqual([...tags].sort());
    expect(tagRequests() - beforeTags).toBe(1);
    expect(await repository("absent/repository").listTags()).toEqual([]);

    // listingPageSize 2: the catalog comes in pages of two, through Link headers.
    const beforeCatalog = tagRequests();
    const all = await provider.catalog({ kind: "remote", host: registry.host }, "");
    expect(all).toEqual(expect.arrayContaining(["many/tags", "mount/source", "mount/target", "round/trip"]));
    expect(tagRequests() - beforeCatalog).toBeGreaterThanOrEqual(Math.ceil(all.length / 2));
    expect(await provider.catalog({ kind: "remote", host: registry.host }, "mount")).toEqual([
      "mount/source",
      "mount/target",
    ]);
  });

  it("keeps the referrers fallback index when the registry has no referrers API", async () => {
    const image = makeImage({ layers: 1, layerSize: 100, mediaTypes: "oci", seed: "subject" });
    const store = repository("with/referrers");
    await push(store, image, "v1");
    const signature = makeReferrer({
      subject: image.descriptor,
      artifactType: "application/vnd.test.sig",
      seed: "sig",
    });
    const sbom = makeReferrer({
      subject: image.descriptor,
      artifactType: "application/spdx+json",
      seed: "sbom",
      annotations: { "org.example": "sbom" },
    });
    for (const referrer of [signature, sbom, signature]) {
      for (const blob of allBlobs(referrer)) {
        if (!(await store.hasBlob(blob.descriptor.digest)))
          await store.putBlob(blob.descriptor, bytesOf(blob.bytes));
      }
      await store.putManifest(
        { digest: referrer.digest, mediaType: referrer.mediaType, bytes: referrer.bytes },
        referrer.digest,
      );
    }
    const found = await store.referrers(image.digest);
    expect(found.map((descriptor) => descriptor.digest)).toEqual([signature.digest, sbom.digest]);
    expect(found[1]).toEqual({
      mediaType: MediaType.ociImageManifest,
      digest: sbom.digest,
      size: sbom.bytes.length,
      artifactType: "application/spdx+json",
      annotations: { "org.example": "sbom" },
    });
    expect(await store.referrers(image.digest, { artifactType: "application/vnd.test.sig" })).toHaveLength(1);
    const fallback = await skopeoInspectRaw(
      `docker://${registry.host}/with/referrers:${referrersFallbackTag(image.digest)}`,
    );
    expect((JSON.parse(fallback.bytes.toString()) as { manifests: unknown[] }).manifests).toHaveLength(2);
    expect(await store.referrers(sbom.digest)).toEqual([]);
  });

  it("deletes manifests and blobs", async () => {
    const image = makeImage({ layers: 1, layerSize: 100, mediaTypes: "oci", seed: "delete" });
    const store = repository("to/delete");
    await push(store, image, "v1");
    await remoteDeleter(store).deleteManifest(image.digest);
    expect(await store.getManifest(image.digest)).toBeUndefined();
    const layer = image.layers[0]!.descriptor;
    await remoteDeleter(store).deleteBlob(layer.digest);
    expect(await store.hasBlob(layer.digest)).toBe(false);
  });
});
