/**
 * Deterministic test content, built without the project's own store or OCI code so it can serve
 * as an independent oracle: seeded images with real (minimal) tar.gz layers that skopeo and
 * registries accept, indexes over them, referrers, and an OCI layout writer on plain `fs`.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { parseTag, type Digest } from "../../src/reference/index.js";
import type { RepositoryStore } from "../../src/registry/index.js";
import { skopeoCopy, type SkopeoCredentials, type SkopeoOptions } from "./skopeo.js";

export const TestMediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

export interface TestDescriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: TestPlatform;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly artifactType?: string;
}

export interface TestPlatform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
}

export interface TestBlob {
  readonly descriptor: TestDescriptor;
  readonly bytes: Buffer;
}

interface ManifestCommon {
  readonly mediaType: string;
  /** The manifest bytes exactly as they are to be stored. */
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly descriptor: TestDescriptor;
}

export interface TestImage extends ManifestCommon {
  readonly kind: "image";
  readonly config: TestBlob;
  readonly layers: readonly TestBlob[];
  readonly platform: TestPlatform;
}

export interface TestIndex extends ManifestCommon {
  readonly kind: "index";
  readonly manifests: readonly TestContent[];
}

export type TestContent = TestImage | TestIndex;

export function sha256Digest(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
}

function blob(mediaType: string, bytes: Buffer): TestBlob {
  return { descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length }, bytes };
}

/** A small, fast, seeded generator (xorshift128); the same seed gives the same bytes. */
export function seededBytes(seed: number | string, length: number): Buffer {
  const seedDigest = createHash("sha256").update(String(seed)).digest();
  let x = seedDigest.readUInt32LE(0) | 1;
  let y = seedDigest.readUInt32LE(4);
  let z = seedDigest.readUInt32LE(8);
  let w = seedDigest.readUInt32LE(12);
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    words[i] = w;
  }
  return Buffer.from(words.buffer, 0, length);
}

/** A POSIX ustar archive with one regular file: the smallest layer a runtime would unpack. */
export function tarWithOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number): void => {
    header.write(text.slice(0, length), offset, length, "ascii");
  };
  const octal = (value: number, length: number): string => `${value.toString(8).padStart(length - 1, "0")}\0`;
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid
  put(octal(0, 8), 116, 8); // gid
  put(octal(content.length, 12), 124, 12);
  put(octal(0, 12), 136, 12); // mtime: fixed for determinism
  put("        ", 148, 8); // checksum placeholder: spaces while summing
  put("0", 156, 1); // regular file
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

export interface MakeImageOptions {
  readonly layers: number;
  /** Bytes of file content per layer (random, so the gzip is about as big). */
  readonly layerSize: number;
  readonly platform?: TestPlatform;
  readonly mediaTypes: "oci" | "docker";
  readonly seed: number | string;
  /** Extra manifest annotations (OCI only). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Pretty-print the manifest JSON with this indent, to check that bytes are kept exactly. */
  readonly indent?: number;
}

export function makeImage(options: MakeImageOptions): TestImage {
  const platform = options.platform ?? { architecture: "amd64", os: "linux" };
  const oci = options.mediaTypes === "oci";
  const layers: TestBlob[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < options.layers; i++) {
    const tar = tarWithOneFile(
      `layer-${i}.bin`,
      seededBytes(`${options.seed}/layer/${i}`, options.layerSize),
    );
    diffIds.push(sha256Digest(tar));
    layers.push(blob(oci ? TestMediaType.ociLayer : TestMediaType.dockerLayer, gzipSync(tar, { level: 1 })));
  }
  const configJson = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Labels: { "test.seed": String(options.seed) } },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created_by: `test layer ${i}` })),
  };
  const config = blob(
    oci ? TestMediaType.ociConfig : TestMediaType.dockerConfig,
    Buffer.from(JSON.stringify(configJson)),
  );
  const mediaType = oci ? TestMediaType.ociManifest : TestMediaType.dockerManifest;
  const document = {
    schemaVersion: 2,
    mediaType,
    config: config.descriptor,
    layers: layers.map((layer) => layer.descriptor),
    ...(oci && options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(document, null, options.indent));
  const digest = sha256Digest(bytes);
  return {
    kind: "image",
    mediaType,
    bytes,
    digest,
    descriptor: { mediaType, digest, size: bytes.length, platform },
    config,
    layers,
    platform,
  };
}

