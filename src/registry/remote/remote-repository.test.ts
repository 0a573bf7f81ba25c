import { afterEach, describe, expect, it } from "vitest";
import {
  FakeClock,
  ScriptedRegistry,
  createMemoryRegistry,
  memoryRegistryRoutes,
  sendBytes,
  sendJson,
  sha256,
  type MemoryRegistry,
} from "../../../test/support/scripted-registry.js";
import { MediaType, referrersFallbackTag, type Descriptor } from "../../oci/index.js";
import {
  parseDigest,
  parseRepositoryPath,
  parseTag,
  type Digest,
  type RegistryHost,
} from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import { MANIFEST_READ_ATTEMPTS, MAX_MANIFEST_BYTES } from "../limits.js";
import { createStoreProvider, type RegistryStoreProvider, type StoreProviderOptions } from "../provider.js";
import { openOnSide } from "../side.js";
import type { RepositoryStore } from "../store.js";
import { remoteDeleter } from "../../../test/support/content-deleter.js";

const REPOSITORY = parseRepositoryPath("team/app");

function digestOfText(text: string | Buffer): Digest {
  return parseDigest(sha256(text));
}

function ociIndex(manifests: Descriptor[] = [], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociImageIndex, manifests, ...extra }),
  );
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  await Promise.resolve();
  yield bytes;
}

