import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  makeImage,
  makeIndex,
  makeReferrer,
  writeOciLayoutDirectly,
} from "../../test/support/test-images.js";
import { MemoryLogger } from "../log.js";
import type { Digest, RegistryHost, RepositoryLocation, RepositoryPath, Tag } from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import type { DesiredRepository } from "./desired-state.js";
import { UNATTRIBUTED_HOST } from "./event.js";
import { NEGATIVE_CACHE_MS, RegistryManifestLookup } from "./lookup.js";

const amd64 = makeImage({ layers: 1, layerSize: 128, mediaTypes: "oci", seed: "lookup-amd64" });
const arm64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "lookup-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const index = makeIndex([amd64, arm64], { mediaType: "oci" });
const referrer = makeReferrer({
  subject: amd64.descriptor,
  artifactType: "application/example",
  seed: "lookup-ref",
});

describe("RegistryManifestLookup over stores", () => {
  let work: string;
  let provider: RegistryStoreProvider;
  let production: DesiredRepository;
  let clock = 0;

  const location = (root: string): RepositoryLocation => ({
    kind: "oci-layout",
    directory: path.join(work, root),
    repository: "app" as RepositoryPath,
  });

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "promoter-lookup-"));
    // Staging holds the index; production holds only the referrer (the index is not there yet).
    await writeOciLayoutDirectly(path.join(work, "staging", "app"), [{ content: index, tag: "v1" }]);
    await writeOciLayoutDirectly(path.join(work, "prod", "app"), [{ content: referrer, tag: "ref" }]);
    provider = createStoreProvider({ env: {}, homeDirectory: work });
    production = {
      key: "oci:prod/app",
      location: location("prod"),
      digests: new Map([[index.digest, { tags: ["v1" as Tag], sources: [location("staging")] }]]),
      tags: new Map([["v1" as Tag, [index.digest]]]),
    };
  });

  afterAll(async () => {
    await provider.close();
    await rm(work, { recursive: true, force: true });
  });

  function lookup(): RegistryManifestLookup {
    return new RegistryManifestLookup({
      provider,
      logger: new MemoryLogger(),
      verifiedTagFor: (repositoryKey, digest) =>
        repositoryKey === "oci:prod/app" && digest === referrer.digest ? ("ref" as Tag) : undefined,
      now: () => clock,
    });
  }

  it("reads from production first, then from the sources the manifests name", async () => {
    const subject = lookup();
    expect(await subject.manifest(production, referrer.digest)).toEqual({
      mediaType: referrer.mediaType,
      children: [],
      subject: amd64.digest,
      shape: {
        mediaType: referrer.mediaType,
        artifactType: "application/example",
        configMediaType: "application/vnd.oci.empty.v1+json",
        layerMediaTypes: ["application/octet-stream"],
      },
    });
    expect(await subject.manifest(production, index.digest)).toEqual({
      mediaType: index.mediaType,
      children: [amd64.digest, arm64.digest],
      shape: { mediaType: index.mediaType, layerMediaTypes: [] },
    });
    // A child of a promoted index is read where its parent's source is.
    expect((await subject.manifest(production, arm64.digest))?.mediaType).toBe(arm64.mediaType);
    expect(subject.verifiedTagFor("oci:prod/app", referrer.digest)).toBe("ref");
  });

  it("remembers a miss briefly, forgets it on a push, and falls back to what an event told", async () => {
    const subject = lookup();
    const absent = `sha256:${"f".repeat(64)}` as Digest;
    expect(await subject.manifest(production, absent)).toBeUndefined();
    subject.learn(absent, { mediaType: index.mediaType, children: [amd64.digest] });
    // Still within the negative-cache time: the hint answers without a read.
    expect(await subject.manifest(production, absent)).toEqual({
      mediaType: index.mediaType,
      children: [amd64.digest],
    });
    subject.forget(absent);
    clock += NEGATIVE_CACHE_MS + 1;
    expect((await subject.manifest(production, absent))?.children).toEqual([amd64.digest]);
  });

  it("reads no registry for events nothing attributed to one", async () => {
    const reads: string[] = [];
    const subject = new RegistryManifestLookup({
      provider: {
        ...provider,
        repository: (where) => {
          reads.push(JSON.stringify(where));
          return provider.repository(where);
        },
      },
      logger: new MemoryLogger(),
      verifiedTagFor: () => undefined,
    });
    const unattributed: DesiredRepository = {
      key: `${UNATTRIBUTED_HOST}/app`,
      location: {
        kind: "remote",
        host: UNATTRIBUTED_HOST as RegistryHost,
        repository: "app" as RepositoryPath,
      },
      digests: new Map(),
      tags: new Map(),
    };
    expect(await subject.manifest(unattributed, amd64.digest)).toBeUndefined();
    expect(reads).toEqual([]);
  });

  it("resolves tags in production", async () => {
    const subject = lookup();
    expect(await subject.resolveTag(production, "ref" as Tag)).toBe(referrer.digest);
    expect(await subject.resolveTag(production, "nope" as Tag)).toBeUndefined();
  });
});
