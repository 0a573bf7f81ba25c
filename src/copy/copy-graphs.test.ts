/**
 * The copy engine against real stores: OCI layout directories written by the project's layout
 * backend, read back through it and checked byte for byte on disk and with skopeo. A thin
 * recording wrapper around each real store counts calls, records the order of writes, checks at
 * every manifest and tag write that what it points at is already complete, and injects the
 * faults a test asks for.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AbortedError } from "../errors.js";
import { MemoryLogger } from "../log.js";
import { parseManifest, type Descriptor } from "../oci/index.js";
import {
  digestHex,
  parseTag,
  type Digest,
  type RegistryHost,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import {
  createStoreProvider,
  onSide,
  openOciLayoutRepository,
  RegistryError,
  type CallOptions,
  type ManifestContent,
  type RepositoryIdentity,
  type RepositoryStore,
  type Side,
} from "../registry/index.js";

import { startRegistry, type TestRegistry } from "../../test/support/registry-harness.js";
import {
  allBlobs,
  allManifests,
  makeImage,
  makeIndex,
  pushWithSkopeo,
  writeOciLayoutDirectly,
  type LayoutEntry,
  type TestContent,
  type TestImage,
} from "../../test/support/test-images.js";
import { skopeoCopy, skopeoInspectRaw, skopeoListTags } from "../../test/support/skopeo.js";
import {
  copyGraphs,
  copyLimits,
  SMALL_BLOB_MAX_BYTES,
  CopyError,
  DEFAULT_WRITE_ATTEMPTS,
  type CopyDestinationStore,
  type CopyEvent,
  type CopyOutcome,
  type CopySourceStore,
  type CopyTask,
  type DestinationHint,
} from "./index.js";

// ---------------------------------------------------------------------------------------------
// Recording wrapper
// ---------------------------------------------------------------------------------------------

type Operation = "resolve" | "getManifest" | "putManifest" | "hasBlob" | "openBlob" | "putBlob" | "mountBlob";

interface JournalRecord {
  readonly seq: number;
  readonly store: string;
  readonly operation: Operation;
  /** Digest, or tag for a tag write. */
  readonly reference: string;
  readonly phase: "start" | "end" | "error";
}

/** Every call of every wrapped store, in order, with in-flight peaks and invariant violations. */
class Journal {
  readonly records: JournalRecord[] = [];
  readonly violations: string[] = [];
  private readonly inFlight = new Map<string, number>();
  readonly peaks = new Map<string, number>();
  private seq = 0;

  add(
    store: string,
    operation: Operation,
    reference: string,
    phase: JournalRecord["phase"],
    alsoCounted?: string,
  ): void {
    this.records.push({ seq: this.seq++, store, operation, reference, phase });
    if (alsoCounted !== undefined) this.countInFlight(alsoCounted, phase);
    this.countInFlight(operationCategory(operation), phase);
  }

  /** In-flight count and peak of one category. */
  private countInFlight(category: string, phase: JournalRecord["phase"]): void {
    const now = (this.inFlight.get(category) ?? 0) + (phase === "start" ? 1 : -1);
    this.inFlight.set(category, now);
    this.peaks.set(category, Math.max(this.peaks.get(category) ?? 0, now));
  }

  count(operation: Operation, filter: { store?: string; reference?: string } = {}): number {
    return this.records.filter(
      (record) =>
        record.phase === "start" &&
        record.operation === operation &&
        (filter.store === undefined || record.store === filter.store) &&
        (filter.reference === undefined || record.reference === filter.reference),
    ).length;
  }

  /** Sequence number of the first successful end of a write, or undefined. */
  finished(store: string, operation: Operation, reference: string): number | undefined {
    return this.records.find(
      (record) =>
        record.phase === "end" &&
        record.store === store &&
        record.operation === operation &&
        record.reference === reference,
    )?.seq;
  }

  started(store: string, operation: Operation, reference: string): number | undefined {
    return this.records.find(
      (record) =>
        record.phase === "start" &&
        record.store === store &&
        record.operation === operation &&
        record.reference === reference,
    )?.seq;
  }
}

/** Source reads, blob uploads and small requests are limited separately by the engine. */
function operationCategory(operation: Operation): string {
  if (operation === "openBlob") return "source-read";
  if (operation === "putBlob") return "upload";
  return "request";
}

interface Faults {
  /** Bytes after which the upload body throws, for this digest and attempt (1-based); undefined: no fault. */
  putBlobFailsAfter?: (digest: Digest, attempt: number) => number | undefined;
  /** Every call fails, as with a mirror that refuses connections. */
  dead?: boolean;
  /** Whether this manifest write (digest or tag, 1-based attempt) fails with a 400 before reaching the store. */
  putManifestFails?: (reference: string, attempt: number) => boolean;
  /** Skip the completeness check at manifest writes (its reads would show in request counts). */
  uncheckedWrites?: boolean;
  /** Runs before a write is forwarded (used to abort a run at a chosen moment). */
  beforeWrite?: (operation: Operation, reference: string) => void;
  /** Awaited before an existence check of a manifest is forwarded (to order tasks of one run). */
  beforeResolve?: (reference: string) => Promise<void>;
}

/** Offers only the roles the engine asks for: a call to any other would not compile. */
class RecordingStore implements CopySourceStore, CopyDestinationStore {
  private readonly uploadAttempts = new Map<Digest, number>();
  private readonly manifestAttempts = new Map<string, number>();

  constructor(
    readonly inner: RepositoryStore,
    readonly journal: Journal,
    readonly faults: Faults = {},
  ) {}

  get location() {
    return this.inner.location;
  }
  get name() {
    return this.inner.name;
  }

  private async record<T>(
    operation: Operation,
    reference: string,
    call: () => Promise<T>,
    alsoCounted?: string,
  ): Promise<T> {
    this.journal.add(this.name, operation, reference, "start", alsoCounted);
    try {
      if (this.faults.dead) {
        throw new RegistryError("registry-network", "connection refused (injected)", {
          operation,
          registry: this.name,
        });
      }
      const result = await call();
      this.journal.add(this.name, operation, reference, "end", alsoCounted);
      return result;
    } catch (error) {
      this.journal.add(this.name, operation, reference, "error", alsoCounted);
      throw error;
    }
  }

  resolve(reference: Tag | Digest, options?: CallOptions) {
    return this.record("resolve", reference, async () => {
      await this.faults.beforeResolve?.(reference);
      return this.inner.resolve(reference, options);
    });
  }

  getManifest(reference: Tag | Digest, options?: CallOptions) {
    return this.record("getManifest", reference, () => this.inner.getManifest(reference, options));
  }

  putManifest(content: ManifestContent, reference: Tag | Digest, options?: CallOptions) {
    const attempt = (this.manifestAttempts.get(reference) ?? 0) + 1;
    this.manifestAttempts.set(reference, attempt);
    return this.record("putManifest", reference, async () => {
      this.faults.beforeWrite?.("putManifest", reference);
      if (this.faults.putManifestFails?.(reference, attempt) === true) {
        throw new RegistryError("registry-http", "unexpected response (injected)", {
          operation: "put manifest",
          registry: this.name,
          status: 400,
          registryCodes: ["MANIFEST_BLOB_UNKNOWN"],
        });
      }
      // The invariant the engine promises: whatever a manifest or tag points at is complete.
      // A tag may come with its manifest (a root goes up by its first tag): what the manifest
      // references must be there already.
      if (this.faults.uncheckedWrites !== true) {
        const missing = await missingBelow(this.inner, content);
        if (missing.length > 0) {
          this.journal.violations.push(`${this.name} ${reference}: incomplete: ${missing.join(", ")}`);
        }
      }
      await this.inner.putManifest(content, reference, options);
    });
  }

