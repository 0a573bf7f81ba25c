import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../../../test/support/registry-harness.js";
import { SkopeoError, skopeoCopy, skopeoInspectRaw } from "../../../test/support/skopeo.js";
import {
  allBlobs,
  allManifests,
  makeImage,
  makeIndex,
  writeOciLayoutDirectly,
  type TestContent,
} from "../../../test/support/test-images.js";
import type { Descriptor } from "../../oci/index.js";
import type { Digest, RepositoryPath, Tag } from "../../reference/index.js";
import type { RepositoryStore } from "../store.js";
import { openOciLayoutRepository } from "./index.js";

/** OCI layout round trips judged by skopeo 1.9.3, which reads and writes `oci:DIR:tag`. */

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oci-layout-skopeo-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function open(repository: string): RepositoryStore {
  return openOciLayoutRepository({
    kind: "oci-layout",
    directory: root,
    repository: repository as RepositoryPath,
  });
}

async function putContent(store: RepositoryStore, content: TestContent, tag: string): Promise<void> {
  for (const item of allBlobs(content)) {
    await store.putBlob(item.descriptor, [item.bytes] as unknown as AsyncIterable<Uint8Array>);
  }
  for (const manifest of allManifests(content)) {
    await store.putManifest(
      { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
      (manifest === content ? tag : manifest.digest) as Tag | Digest,
    );
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads every manifest and blob of `content` back through our store, verifying digests. */
async function expectStoreHolds(store: RepositoryStore, content: TestContent, tag: string): Promise<void> {
  expect((await store.resolve(tag as Tag))?.digest).toBe(content.digest);
  for (const manifest of allManifests(content)) {
    const got = await store.getManifest(manifest.digest);
    expect(got?.mediaType).toBe(manifest.mediaType);
    expect(Buffer.from(got!.bytes).equals(manifest.bytes)).toBe(true);
  }
  for (const item of allBlobs(content)) {
    expect((await readAll(await store.openBlob(item.descriptor as Descriptor))).equals(item.bytes)).toBe(
      true,
    );
  }
}

const ociImage = makeImage({
  layers: 2,
  layerSize: 20_000,
  mediaTypes: "oci",
  seed: "skopeo-oci",
  indent: 2,
});
const arm = makeImage({
  layers: 1,
  layerSize: 3000,
  mediaTypes: "oci",
  seed: "skopeo-arm",
  platform: { architecture: "arm64", os: "linux", variant: "v8" },
});
const ociIndex = makeIndex([ociImage, arm], { mediaType: "oci" });
const dockerImage = makeImage({ layers: 1, layerSize: 4000, mediaTypes: "docker", seed: "skopeo-docker" });
const dockerArm = makeImage({
  layers: 1,
  layerSize: 1000,
  mediaTypes: "docker",
  seed: "skopeo-docker-arm",
  platform: { architecture: "arm64", os: "linux" },
});
const dockerList = makeIndex([dockerImage, dockerArm], { mediaType: "docker" });

describe("skopeo reads what we write", () => {
  it.each([
    ["an OCI image", ociImage],
    ["an OCI index", ociIndex],
  ])("%s: inspect --raw and copy keep the digest", async (name, content) => {
    const repository = `ours/${name.replace(/[^a-z]/gi, "").toLowerCase()}`;
    await putContent(open(repository), content, "v1");
    const layout = path.join(root, repository);
    const inspected = await skopeoInspectRaw(`oci:${layout}:v1`);
    expect(inspected.digest).toBe(content.digest);
    expect(inspected.bytes.equals(content.bytes)).toBe(true);

    const copied = path.join(root, "copied", repository);
    await skopeoCopy(`oci:${layout}:v1`, `oci:${copied}:v1`);
    expect((await skopeoInspectRaw(`oci:${copied}:v1`)).digest).toBe(content.digest);
    await expectStoreHolds(open(`copied/${repository}`), content, "v1");
  });

  it("skopeo 1.9.3 does not see Docker media types in index.json (a limit of skopeo, not of the layout)", async () => {
    await putContent(open("ours/dockerlist"), dockerList, "v1");
    const failure = await skopeoInspectRaw(`oci:${path.join(root, "ours/dockerlist")}:v1`).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SkopeoError);
    expect((failure as SkopeoError).stderr).toMatch(/no descriptor found for reference \\"v1\\"/);
    // The same content is fine for us, and for skopeo by digest through a registry (see below).
    expect((await open("ours/dockerlist").resolve("v1" as Tag))?.digest).toBe(dockerList.digest);
  });
});

describe("we read what skopeo writes", () => {
  it("an index copied by skopeo from an independently written layout", async () => {
    const source = path.join(root, "oracle");
    await writeOciLayoutDirectly(source, [
      { content: ociIndex, tag: "multi" },
      { content: ociImage, tag: "single" },
    ]);
    await skopeoCopy(`oci:${source}:multi`, `oci:${path.join(root, "from-skopeo/app")}:multi`);
    await skopeoCopy(`oci:${source}:single`, `oci:${path.join(root, "from-skopeo/app")}:single`);
    const store = open("from-skopeo/app");
    expect(await store.listTags()).toEqual(["multi", "single"]);
    await expectStoreHolds(store, ociIndex, "multi");
    await expectStoreHolds(store, ociImage, "single");
    // skopeo lists child manifests only as blobs, not in index.json.
    const index = JSON.parse(await readFile(path.join(root, "from-skopeo/app/index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    expect(index.manifests.map((entry) => entry.digest).sort()).toEqual(
      [ociIndex.digest, ociImage.digest].sort(),
    );
  });
});

describe("through a registry", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry.stop();
  });

  it("our layout -> skopeo -> distribution -> skopeo -> a layout we read", async () => {
    await putContent(open("through/app"), ociIndex, "v1");
    await skopeoCopy(`oci:${path.join(root, "through/app")}:v1`, `docker://${registry.host}/through/app:v1`);
    expect((await skopeoInspectRaw(`docker://${registry.host}/through/app:v1`)).digest).toBe(ociIndex.digest);
    await skopeoCopy(`docker://${registry.host}/through/app:v1`, `oci:${path.join(root, "back/app")}:v1`);
    await expectStoreHolds(open("back/app"), ociIndex, "v1");
  });
});
