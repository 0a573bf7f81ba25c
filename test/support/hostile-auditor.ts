/**
 * What attackers of the auditor do, for the hostile corpus (test/hostile/auditor.test.ts): push
 * to a real registry with a Host header of their choice (the registry puts it in its
 * notifications as `request.host` and in `target.url`), disguise runnable images as signatures
 * and referrers, and send Pub/Sub messages. Built on plain node:http and the independent
 * builders of test-images.ts, never on the project's own registry client.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-blobs
 */
import { request } from "node:http";
import {
  allBlobs,
  allManifests,
  EMPTY_JSON_BLOB,
  makeIndex,
  makeLayerSetImage,
  seededBytes,
  sha256Digest,
  TestMediaType,
  type TestContent,
  type TestDescriptor,
  type TestImage,
  type TestIndex,
} from "./test-images.js";

/** What cosign's simple-signing layers and the sigstore bundle layout use (their specifications). */
export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGSTORE_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * One request to `registryUrl` (an `http://127.0.0.1:PORT` address) with `Host: hostHeader`:
 * the TCP connection goes to the real registry whatever the header says.
 */
function rawRequest(
  registryUrl: string,
  hostHeader: string,
  method: string,
  pathAndQuery: string,
  body?: Buffer,
  contentType?: string,
): Promise<RawResponse> {
  const target = new URL(registryUrl);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: target.hostname,
        port: target.port,
        method,
        path: pathAndQuery,
        headers: {
          host: hostHeader,
          "content-length": String(body?.length ?? 0),
          ...(contentType === undefined ? {} : { "content-type": contentType }),
        },
      },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => {
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text });
        });
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

function expectStatus(response: RawResponse, wanted: number, what: string): void {
  if (response.status !== wanted) {
    throw new Error(`${what}: HTTP ${response.status} (wanted ${wanted}): ${response.body.slice(0, 300)}`);
  }
}

/**
 * Pushes `content` (blobs, child manifests by digest, then the top manifest under `reference`, a
 * tag or a digest) to `repository`, every request with `Host: hostHeader`. The registry answers
 * upload locations on the host it was told; only their path is used.
 */
export async function pushWithHostHeader(
  registryUrl: string,
  hostHeader: string,
  repository: string,
  content: TestContent,
  reference: string,
): Promise<void> {
  for (const blob of allBlobs(content)) {
    const started = await rawRequest(registryUrl, hostHeader, "POST", `/v2/${repository}/blobs/uploads/`);
    expectStatus(started, 202, `start upload to ${repository}`);
    const location = new URL(String(started.headers.location), "http://placeholder.invalid");
    location.searchParams.set("digest", blob.descriptor.digest);
    const finished = await rawRequest(
      registryUrl,
      hostHeader,
      "PUT",
      `${location.pathname}${location.search}`,
      blob.bytes,
      "application/octet-stream",
    );
    expectStatus(finished, 201, `upload ${blob.descriptor.digest}`);
  }
  for (const manifest of allManifests(content)) {
    const top = manifest === content;
    const put = await rawRequest(
      registryUrl,
      hostHeader,
      "PUT",
      `/v2/${repository}/manifests/${top ? reference : manifest.digest}`,
      manifest.bytes,
      manifest.mediaType,
    );
    expectStatus(put, 201, `put manifest ${manifest.digest}`);
  }
}

/** `image` with a `subject`: still a runnable image (image config, tar layers), now a "referrer". */
export function withSubject(image: TestImage, subject: TestDescriptor): TestImage {
  const document = JSON.parse(image.bytes.toString("utf8")) as Record<string, unknown>;
  document.subject = { mediaType: subject.mediaType, digest: subject.digest, size: subject.size };
  const bytes = Buffer.from(JSON.stringify(document));
  const digest = sha256Digest(bytes);
  return { ...image, bytes, digest, descriptor: { ...image.descriptor, digest, size: bytes.length } };
}

/** A signature manifest shaped as cosign writes one (SIGNATURE_SPEC.md): one simple-signing layer. */
export function cosignSignatureFor(subject: TestDescriptor, seed: string): TestImage {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": "registry.example/app" },
        image: { "docker-manifest-digest": subject.digest },
        type: "cosign container image signature",
      },
      optional: { seed },
    }),
  );
  const layer = {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    bytes: payload,
    annotations: { "dev.cosignproject.cosign/signature": seededBytes(seed, 64).toString("base64") },
  };
  const config = JSON.stringify({
    architecture: "",
    created: "0001-01-01T00:00:00Z",
    history: [{ created: "0001-01-01T00:00:00Z" }],
    os: "",
    rootfs: { type: "layers", diff_ids: [sha256Digest(payload)] },
    config: {},
  });
  return makeLayerSetImage([layer], config);
}

/** A sigstore bundle attached as an OCI referrer, as the bundle layout (BUNDLE_SPEC.md) writes it. */
export function bundleReferrerFor(subject: TestDescriptor, seed: string): TestImage {
  const bundle = Buffer.from(
    JSON.stringify({ mediaType: SIGSTORE_BUNDLE_MEDIA_TYPE, seed, dsseEnvelope: {} }),
  );
  const layer = {
    descriptor: { mediaType: SIGSTORE_BUNDLE_MEDIA_TYPE, digest: sha256Digest(bundle), size: bundle.length },
    bytes: bundle,
  };
  const mediaType = TestMediaType.ociManifest;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      artifactType: SIGSTORE_BUNDLE_MEDIA_TYPE,
      config: EMPTY_JSON_BLOB.descriptor,
      layers: [layer.descriptor],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    }),
  );
  const digest = sha256Digest(bytes);
  return {
    kind: "image",
    mediaType,
    bytes,
    digest,
    descriptor: { mediaType, digest, size: bytes.length, artifactType: SIGSTORE_BUNDLE_MEDIA_TYPE },
    config: EMPTY_JSON_BLOB,
    layers: [layer],
    platform: { architecture: "unknown", os: "unknown" },
  };
}

/** `image` wrapped in `depth` indexes: the image sits `depth` levels below the returned root. */
export function nestedIndex(image: TestImage, depth: number): TestIndex {
  let current: TestContent = image;
  for (let level = 0; level < depth; level++) current = makeIndex([current], { mediaType: "oci" });
  return current as TestIndex;
}

/** A Pub/Sub push request as Google sends it, carrying a GCR / Artifact Registry payload. */
export function pubSubPush(messageId: string, payload: Record<string, string>): Record<string, unknown> {
  return {
    message: {
      data: Buffer.from(JSON.stringify(payload)).toString("base64"),
      messageId,
      publishTime: new Date().toISOString(),
    },
    subscription: "projects/p/subscriptions/promoter-audit",
  };
}