  hasBlob(digest: Digest, options?: CallOptions) {
    return this.record("hasBlob", digest, () => this.inner.hasBlob(digest, options));
  }

  openBlob(descriptor: Descriptor, options?: CallOptions): Promise<Readable> {
    return this.record(
      "openBlob",
      descriptor.digest,
      () => this.inner.openBlob(descriptor, options),
      descriptor.size > SMALL_BLOB_MAX_BYTES ? "source-read-large" : undefined,
    );
  }

  putBlob(descriptor: Descriptor, content: AsyncIterable<Uint8Array>, options?: CallOptions) {
    const attempt = (this.uploadAttempts.get(descriptor.digest) ?? 0) + 1;
    this.uploadAttempts.set(descriptor.digest, attempt);
    const failAfter = this.faults.putBlobFailsAfter?.(descriptor.digest, attempt);
    const body = failAfter === undefined ? content : failingAfter(content, failAfter);
    return this.record("putBlob", descriptor.digest, async () => {
      this.faults.beforeWrite?.("putBlob", descriptor.digest);
      await this.inner.putBlob(descriptor, body, options);
    });
  }

  mountBlob(descriptor: Descriptor, from: RepositoryPath, options?: CallOptions) {
    return this.record("mountBlob", descriptor.digest, () => this.inner.mountBlob(descriptor, from, options));
  }

  canMountFrom(other: RepositoryIdentity): boolean {
    return this.inner.canMountFrom(other instanceof RecordingStore ? other.inner : other);
  }
}

/** Passes `bytes` bytes through, then fails like a connection reset in the middle of a body. */
async function* failingAfter(content: AsyncIterable<Uint8Array>, bytes: number): AsyncGenerator<Uint8Array> {
  let passed = 0;
  for await (const chunk of content) {
    if (passed + chunk.byteLength > bytes) {
      yield chunk.subarray(0, bytes - passed);
      throw new Error("connection reset by peer (injected)");
    }
    passed += chunk.byteLength;
    yield chunk;
  }
}

/** What the manifest references that `store` lacks, recursively (checked by digest). */
async function missingBelow(store: RepositoryStore, content: ManifestContent): Promise<string[]> {
  const manifest = parseManifest(content.bytes, content.mediaType, content.digest);
  const missing: string[] = [];
  if (manifest.kind === "index") {
    for (const child of manifest.manifests) {
      const stored = await store.getManifest(child.digest);
      if (stored === undefined) missing.push(`manifest ${child.digest}`);
      else missing.push(...(await missingBelow(store, stored)));
    }
  } else {
    for (const blob of [manifest.config, ...manifest.layers]) {
      if (!(await store.hasBlob(blob.digest))) missing.push(`blob ${blob.digest}`);
    }
  }
  return missing;
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

let root: string;
let journal: Journal;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "copy-graphs-"));
  journal = new Journal();
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A recording store on one side of the copy: its errors, injected ones too, name the side. */
function layoutStore(tree: string, repository: string, side: Side, faults: Faults = {}): RecordingStore {
  const inner = openOciLayoutRepository({
    kind: "oci-layout",
    directory: path.join(root, tree),
    repository: repository as RepositoryPath,
  });
  return onSide(new RecordingStore(inner, journal, faults), side);
}

/** Writes a staging layout with the project-independent writer and opens it as a source. */
async function stage(repository: string, entries: readonly LayoutEntry[]): Promise<RecordingStore> {
  await writeOciLayoutDirectly(path.join(root, "staging", repository), entries);
  return layoutStore("staging", repository, "source");
}

const tag = (name: string): Tag => parseTag(name);

function task(
  id: string,
  source: CopySourceStore,
  content: TestContent | Digest,
  destinations: readonly (readonly [CopyDestinationStore, readonly string[]])[],
): CopyTask {
  return {
    id,
    source,
    digest: typeof content === "string" ? content : content.digest,
    destinations: destinations.map(([store, tags]) => ({ store, tags: tags.map(tag) })),
  };
}

/** {@link task} with the same tags at every one of `stores`. */
function taskToEach(
  id: string,
  source: CopySourceStore,
  content: TestContent | Digest,
  stores: readonly CopyDestinationStore[],
  tags: readonly string[],
): CopyTask {
  return task(
    id,
    source,
    content,
    stores.map((store) => [store, tags] as const),
  );
}

/** A two-platform image sharing its layers between platforms (as multi-arch builds of data do). */
function multiArch(seed: string, mediaTypes: "oci" | "docker" = "oci", layerSize = 4096) {
  const amd64 = makeImage({
    seed,
    layers: 2,
    layerSize,
    mediaTypes,
    platform: { os: "linux", architecture: "amd64" },
  });
  const arm64 = makeImage({
    seed,
    layers: 2,
    layerSize,
    mediaTypes,
    platform: { os: "linux", architecture: "arm64" },
  });
  const index = makeIndex([amd64, arm64], { mediaType: mediaTypes, indent: 2 });
  return { amd64, arm64, index };
}

/** Checks through the store and on disk that the whole graph is at `store`, bytes unchanged. */
async function expectComplete(store: RecordingStore, content: TestContent): Promise<void> {
  for (const manifest of allManifests(content)) {
    const stored = await store.inner.getManifest(manifest.digest);
    expect(stored, `${store.name} has ${manifest.digest}`).toBeDefined();
    expect(Buffer.from(stored!.bytes).equals(manifest.bytes)).toBe(true);
    expect(stored!.mediaType).toBe(manifest.mediaType);
  }
  const layout = path.join(root, ...layoutPathOf(store));
  for (const blob of allBlobs(content)) {
    const bytes = await readFile(path.join(layout, "blobs", "sha256", digestHex(blob.descriptor.digest)));
    expect(bytes.equals(blob.bytes), `${store.name} blob ${blob.descriptor.digest}`).toBe(true);
  }
}

function layoutPathOf(store: RecordingStore): string[] {
  const location = store.location;
  if (location.kind !== "oci-layout") throw new Error("not a layout");
  return [path.relative(root, location.directory), location.repository];
}

function byStatus(outcomes: readonly CopyOutcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) counts[outcome.status] = (counts[outcome.status] ?? 0) + 1;
  return counts;
}