export interface MakeIndexOptions {
  readonly mediaType: "oci" | "docker";
  readonly annotations?: Readonly<Record<string, string>>;
  readonly indent?: number;
}

/** An OCI image index or Docker manifest list over the given images (with their platforms). */
export function makeIndex(images: readonly TestContent[], options: MakeIndexOptions): TestIndex {
  const mediaType = options.mediaType === "oci" ? TestMediaType.ociIndex : TestMediaType.dockerManifestList;
  const document = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((image) => image.descriptor),
    ...(options.mediaType === "oci" && options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(document, null, options.indent));
  const digest = sha256Digest(bytes);
  return {
    kind: "index",
    mediaType,
    bytes,
    digest,
    descriptor: { mediaType, digest, size: bytes.length },
    manifests: images,
  };
}

/** The empty JSON blob `{}` that artifacts use as config. */
export const EMPTY_JSON_BLOB: TestBlob = blob(TestMediaType.ociEmpty, Buffer.from("{}"));

export interface MakeReferrerOptions {
  readonly subject: TestDescriptor;
  readonly artifactType: string;
  readonly seed: number | string;
  readonly payloadSize?: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * An OCI artifact manifest that refers to `subject` (a signature, an SBOM): empty config, one
 * payload layer, `artifactType`.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidelines-for-artifact-usage
 */
export function makeReferrer(options: MakeReferrerOptions): TestImage {
  const payload = blob(
    "application/octet-stream",
    seededBytes(`${options.seed}/payload`, options.payloadSize ?? 64),
  );
  const mediaType = TestMediaType.ociManifest;
  const subject = {
    mediaType: options.subject.mediaType,
    digest: options.subject.digest,
    size: options.subject.size,
  };
  const document = {
    schemaVersion: 2,
    mediaType,
    artifactType: options.artifactType,
    config: EMPTY_JSON_BLOB.descriptor,
    layers: [payload.descriptor],
    subject,
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(document));
  const digest = sha256Digest(bytes);
  return {
    kind: "image",
    mediaType,
    bytes,
    digest,
    descriptor: {
      mediaType,
      digest,
      size: bytes.length,
      artifactType: options.artifactType,
      ...(options.annotations ? { annotations: options.annotations } : {}),
    },
    config: EMPTY_JSON_BLOB,
    layers: [payload],
    platform: { architecture: "unknown", os: "unknown" },
  };
}

/** One layer of {@link makeLayerSetImage}: a signature payload, an attestation, an SBOM. */
export interface LayerSetLayer {
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly annotations: Record<string, string>;
}

/**
 * A cosign-style layer set (what `.sig`/`.att` tags point at), built without project code: an OCI
 * image manifest whose config is `configJson` (OCI config media type) and whose layers are `layers`,
 * each annotated.
 */
export function makeLayerSetImage(layers: readonly LayerSetLayer[], configJson: string): TestImage {
  const config = blob(TestMediaType.ociConfig, Buffer.from(configJson));
  const blobs = layers.map((layer) => ({
    descriptor: {
      mediaType: layer.mediaType,
      digest: sha256Digest(layer.bytes),
      size: layer.bytes.length,
      annotations: layer.annotations,
    },
    bytes: layer.bytes,
  }));
  const mediaType = TestMediaType.ociManifest;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: config.descriptor,
      layers: blobs.map((layerBlob) => layerBlob.descriptor),
    }),
  );
  const digest = sha256Digest(bytes);
  return {
    kind: "image",
    mediaType,
    bytes,
    digest,
    descriptor: { mediaType, digest, size: bytes.length },
    config,
    layers: blobs,
    platform: { architecture: "", os: "" },
  };
}

/** Every manifest in the tree, children before parents (the order a copy writes them). */
export function allManifests(content: TestContent): TestContent[] {
  if (content.kind === "image") return [content];
  return [...content.manifests.flatMap(allManifests), content];
}

