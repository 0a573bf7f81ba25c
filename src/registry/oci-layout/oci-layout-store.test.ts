import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryLogger } from "../../log.js";
import {
  allBlobs,
  allManifests,
  makeImage,
  makeIndex,
  makeReferrer,
  REF_NAME_ANNOTATION,
  seededBytes,
  sha256Digest,
  writeOciLayoutDirectly,
  type TestBlob,
  type TestContent,
} from "../../../test/support/test-images.js";
import type { Descriptor } from "../../oci/index.js";
import type { Digest, RepositoryPath, Tag } from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import { onSide, type Side } from "../side.js";
import type { RepositoryStore } from "../store.js";
import { MAX_LAYOUT_MANIFEST_BYTES, openOciLayoutRepository, type OciLayoutRepository } from "./index.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oci-layout-store-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const repo = (name: string): RepositoryPath => name as RepositoryPath;
const tag = (name: string): Tag => name as Tag;

/** A repository of the tree under `root`, opened for one side of a promotion (errors name it). */
function open(repository = "team/app", side: Side = "destination"): OciLayoutRepository {
  return onSide(
    openOciLayoutRepository({ kind: "oci-layout", directory: root, repository: repo(repository) }),
    side,
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function chunked(bytes: Buffer, size = 1000): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (let offset = 0; offset < bytes.length; offset += size) {
      await Promise.resolve();
      yield bytes.subarray(offset, offset + size);
    }
  })();
}

async function putBlob(store: RepositoryStore, item: TestBlob): Promise<void> {
  await store.putBlob(item.descriptor, chunked(item.bytes));
}

/** What the copy engine does: blobs, then child manifests by digest, then the root by tag. */
async function putContent(store: RepositoryStore, content: TestContent, reference: string): Promise<void> {
  for (const item of allBlobs(content)) await putBlob(store, item);
  for (const manifest of allManifests(content)) {
    const isRoot = manifest === content;
    await store.putManifest(
      { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
      (isRoot ? reference : manifest.digest) as Tag | Digest,
    );
  }
}

async function indexJson(repository = "team/app"): Promise<{ manifests: Record<string, unknown>[] }> {
  return JSON.parse(await readFile(path.join(root, repository, "index.json"), "utf8")) as {
    manifests: Record<string, unknown>[];
  };
}

async function expectRegistryError(
  promise: Promise<unknown>,
  code: string,
  text?: RegExp,
): Promise<RegistryError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RegistryError);
  expect((error as RegistryError).code).toBe(code);
  if (text) expect((error as RegistryError).message).toMatch(text);
  return error as RegistryError;
}

const image = makeImage({ layers: 2, layerSize: 5000, mediaTypes: "oci", seed: "store", indent: 3 });
const other = makeImage({ layers: 1, layerSize: 100, mediaTypes: "docker", seed: "other" });