/** Children-before-parents and tags-last, from the journal, for one destination. */
function expectWriteOrder(store: RecordingStore, content: TestContent, tags: readonly string[]): void {
  for (const manifest of allManifests(content)) {
    const put = journal.started(store.name, "putManifest", manifest.digest);
    if (put === undefined) continue;
    const children =
      manifest.kind === "index"
        ? manifest.manifests.map((child) => ["putManifest", child.digest] as const)
        : [manifest.config, ...manifest.layers].map((blob) => ["putBlob", blob.descriptor.digest] as const);
    for (const [operation, digest] of children) {
      const done = journal.finished(store.name, operation, digest);
      if (done !== undefined) expect(done, `${digest} before ${manifest.digest}`).toBeLessThan(put);
    }
  }
  const rootDone = journal.finished(store.name, "putManifest", content.digest);
  for (const name of tags) {
    const tagPut = journal.started(store.name, "putManifest", name);
    expect(tagPut, `tag ${name} written at ${store.name}`).toBeDefined();
    if (rootDone !== undefined) expect(rootDone).toBeLessThan(tagPut!);
  }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe("copyGraphs between OCI layouts", () => {
  it("copies a multi-arch index, its platform images and a tagless digest to three mirrors", async () => {
    const { amd64, arm64, index } = multiArch("app");
    const extra = makeImage({ seed: "tagless", layers: 1, layerSize: 2048, mediaTypes: "oci" });
    const source = await stage("app", [{ content: index, tag: "v1" }, { content: extra }]);
    const mirrors = ["mirror-a", "mirror-b", "mirror-c"].map((tree) =>
      layoutStore(tree, "rebased/app", "destination"),
    );
    const events: CopyEvent[] = [];
    const outcomes = await copyGraphs(
      [
        taskToEach("index", source, index, mirrors, ["v1", "latest"]),
        taskToEach("amd64", source, amd64, mirrors, ["v1-amd64"]),
        taskToEach("arm64", source, arm64, mirrors, ["v1-arm64"]),
        taskToEach("tagless", source, extra, mirrors, []),
      ],
      { onEvent: (event) => events.push(event) },
    );

    expect(outcomes.map((o) => [o.taskId, o.destinationIndex, o.status])).toEqual(
      ["index", "amd64", "arm64", "tagless"].flatMap((id) => [0, 1, 2].map((i) => [id, i, "copied"])),
    );
    expect(journal.violations).toEqual([]);
    for (const mirror of mirrors) {
      await expectComplete(mirror, index);
      await expectComplete(mirror, extra);
      expect((await mirror.inner.resolve(tag("v1")))?.digest).toBe(index.digest);
      expect((await mirror.inner.resolve(tag("latest")))?.digest).toBe(index.digest);
      expect((await mirror.inner.resolve(tag("v1-amd64")))?.digest).toBe(amd64.digest);
      expect((await mirror.inner.resolve(tag("v1-arm64")))?.digest).toBe(arm64.digest);
      expect((await mirror.inner.listTags()).sort()).toEqual(["latest", "v1", "v1-amd64", "v1-arm64"]);
      expectWriteOrder(mirror, index, ["v1", "latest"]);
      // skopeo, an independent reader, sees the same index bytes.
      const raw = await skopeoInspectRaw(`oci:${path.join(root, ...layoutPathOf(mirror))}:v1`);
      expect(raw.bytes.equals(index.bytes)).toBe(true);
      // Each blob and each manifest written once to this repository, over all four tasks.
      for (const blob of [...allBlobs(index), ...allBlobs(extra)]) {
        expect(journal.count("putBlob", { store: mirror.name, reference: blob.descriptor.digest })).toBe(1);
      }
      // A task's root goes up by its first tag (one request for both), other manifests by digest.
      const firstTags = new Map([
        [index.digest, "v1"],
        [amd64.digest, "v1-amd64"],
        [arm64.digest, "v1-arm64"],
      ]);
      for (const manifest of [...allManifests(index), extra]) {
        const byTag = firstTags.get(manifest.digest);
        const writes =
          journal.count("putManifest", { store: mirror.name, reference: manifest.digest }) +
          (byTag === undefined ? 0 : journal.count("putManifest", { store: mirror.name, reference: byTag }));
        expect(writes).toBe(1);
      }
    }
    // One read of each source blob fed all three mirrors.
    for (const blob of [...allBlobs(index), ...allBlobs(extra)]) {
      expect(journal.count("openBlob", { reference: blob.descriptor.digest })).toBe(1);
    }
    // Outcome statistics add up to what reached the disk.
    const uploaded = outcomes.reduce((sum, o) => sum + o.stats.blobsUploaded, 0);
    expect(uploaded).toBe(3 * (allBlobs(index).length + allBlobs(extra).length));
    expect(events.filter((e) => e.type === "destination-done")).toHaveLength(12);
    expect(events.filter((e) => e.type === "source-read")).toHaveLength(
      allBlobs(index).length + allBlobs(extra).length,
    );
  });

  it("copies Docker manifest lists and mixed Docker/OCI indexes with their bytes and media types intact", async () => {
    const docker = multiArch("docker-app", "docker");
    const ociImage = makeImage({
      seed: "oci-part",
      layers: 1,
      layerSize: 1024,
      mediaTypes: "oci",
      platform: { os: "linux", architecture: "s390x" },
      indent: 3,
    });
    const mixed = makeIndex([docker.amd64, ociImage], { mediaType: "oci", indent: 1 });
    const source = await stage("mixed", [
      { content: docker.index, tag: "docker" },
      { content: mixed, tag: "mixed" },
    ]);
    const mirror = layoutStore("mirror", "mixed", "destination");
    const outcomes = await copyGraphs([
      task("docker", source, docker.index, [[mirror, ["docker"]]]),
      task("mixed", source, mixed, [[mirror, ["mixed"]]]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["copied", "copied"]);
    await expectComplete(mirror, docker.index);
    await expectComplete(mirror, mixed);
    expect(await mirror.inner.resolve(tag("docker"))).toMatchObject({
      digest: docker.index.digest,
      mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
    });
    expect(await mirror.inner.resolve(docker.amd64.digest)).toMatchObject({
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    });
    // The Docker image inside both indexes was written once.
    expect(journal.count("putManifest", { store: mirror.name, reference: docker.amd64.digest })).toBe(1);
    expect(journal.violations).toEqual([]);
  });

  it("writes each blob once per destination repository when several images share it", async () => {
    const first = makeImage({ seed: "shared", layers: 3, layerSize: 8192, mediaTypes: "oci" });
    // Same config and layers, another manifest (an annotation differs).
    const second = makeImage({
      seed: "shared",
      layers: 3,
      layerSize: 8192,
      mediaTypes: "oci",
      annotations: { "org.opencontainers.image.revision": "2" },
    });
    const source = await stage("shared", [
      { content: first, tag: "one" },
      { content: second, tag: "two" },
    ]);
    // Separate store objects for the same destination repositories: deduplication is by location.
    const destinations = () => [
      layoutStore("m1", "shared", "destination"),
      layoutStore("m2", "shared", "destination"),
    ];
    const outcomes = await copyGraphs([
      task(
        "one",
        source,
        first,
        destinations().map((d) => [d, ["one"]] as const),
      ),
      task(
        "two",
        source,
        second,
        destinations().map((d) => [d, ["two"]] as const),
      ),
    ]);
    expect(byStatus(outcomes)).toEqual({ copied: 4 });
    const [m1, m2] = destinations();
    for (const mirror of [m1!, m2!]) {
      for (const blob of allBlobs(first)) {
        expect(journal.count("putBlob", { store: mirror.name, reference: blob.descriptor.digest })).toBe(1);
        // The second image's task asks nothing about a blob the run already put there.
        expect(journal.count("hasBlob", { store: mirror.name, reference: blob.descriptor.digest })).toBe(1);
      }
      await expectComplete(mirror, first);
      await expectComplete(mirror, second);
    }
    for (const blob of allBlobs(first)) {
      expect(journal.count("openBlob", { reference: blob.descriptor.digest })).toBe(1);
    }
    // Whichever task got to a blob first uploaded it; the other counted it as skipped.
    for (const index of [0, 1]) {
      const both = outcomes.filter((o) => o.destinationIndex === index);
      expect(both.reduce((sum, o) => sum + o.stats.blobsUploaded, 0)).toBe(4);
      expect(both.reduce((sum, o) => sum + o.stats.blobsSkipped, 0)).toBe(4);
      expect(both.map((o) => o.stats.manifestsWritten)).toEqual([1, 1]);
    }
  });

  it("only writes tags where the digest is already there, and reports unchanged when nothing is asked", async () => {
    const image = makeImage({ seed: "present", layers: 2, layerSize: 2048, mediaTypes: "oci" });
    const source = await stage("present", [{ content: image, tag: "v1" }]);
    const mirror = layoutStore("mirror", "present", "destination");
    await copyGraphs([task("seed", source, image, [[mirror, []]])]);
    const before = journal.records.length;

    const outcomes = await copyGraphs([
      task("tag", source, image, [[mirror, ["v1", "stable"]]]),
      task("nothing", source, image, [[mirror, []]]),
    ]);
    expect(outcomes.map((o) => [o.status, o.tagsWritten])).toEqual([
      ["tagged", ["v1", "stable"]],
      ["unchanged", []],
    ]);
    const second = journal.records.slice(before).filter((r) => r.phase === "start");
    expect(second.filter((r) => r.operation === "putBlob" || r.operation === "openBlob")).toEqual([]);
    expect(second.filter((r) => r.operation === "hasBlob")).toEqual([]);
    expect(second.filter((r) => r.operation === "putManifest").map((r) => r.reference)).toEqual([
      "v1",
      "stable",
    ]);
    expect((await mirror.inner.resolve(tag("stable")))?.digest).toBe(image.digest);
  });

  it("skips an index child the destination already has, without checking its blobs", async () => {
    const { amd64, arm64, index } = multiArch("partial", "oci", 2048);
    const source = await stage("partial", [{ content: index, tag: "v1" }]);
    const mirror = layoutStore("mirror", "partial", "destination");
    await copyGraphs([task("amd64 first", source, amd64, [[mirror, []]])]);
    const before = journal.records.length;
    const events: CopyEvent[] = [];

    const [outcome] = await copyGraphs([task("index", source, index, [[mirror, ["v1"]]])], {
      onEvent: (event) => events.push(event),
    });
    expect(outcome?.status).toBe("copied");
    const later = journal.records.slice(before);
    const checked = later
      .filter((r) => r.operation === "hasBlob" && r.phase === "start")
      .map((r) => r.reference);
    expect(checked).not.toContain(amd64.config.descriptor.digest);
    expect(checked).toContain(arm64.config.descriptor.digest);
    expect(events).toContainEqual(
      expect.objectContaining({ type: "manifest-skipped", digest: amd64.digest }),
    );
    expect(outcome?.stats).toMatchObject({ manifestsWritten: 2, manifestsSkipped: 1, blobsUploaded: 1 });
    await expectComplete(mirror, index);
  });

  it("retries a destination whose upload breaks mid-stream with a fresh source read, without disturbing the others", async () => {
    const image = makeImage({ seed: "big", layers: 2, layerSize: 600 * 1024, mediaTypes: "oci" });
    const bigLayer = image.layers[0]!.descriptor.digest;
    const source = await stage("big", [{ content: image, tag: "v1" }]);
    const healthy = [layoutStore("ok-1", "big", "destination"), layoutStore("ok-2", "big", "destination")];
    const flaky = layoutStore("flaky", "big", "destination", {
      putBlobFailsAfter: (digest, attempt) => (digest === bigLayer && attempt === 1 ? 100_000 : undefined),
    });
    const events: CopyEvent[] = [];
    const outcomes = await copyGraphs(
      [
        task(
          "big",
          source,
          image,
          [...healthy, flaky].map((d) => [d, ["v1"]] as const),
        ),
      ],
      { onEvent: (event) => events.push(event) },
    );
    expect(outcomes.map((o) => o.status)).toEqual(["copied", "copied", "copied"]);
    expect(journal.count("openBlob", { reference: bigLayer })).toBe(2);
    expect(journal.count("putBlob", { store: flaky.name, reference: bigLayer })).toBe(2);
    for (const store of healthy) {
      expect(journal.count("putBlob", { store: store.name, reference: bigLayer })).toBe(1);
    }
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "blob-failed",
        destination: flaky.name,
        digest: bigLayer,
        retrying: true,
      }),
    );
    for (const store of [...healthy, flaky]) await expectComplete(store, image);
    expect(journal.violations).toEqual([]);
  });

  it("fails only the destination that keeps failing; the others complete and nothing is tagged there", async () => {
    const { index } = multiArch("stubborn", "oci", 300 * 1024);
    const source = await stage("stubborn", [{ content: index, tag: "v1" }]);
    const healthy = [layoutStore("ok-1", "app", "destination"), layoutStore("ok-2", "app", "destination")];
    const broken = layoutStore("broken", "app", "destination", { putBlobFailsAfter: () => 50_000 });
    const dead = layoutStore("dead", "app", "destination", { dead: true });
    const outcomes = await copyGraphs(
      [
        task(
          "index",
          source,
          index,
          [...healthy, broken, dead].map((d) => [d, ["v1"]] as const),
        ),
      ],
      { writeAttempts: 2 },
    );
    expect(outcomes.map((o) => o.status)).toEqual(["copied", "copied", "failed", "failed"]);
    for (const failed of outcomes.slice(2)) {
      expect(failed.error).toBeInstanceOf(CopyError);
      expect(failed.error).toMatchObject({ side: "destination", code: "copy-destination-failed" });
      expect(failed.tagsWritten).toEqual([]);
    }
    expect(outcomes[2]?.error?.message).toMatch(/connection reset by peer \(injected\)/);
    expect(outcomes[3]?.error?.message).toMatch(/connection refused \(injected\)/);
    expect(await broken.inner.resolve(tag("v1"))).toBeUndefined();
    expect(await broken.inner.resolve(index.digest)).toBeUndefined();
    for (const store of healthy) await expectComplete(store, index);
    // The broken mirror cost one extra source read per layer (2 attempts), not one per destination.
    for (const blob of allBlobs(index).filter((b) => b.descriptor.size > 50_000)) {
      expect(journal.count("openBlob", { reference: blob.descriptor.digest })).toBe(2);
    }
    expect(journal.violations).toEqual([]);
  });

  it("retries a refused manifest or tag write, and gives up after the attempts", async () => {
    const { index } = multiArch("refused", "oci", 1024);
    const source = await stage("refused", [{ content: index, tag: "v1" }]);
    const blip = layoutStore("blip", "app", "destination", {
      putManifestFails: (reference, attempt) =>
        attempt === 1 && (reference === index.digest || reference === "v1"),
    });
    const refusing = layoutStore("refusing", "app", "destination", {
      putManifestFails: (reference) => reference === "v1",
    });
    const outcomes = await copyGraphs([
      task("index", source, index, [
        [blip, ["v1"]],
        [refusing, ["v1"]],
      ]),
    ]);
    expect(outcomes[0]).toMatchObject({ status: "copied", tagsWritten: ["v1"] });
    // The root goes up with its tag, the second time.
    expect(journal.count("putManifest", { store: blip.name, reference: index.digest })).toBe(0);
    expect(journal.count("putManifest", { store: blip.name, reference: "v1" })).toBe(2);
    await expectComplete(blip, index);
    // The tag refused: the root is written by digest instead, complete, and the tag is tried
    // once more on its own; failed, and said so.
    expect(journal.count("putManifest", { store: refusing.name, reference: index.digest })).toBe(1);
    expect(outcomes[1]).toMatchObject({ status: "failed", tagsWritten: [] });
    expect(outcomes[1]?.error).toMatchObject({ side: "destination", code: "copy-destination-failed" });
    expect(outcomes[1]?.error?.message).toMatch(/tag v1 of manifest .*MANIFEST_BLOB_UNKNOWN/);
    expect(journal.count("putManifest", { store: refusing.name, reference: "v1" })).toBe(
      2 * DEFAULT_WRITE_ATTEMPTS,
    );
    await expectComplete(refusing, index);
  });

  it("fails cleanly when a source blob does not match its digest, writing no manifest and no tag", async () => {
    const image = makeImage({ seed: "corrupt", layers: 2, layerSize: 4096, mediaTypes: "oci" });
    const source = await stage("corrupt", [{ content: image, tag: "v1" }]);
    const layer = image.layers[1]!;
    const file = path.join(root, "staging", "corrupt", "blobs", "sha256", digestHex(layer.descriptor.digest));
    const corrupted = Buffer.from(layer.bytes);
    corrupted[corrupted.length - 1] = corrupted[corrupted.length - 1]! ^ 0xff;
    await writeFile(file, corrupted);
    const mirrors = [
      layoutStore("m1", "corrupt", "destination"),
      layoutStore("m2", "corrupt", "destination"),
    ];

    const outcomes = await copyGraphs([taskToEach("corrupt", source, image, mirrors, ["v1"])]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("failed");
      expect(outcome.error).toMatchObject({
        side: "source",
        code: "copy-source-failed",
        digest: layer.descriptor.digest,
      });
      expect(outcome.error?.message).toMatch(/layer sha256:/);
    }
    for (const mirror of mirrors) {
      expect(await mirror.inner.hasBlob(layer.descriptor.digest)).toBe(false);
      expect(await mirror.inner.resolve(image.digest)).toBeUndefined();
      expect(await mirror.inner.listTags()).toEqual([]);
    }
    // Retried with fresh reads (a corrupt body may be a transient fault), then given up.
    expect(journal.count("openBlob", { reference: layer.descriptor.digest })).toBe(DEFAULT_WRITE_ATTEMPTS);
  });

  it("reports a digest the source does not have as missing at the source", async () => {
    const present = makeImage({ seed: "here", layers: 1, layerSize: 512, mediaTypes: "oci" });
    const absent = makeImage({ seed: "gone", layers: 1, layerSize: 512, mediaTypes: "oci" });
    const source = await stage("gone", [{ content: present, tag: "v1" }]);
    const mirror = layoutStore("mirror", "gone", "destination");
    const [outcome] = await copyGraphs([task("gone", source, absent, [[mirror, ["v1"]]])]);
    expect(outcome).toMatchObject({ status: "failed", tagsWritten: [] });
    expect(outcome?.error).toMatchObject({ code: "copy-source-missing", side: "source" });
    expect(await mirror.inner.listTags()).toEqual([]);
  });

  it("mounts blobs across repositories of the same layout tree instead of reading them", async () => {
    const image = makeImage({ seed: "mount", layers: 2, layerSize: 4096, mediaTypes: "oci" });
    await writeOciLayoutDirectly(path.join(root, "tree", "staging", "app"), [{ content: image, tag: "v1" }]);
    const source = layoutStore("tree", "staging/app", "source");
    const prod = [
      layoutStore("tree", "prod-a/app", "destination"),
      layoutStore("tree", "prod-b/app", "destination"),
    ];
    const outcomes = await copyGraphs([
      task(
        "mount",
        source,
        image,
        prod.map((d) => [d, ["v1"]] as const),
      ),
    ]);
    expect(outcomes.map((o) => [o.status, o.stats.blobsMounted, o.stats.blobsUploaded])).toEqual([
      ["copied", 3, 0],
      ["copied", 3, 0],
    ]);
    expect(journal.count("openBlob")).toBe(0);
    for (const store of prod) await expectComplete(store, image);

    // With mounting switched off, the same copy uploads.
    const other = layoutStore("tree", "prod-c/app", "destination");
    const [plain] = await copyGraphs([task("upload", source, image, [[other, ["v1"]]])], { mount: false });
    expect(plain?.stats).toMatchObject({ blobsMounted: 0, blobsUploaded: 3 });
  });

  it("stops on abort without leaving a tag on an incomplete image, and a re-run completes the work", async () => {
    const images = Array.from({ length: 6 }, (_, i) =>
      makeImage({ seed: `abort-${i}`, layers: 2, layerSize: 64 * 1024, mediaTypes: "oci" }),
    );
    const source = await stage(
      "abort",
      images.map((content, i) => ({ content, tag: `v${i}` })),
    );
    const controller = new AbortController();
    let uploads = 0;
    let abortedAt = -1;
    const mirrors = ["m1", "m2", "m3"].map((tree) =>
      layoutStore(tree, "abort", "destination", {
        beforeWrite: (operation) => {
          if (operation === "putBlob" && ++uploads === 5) {
            abortedAt = journal.records.length;
            controller.abort();
          }
        },
      }),
    );
    const tasks = images.map((image, i) => taskToEach(`image-${i}`, source, image, mirrors, [`v${i}`]));
    const outcomes = await copyGraphs(tasks, { signal: controller.signal, concurrency: 2 });

    expect(outcomes).toHaveLength(18);
    expect(outcomes.filter((o) => o.status === "aborted").length).toBeGreaterThan(0);
    for (const outcome of outcomes) {
      expect(["aborted", "copied"]).toContain(outcome.status);
      if (outcome.status === "aborted") expect(outcome.error).toBeInstanceOf(AbortedError);
    }
    // Nothing new started after the abort: no source read, no manifest or tag write.
    expect(abortedAt).toBeGreaterThan(0);
    const startedAfter = journal.records
      .slice(abortedAt)
      .filter((r) => r.phase === "start" && (r.operation === "putManifest" || r.operation === "openBlob"));
    expect(startedAfter).toEqual([]);
    // Every tag that exists points at a complete image.
    for (const mirror of mirrors) {
      for (const name of await mirror.inner.listTags()) {
        const target = await mirror.inner.getManifest(tag(name));
        expect(await missingBelow(mirror.inner, target!)).toEqual([]);
      }
    }
    expect(journal.violations).toEqual([]);

    // The re-run goes through the same stores without the abort hook.
    const again = await copyGraphs(
      images.map((image, i) =>
        task(
          `image-${i}`,
          source,
          image,
          mirrors.map((m) => [m.inner, [`v${i}`]] as const),
        ),
      ),
    );
    expect(again.every((o) => o.status === "copied" || o.status === "tagged")).toBe(true);
    for (const mirror of mirrors) {
      for (const [i, image] of images.entries()) {
        await expectComplete(mirror, image);
        expect((await mirror.inner.resolve(tag(`v${i}`)))?.digest).toBe(image.digest);
      }
    }
  });

  it("reports every task as aborted when the signal fired before the run", async () => {
    const image = makeImage({ seed: "never", layers: 1, layerSize: 512, mediaTypes: "oci" });
    const source = await stage("never", [{ content: image, tag: "v1" }]);
    const mirror = layoutStore("mirror", "never", "destination");
    const controller = new AbortController();
    controller.abort();
    const outcomes = await copyGraphs([task("never", source, image, [[mirror, ["v1"]]])], {
      signal: controller.signal,
    });
    expect(outcomes).toMatchObject([{ status: "aborted", tagsWritten: [] }]);
    expect(journal.records).toEqual([]);
  });

  it("keeps transfers within the limits and reads each source blob once for all destinations", async () => {
    // Layers over SMALL_BLOB_MAX_BYTES take the tight `transfers` slots; configs (small) the
    // larger pool of small transfers.
    const images: TestImage[] = Array.from({ length: 12 }, (_, i) =>
      makeImage({ seed: `queue-${i}`, layers: 1, layerSize: SMALL_BLOB_MAX_BYTES + 1, mediaTypes: "oci" }),
    );
    const source = await stage(
      "queue",
      images.map((content, i) => ({ content, tag: `t${i}` })),
    );
    const mirrors = Array.from({ length: 3 }, (_, i) => layoutStore(`m${i}`, "queue", "destination"));
    const outcomes = await copyGraphs(
      images.map((image, i) => taskToEach(`image-${i}`, source, image, mirrors, [`t${i}`])),
      { concurrency: 2 },
    );
    expect(byStatus(outcomes)).toEqual({ copied: 36 });
    const limits = copyLimits(2);
    expect(journal.peaks.get("source-read")).toBeLessThanOrEqual(limits.transfers + limits.smallTransfers);
    expect(journal.peaks.get("source-read-large")).toBeLessThanOrEqual(limits.transfers);
    expect(journal.peaks.get("upload")).toBeLessThanOrEqual((limits.transfers + limits.smallTransfers) * 3);
    expect(journal.peaks.get("request")).toBeLessThanOrEqual(limits.requests);
    for (const image of images) {
      for (const blob of allBlobs(image)) {
        expect(journal.count("openBlob", { reference: blob.descriptor.digest })).toBe(1);
      }
    }
    expect(journal.violations).toEqual([]);
  });

  it("moves small blobs more at once than large ones, each pool within its own limit (issue 19)", async () => {
    const images: TestImage[] = Array.from({ length: 30 }, (_, i) =>
      makeImage({ seed: `small-${i}`, layers: 1, layerSize: 256, mediaTypes: "oci" }),
    );
    const source = await stage(
      "small",
      images.map((content, i) => ({ content, tag: `t${i}` })),
    );
    const mirror = layoutStore("m-small", "small", "destination");
    const outcomes = await copyGraphs(
      images.map((image, i) => taskToEach(`image-${i}`, source, image, [mirror], [`t${i}`])),
      { concurrency: 2 },
    );
    expect(byStatus(outcomes)).toEqual({ copied: 30 });
    expect(journal.peaks.get("source-read")).toBeGreaterThan(copyLimits(2).transfers);
    expect(journal.peaks.get("source-read")).toBeLessThanOrEqual(copyLimits(2).smallTransfers);
    expect(journal.violations).toEqual([]);
  });

  it("queues hundreds of tasks to tens of destinations instead of starting them all", async () => {
    const images: TestImage[] = Array.from({ length: 300 }, (_, i) =>
      makeImage({ seed: `scale-${i}`, layers: 1, layerSize: 64, mediaTypes: "oci" }),
    );
    const entries = images.map((content) => ({ content }));
    const source = await stage("scale", entries);
    // Twenty mirrors that already hold everything (written directly, without the engine): the
    // engine's work is one existence check per (task, destination), 6,000 in all.
    const mirrors = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await writeOciLayoutDirectly(path.join(root, `m${i}`, "scale"), entries);
        return layoutStore(`m${i}`, "scale", "destination");
      }),
    );
    let tasksInFlight = 0;
    let peakTasks = 0;
    const doneByTask = new Map<string, number>();
    const started = performance.now();
    const outcomes = await copyGraphs(
      images.map((image, i) => taskToEach(`image-${i}`, source, image, mirrors, [])),
      {
        concurrency: 2,
        onEvent: (event) => {
          if (event.type === "task-started") peakTasks = Math.max(peakTasks, ++tasksInFlight);
          if (event.type === "destination-done") {
            const done = (doneByTask.get(event.taskId) ?? 0) + 1;
            doneByTask.set(event.taskId, done);
            if (done === mirrors.length) tasksInFlight -= 1;
          }
        },
      },
    );
    const elapsed = performance.now() - started;
    expect(byStatus(outcomes)).toEqual({ unchanged: 6000 });
    // Queued, not all started: the run's task limit holds however many tasks there are.
    expect(peakTasks).toBeLessThanOrEqual(copyLimits(2).tasks);
    expect(copyLimits(2).tasks).toBeLessThan(300);
    expect(journal.peaks.get("request")).toBeLessThanOrEqual(copyLimits(2).requests);
    expect(journal.count("resolve")).toBe(6000);
    expect(journal.count("getManifest")).toBe(0);
    console.log(`scale: 300 tasks x 20 destinations, all present, in ${Math.round(elapsed)} ms`);
  });
});

