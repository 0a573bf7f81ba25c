/**
 * The copy engine mounts a blob without checking for it first when a repository on the same
 * registry holds it (a 201 answers both questions). These registries answer the mount otherwise:
 * they ignore it (202, the upload session it opened is used), refuse it (403: nothing was
 * opened, so the blob is checked and uploaded the usual way, and the pair is not asked again),
 * or fail it (404, 405). Every image must still arrive whole, and tags only on complete images.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { RegistryHost, RepositoryPath } from "../reference/index.js";
import { createStoreProvider, openOnSide, type RegistryStoreProvider } from "../registry/index.js";
import {
  createMemoryRegistry,
  FakeClock,
  memoryRegistryRoutes,
  ScriptedRegistry,
  sendError,
  type MemoryRegistry,
  type ScriptedRequest,
} from "../../test/support/scripted-registry.js";
import { allBlobs, allManifests, makeImage, type TestImage } from "../../test/support/test-images.js";
import { copyGraphs, type CopyTask } from "./index.js";

type MountAnswer = "ignore" | 403 | 404 | 405;

let server: ScriptedRegistry | undefined;
let provider: RegistryStoreProvider | undefined;

afterEach(async () => {
  await provider?.close();
  await server?.stop();
  server = undefined;
  provider = undefined;
});

/** Mount requests received (the "ignore" registry strips the parameters before serving them). */
let mountsAsked = 0;

async function setUp(answer: MountAnswer): Promise<{ memory: MemoryRegistry; registry: ScriptedRegistry }> {
  server = await ScriptedRegistry.start();
  const memory = createMemoryRegistry();
  mountsAsked = 0;
  memoryRegistryRoutes(server, memory, (request: ScriptedRequest, response: ServerResponse) => {
    if (request.method !== "POST" || !request.url.searchParams.has("mount")) return false;
    mountsAsked += 1;
    if (answer === "ignore") {
      // A registry without mounts: it opens an ordinary upload session (202).
      request.url.searchParams.delete("mount");
      request.url.searchParams.delete("from");
      return false;
    }
    const codes = { 403: "DENIED", 404: "NAME_UNKNOWN", 405: "UNSUPPORTED" } as const;
    sendError(response, answer, codes[answer], "mount not possible here");
    return true;
  });
  provider = createStoreProvider({
    credentialSources: [],
    clock: new FakeClock(),
    retry: { maxAttempts: 1 },
  });
  return { memory, registry: server };
}

function seedSource(memory: MemoryRegistry, image: TestImage, tag: string): void {
  const staging = memory.repository("staging/app");
  for (const blob of allBlobs(image)) staging.blobs.set(blob.descriptor.digest, blob.bytes);
  for (const manifest of allManifests(image)) {
    staging.manifests.set(manifest.digest, { bytes: manifest.bytes, mediaType: manifest.mediaType });
  }
  staging.tags.set(tag, image.digest);
}

function copyTask(registry: ScriptedRegistry, image: TestImage, tag: string): CopyTask {
  const open = (repository: string, side: "source" | "destination") =>
    openOnSide(
      provider!,
      { kind: "remote", host: registry.host as RegistryHost, repository: repository as RepositoryPath },
      side,
    );
  return {
    id: tag,
    source: open("staging/app", "source"),
    digest: image.digest,
    destinations: [{ store: open("prod/app", "destination"), tags: [tag as never] }],
  };
}

function expectComplete(memory: MemoryRegistry, image: TestImage, tag: string): void {
  const prod = memory.repository("prod/app");
  for (const blob of allBlobs(image)) {
    expect(prod.blobs.get(blob.descriptor.digest)?.equals(blob.bytes)).toBe(true);
  }
  expect(prod.manifests.get(image.digest)?.bytes.equals(image.bytes)).toBe(true);
  expect(prod.tags.get(tag)).toBe(image.digest);
}

function requests(registry: ScriptedRegistry, from: number) {
  const to = (pattern: RegExp, method: string) =>
    registry.requests
      .slice(from)
      .filter((request) => request.method === method && pattern.test(request.path));
  return {
    blobHeads: to(/^\/v2\/prod\/app\/blobs\/sha256:/, "HEAD").length,
    uploadPosts: to(/^\/v2\/prod\/app\/blobs\/uploads\/$/, "POST").length,
    uploadPuts: to(/^\/v2\/prod\/app\/blobs\/uploads\/.+/, "PUT").length,
  };
}

describe("mounting from the source's registry when the registry does not mount", () => {
  it("uses the session a mount the registry ignores (202) opened: no HEAD, no second POST", async () => {
    const { memory, registry } = await setUp("ignore");
    const image = makeImage({ seed: "mount-ignored", layers: 2, layerSize: 2048, mediaTypes: "oci" });
    seedSource(memory, image, "v1");
    const [outcome] = await copyGraphs([copyTask(registry, image, "v1")]);
    expect(outcome).toMatchObject({ status: "copied", stats: { blobsMounted: 0, blobsUploaded: 3 } });
    expectComplete(memory, image, "v1");
    const seen = requests(registry, 0);
    // Per blob: POST ?mount= (202) and the PUT closing that session. Two round trips, not three.
    expect(seen).toEqual({ blobHeads: 0, uploadPosts: 3, uploadPuts: 3 });
    expect(mountsAsked).toBe(3);
  });

  it.each([403, 404, 405] as const)(
    "checks and uploads when the registry answers a mount with %i, and asks no more for a refused pair",
    async (status) => {
      const { memory, registry } = await setUp(status);
      const image = makeImage({ seed: `mount-${status}`, layers: 2, layerSize: 2048, mediaTypes: "oci" });
      seedSource(memory, image, "v1");
      const [outcome] = await copyGraphs([copyTask(registry, image, "v1")]);
      expect(outcome).toMatchObject({ status: "copied", stats: { blobsMounted: 0, blobsUploaded: 3 } });
      expectComplete(memory, image, "v1");
      const first = requests(registry, 0);
      // Nothing was opened by the failed mount: each blob is checked, then uploaded (POST, PUT).
      expect(mountsAsked).toBe(3);
      expect(first).toEqual({ blobHeads: 3, uploadPosts: 6, uploadPuts: 3 });

      // A later run with the same client: a refused pair (403) is not asked again; a mount that
      // failed otherwise is tried again, and fails over the same way.
      const later = makeImage({
        seed: `mount-${status}-later`,
        layers: 1,
        layerSize: 2048,
        mediaTypes: "oci",
      });
      seedSource(memory, later, "v2");
      const mark = registry.requests.length;
      mountsAsked = 0;
      const [again] = await copyGraphs([copyTask(registry, later, "v2")]);
      expect(again?.status).toBe("copied");
      expectComplete(memory, later, "v2");
      const second = requests(registry, mark);
      const mounts = status === 403 ? 0 : 2;
      expect(mountsAsked).toBe(mounts);
      expect(second).toEqual({ blobHeads: 2, uploadPosts: 2 + mounts, uploadPuts: 2 });
    },
  );
});
