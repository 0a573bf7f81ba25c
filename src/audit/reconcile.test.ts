import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appDesiredState } from "../../test/support/audit-state.js";
import { cosignSignatureFor } from "../../test/support/hostile-auditor.js";
import { startRegistry, type TestRegistry } from "../../test/support/registry-harness.js";
import {
  allBlobs,
  allManifests,
  makeImage,
  makeIndex,
  type TestContent,
} from "../../test/support/test-images.js";
import { MemoryLogger } from "../log.js";
import {
  parseRegistryLocation,
  parseRepositoryPath,
  repositoryIn,
  type Digest,
  type Tag,
} from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import type { DesiredRepository } from "./desired-state.js";
import { compareRepository, reconcile, type ReconcileObservation } from "./reconcile.js";

const digest = (fill: string): Digest => `sha256:${fill.repeat(64)}` as Digest;
const A = digest("a");
const B = digest("b");
const C = digest("c");
const CHILD = digest("d");

function desired(): DesiredRepository {
  return appDesiredState({ [A]: ["1.0", "latest"], [B]: [] }).repositories.get("reg.example/prod/app")!;
}

function observation(
  fields: Partial<Omit<ReconcileObservation, "tags">> & { tags?: Record<string, Digest | undefined> },
): ReconcileObservation {
  return {
    tags: new Map(Object.entries(fields.tags ?? { "1.0": A, latest: A }) as [Tag, Digest | undefined][]),
    missingDigests: fields.missingDigests ?? new Set(),
    explained: fields.explained ?? new Set(),
    childrenOfUnexpected: fields.childrenOfUnexpected ?? new Map(),
    ...(fields.notAttachments ? { notAttachments: fields.notAttachments } : {}),
  };
}

const kinds = (issues: ReturnType<typeof compareRepository>): string[][] =>
  issues.map((issue) => [issue.kind, issue.tag ?? "", issue.digest ?? ""]);

describe("compareRepository", () => {
  it("finds nothing when production matches", () => {
    expect(compareRepository(desired(), observation({}))).toEqual([]);
  });

  it("reports a tag at the wrong digest, and that digest", () => {
    const issues = compareRepository(desired(), observation({ tags: { "1.0": C, latest: A } }));
    expect(kinds(issues)).toEqual([
      ["unexpected-digest", "", C],
      ["wrong-digest", "1.0", C],
    ]);
    expect(issues[1]?.expected).toEqual([A]);
  });

  it("reports missing tags, and missing digests instead of their tags", () => {
    expect(kinds(compareRepository(desired(), observation({ tags: { "1.0": A } })))).toEqual([
      ["missing-tag", "latest", A],
    ]);
    expect(
      kinds(compareRepository(desired(), observation({ tags: {}, missingDigests: new Set([A, B]) }))),
    ).toEqual([
      ["missing-digest", "", A],
      ["missing-digest", "", B],
    ]);
  });

  it("reports extra tags; the digest only when it is not promoted or explained", () => {
    const issues = compareRepository(
      desired(),
      observation({
        tags: { "1.0": A, latest: A, extra: A, child: CHILD, rogue: C },
        explained: new Set([CHILD]),
      }),
    );
    expect(kinds(issues)).toEqual([
      ["unexpected-digest", "", C],
      ["unexpected-tag", "child", CHILD],
      ["unexpected-tag", "extra", A],
      ["unexpected-tag", "rogue", C],
    ]);
    expect(issues.find((issue) => issue.tag === "extra")?.detail).toMatch(/its digest is promoted/);
  });

  it("expects signature, attestation and SBOM tags of promoted digests only", () => {
    const tags = {
      "1.0": A,
      latest: A,
      [`sha256-${A.slice(7)}.sig`]: undefined,
      [`sha256-${CHILD.slice(7)}.att`]: C,
      [`sha256-${C.slice(7)}.sbom`]: B,
    };
    const issues = compareRepository(desired(), observation({ tags, explained: new Set([CHILD]) }));
    expect(kinds(issues)).toEqual([["unexpected-tag", `sha256-${C.slice(7)}.sbom`, B]]);
  });

  it("reports an attached-artifact tag of a promoted digest that holds no attachment", () => {
    const tags = { "1.0": A, latest: A, [`sha256-${A.slice(7)}.sig`]: C };
    const notAttachments = new Map([[`sha256-${A.slice(7)}.sig` as Tag, "a runnable image (...)"]]);
    const issues = compareRepository(desired(), observation({ tags, notAttachments }));
    expect(kinds(issues)).toEqual([
      ["unexpected-digest", "", C],
      ["unexpected-tag", `sha256-${A.slice(7)}.sig`, C],
    ]);
    expect(issues[1]?.detail).toBe(`signature tag of ${A}, but it holds a runnable image (...)`);
  });

  it("reports the children of an unexpected index", () => {
    const issues = compareRepository(desired(), observation({ childrenOfUnexpected: new Map([[CHILD, C]]) }));
    expect(issues).toMatchObject([
      { kind: "unexpected-digest", digest: CHILD, detail: `child manifest of unexpected index ${C}` },
    ]);
  });
});