// ---------------------------------------------------------------------------------------------
// Real registries (CNCF distribution) through the project's registry client
// ---------------------------------------------------------------------------------------------

describe("copyGraphs between real registries", () => {
  const registries: TestRegistry[] = [];
  let provider: ReturnType<typeof createStoreProvider>;

  beforeAll(async () => {
    registries.push(...(await Promise.all([0, 1, 2, 3].map(() => startRegistry()))));
  });

  afterAll(async () => {
    await Promise.all(registries.map((registry) => registry.stop()));
  });

  beforeEach(() => {
    provider = createStoreProvider({ credentialSources: [], env: {} });
  });

  afterEach(async () => {
    await provider.close();
  });

  function remoteStore(
    registry: TestRegistry,
    repository: string,
    side: Side,
    faults: Faults = {},
  ): RecordingStore {
    const inner = provider.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: repository as RepositoryPath,
    });
    return onSide(new RecordingStore(inner, journal, faults), side);
  }

  /** Pushes content to `registry/repository:tag` with skopeo (digests preserved). */
  async function seed(
    registry: TestRegistry,
    repository: string,
    entries: readonly LayoutEntry[],
  ): Promise<void> {
    const layout = path.join(root, "seed", repository);
    await writeOciLayoutDirectly(layout, entries);
    for (const entry of entries) {
      if (entry.tag !== undefined)
        await pushWithSkopeo(layout, entry.tag, `${registry.host}/${repository}:${entry.tag}`);
    }
  }

  /**
   * Pushes content by digest with the registry client's own blob and manifest calls (skopeo's
   * OCI layout transport only finds OCI-typed manifests, and needs a tag).
   */
  async function seedByDigest(store: RepositoryStore, content: TestContent): Promise<void> {
    for (const blob of allBlobs(content)) {
      await store.putBlob(
        blob.descriptor,
        (async function* () {
          yield await Promise.resolve(blob.bytes);
        })(),
      );
    }
    for (const manifest of allManifests(content)) {
      await store.putManifest(
        { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
        manifest.digest,
      );
    }
  }

  function requestsTo(registry: TestRegistry): Record<string, number> {
    return { ...(provider.requestCounts().get(registry.host)?.byMethod ?? {}) };
  }

  it("copies from one registry to three, and skopeo sees exactly the source's manifests and tags", async () => {
    const [staging, ...mirrorRegistries] = registries as [TestRegistry, ...TestRegistry[]];
    const { amd64, arm64, index } = multiArch("remote-app", "oci", 256 * 1024);
    const tagless = makeImage({ seed: "remote-tagless", layers: 1, layerSize: 1024, mediaTypes: "docker" });
    await seed(staging, "staging/app", [{ content: index, tag: "v1" }]);
    const source = remoteStore(staging, "staging/app", "source");
    await seedByDigest(source.inner, tagless);
    // Unchecked: this test counts every request; skopeo checks the result afterwards.
    const mirrors = mirrorRegistries.map((registry) =>
      remoteStore(registry, "prod/rebased/app", "destination", { uncheckedWrites: true }),
    );

    const logger = new MemoryLogger();
    const outcomes = await copyGraphs(
      [
        taskToEach("index", source, index, mirrors, ["v1"]),
        taskToEach("amd64", source, amd64, mirrors, ["v1-amd64"]),
        taskToEach("tagless", source, tagless, mirrors, []),
      ],
      { logger },
    );
    expect(outcomes.map((o) => o.status)).toEqual(Array(9).fill("copied"));
    expect(journal.violations).toEqual([]);
    for (const blob of [...allBlobs(index), ...allBlobs(tagless)]) {
      expect(journal.count("openBlob", { reference: blob.descriptor.digest })).toBe(1);
    }

    for (const registry of mirrorRegistries) {
      const repository = `docker://${registry.host}/prod/rebased/app`;
      expect((await skopeoListTags(repository)).sort()).toEqual(["v1", "v1-amd64"]);
      expect((await skopeoInspectRaw(`${repository}:v1`)).bytes.equals(index.bytes)).toBe(true);
      expect((await skopeoInspectRaw(`${repository}:v1-amd64`)).bytes.equals(amd64.bytes)).toBe(true);
      for (const manifest of [arm64, tagless]) {
        expect(
          (await skopeoInspectRaw(`${repository}@${manifest.digest}`)).bytes.equals(manifest.bytes),
        ).toBe(true);
      }
      // Per destination: one HEAD per manifest and blob, one upload (POST, PUT) per blob, one
      // PUT per manifest and per tag, the roots by their first tag (one PUT for both), nothing
      // read back. Distribution may refuse an index for a moment while a tag write rewrites a
      // child's link file; the engine retries that write.
      const blobs = allBlobs(index).length + allBlobs(tagless).length;
      const retries = logger.lines.filter(
        (line) =>
          line.message.startsWith("retrying manifest write") &&
          line.fields.destination === `${registry.host}/prod/rebased/app`,
      ).length;
      expect(requestsTo(registry)).toEqual({ HEAD: 4 + blobs, POST: blobs, PUT: blobs + 4 + retries });
    }
    for (const mirror of mirrors) expectWriteOrder(mirror, index, ["v1"]);
    console.log("requests per host, cold copy:", Object.fromEntries(provider.requestCounts()));

    // Already promoted: one existence check (HEAD) per (task, destination), nothing else.
    const before = mirrorRegistries.map(requestsTo);
    const again = await copyGraphs([
      taskToEach("index", source, index, mirrors, []),
      taskToEach("amd64", source, amd64, mirrors, []),
      taskToEach("tagless", source, tagless, mirrors, []),
    ]);
    expect(again.map((o) => o.status)).toEqual(Array(9).fill("unchanged"));
    mirrorRegistries.forEach((registry, i) => {
      const after = requestsTo(registry);
      expect((after.HEAD ?? 0) - (before[i]!.HEAD ?? 0)).toBe(3);
      expect((after.GET ?? 0) - (before[i]!.GET ?? 0)).toBe(0);
      expect((after.PUT ?? 0) - (before[i]!.PUT ?? 0)).toBe(0);
    });
  });

  it("mounts blobs from the source repository when both are in the same registry", async () => {
    const registry = registries[0]!;
    const image = makeImage({ seed: "remote-mount", layers: 2, layerSize: 4096, mediaTypes: "oci" });
    await seed(registry, "staging/mounted", [{ content: image, tag: "v1" }]);
    const source = remoteStore(registry, "staging/mounted", "source");
    const destination = remoteStore(registry, "prod/mounted", "destination");
    const [outcome] = await copyGraphs([task("mount", source, image, [[destination, ["v1"]]])]);
    expect(outcome).toMatchObject({ status: "copied", stats: { blobsMounted: 3, blobsUploaded: 0 } });
    expect(journal.count("openBlob")).toBe(0);
    // A mount answers whether the blob is there too: no HEAD before it.
    expect(journal.count("hasBlob")).toBe(0);
    expect(journal.count("mountBlob")).toBe(3);
    const raw = await skopeoInspectRaw(`docker://${registry.host}/prod/mounted:v1`);
    expect(raw.bytes.equals(image.bytes)).toBe(true);
  });

  it("mounts what this run already put in another repository of the destination registry, without checking first", async () => {
    const [staging, mirror] = registries as [TestRegistry, TestRegistry];
    const image = makeImage({ seed: "remote-sibling-mount", layers: 2, layerSize: 8192, mediaTypes: "oci" });
    await seed(staging, "staging/sibling", [{ content: image, tag: "v1" }]);
    const source = remoteStore(staging, "staging/sibling", "source");
    // The second repository starts once the first is complete, so the run knows who holds what.
    let firstDone!: () => void;
    const firstComplete = new Promise<void>((resolve) => (firstDone = resolve));
    const first = remoteStore(mirror, "prod/sibling-a", "destination", { uncheckedWrites: true });
    const second = remoteStore(mirror, "prod/sibling-b", "destination", {
      uncheckedWrites: true,
      beforeResolve: () => firstComplete,
    });
    const before = requestsTo(mirror);
    let afterFirst: Record<string, number> = {};
    const outcomes = await copyGraphs(
      [task("a", source, image, [[first, ["v1"]]]), task("b", source, image, [[second, ["v1"]]])],
      {
        onEvent: (event) => {
          if (event.type === "destination-done" && event.taskId === "a") {
            afterFirst = requestsTo(mirror);
            firstDone();
          }
        },
      },
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["copied", "copied"]);
    expect(outcomes[1]?.stats).toMatchObject({ blobsMounted: 3, blobsUploaded: 0 });
    const delta = (after: Record<string, number>, start: Record<string, number>) =>
      Object.fromEntries(
        Object.entries(after).map(([method, count]) => [method, count - (start[method] ?? 0)]),
      );
    // The first repository as before: per blob a HEAD, a POST and a PUT; the root's HEAD and
    // its PUT by its tag.
    expect(delta(afterFirst, before)).toEqual({ HEAD: 4, POST: 3, PUT: 4 });
    // The second: one POST ?mount= per blob (201) instead of HEAD, POST and PUT; no bytes.
    expect(delta(requestsTo(mirror), afterFirst)).toEqual({ HEAD: 1, POST: 3, PUT: 1 });
    for (const blob of allBlobs(image)) {
      expect(journal.count("openBlob", { reference: blob.descriptor.digest })).toBe(1);
    }

    // skopeo pulls the mounted copy whole and checks every digest; the blobs are the source's.
    const pulled = path.join(root, "pulled-sibling");
    await skopeoCopy(`docker://${mirror.host}/prod/sibling-b:v1`, `oci:${pulled}:v1`);
    for (const blob of allBlobs(image)) {
      const bytes = await readFile(path.join(pulled, "blobs", "sha256", digestHex(blob.descriptor.digest)));
      expect(bytes.equals(blob.bytes)).toBe(true);
    }
    const raw = await skopeoInspectRaw(`docker://${mirror.host}/prod/sibling-b:v1`);
    expect(raw.bytes.equals(image.bytes)).toBe(true);
  });

  it("skips the existence checks the caller already made: the root seen absent, a repository seen empty", async () => {
    const [staging, mirror] = registries as [TestRegistry, TestRegistry];
    const image = makeImage({ seed: "remote-seen", layers: 2, layerSize: 4096, mediaTypes: "oci" });
    await seed(staging, "staging/seen", [{ content: image, tag: "v1" }]);
    const source = remoteStore(staging, "staging/seen", "source");
    const blobs = allBlobs(image).length;
    const copyWith = async (repository: string, seen: DestinationHint | undefined) => {
      const destination = remoteStore(mirror, repository, "destination", { uncheckedWrites: true });
      const before = requestsTo(mirror);
      const [outcome] = await copyGraphs([
        {
          id: repository,
          source,
          digest: image.digest,
          destinations: [{ store: destination, tags: [tag("v1")], ...(seen ? { seen } : {}) }],
        },
      ]);
      expect(outcome?.status).toBe("copied");
      const after = requestsTo(mirror);
      const raw = await skopeoInspectRaw(`docker://${mirror.host}/${repository}:v1`);
      expect(raw.bytes.equals(image.bytes)).toBe(true);
      return Object.fromEntries(
        Object.entries(after)
          .map(([method, count]) => [method, count - (before[method] ?? 0)] as const)
          .filter(([, count]) => count > 0),
      );
    };
    // Without a hint: a HEAD for the root and for each blob.
    expect(await copyWith("prod/seen-none", undefined)).toEqual({
      HEAD: 1 + blobs,
      POST: blobs,
      PUT: blobs + 1,
    });
    expect(await copyWith("prod/seen-absent", "root-absent")).toEqual({
      HEAD: blobs,
      POST: blobs,
      PUT: blobs + 1,
    });
    expect(await copyWith("prod/seen-empty", "empty-repository")).toEqual({ POST: blobs, PUT: blobs + 1 });

    // A stale hint (the repository was not empty after all) costs bytes, not correctness: the
    // blobs are written again under the same digests and skopeo pulls the image whole.
    const stale = remoteStore(mirror, "prod/seen-stale", "destination");
    await seedByDigest(stale.inner, image);
    await stale.inner.putManifest(
      { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
      tag("old"),
    );
    expect(await copyWith("prod/seen-stale", "empty-repository")).toEqual({ POST: blobs, PUT: blobs + 1 });
    const pulled = path.join(root, "pulled-stale");
    await skopeoCopy(`docker://${mirror.host}/prod/seen-stale:v1`, `oci:${pulled}:v1`);
    for (const blob of allBlobs(image)) {
      const bytes = await readFile(path.join(pulled, "blobs", "sha256", digestHex(blob.descriptor.digest)));
      expect(bytes.equals(blob.bytes)).toBe(true);
    }
    expect((await skopeoListTags(`docker://${mirror.host}/prod/seen-stale`)).sort()).toEqual(["old", "v1"]);
  });

  it("in a repository seen empty, still asks about a large blob: a stopped run's upload is not sent again", async () => {
    const [staging, mirror] = registries as [TestRegistry, TestRegistry];
    // A 5 MiB layer (above the 4 MiB bound) and a small config.
    const image = makeImage({
      seed: "seen-empty-large",
      layers: 1,
      layerSize: 5 * 1024 * 1024,
      mediaTypes: "oci",
    });
    await seed(staging, "staging/seen-large", [{ content: image, tag: "v1" }]);
    const source = remoteStore(staging, "staging/seen-large", "source");
    const destination = remoteStore(mirror, "prod/seen-large", "destination", { uncheckedWrites: true });
    // What a run stopped before its manifest and tag leaves: the layer, and a listing with no tags.
    const layer = image.layers[0]!;
    await destination.inner.putBlob(
      layer.descriptor,
      (async function* () {
        yield await Promise.resolve(layer.bytes);
      })(),
    );
    const before = requestsTo(mirror);
    const [outcome] = await copyGraphs([
      {
        id: "resumed",
        source,
        digest: image.digest,
        destinations: [{ store: destination, tags: [tag("v1")], seen: "empty-repository" }],
      },
    ]);
    expect(outcome?.status).toBe("copied");
    const after = requestsTo(mirror);
    // The layer is asked about and found; only the config is sent (POST + PUT), then the
    // manifest and the tag.
    expect({
      HEAD: (after.HEAD ?? 0) - (before.HEAD ?? 0),
      POST: (after.POST ?? 0) - (before.POST ?? 0),
    }).toEqual({
      HEAD: 1,
      POST: 1,
    });
    expect(outcome?.stats.blobsSkipped).toBe(1);
    const raw = await skopeoInspectRaw(`docker://${mirror.host}/prod/seen-large:v1`);
    expect(raw.bytes.equals(image.bytes)).toBe(true);
  });

  it("does not deadlock when uploads to one host outnumber its connection slots", async () => {
    // Three destination repositories on one registry, mounting off, two requests in flight per
    // host, layers larger than the fan-out buffer: uploads of one source read wait for slots held
    // by uploads of another read that wait for their own laggards.
    provider = createStoreProvider({
      credentialSources: [],
      env: {},
      limits: { defaults: { maxConcurrent: 2 } },
    });
    const [staging, target] = [registries[0]!, registries[1]!];
    const image = makeImage({ seed: "crowded", layers: 3, layerSize: 3 * 1024 * 1024, mediaTypes: "oci" });
    await seed(staging, "staging/crowded", [{ content: image, tag: "v1" }]);
    const source = remoteStore(staging, "staging/crowded", "source");
    const destinations = ["a", "b", "c"].map((name) => remoteStore(target, `crowded/${name}`, "destination"));
    const started = performance.now();
    const outcomes = await copyGraphs(
      [
        task(
          "crowded",
          source,
          image,
          destinations.map((d) => [d, ["v1"]] as const),
        ),
      ],
      {
        mount: false,
        concurrency: 3,
        uploadStartTimeoutMs: 300,
      },
    );
    expect(outcomes.map((o) => o.status)).toEqual(["copied", "copied", "copied"]);
    for (const name of ["a", "b", "c"]) {
      const raw = await skopeoInspectRaw(`docker://${target.host}/crowded/${name}:v1`);
      expect(raw.digest).toBe(image.digest);
    }
    console.log(
      `crowded host: ${Math.round(performance.now() - started)} ms, source reads ${journal.count("openBlob")}`,
    );
  });

  it("fails cleanly when the source registry serves bytes that do not match the digest", async () => {
    const [staging, target] = [registries[0]!, registries[2]!];
    const image = makeImage({ seed: "remote-corrupt", layers: 1, layerSize: 8192, mediaTypes: "oci" });
    await seed(staging, "staging/corrupt", [{ content: image, tag: "v1" }]);
    const layer = image.layers[0]!;
    const hex = digestHex(layer.descriptor.digest);
    const data = path.join(
      staging.dataDir,
      "docker",
      "registry",
      "v2",
      "blobs",
      "sha256",
      hex.slice(0, 2),
      hex,
      "data",
    );
    const corrupted = Buffer.from(layer.bytes);
    corrupted[10] = corrupted[10]! ^ 0xff;
    await writeFile(data, corrupted);
    const source = remoteStore(staging, "staging/corrupt", "source");
    const destination = remoteStore(target, "prod/corrupt", "destination");
    const [outcome] = await copyGraphs([task("corrupt", source, image, [[destination, ["v1"]]])]);
    expect(outcome).toMatchObject({ status: "failed", tagsWritten: [] });
    expect(outcome?.error).toMatchObject({ side: "source", code: "copy-source-failed" });
    expect(await destination.inner.resolve(image.digest)).toBeUndefined();
    expect(await destination.inner.hasBlob(layer.descriptor.digest)).toBe(false);
    expect(await destination.inner.listTags()).toEqual([]);
  });
});