/** Every config and layer blob in the tree, once per digest. */
export function allBlobs(content: TestContent): TestBlob[] {
  const seen = new Map<string, TestBlob>();
  for (const manifest of allManifests(content)) {
    if (manifest.kind !== "image") continue;
    for (const item of [manifest.config, ...manifest.layers]) seen.set(item.descriptor.digest, item);
  }
  return [...seen.values()];
}

export interface LayoutEntry {
  readonly content: TestContent;
  /** Written as the `org.opencontainers.image.ref.name` annotation; untagged when absent. */
  readonly tag?: string;
}

/**
 * Writes an OCI image layout with plain `fs`: `oci-layout`, every blob and manifest under
 * `blobs/sha256/`, and `index.json` listing the entries. Independent of the project's layout
 * backend, so tests can check one against the other.
 */
export async function writeOciLayoutDirectly(
  directory: string,
  entries: readonly LayoutEntry[],
): Promise<void> {
  await mkdir(path.join(directory, "blobs", "sha256"), { recursive: true });
  await writeFile(path.join(directory, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const write = async (digest: Digest, bytes: Buffer): Promise<void> => {
    await writeFile(path.join(directory, "blobs", "sha256", digest.slice("sha256:".length)), bytes);
  };
  for (const entry of entries) {
    for (const item of allBlobs(entry.content)) await write(item.descriptor.digest, item.bytes);
    for (const manifest of allManifests(entry.content)) await write(manifest.digest, manifest.bytes);
  }
  const index = {
    schemaVersion: 2,
    mediaType: TestMediaType.ociIndex,
    manifests: entries.map((entry) => ({
      mediaType: entry.content.mediaType,
      digest: entry.content.digest,
      size: entry.content.bytes.length,
      ...(entry.tag !== undefined ? { annotations: { [REF_NAME_ANNOTATION]: entry.tag } } : {}),
    })),
  };
  await writeFile(path.join(directory, "index.json"), JSON.stringify(index));
}

/**
 * Seeds a registry: copies `oci:layoutDir:tag` to `docker://registryRef` (`host/repo:tag`) with
 * skopeo, every platform of an index and the digests unchanged.
 */
export async function pushWithSkopeo(
  layoutDir: string,
  tag: string,
  registryRef: string,
  creds?: SkopeoCredentials,
  options: SkopeoOptions = {},
): Promise<void> {
  await skopeoCopy(`oci:${layoutDir}:${tag}`, `docker://${registryRef}`, {
    ...options,
    ...(creds ? { destCreds: creds } : {}),
    all: true,
    preserveDigests: true,
  });
}

/**
 * Pushes each tagged entry to `<host>/<repository>:<tag>` with skopeo, from an OCI layout written
 * in a new folder under `scratch`. skopeo 1.9's oci: transport ignores layout entries with Docker
 * media types: push those with {@link pushToStore}.
 */
export async function pushTagsWithSkopeo(
  scratch: string,
  host: string,
  repository: string,
  entries: readonly { content: TestContent; tag: string }[],
  creds?: SkopeoCredentials,
): Promise<void> {
  const layout = await mkdtemp(path.join(scratch, "seed-"));
  await writeOciLayoutDirectly(layout, entries);
  for (const entry of entries)
    await pushWithSkopeo(layout, entry.tag, `${host}/${repository}:${entry.tag}`, creds);
}

/**
 * Writes content through one of the project's stores (a registry or an OCI layout): blobs, then
 * manifests children first, then the tags. For seeding what skopeo cannot (Docker media types in
 * an OCI layout) and for benchmarks; the builders above stay independent of the stores.
 */
export async function pushToStore(
  store: RepositoryStore,
  content: TestContent,
  tags: readonly string[] = [],
): Promise<void> {
  for (const item of allBlobs(content)) await store.putBlob(item.descriptor, Readable.from([item.bytes]));
  for (const manifest of allManifests(content)) {
    await store.putManifest(
      { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
      manifest.digest,
    );
  }
  for (const tag of tags) {
    await store.putManifest(
      { digest: content.digest, mediaType: content.mediaType, bytes: content.bytes },
      parseTag(tag),
    );
  }
}