describe("reconcile against a real registry", () => {
  let registry: TestRegistry;
  let provider: RegistryStoreProvider;
  let work: string;
  const image = (seed: string): TestContent =>
    makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed });
  const tagged = image("reconcile-tagged");
  const tagless = image("reconcile-tagless");
  const wrong = image("reconcile-wrong");
  const stray = image("reconcile-stray");
  const signature = cosignSignatureFor(tagged.descriptor, "reconcile-signature");
  /** A runnable image under the attestation tag of a promoted digest. */
  const disguised = image("reconcile-disguised");
  const rogueIndex = makeIndex([image("reconcile-rogue-child")], { mediaType: "oci" });

  async function put(repository: string, content: TestContent, reference?: string): Promise<void> {
    const store = provider.repository(
      repositoryIn(parseRegistryLocation(registry.host), parseRepositoryPath(repository)),
    );
    for (const blob of allBlobs(content)) await store.putBlob(blob.descriptor, Readable.from([blob.bytes]));
    for (const manifest of allManifests(content)) {
      await store.putManifest(
        { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
        manifest.digest,
      );
    }
    if (reference !== undefined) {
      await store.putManifest(
        { digest: content.digest, mediaType: content.mediaType, bytes: content.bytes },
        reference as Tag,
      );
    }
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "promoter-reconcile-"));
    registry = await startRegistry();
    provider = createStoreProvider({ env: {}, homeDirectory: work });
    // prod: as wanted, plus a signature tag, an extra index and a repository nobody promotes.
    await put("prod/app", tagged, "1.0");
    await put("prod/app", tagless);
    await put("prod/app", signature, `sha256-${tagged.digest.slice(7)}.sig`);
    await put("prod/app", disguised, `sha256-${tagless.digest.slice(7)}.att`);
    await put("prod/app", rogueIndex, "rogue");
    await put("prod/stray", stray, "x");
    // mirror: the tag points elsewhere and the tagless digest is missing.
    await put("mirror/app", wrong, "1.0");
    // staging holds anything: it is not production.
    await put("staging/app", stray, "anything");
  }, 60_000);

  afterAll(async () => {
    await provider.close();
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("lists what differs from the manifests, with mirrors and the catalog", async () => {
    const state = appDesiredState(
      { [tagged.digest]: ["1.0"], [tagless.digest]: [] },
      { host: registry.host, mirrors: ["mirror"] },
    );
    const report = await reconcile(state, { provider, logger: new MemoryLogger() });
    const host = registry.host;
    const rogueChild = rogueIndex.manifests[0]!.digest;
    expect(
      report.issues.map((issue) => [issue.kind, issue.repository, issue.tag ?? "", issue.digest ?? ""]),
    ).toEqual([
      // Digests sort as text; the seeds decide which comes first.
      ...[tagged.digest, tagless.digest]
        .sort()
        .map((missing) => ["missing-digest", `${host}/mirror/app`, "", missing]),
      ["unexpected-digest", `${host}/mirror/app`, "", wrong.digest],
      ["wrong-digest", `${host}/mirror/app`, "1.0", wrong.digest],
      ...[rogueIndex.digest, rogueChild, disguised.digest]
        .sort()
        .map((unexpected) => ["unexpected-digest", `${host}/prod/app`, "", unexpected]),
      ["unexpected-tag", `${host}/prod/app`, "rogue", rogueIndex.digest],
      ["unexpected-tag", `${host}/prod/app`, `sha256-${tagless.digest.slice(7)}.att`, disguised.digest],
      ["unexpected-repository", `${host}/prod/stray`, "", ""],
    ]);
    expect(report.issues.find((issue) => issue.digest === disguised.digest && issue.tag)?.detail).toMatch(
      /^attestation tag of sha256:[0-9a-f]{64}, but it holds a runnable image/,
    );
    expect(report.repositories).toBe(2);
    expect(report.notes).toEqual([]);
  });
});