describe("writing and reading", () => {
  it("creates the layout on first write and reads back exact bytes by tag and digest", async () => {
    const store = open();
    expect(store.name).toBe(`oci:${root}/team/app`);
    expect(await store.listTags()).toEqual([]);
    expect(await store.resolve(tag("v1"))).toBeUndefined();
    expect(existsSync(path.join(root, "team"))).toBe(false); // reads create nothing

    await putContent(store, image, "v1");
    expect(JSON.parse(await readFile(path.join(root, "team/app/oci-layout"), "utf8"))).toEqual({
      imageLayoutVersion: "1.0.0",
    });
    const expected = { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length };
    expect(await store.resolve(tag("v1"))).toEqual(expected);
    expect(await store.resolve(image.digest)).toEqual(expected);
    const manifest = await store.getManifest(tag("v1"));
    expect(manifest?.digest).toBe(image.digest);
    expect(Buffer.from(manifest!.bytes).equals(image.bytes)).toBe(true); // pretty-printed bytes kept
    expect(await store.listTags()).toEqual(["v1"]);
    expect((await indexJson()).manifests).toEqual([
      { ...expected, annotations: { [REF_NAME_ANNOTATION]: "v1" } },
    ]);
    for (const item of allBlobs(image)) {
      expect(await store.hasBlob(item.descriptor.digest)).toBe(true);
      const stored = await readFile(
        path.join(root, "team/app/blobs/sha256", item.descriptor.digest.slice(7)),
      );
      expect(stored.equals(item.bytes)).toBe(true);
      expect((await readAll(await store.openBlob(item.descriptor as Descriptor))).equals(item.bytes)).toBe(
        true,
      );
    }
    expect(await store.hasBlob(sha256Digest("absent"))).toBe(false);
  });

  it("reads a layout written by an independent writer", async () => {
    const index = makeIndex([image, other], { mediaType: "oci" });
    await writeOciLayoutDirectly(path.join(root, "team/app"), [
      { content: index, tag: "multi" },
      { content: other, tag: "docker" },
    ]);
    const store = open();
    expect(await store.listTags()).toEqual(["docker", "multi"]);
    expect(await store.resolve(tag("multi"))).toMatchObject({
      digest: index.digest,
      mediaType: index.mediaType,
    });
    // A child manifest is only a blob: its media type comes from its own mediaType field.
    expect(await store.resolve(image.digest)).toEqual({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.bytes.length,
    });
    expect((await store.getManifest(other.digest))?.mediaType).toBe(other.mediaType);
    // A layer is not a manifest.
    expect(await store.resolve(image.layers[0]!.descriptor.digest)).toBeUndefined();
  });

  it("notices index.json changed by another writer", async () => {
    const store = open();
    await putContent(store, image, "v1");
    expect(await store.listTags()).toEqual(["v1"]);
    await writeOciLayoutDirectly(path.join(root, "team/app"), [
      { content: image, tag: "v1" },
      { content: other, tag: "v2" },
    ]);
    expect(await store.listTags()).toEqual(["v1", "v2"]);
    expect(await store.resolve(tag("v2"))).toMatchObject({ digest: other.digest });
  });

  it("moves a tag, adds untagged entries once, and keeps the old manifest by digest", async () => {
    const store = open();
    await putContent(store, image, "latest");
    await putContent(store, other, "latest");
    expect((await indexJson()).manifests).toHaveLength(1);
    expect(await store.resolve(tag("latest"))).toMatchObject({ digest: other.digest });
    const manifests = (await indexJson()).manifests;
    expect(manifests.filter((entry) => entry.digest === image.digest)).toEqual([]);
    expect(manifests.filter((entry) => entry.digest === other.digest)).toHaveLength(1);
    expect((await store.getManifest(image.digest))?.digest).toBe(image.digest);

    await store.putManifest(
      { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
      image.digest,
    );
    await store.putManifest(
      { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
      image.digest,
    );
    const untagged = (await indexJson()).manifests.filter((entry) => entry.digest === image.digest);
    expect(untagged).toEqual([
      { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length },
    ]);
    expect(await store.listTags()).toEqual(["latest"]);
  });

  it("stores an index whose children are only blobs", async () => {
    const index = makeIndex([image, other], { mediaType: "docker" });
    const store = open();
    for (const item of allBlobs(index)) await putBlob(store, item);
    for (const child of [image, other]) {
      await store.putBlob(child.descriptor, chunked(child.bytes));
    }
    await store.putManifest(
      { digest: index.digest, mediaType: index.mediaType, bytes: index.bytes },
      tag("list"),
    );
    expect((await indexJson()).manifests.map((entry) => entry.digest)).toEqual([index.digest]);
    expect(await store.resolve(other.digest)).toMatchObject({ mediaType: other.mediaType });
  });

  it("refuses a manifest whose blobs or children are missing, naming them", async () => {
    const store = open();
    const error = await expectRegistryError(
      store.putManifest({ digest: image.digest, mediaType: image.mediaType, bytes: image.bytes }, tag("v1")),
      "registry-not-found",
      new RegExp(`references blob ${image.config.descriptor.digest}`),
    );
    expect(error.details.registryCodes).toEqual(["MANIFEST_BLOB_UNKNOWN"]);
    const index = makeIndex([image], { mediaType: "oci" });
    await expectRegistryError(
      store.putManifest({ digest: index.digest, mediaType: index.mediaType, bytes: index.bytes }, tag("i")),
      "registry-not-found",
      /child manifest/,
    );
    expect(await store.listTags()).toEqual([]);
  });

  it("refuses manifest bytes that do not match their digest or media type", async () => {
    const store = open();
    await putContent(store, image, "v1");
    await expectRegistryError(
      store.putManifest({ digest: other.digest, mediaType: image.mediaType, bytes: image.bytes }, tag("v2")),
      "registry-digest-mismatch",
      /destination oci:.*team\/app: manifest bytes hash to/,
    );
    await expectRegistryError(
      store.putManifest(
        { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
        other.digest,
      ),
      "registry-digest-mismatch",
    );
    await expectRegistryError(
      store.putManifest({ digest: image.digest, mediaType: "text/plain", bytes: image.bytes }, tag("v2")),
      "layout-invalid",
      /unsupported manifest media type/,
    );
    const big = Buffer.alloc(MAX_LAYOUT_MANIFEST_BYTES + 1, 0x20);
    await expectRegistryError(
      store.putManifest({ digest: sha256Digest(big), mediaType: image.mediaType, bytes: big }, tag("big")),
      "registry-too-large",
    );
  });
});

describe("blob streams are verified", () => {
  const payload = seededBytes("blob", 100_000);
  const good = { mediaType: "application/octet-stream", digest: sha256Digest(payload), size: payload.length };

  async function blobFolderEntries(): Promise<string[]> {
    return readdir(path.join(root, "team/app/blobs/sha256")).catch(() => []);
  }

  it.each([
    ["a wrong digest", { ...good, digest: sha256Digest("something else") }, /hashes to/],
    ["a size too small", { ...good, size: payload.length - 1 }, /more than the 99999 bytes/],
    [
      "a size too large",
      { ...good, size: payload.length + 1 },
      /has 100000 bytes, its descriptor says 100001/,
    ],
  ])("%s leaves no blob behind and names side, layout and digest", async (_name, descriptor, reason) => {
    const store = open("team/app", "source");
    const error = await expectRegistryError(
      store.putBlob(descriptor, chunked(payload)),
      "registry-digest-mismatch",
      reason,
    );
    expect(error.message).toContain(`source oci:${root}/team/app`);
    expect(error.message).toContain(descriptor.digest);
    expect(await blobFolderEntries()).toEqual([]);
    expect(await store.hasBlob(descriptor.digest)).toBe(false);
  });

  it("fails the read stream of a corrupted blob instead of ending it", async () => {
    const store = open();
    await store.putBlob(good, chunked(payload));
    const file = path.join(root, "team/app/blobs/sha256", good.digest.slice(7));
    const corrupted = Buffer.from(payload);
    corrupted[500] = corrupted[500]! ^ 0xff;
    await writeFile(file, corrupted);
    const stream = await store.openBlob(good);
    await expect(readAll(stream)).rejects.toThrow(new RegExp(`blob ${good.digest} hashes to`));
    await expectRegistryError(
      store.openBlob({ ...good, size: 5 }),
      "registry-digest-mismatch",
      /has 100000 bytes, the descriptor says 5/,
    );
    await expectRegistryError(
      store.openBlob({ ...good, digest: sha256Digest("nope") }),
      "registry-not-found",
    );
  });

  it("stops a read stream when its signal aborts", async () => {
    const store = open();
    await store.putBlob(good, chunked(payload));
    const controller = new AbortController();
    const stream = await store.openBlob(good, { signal: controller.signal });
    controller.abort();
    await expect(readAll(stream)).rejects.toMatchObject({ name: "AbortError" });
  });

  it("survives concurrent writes of the same blob and of many tags", async () => {
    const store = open();
    await Promise.all(
      Array.from({ length: 8 }, () => store.putBlob(good as Descriptor, chunked(payload, 777))),
    );
    expect(await blobFolderEntries()).toEqual([good.digest.slice(7)]);
    expect(
      (await readFile(path.join(root, "team/app/blobs/sha256", good.digest.slice(7)))).equals(payload),
    ).toBe(true);

    for (const item of allBlobs(image)) await putBlob(store, item);
    // Two store objects on the same layout, as two copy edges would have.
    const second = open();
    const tags = Array.from({ length: 30 }, (_, i) => `t${String(i).padStart(2, "0")}`);
    await Promise.all(
      tags.map((name, i) =>
        (i % 2 === 0 ? store : second).putManifest(
          { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
          tag(name),
        ),
      ),
    );
    expect(await store.listTags()).toEqual(tags);
    const leftovers = (await readdir(path.join(root, "team/app"))).filter((name) => name.startsWith(".tmp-"));
    expect(leftovers).toEqual([]);
  });

  it("stops on abort and leaves nothing", async () => {
    const store = open();
    const controller = new AbortController();
    const slow = (async function* () {
      yield payload.subarray(0, 1000);
      await Promise.resolve();
      controller.abort();
      yield payload.subarray(1000);
    })();
    await expect(
      store.putBlob(good as Descriptor, slow, { signal: controller.signal }),
    ).rejects.toMatchObject({
      code: "aborted",
    });
    expect(await blobFolderEntries()).toEqual([]);
    await expect(store.listTags({ signal: controller.signal })).rejects.toMatchObject({ code: "aborted" });
  });
});

describe("hostile layouts", () => {
  it.each([
    ["..", /must not contain ".."/],
    ["a/../../etc", /must not contain ".."/],
    ["/etc/passwd", /must be relative/],
    ["a\0b", /NUL/],
    ["UPPER", /upper-case/],
  ])("refuses repository %j", (repository, reason) => {
    let caught: unknown;
    try {
      open(repository);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RegistryError);
    expect((caught as RegistryError).code).toBe("layout-invalid");
    expect((caught as RegistryError).message).toMatch(reason);
  });

  it("refuses a relative layout directory", () => {
    expect(() =>
      openOciLayoutRepository({ kind: "oci-layout", directory: "relative/dir", repository: repo("a") }),
    ).toThrow(/must be absolute/);
  });

  async function writeIndex(entries: unknown[]): Promise<void> {
    await mkdir(path.join(root, "team/app/blobs/sha256"), { recursive: true });
    await writeFile(path.join(root, "team/app/oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(
      path.join(root, "team/app/index.json"),
      JSON.stringify({ schemaVersion: 2, manifests: entries }),
    );
  }

  it.each([
    [
      "an invalid digest",
      { mediaType: image.mediaType, digest: "sha256:../../etc/passwd", size: 1 },
      /not a valid digest/,
    ],
    [
      "a ref.name with ..",
      {
        mediaType: image.mediaType,
        digest: image.digest,
        size: 1,
        annotations: { [REF_NAME_ANNOTATION]: "../../escape" },
      },
      /path segment/,
    ],
    [
      "an absolute ref.name",
      {
        mediaType: image.mediaType,
        digest: image.digest,
        size: 1,
        annotations: { [REF_NAME_ANNOTATION]: "/etc/x" },
      },
      /looks like a path/,
    ],
    [
      "a ref.name with NUL",
      {
        mediaType: image.mediaType,
        digest: image.digest,
        size: 1,
        annotations: { [REF_NAME_ANNOTATION]: "a\0b" },
      },
      /control characters/,
    ],
  ])("refuses index.json with %s", async (_name, entry, reason) => {
    await writeIndex([entry]);
    await expectRegistryError(open().listTags(), "layout-invalid", reason);
  });

  it("ignores ref.names that are valid OCI references but not tags", async () => {
    await writeOciLayoutDirectly(path.join(root, "team/app"), [
      { content: other, tag: "example.com/app:1.0" },
    ]);
    expect(await open().listTags()).toEqual([]);
  });

  it("refuses blobs that are symlinks, out of the layout or inside it", async () => {
    await writeOciLayoutDirectly(path.join(root, "team/app"), [{ content: other, tag: "v1" }]);
    const outside = path.join(root, "outside-secret");
    await writeFile(outside, other.bytes);
    const blob = path.join(root, "team/app/blobs/sha256", other.digest.slice(7));
    await rm(blob);
    await symlink(outside, blob);
    const store = open();
    await expectRegistryError(store.getManifest(tag("v1")), "layout-invalid", /is a symlink/);
    await expectRegistryError(store.hasBlob(other.digest), "layout-invalid", /is a symlink/);
    // Inside the layout too: nothing below the tree root is followed through a symlink.
    const inside = path.join(root, "team/app/moved");
    await writeFile(inside, other.bytes);
    await rm(blob);
    await symlink(inside, blob);
    await expectRegistryError(
      store.getManifest(tag("v1")),
      "layout-invalid",
      /team\/app\/blobs\/sha256\/[0-9a-f]{64} is a symlink/,
    );
  });

  it("refuses repository folders that are symlinks, for reads and writes; the tree root may be one", async () => {
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), "oci-layout-elsewhere-"));
    try {
      await writeOciLayoutDirectly(path.join(elsewhere, "app"), [{ content: other, tag: "v1" }]);
      await mkdir(path.join(root, "team"), { recursive: true });
      await symlink(path.join(elsewhere, "app"), path.join(root, "team/app"));
      await expectRegistryError(open().listTags(), "layout-invalid", /team\/app is a symlink/);
      await expectRegistryError(putContent(open(), image, "v2"), "layout-invalid", /team\/app is a symlink/);
      await symlink(elsewhere, path.join(root, "team/linked"));
      await expectRegistryError(
        open("team/linked/app").listTags(),
        "layout-invalid",
        /team\/linked is a symlink/,
      );
      // The tree root is the user's choice.
      await symlink(elsewhere, path.join(root, "tree-link"));
      const throughRoot = openOciLayoutRepository({
        kind: "oci-layout",
        directory: path.join(root, "tree-link"),
        repository: repo("app"),
      });
      expect(await throughRoot.listTags()).toEqual(["v1"]);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it("does not trust a blob file whose bytes do not hash to its name: hasBlob is false and a write replaces it", async () => {
    const store = open();
    await putContent(store, image, "v1");
    const layer = image.layers[0]!;
    const file = path.join(root, "team/app/blobs/sha256", layer.descriptor.digest.slice(7));
    const corrupt = Buffer.from(layer.bytes);
    corrupt[0] = (corrupt[0] ?? 0) ^ 0xff;
    await rm(file);
    await writeFile(file, corrupt);
    const logger = new MemoryLogger();
    const again = openOciLayoutRepository(
      { kind: "oci-layout", directory: root, repository: repo("team/app") },
      { logger },
    );
    expect(await again.hasBlob(layer.descriptor.digest)).toBe(false);
    expect(logger.lines.some((line) => line.message.includes("does not match its digest"))).toBe(true);
    await putBlob(again, layer);
    expect(await again.hasBlob(layer.descriptor.digest)).toBe(true);
    expect((await readFile(file)).equals(layer.bytes)).toBe(true);
  });

  it.each(["source", "destination"] as const)(
    "does not take a manifest file index.json does not list, whose bytes do not hash to its name, for that manifest (%s)",
    async (side) => {
      const store = open("team/app", side);
      await putContent(store, other, "v1");
      for (const item of allBlobs(image)) await putBlob(store, item);
      // A partial copy by another tool: a file named after the image with the bytes of another.
      const file = path.join(root, "team/app/blobs/sha256", image.digest.slice(7));
      await writeFile(file, other.bytes);
      const logger = new MemoryLogger();
      const again = onSide(
        openOciLayoutRepository(
          { kind: "oci-layout", directory: root, repository: repo("team/app") },
          { logger },
        ),
        side,
      );
      expect(await again.resolve(image.digest)).toBeUndefined();
      expect(await again.getManifest(image.digest)).toBeUndefined();
      expect(logger.lines.some((line) => line.message.includes("does not match its digest"))).toBe(true);
      await again.putManifest(
        { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
        image.digest,
      );
      expect((await readFile(file)).equals(image.bytes)).toBe(true);
      // A listed manifest with other bytes is an error: index.json says the layout holds it.
      await writeFile(file, other.bytes);
      await expectRegistryError(again.getManifest(image.digest), "registry-digest-mismatch", /hashes to/);
    },
  );

  it("does not write through a blobs folder that points out of the layout", async () => {
    const outside = await mkdtemp(path.join(os.tmpdir(), "oci-layout-outside-"));
    try {
      await mkdir(path.join(root, "team/app"), { recursive: true });
      await symlink(outside, path.join(root, "team/app/blobs"));
      const payload = Buffer.from("x");
      await expectRegistryError(
        open().putBlob({ mediaType: "a/b", digest: sha256Digest(payload), size: 1 }, chunked(payload)),
        "layout-invalid",
      );
      expect(await readdir(outside)).toEqual([]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("caps what it reads into memory and checks manifest blobs against their names", async () => {
    await writeOciLayoutDirectly(path.join(root, "team/app"), [{ content: other, tag: "v1" }]);
    const big = Buffer.alloc(MAX_LAYOUT_MANIFEST_BYTES + 1, 0x20);
    const bigDigest = sha256Digest(big);
    await writeFile(path.join(root, "team/app/blobs/sha256", bigDigest.slice(7)), big);
    await expectRegistryError(open().getManifest(bigDigest), "registry-too-large", /4194304-byte limit/);
    await writeFile(path.join(root, "team/app/blobs/sha256", other.digest.slice(7)), image.bytes);
    await expectRegistryError(open().getManifest(tag("v1")), "registry-digest-mismatch", /hashes to/);
  });

  it("refuses an unknown layout version", async () => {
    await mkdir(path.join(root, "team/app"), { recursive: true });
    await writeFile(path.join(root, "team/app/oci-layout"), '{"imageLayoutVersion":"2.0.0"}');
    await expectRegistryError(
      open().putBlob(EMPTY, chunked(Buffer.from("{}"))),
      "layout-invalid",
      /only 1\.x/,
    );
  });
});

const EMPTY = { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256Digest("{}"), size: 2 };

describe("referrers", () => {
  it("finds manifests whose subject is the digest, and the tag-schema fallback index", async () => {
    const store = open();
    await putContent(store, image, "v1");
    const sbom = makeReferrer({ subject: image.descriptor, artifactType: "application/spdx+json", seed: 1 });
    const signature = makeReferrer({
      subject: image.descriptor,
      artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
      seed: 2,
      annotations: { "dev.sigstore.cosign/signature": "sig" },
    });
    const unrelated = makeReferrer({
      subject: other.descriptor,
      artifactType: "application/spdx+json",
      seed: 3,
    });
    await putContent(store, sbom, sbom.digest);
    await putContent(store, unrelated, unrelated.digest);
    expect(await store.referrers(image.digest)).toEqual([
      {
        mediaType: sbom.mediaType,
        digest: sbom.digest,
        size: sbom.bytes.length,
        artifactType: "application/spdx+json",
      },
    ]);

    // A fallback index, as a registry without the referrers API keeps it, copied here by tag.
    await putBlob(store, signature.config);
    await putBlob(store, signature.layers[0]!);
    await store.putBlob(signature.descriptor, chunked(signature.bytes));
    const fallback = makeIndex([signature], { mediaType: "oci" });
    await store.putManifest(
      { digest: fallback.digest, mediaType: fallback.mediaType, bytes: fallback.bytes },
      tag(`sha256-${image.digest.slice(7)}`),
    );
    const all = await store.referrers(image.digest);
    expect(all.map((d) => d.digest).sort()).toEqual([sbom.digest, signature.digest].sort());
    expect(all.find((d) => d.digest === signature.digest)).toMatchObject({
      artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
      annotations: { "dev.sigstore.cosign/signature": "sig" },
    });
    expect(
      (await store.referrers(image.digest, { artifactType: "application/spdx+json" })).map((d) => d.digest),
    ).toEqual([sbom.digest]);
    expect(await store.referrers(sha256Digest("nothing"))).toEqual([]);
  });
});

describe("mount, delete, catalog", () => {
  it("mounts between repositories of the same tree as a verified copy, never a hard link", async () => {
    const source = open("team/app");
    const target = open("prod/app");
    await putContent(source, image, "v1");
    expect(target.canMountFrom(source)).toBe(true);
    const elsewhere = openOciLayoutRepository({
      kind: "oci-layout",
      directory: path.join(root, "other-tree"),
      repository: repo("team/app"),
    });
    expect(target.canMountFrom(elsewhere)).toBe(false);
    const wrapped = new Proxy(source, {}); // as a counting wrapper would hand it out
    expect(target.canMountFrom(wrapped)).toBe(true);
    expect(
      target.canMountFrom({
        ...source,
        location: { kind: "remote", host: root, repository: repo("team/app") },
      } as unknown as RepositoryStore),
    ).toBe(false);
    const layer = image.layers[0]!.descriptor as Descriptor;
    expect(await target.mountBlob(layer, repo("team/app"))).toBe(true);
    expect(await target.hasBlob(layer.digest)).toBe(true);
    const a = await stat(path.join(root, "team/app/blobs/sha256", layer.digest.slice(7)));
    const b = await stat(path.join(root, "prod/app/blobs/sha256", layer.digest.slice(7)));
    expect(b.ino).not.toBe(a.ino);
    expect(await target.mountBlob(layer, repo("team/app"))).toBe(true); // already there
    expect(await target.mountBlob(other.layers[0]!.descriptor as Descriptor, repo("team/app"))).toBe(false);
    await expectRegistryError(target.mountBlob(layer, repo("../escape")), "layout-invalid");

    // A source blob of the right size with other bytes is refused and leaves nothing.
    const config = image.config.descriptor as Descriptor;
    const sourceFile = path.join(root, "team/app/blobs/sha256", config.digest.slice(7));
    const flipped = Buffer.from(image.config.bytes);
    flipped[0] = (flipped[0] ?? 0) ^ 0xff;
    await writeFile(sourceFile, flipped);
    await expectRegistryError(
      target.mountBlob(config, repo("team/app")),
      "registry-digest-mismatch",
      /hashes to/,
    );
    expect(existsSync(path.join(root, "prod/app/blobs/sha256", config.digest.slice(7)))).toBe(false);
  });

  it("deletes manifests (and their tags) and blobs", async () => {
    const store = open();
    await putContent(store, image, "v1");
    await store.putManifest(
      { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
      tag("v2"),
    );
    await store.deleteManifest(image.digest);
    expect(await store.listTags()).toEqual([]);
    expect(await store.resolve(image.digest)).toBeUndefined();
    await expectRegistryError(store.deleteManifest(image.digest), "registry-not-found");
    const layer = image.layers[0]!.descriptor.digest;
    await expectRegistryError(store.deleteManifest(layer), "registry-not-found");
    expect(await store.hasBlob(layer)).toBe(true);
    await store.deleteBlob(layer);
    expect(await store.hasBlob(layer)).toBe(false);
    await expectRegistryError(store.deleteBlob(layer), "registry-not-found");
  });

  it("logs writes through the logger it was given", async () => {
    const logger = new MemoryLogger();
    const store = openOciLayoutRepository(
      { kind: "oci-layout", directory: root, repository: repo("a") },
      { logger },
    );
    await putContent(store, other, "v1");
    expect(logger.lines.some((line) => line.message === "stored manifest in OCI layout")).toBe(true);
  });

  it("warns once per layout about what other readers cannot name: Docker media types, tags outside ref.name", async () => {
    const logger = new MemoryLogger();
    const store = openOciLayoutRepository(
      { kind: "oci-layout", directory: root, repository: repo("readers") },
      { logger },
    );
    const docker = makeImage({ layers: 1, layerSize: 64, mediaTypes: "docker", seed: "warn-docker" });
    await putContent(store, docker, "v1");
    await putContent(store, docker, "v2");
    await putContent(store, other, "v1-");
    await putContent(store, other, "v1-");
    const warnings = logger.lines.filter((line) => line.level === "warn").map((line) => line.message);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^a Docker-typed manifest in an OCI layout: skopeo 1\.9 and podman 4\.3 find it only/,
      ),
      "this tag is outside the OCI ref.name grammar; skopeo and podman cannot name it in the layout",
    ]);
    // Written all the same, one entry per name.
    expect((await indexJson("readers")).manifests.map((entry) => entry.annotations)).toEqual([
      { "org.opencontainers.image.ref.name": "v1" },
      { "org.opencontainers.image.ref.name": "v2" },
      { "org.opencontainers.image.ref.name": "v1-" },
    ]);
  });
});
