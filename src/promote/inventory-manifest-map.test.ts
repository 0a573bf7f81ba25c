import { createHash } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createMemoryRegistry,
  memoryRegistryRoutes,
  ScriptedRegistry,
  type MemoryRegistry,
} from "../../test/support/scripted-registry.js";
import {
  isGoogleRegistryHost,
  parseDigest,
  parseRegistryHost,
  parseRepositoryPath,
  parseTag,
  RepositoryKeyCache,
  type Digest,
  type Tag,
} from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import { takeSnapshot } from "../gitops/index.js";
import { decidePlan, indexConflicts, type PromotionEdge } from "../plan/index.js";
import { ManifestMapHints, observeRepository } from "./inventory.js";

/**
 * The inventory through Google's tags listing with its `manifest` map (registry/remote/
 * manifest-map.ts), against in-memory registries answering over HTTP on 127.0.0.1: one the way
 * Google's registries answer (the map, paginated), one the way distribution does (tags only).
 * Whatever the state, both give the planner the same answers, and the map costs one request per
 * page instead of one per tag and digest.
 */

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

let google: ScriptedRegistry;
let plain: ScriptedRegistry;
let googleMemory: MemoryRegistry;
let plainMemory: MemoryRegistry;
let provider: RegistryStoreProvider;

/** A small deterministic random source (xorshift32), so a failing state can be replayed. */
function randomSource(seed: number): (below: number) => number {
  let state = seed || 1;
  return (below) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
}

function manifestBytes(label: string): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, annotations: { label } }));
}