describe("RemoteRepository against a scripted registry", () => {
  let server: ScriptedRegistry;
  let provider: RegistryStoreProvider;
  let memory: MemoryRegistry;
  afterEach(async () => {
    await provider.close();
    await server.stop();
  });

  async function setUp(
    script: (server: ScriptedRegistry) => void = () => undefined,
    options: Partial<StoreProviderOptions> = {},
    chunkMinLength?: number,
  ): Promise<RepositoryStore> {
    server = await ScriptedRegistry.start();
    memory = createMemoryRegistry();
    script(server);
    memoryRegistryRoutes(server, memory, undefined, chunkMinLength === undefined ? {} : { chunkMinLength });
    provider = createStoreProvider({
      credentialSources: [],
      clock: new FakeClock(),
      retry: { maxAttempts: 2 },
      ...options,
    });
    // Opened as a promotion opens a staging repository: its errors name the side.
    return openOnSide(
      provider,
      { kind: "remote", host: server.host as RegistryHost, repository: REPOSITORY },
      "source",
    );
  }

  function storeManifest(bytes: Buffer, mediaType: string, tag?: string): Digest {
    const digest = digestOfText(bytes);
    const repository = memory.repository(REPOSITORY);
    repository.manifests.set(digest, { bytes, mediaType });
    if (tag) repository.tags.set(tag, digest);
    return digest;
  }

  describe("manifests", () => {
    it("reads by tag and digest with the Accept header, keeping the bytes exactly", async () => {
      const store = await setUp();
      // Unusual but valid formatting must survive byte for byte.
      const bytes = Buffer.from(
        `{ "schemaVersion":2,\n "mediaType": "${MediaType.ociImageIndex}", "manifests": [] }`,
      );
      const digest = storeManifest(bytes, MediaType.ociImageIndex, "v1");
      const byTag = await store.getManifest(parseTag("v1"));
      expect(byTag).toEqual({ digest, mediaType: MediaType.ociImageIndex, bytes: new Uint8Array(bytes) });
      expect((await store.getManifest(digest))?.digest).toBe(digest);
      expect(await store.resolve(parseTag("v1"))).toEqual({
        mediaType: MediaType.ociImageIndex,
        digest,
        size: bytes.length,
      });
      const accept = server.requestsTo(`/v2/${REPOSITORY}/manifests/v1`, "GET")[0]?.headers.accept ?? "";
      for (const type of [
        MediaType.dockerManifest,
        MediaType.dockerManifestList,
        MediaType.ociImageManifest,
        MediaType.ociImageIndex,
      ]) {
        expect(accept).toContain(type);
      }
      expect(await store.getManifest(parseTag("absent"))).toBeUndefined();
      expect(await store.resolve(parseTag("absent"))).toBeUndefined();
    });

    it("refuses bytes that do not match the digest asked for, naming registry, repository and digest", async () => {
      const wanted = digestOfText("the real manifest");
      const store = await setUp((scripted) =>
        scripted.on("GET", `/v2/${REPOSITORY}/manifests/${wanted}`, (_request, response) => {
          sendBytes(response, 200, Buffer.from('{"schemaVersion":2}'), {
            "content-type": MediaType.ociImageManifest,
            "docker-content-digest": wanted,
          });
        }),
      );
      const error = await store.getManifest(wanted).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RegistryError);
      const { code, message } = error as RegistryError;
      expect(code).toBe("registry-digest-mismatch");
      expect(message).toContain(`${server.host}/${REPOSITORY}`);
      expect(message).toContain(wanted);
      expect(message).toContain("source");
    });

    it("reads a manifest again when its bytes were damaged on the way, and gives up after MANIFEST_READ_ATTEMPTS", async () => {
      const bytes = Buffer.from(
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
      );
      const digest = digestOfText(bytes);
      const damaged = Buffer.from(bytes);
      damaged[5] = damaged[5]! ^ 1;
      const store = await setUp((scripted) => {
        scripted.on(
          "GET",
          `/v2/${REPOSITORY}/manifests/${digest}`,
          (_request, response) => {
            sendBytes(response, 200, damaged, { "content-type": MediaType.ociImageIndex });
          },
          MANIFEST_READ_ATTEMPTS - 1,
        );
      });
      storeManifest(bytes, MediaType.ociImageIndex);
      expect((await store.getManifest(digest))?.bytes).toEqual(new Uint8Array(bytes));
      expect(server.requestsTo(`/v2/${REPOSITORY}/manifests/${digest}`, "GET")).toHaveLength(
        MANIFEST_READ_ATTEMPTS,
      );

      // Always damaged: the mismatch is the error, after exactly MANIFEST_READ_ATTEMPTS reads.
      await server.stop();
      await provider.close();
      const always = await setUp((scripted) => {
        scripted.on("GET", `/v2/${REPOSITORY}/manifests/${digest}`, (_request, response) => {
          sendBytes(response, 200, damaged, { "content-type": MediaType.ociImageIndex });
        });
      });
      await expect(always.getManifest(digest)).rejects.toMatchObject({ code: "registry-digest-mismatch" });
      expect(server.requestsTo(`/v2/${REPOSITORY}/manifests/${digest}`, "GET")).toHaveLength(
        MANIFEST_READ_ATTEMPTS,
      );
    });

    it("computes the digest of a tag when the registry omits Docker-Content-Digest, and checks it when sent", async () => {
      const bytes = ociIndex();
      const store = await setUp((scripted) => {
        scripted.on("GET", `/v2/${REPOSITORY}/manifests/plain`, (_request, response) => {
          sendBytes(response, 200, bytes, { "content-type": MediaType.ociImageIndex });
        });
        scripted.on("GET", `/v2/${REPOSITORY}/manifests/lying`, (_request, response) => {
          sendBytes(response, 200, bytes, {
            "content-type": MediaType.ociImageIndex,
            "docker-content-digest": digestOfText("other"),
          });
        });
        // HEAD without a digest: resolve falls back to GET.
        scripted.on("HEAD", `/v2/${REPOSITORY}/manifests/plain`, (_request, response) => {
          response.writeHead(200, { "content-type": MediaType.ociImageIndex });
          response.end();
        });
      });
      expect((await store.getManifest(parseTag("plain")))?.digest).toBe(digestOfText(bytes));
      expect((await store.resolve(parseTag("plain")))?.digest).toBe(digestOfText(bytes));
      const error = await store.getManifest(parseTag("lying")).catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-digest-mismatch");
    });

    it("refuses a manifest over the 4 MiB cap", async () => {
      const store = await setUp((scripted) =>
        scripted.on("GET", `/v2/${REPOSITORY}/manifests/huge`, (_request, response) => {
          // No Content-Length: the cap must hold while reading.
          response.writeHead(200, { "content-type": MediaType.ociImageIndex });
          response.end(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20));
        }),
      );
      const error = await store.getManifest(parseTag("huge")).catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-too-large");
      expect((error as RegistryError).message).toContain(`${MAX_MANIFEST_BYTES}-byte cap`);
    });

    it("pushes with the exact media type and refuses bytes that do not match their digest", async () => {
      const store = await setUp();
      const bytes = ociIndex();
      const digest = digestOfText(bytes);
      await store.putManifest({ digest, mediaType: MediaType.ociImageIndex, bytes }, parseTag("v2"));
      const put = server.requestsTo(`/v2/${REPOSITORY}/manifests/v2`, "PUT")[0];
      expect(put?.headers["content-type"]).toBe(MediaType.ociImageIndex);
      expect(put?.body.equals(bytes)).toBe(true);
      const error = await store
        .putManifest({ digest: digestOfText("x"), mediaType: MediaType.ociImageIndex, bytes }, parseTag("v3"))
        .catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-digest-mismatch");
      expect(server.requestsTo(`/v2/${REPOSITORY}/manifests/v3`)).toHaveLength(0);
    });
  });

  describe("blobs", () => {
    it("streams a blob and verifies it; wrong bytes fail the stream with registry, repository and digest", async () => {
      const good = Buffer.from("good layer");
      const goodDigest = digestOfText(good);
      const claimed = digestOfText("what the descriptor says");
      const store = await setUp((scripted) =>
        scripted.on("GET", `/v2/${REPOSITORY}/blobs/${claimed}`, (_request, response) => {
          sendBytes(response, 200, Buffer.from("evil bytes of same size!"));
        }),
      );
      memory.repository(REPOSITORY).blobs.set(goodDigest, good);
      expect(await store.hasBlob(goodDigest)).toBe(true);
      expect(await store.hasBlob(claimed)).toBe(false);
      const stream = await store.openBlob({
        mediaType: "application/octet-stream",
        digest: goodDigest,
        size: good.length,
      });
      expect((await collect(stream)).equals(good)).toBe(true);

      const bad = await store.openBlob({ mediaType: "application/octet-stream", digest: claimed, size: 24 });
      const error = await collect(bad).catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-digest-mismatch");
      expect((error as RegistryError).message).toContain(`${server.host}/${REPOSITORY}`);
      expect((error as RegistryError).message).toContain(claimed);
    });

    it("stops an endless blob body at the descriptor's size", async () => {
      const digest = digestOfText("small");
      const store = await setUp((scripted) =>
        scripted.on("GET", `/v2/${REPOSITORY}/blobs/${digest}`, (_request, response) => {
          response.writeHead(200);
          const chunk = Buffer.alloc(64 * 1024);
          const pump = () => {
            while (response.write(chunk)) {
              /* until back-pressure */
            }
          };
          response.on("drain", pump);
          response.on("close", () => response.off("drain", pump));
          pump();
        }),
      );
      const stream = await store.openBlob({ mediaType: "application/octet-stream", digest, size: 100_000 });
      const error = await collect(stream).catch((caught: unknown) => caught);
      expect((error as RegistryError).message).toContain("more than the 100000 bytes");
    });

    it("uploads with POST then one PUT of the streamed body", async () => {
      const store = await setUp();
      const bytes = Buffer.from("a layer to upload");
      const digest = digestOfText(bytes);
      await store.putBlob({ mediaType: "application/octet-stream", digest, size: bytes.length }, once(bytes));
      expect(memory.repository(REPOSITORY).blobs.get(digest)?.equals(bytes)).toBe(true);
      const methods = server.requests.map((request) => `${request.method} ${request.path}`);
      expect(methods).toEqual([
        `POST /v2/${REPOSITORY}/blobs/uploads/`,
        `PUT /v2/${REPOSITORY}/blobs/uploads/1`,
      ]);
      const put = server.requests[1]!;
      expect(put.url.searchParams.get("digest")).toBe(digest);
      expect(put.headers["content-length"]).toBe(String(bytes.length));
    });

    it("refuses a source stream of the wrong length and cancels the session", async () => {
      const store = await setUp();
      const bytes = Buffer.from("twelve bytes");
      const error = await store
        .putBlob(
          { mediaType: "application/octet-stream", digest: digestOfText(bytes), size: 20 },
          once(bytes),
        )
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RegistryError);
      expect(server.requestsTo(`/v2/${REPOSITORY}/blobs/uploads/1`, "DELETE")).toHaveLength(1);
    });

    it("uses the upload session a declined mount opened", async () => {
      const store = await setUp();
      const bytes = Buffer.from("not in the other repository");
      const descriptor = {
        mediaType: "application/octet-stream",
        digest: digestOfText(bytes),
        size: bytes.length,
      };
      expect(await store.mountBlob(descriptor, parseRepositoryPath("other/repo"))).toBe(false);
      await store.putBlob(descriptor, once(bytes));
      expect(memory.repository(REPOSITORY).blobs.get(descriptor.digest)?.equals(bytes)).toBe(true);
      const posts = server.requestsTo(`/v2/${REPOSITORY}/blobs/uploads/`, "POST");
      expect(posts).toHaveLength(1);
      expect(posts[0]?.url.searchParams.get("mount")).toBe(descriptor.digest);
      expect(posts[0]?.url.searchParams.get("from")).toBe("other/repo");
    });

    it("mounts a blob that the other repository has", async () => {
      const store = await setUp();
      const bytes = Buffer.from("shared layer");
      const digest = digestOfText(bytes);
      memory.repository("other/repo").blobs.set(digest, bytes);
      expect(
        await store.mountBlob(
          { mediaType: "application/octet-stream", digest, size: bytes.length },
          parseRepositoryPath("other/repo"),
        ),
      ).toBe(true);
      expect(memory.repository(REPOSITORY).blobs.has(digest)).toBe(true);
    });

    it("uploads in PATCH chunks when the registry names a minimum chunk length, or when configured", async () => {
      const bytes = Buffer.from("0123456789");
      const digest = digestOfText(bytes);
      const descriptor = { mediaType: "application/octet-stream", digest, size: bytes.length };
      const asked = await setUp(undefined, {}, 4);
      await asked.putBlob(descriptor, once(bytes));
      const patches = server.requestsTo(`/v2/${REPOSITORY}/blobs/uploads/1`, "PATCH");
      // The default chunk (8 MiB) is above the minimum: one PATCH, then the closing PUT.
      expect(patches.map((request) => request.headers["content-range"])).toEqual(["0-9"]);
      expect(server.requestsTo(`/v2/${REPOSITORY}/blobs/uploads/1`, "PUT")[0]?.body.length).toBe(0);
      expect(memory.repository(REPOSITORY).blobs.get(digest)?.equals(bytes)).toBe(true);
      await provider.close();
      await server.stop();

      // Configured chunks below the registry's minimum are raised to it.
      const configured = await setUp(undefined, { uploadChunkBytes: 3 }, 4);
      await configured.putBlob(descriptor, once(bytes));
      const chunks = server.requestsTo(`/v2/${REPOSITORY}/blobs/uploads/1`, "PATCH");
      expect(chunks.map((request) => request.headers["content-range"])).toEqual(["0-3", "4-7", "8-9"]);
      expect(chunks.map((request) => request.body.toString())).toEqual(["0123", "4567", "89"]);
      expect(memory.repository(REPOSITORY).blobs.get(digest)?.equals(bytes)).toBe(true);
    });

    it("refuses an upload Location on another origin", async () => {
      const store = await setUp((scripted) =>
        scripted.on("POST", `/v2/${REPOSITORY}/blobs/uploads/`, (_request, response) => {
          response.writeHead(202, { location: "http://127.0.0.2:9/v2/team/app/blobs/uploads/x" });
          response.end();
        }),
      );
      const bytes = Buffer.from("x");
      const error = await store
        .putBlob({ mediaType: "application/octet-stream", digest: digestOfText(bytes), size: 1 }, once(bytes))
        .catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-protocol");
      expect((error as RegistryError).message).toContain("another origin");
    });
  });

  describe("tags and catalog", () => {
    it("follows Link pagination", async () => {
      const store = await setUp((scripted) =>
        scripted.on("GET", `/v2/${REPOSITORY}/tags/list`, (request, response) => {
          const all = ["a", "b", "c", "d", "e"];
          const n = Number(request.url.searchParams.get("n"));
          const last = request.url.searchParams.get("last");
          const start = last === null ? 0 : all.indexOf(last) + 1;
          const page = all.slice(start, start + 2);
          const headers: Record<string, string> =
            start + 2 < all.length
              ? { link: `</v2/${REPOSITORY}/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"` }
              : {};
          sendJson(response, 200, { name: REPOSITORY, tags: page }, headers);
        }),
      );
      expect(await store.listTags()).toEqual(["a", "b", "c", "d", "e"]);
      expect(server.requestsTo(`/v2/${REPOSITORY}/tags/list`)).toHaveLength(3);
    });

    it("is correct when the registry ignores n, even with a Link back to the same list", async () => {
      const tags = Array.from({ length: 2500 }, (_, i) => `t${i}`);
      const store = await setUp((scripted) =>
        scripted.on("GET", `/v2/${REPOSITORY}/tags/list`, (_request, response) => {
          sendJson(
            response,
            200,
            { name: REPOSITORY, tags },
            {
              link: `</v2/${REPOSITORY}/tags/list?n=1000&last=t999>; rel="next"`,
            },
          );
        }),
      );
      expect(await store.listTags()).toEqual(tags);
      expect(server.requestsTo(`/v2/${REPOSITORY}/tags/list`)).toHaveLength(2);
    });

    it("lists no tags for an absent repository", async () => {
      const store = await setUp();
      expect(await store.listTags()).toEqual([]);
    });

    it("lists the catalog across pages, filtered by prefix", async () => {
      await setUp((scripted) =>
        scripted.on("GET", "/v2/_catalog", (request, response) => {
          const last = request.url.searchParams.get("last");
          if (last === null) {
            sendJson(
              response,
              200,
              { repositories: ["a/x", "team/app"] },
              { link: '</v2/_catalog?last=team%2Fapp&n=2>; rel="next"' },
            );
          } else {
            sendJson(response, 200, { repositories: ["team/app/sub", "teams/other"] });
          }
        }),
      );
      expect(await provider.catalog({ kind: "remote", host: server.host }, "team")).toEqual([
        "team/app",
        "team/app/sub",
      ]);
      expect(await provider.catalog({ kind: "remote", host: server.host }, "")).toHaveLength(4);
    });
  });

  describe("referrers", () => {
    const subject = digestOfText("subject manifest");
    const sbom: Descriptor = {
      mediaType: MediaType.ociImageManifest,
      digest: digestOfText("sbom"),
      size: 10,
      artifactType: "application/spdx+json",
    };
    const signature: Descriptor = {
      mediaType: MediaType.ociImageManifest,
      digest: digestOfText("sig"),
      size: 11,
      artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
    };

    it("uses the referrers API, filtering on the client when the registry did not", async () => {
      const store = await setUp((scripted) =>
        scripted.on("GET", `/v2/${REPOSITORY}/referrers/${subject}`, (_request, response) => {
          sendBytes(response, 200, ociIndex([sbom, signature]), { "content-type": MediaType.ociImageIndex });
        }),
      );
      expect(await store.referrers(subject)).toEqual([sbom, signature]);
      expect(await store.referrers(subject, { artifactType: "application/spdx+json" })).toEqual([sbom]);
      expect(
        server.requestsTo(`/v2/${REPOSITORY}/referrers/${subject}`)[1]?.url.searchParams.get("artifactType"),
      ).toBe("application/spdx+json");
    });

    it("falls back to the tag schema when the API answers 404", async () => {
      const store = await setUp((scripted) =>
        scripted.on("GET", /\/referrers\//, (_request, response) => {
          response.writeHead(404, { "content-type": "text/plain" });
          response.end("404 page not found\n");
        }),
      );
      expect(await store.referrers(subject)).toEqual([]);
      storeManifest(ociIndex([sbom, signature]), MediaType.ociImageIndex, referrersFallbackTag(subject));
      expect(await store.referrers(subject, { artifactType: signature.artifactType! })).toEqual([signature]);
      // The registry is now known to lack the API: no second referrers request.
      expect(server.requestsTo(/\/referrers\//)).toHaveLength(1);
    });

    it("keeps the fallback index up to date when pushing a manifest with a subject, adding each referrer once", async () => {
      const store = await setUp();
      const subjectDescriptor = { mediaType: MediaType.ociImageManifest, digest: subject, size: 100 };
      const referrer = (kind: string) =>
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.ociImageManifest,
            artifactType: `application/vnd.test.${kind}`,
            config: { mediaType: MediaType.ociEmpty, digest: digestOfText("{}"), size: 2 },
            layers: [],
            subject: subjectDescriptor,
            annotations: { "org.example.kind": kind },
          }),
        );
      const first = referrer("one");
      const second = referrer("two");
      for (const bytes of [first, second, first]) {
        await store.putManifest(
          { digest: digestOfText(bytes), mediaType: MediaType.ociImageManifest, bytes },
          digestOfText(bytes),
        );
      }
      const tag = referrersFallbackTag(subject);
      expect(tag).toBe(`sha256-${subject.slice(7)}`);
      const index = JSON.parse(Buffer.from((await store.getManifest(tag))!.bytes).toString()) as {
        manifests: Descriptor[];
      };
      expect(index.manifests).toEqual([
        {
          mediaType: MediaType.ociImageManifest,
          digest: digestOfText(first),
          size: first.length,
          artifactType: "application/vnd.test.one",
          annotations: { "org.example.kind": "one" },
        },
        {
          mediaType: MediaType.ociImageManifest,
          digest: digestOfText(second),
          size: second.length,
          artifactType: "application/vnd.test.two",
          annotations: { "org.example.kind": "two" },
        },
      ]);
    });

    it("leaves the fallback alone when the registry processed the subject (OCI-Subject)", async () => {
      const store = await setUp((scripted) =>
        scripted.on("PUT", /\/manifests\//, (request, response) => {
          response.writeHead(201, { "oci-subject": subject, "docker-content-digest": sha256(request.body) });
          response.end();
        }),
      );
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociImageManifest,
          config: { mediaType: MediaType.ociEmpty, digest: digestOfText("{}"), size: 2 },
          layers: [],
          subject: { mediaType: MediaType.ociImageManifest, digest: subject, size: 1 },
        }),
      );
      await store.putManifest(
        { digest: digestOfText(bytes), mediaType: MediaType.ociImageManifest, bytes },
        digestOfText(bytes),
      );
      expect(server.requests.map((request) => request.method)).toEqual(["PUT"]);
    });
  });

  it("deletes manifests and blobs, an absent one being no error", async () => {
    const store = remoteDeleter(await setUp());
    const digest = storeManifest(ociIndex(), MediaType.ociImageIndex);
    await store.deleteManifest(digest);
    await store.deleteManifest(digest);
    await store.deleteBlob(digestOfText("nothing"));
    expect(memory.repository(REPOSITORY).manifests.size).toBe(0);
  });
});
