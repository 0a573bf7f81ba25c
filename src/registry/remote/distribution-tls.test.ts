/**
 * The client against a real registry over TLS: distribution 2.8.2 serving HTTPS with a test
 * certificate for `registry.test` (pinned to 127.0.0.1), which offers HTTP/2 and HTTP/1.1 by
 * ALPN as it does in production. Which protocol carried each request is read from the
 * registry's own access log; skopeo judges what was written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../../../test/support/registry-harness.js";
import { selfSignedCertificate } from "../../../test/support/scripted-registry.js";
import { skopeoInspectRaw } from "../../../test/support/skopeo.js";
import { allBlobs, makeImage, makeIndex, pushToStore } from "../../../test/support/test-images.js";
import { parseRepositoryPath, parseTag, type RegistryHost } from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import { createStoreProvider, type RegistryStoreProvider } from "../provider.js";

let registry: TestRegistry;
let certificate: { key: string; cert: string };
let host: RegistryHost;

beforeAll(async () => {
  certificate = await selfSignedCertificate(["registry.test"]);
  registry = await startRegistry({ tls: certificate });
  host = `registry.test:${registry.host.split(":")[1]}` as RegistryHost;
});

afterAll(async () => {
  await registry.stop();
});

function provider(http2?: boolean, uploadChunkBytes?: number): RegistryStoreProvider {
  return createStoreProvider({
    credentialSources: [],
    ...(uploadChunkBytes === undefined ? {} : { uploadChunkBytes }),
    caCertificates: certificate.cert,
    hostAddresses: { "registry.test": "127.0.0.1" },
    ...(http2 === undefined ? {} : { http2 }),
  });
}

/** Access log lines of requests to `repository`, as `METHOD PATH PROTOCOL`. */
function accessLog(repository: string): string[] {
  const lines: string[] = [];
  for (const match of registry.logs().matchAll(/"(HEAD|GET|PUT|POST|PATCH) (\/v2\/[^ ]+) (HTTP\/[\d.]+)"/g)) {
    const [, method, path, protocol] = match;
    if (path!.startsWith(`/v2/${repository}/`)) lines.push(`${method} ${path} ${protocol}`);
  }
  return lines;
}

function image(seed: string) {
  const platforms = ["amd64", "arm64"].map((architecture) =>
    makeImage({
      layers: 2,
      layerSize: 256 * 1024,
      mediaTypes: "oci",
      seed: `${seed}-${architecture}`,
      platform: { architecture, os: "linux" },
    }),
  );
  return makeIndex(platforms, { mediaType: "oci" });
}

describe("distribution 2.8.2 over TLS", () => {
  it("with HTTP/2 on, multiplexes requests without blobs over it and moves blob bytes over HTTP/1.1", async () => {
    const client = provider(true);
    try {
      const store = client.repository({ kind: "remote", host, repository: parseRepositoryPath("tls/app") });
      const content = image("h2");
      await pushToStore(store, content, ["v1", "v2"]);
      const tags = await Promise.all(["v1", "v2", "v3"].map((tag) => store.resolve(parseTag(tag))));
      expect(tags.map((descriptor) => descriptor?.digest)).toEqual([
        content.digest,
        content.digest,
        undefined,
      ]);
      expect((await store.listTags()).sort()).toEqual(["v1", "v2"]);
      const layer = allBlobs(content).reduce((largest, blob) =>
        blob.bytes.length > largest.bytes.length ? blob : largest,
      );
      const chunks: Uint8Array[] = [];
      const blob: AsyncIterable<Uint8Array> = await store.openBlob(layer.descriptor);
      for await (const chunk of blob) chunks.push(chunk);
      expect(Buffer.concat(chunks).equals(Buffer.from(layer.bytes))).toBe(true);
    } finally {
      await client.close();
    }

    const log = accessLog("tls/app");
    const protocolOf = (pattern: RegExp) =>
      new Set(log.filter((line) => pattern.test(line)).map((line) => line.split(" ")[2]));
    expect(protocolOf(/^HEAD \S+\/manifests\//)).toEqual(new Set(["HTTP/2.0"]));
    expect(protocolOf(/^PUT \S+\/manifests\//)).toEqual(new Set(["HTTP/2.0"]));
    expect(protocolOf(/^GET \S+\/tags\/list/)).toEqual(new Set(["HTTP/2.0"]));
    expect(protocolOf(/^POST \S+\/blobs\/uploads\/ /)).toEqual(new Set(["HTTP/2.0"]));
    expect(protocolOf(/^PUT \S+\/blobs\/uploads\//)).toEqual(new Set(["HTTP/1.1"]));
    expect(protocolOf(/^GET \S+\/blobs\/sha256:/)).toEqual(new Set(["HTTP/1.1"]));

    // What was written is what skopeo reads (it reaches the same registry by its address).
    const judged = await skopeoInspectRaw(`docker://${registry.host}/tls/app:v2`);
    expect(judged.digest).toBe(image("h2").digest);
  });

  it("sends the chunks of a chunked upload over HTTP/1.1 too", async () => {
    const client = provider(true, 100_000);
    try {
      const store = client.repository({
        kind: "remote",
        host,
        repository: parseRepositoryPath("tls/chunked"),
      });
      await pushToStore(store, image("chunked"), ["v1"]);
      expect((await store.resolve(parseTag("v1")))?.digest).toBe(image("chunked").digest);
    } finally {
      await client.close();
    }
    const patches = accessLog("tls/chunked").filter((line) => line.startsWith("PATCH "));
    // Four layers of ~256 KiB in chunks of 100,000 bytes.
    expect(patches.length).toBeGreaterThanOrEqual(12);
    expect(new Set(patches.map((line) => line.split(" ")[2]))).toEqual(new Set(["HTTP/1.1"]));
  });

  it("speaks HTTP/1.1 only by default (and when HTTP/2 is off)", async () => {
    const client = provider();
    try {
      const store = client.repository({ kind: "remote", host, repository: parseRepositoryPath("tls/plain") });
      await pushToStore(store, image("h1"), ["v1"]);
      expect((await store.resolve(parseTag("v1")))?.digest).toBe(image("h1").digest);
    } finally {
      await client.close();
    }
    const protocols = new Set(accessLog("tls/plain").map((line) => line.split(" ")[2]));
    expect(protocols).toEqual(new Set(["HTTP/1.1"]));
  });

  it("refuses the registry's certificate when it is not trusted, whichever protocol", async () => {
    for (const http2 of [true, false]) {
      const client = createStoreProvider({
        credentialSources: [],
        hostAddresses: { "registry.test": "127.0.0.1" },
        http2,
      });
      try {
        const store = client.repository({ kind: "remote", host, repository: parseRepositoryPath("tls/app") });
        const error = await store.resolve(parseTag("v1")).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(RegistryError);
        // A TLS failure will not go away by itself: the host's circuit opens on it, and the
        // error says the host is unreachable, with the certificate problem as its cause.
        expect((error as RegistryError).code).toBe("registry-unreachable");
        expect(((error as RegistryError).cause as RegistryError).code).toBe("registry-network");
        expect((error as RegistryError).message).toMatch(/certificate/i);
      } finally {
        await client.close();
      }
    }
  });
});