function digestOf(bytes: Buffer): Digest {
  return parseDigest(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
}

/** The same repository content in both registries. */
function store(name: string, manifests: { bytes: Buffer; mediaType: string; tags: string[] }[]): void {
  for (const memory of [googleMemory, plainMemory]) {
    const repository = memory.repository(name);
    for (const manifest of manifests) {
      const digest = digestOf(manifest.bytes);
      repository.manifests.set(digest, { bytes: manifest.bytes, mediaType: manifest.mediaType });
      for (const tag of manifest.tags) repository.tags.set(tag, digest);
    }
  }
}

function open(registry: ScriptedRegistry, name: string) {
  return provider.repository({
    kind: "remote",
    host: parseRegistryHost(registry.host),
    repository: parseRepositoryPath(name),
  });
}

function requestsTo(registry: ScriptedRegistry, since: number): string[] {
  return registry.requests.slice(since).map((request) => `${request.method} ${request.path}`);
}

beforeAll(async () => {
  [google, plain] = await Promise.all([ScriptedRegistry.start(), ScriptedRegistry.start()]);
  googleMemory = createMemoryRegistry();
  plainMemory = createMemoryRegistry();
  memoryRegistryRoutes(google, googleMemory, () => false, { manifestMap: { pageSize: 7 } });
  memoryRegistryRoutes(plain, plainMemory);
  provider = createStoreProvider({ env: {} });
});
afterAll(async () => {
  await provider.close();
  await Promise.all([google.stop(), plain.stop()]);
});
beforeEach(() => {
  googleMemory.repositories.clear();
  plainMemory.repositories.clear();
});

describe("the inventory through Google's manifest map", () => {
  it("gives the same answers as HEADs, for random repositories and questions", async () => {
    const random = randomSource(20261206);
    for (let trial = 0; trial < 40; trial++) {
      const name = `prop/r${trial}`;
      const count = 1 + random(20);
      const manifests = Array.from({ length: count }, (_, i) => ({
        bytes: manifestBytes(`${trial}-${i}`),
        mediaType: random(4) === 0 ? OCI_INDEX : OCI_MANIFEST,
        tags: [] as string[],
      }));
      // Tags: some manifests have several, some none (untagged digests).
      for (let t = 0; t < random(30); t++) manifests[random(count)]!.tags.push(`t${t}`);
      if (random(5) > 0) store(name, manifests);
      // The question: tags and digests, present or not.
      const tags = new Set<Tag>();
      for (let t = 0; t < 1 + random(35); t++) tags.add(parseTag(`t${random(40)}`));
      const digests = new Set<Digest>();
      for (const manifest of manifests) if (random(2) === 0) digests.add(digestOf(manifest.bytes));
      digests.add(digestOf(manifestBytes(`absent-${trial}`)));
      const question = { tags, digests };

      const byMap = await observeRepository(open(google, name), question, {
        manifestMaps: new ManifestMapHints(() => true),
      });
      const byHeads = await observeRepository(open(plain, name), question);
      expect(byMap, `trial ${trial}`).toEqual(byHeads);
    }
  });

  it("costs one request per page of the listing, not one per tag and digest", async () => {
    const manifests = Array.from({ length: 12 }, (_, i) => ({
      bytes: manifestBytes(`cost-${i}`),
      mediaType: OCI_MANIFEST,
      tags: [`v${i}`],
    }));
    store("cost/app", manifests);
    const question = {
      tags: new Set(manifests.map((_, i) => parseTag(`v${i}`))),
      digests: new Set(manifests.map((manifest) => digestOf(manifest.bytes))),
    };
    const before = google.requests.length;
    const state = await observeRepository(open(google, "cost/app"), question, {
      manifestMaps: new ManifestMapHints(() => true),
    });
    expect(state).toMatchObject({ kind: "observed" });
    // 12 tags and 12 digests on pages of 7: two GETs.
    expect(requestsTo(google, before)).toEqual(["GET /v2/cost/app/tags/list", "GET /v2/cost/app/tags/list"]);
    const plainBefore = plain.requests.length;
    await observeRepository(open(plain, "cost/app"), question);
    expect(requestsTo(plain, plainBefore)).toHaveLength(12);
  });

  it("learns which hosts give the map: listed first once one answer had it, HEADs where none did", async () => {
    for (const name of ["learn/a", "learn/b"]) {
      store(
        name,
        ["x", "y", "z"].map((tag) => ({
          bytes: manifestBytes(`${name}-${tag}`),
          mediaType: OCI_MANIFEST,
          tags: [],
        })),
      );
    }
    const question = { tags: new Set(["x", "y", "z"].map(parseTag)), digests: new Set<Digest>() };
    const hints = new ManifestMapHints(() => false);
    // Not expected: the first (absent) tag is asked with a HEAD, then the listing shows the map.
    let before = google.requests.length;
    await observeRepository(open(google, "learn/a"), question, { manifestMaps: hints });
    expect(requestsTo(google, before)).toEqual(["HEAD /v2/learn/a/manifests/x", "GET /v2/learn/a/tags/list"]);
    before = google.requests.length;
    await observeRepository(open(google, "learn/b"), question, { manifestMaps: hints });
    expect(requestsTo(google, before)).toEqual(["GET /v2/learn/b/tags/list"]);
    // Expected but not given (a registry that is not Google's behind a Google-like name): it
    // is asked as any other from then on.
    const wrong = new ManifestMapHints(() => true);
    before = plain.requests.length;
    await observeRepository(open(plain, "learn/a"), question, { manifestMaps: wrong });
    expect(requestsTo(plain, before)).toEqual(["GET /v2/learn/a/tags/list"]);
    before = plain.requests.length;
    await observeRepository(open(plain, "learn/b"), question, { manifestMaps: wrong });
    expect(requestsTo(plain, before)).toEqual(["HEAD /v2/learn/b/manifests/x", "GET /v2/learn/b/tags/list"]);
  });

  it("asks with a HEAD what a malformed map entry does not settle", async () => {
    const good = { bytes: manifestBytes("good"), mediaType: OCI_MANIFEST, tags: ["good"] };
    store("odd/app", [good]);
    const digest = digestOf(good.bytes);
    const odd = await ScriptedRegistry.start();
    try {
      odd.on("GET", "/v2/odd/app/tags/list", (_request, response) => {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            name: "odd/app",
            tags: ["good"],
            // No media type: the tag and digest are asked with a HEAD. A key that is no digest is ignored.
            manifest: {
              [digest]: { tag: ["good"] },
              "not-a-digest": { tag: ["good"], mediaType: OCI_MANIFEST },
            },
          }),
        );
      });
      odd.on("HEAD", `/v2/odd/app/manifests/good`, (_request, response) => {
        response.writeHead(200, {
          "content-type": OCI_MANIFEST,
          "content-length": good.bytes.length,
          "docker-content-digest": digest,
        });
        response.end();
      });
      const state = await observeRepository(
        open(odd, "odd/app"),
        { tags: new Set([parseTag("good")]), digests: new Set([digest]) },
        { manifestMaps: new ManifestMapHints(() => true) },
      );
      expect(state).toEqual({
        kind: "observed",
        tags: new Map([["good", digest]]),
        digests: new Set([digest]),
        indexes: new Set(),
      });
      expect(odd.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
        "GET /v2/odd/app/tags/list",
        "HEAD /v2/odd/app/manifests/good",
      ]);
    } finally {
      await odd.stop();
    }
  });

  it("asks with a HEAD a tag the listing names but the map does not place: a moved tag stays refused", async () => {
    const wanted = { bytes: manifestBytes("moved-wanted"), mediaType: OCI_MANIFEST, tags: [] as string[] };
    const other = { bytes: manifestBytes("moved-other"), mediaType: OCI_MANIFEST, tags: [] as string[] };
    const moved = await ScriptedRegistry.start();
    try {
      moved.on("GET", "/v2/moved/app/tags/list", (_request, response) => {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            name: "moved/app",
            tags: ["v1"],
            // The map lists the manifests but not where v1 now points.
            manifest: {
              [digestOf(wanted.bytes)]: { tag: [], mediaType: OCI_MANIFEST },
              [digestOf(other.bytes)]: { tag: [], mediaType: OCI_MANIFEST },
            },
          }),
        );
      });
      moved.on("HEAD", "/v2/moved/app/manifests/v1", (_request, response) => {
        response.writeHead(200, {
          "content-type": OCI_MANIFEST,
          "content-length": other.bytes.length,
          "docker-content-digest": digestOf(other.bytes),
        });
        response.end();
      });
      const repository = {
        kind: "remote" as const,
        host: parseRegistryHost(moved.host),
        repository: parseRepositoryPath("moved/app"),
      };
      const state = await observeRepository(
        provider.repository(repository),
        { tags: new Set([parseTag("v1")]), digests: new Set([digestOf(wanted.bytes)]) },
        { manifestMaps: new ManifestMapHints(() => true) },
      );
      expect(state).toMatchObject({ kind: "observed", tags: new Map([["v1", digestOf(other.bytes)]]) });
      // The planner, given that state, refuses to move v1 to the wanted digest.
      const keys = new RepositoryKeyCache();
      const edge = {
        project: "p",
        image: parseRepositoryPath("app"),
        digest: digestOf(wanted.bytes),
        tag: parseTag("v1"),
        source: repository,
        destination: repository,
      };
      const plan = decidePlan(
        [edge as unknown as PromotionEdge],
        {
          destinations: new Map([[keys.of(repository), state]]),
          sources: new Map([[keys.of(repository), state]]),
        },
        indexConflicts([]),
        keys,
      );
      expect(plan.edges[0]?.decision.kind).toBe("refused-tag-move");
    } finally {
      await moved.stop();
    }
  });

  it("lets snapshot list untagged digests, with one request per repository page", async () => {
    const tagged = { bytes: manifestBytes("snap-tagged"), mediaType: OCI_MANIFEST, tags: ["v1", "latest"] };
    const untagged = { bytes: manifestBytes("snap-untagged"), mediaType: OCI_MANIFEST, tags: [] };
    const signature = {
      bytes: manifestBytes("snap-sig"),
      mediaType: OCI_MANIFEST,
      tags: [`sha256-${digestOf(manifestBytes("snap-tagged")).slice(7)}.sig`],
    };
    store("snap/app", [tagged, untagged, signature]);
    const before = google.requests.length;
    const snapshot = await takeSnapshot(
      {
        kind: "remote",
        host: parseRegistryHost(google.host),
        prefix: parseRepositoryPath("snap"),
        name: `${google.host}/snap`,
      },
      { provider, repositories: ["app"] },
    );
    expect(snapshot.images).toEqual([
      {
        name: "app",
        digests: [
          { digest: digestOf(tagged.bytes), tags: ["latest", "v1"], mediaType: OCI_MANIFEST },
          { digest: digestOf(untagged.bytes), tags: [], mediaType: OCI_MANIFEST },
        ].sort((a, b) => (a.digest < b.digest ? -1 : 1)),
      },
    ]);
    expect(snapshot.attachmentTags).toBe(1);
    expect(requestsTo(google, before)).toEqual(["GET /v2/snap/app/tags/list"]);
  });

  it("knows Google's hosts", () => {
    for (const host of [
      "gcr.io",
      "us.gcr.io",
      "EU.GCR.IO",
      "us-central1-docker.pkg.dev",
      "europe-west4-docker.pkg.dev:443",
    ])
      expect(isGoogleRegistryHost(host), host).toBe(true);
    for (const host of [
      "registry.k8s.io",
      "docker.pkg.dev",
      "gcr.io.example.com",
      "evilgcr.io",
      "pkg.dev",
      "127.0.0.1:5000",
    ])
      expect(isGoogleRegistryHost(host), host).toBe(false);
  });
});
