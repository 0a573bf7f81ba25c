import { isJsonObject } from "../../json-shape.js";
import { MANIFEST_ACCEPT, isManifestMediaType, type Descriptor } from "../../oci/index.js";
import { digestAlgorithm, digestOf, isDigest, type Digest, type Tag } from "../../reference/index.js";
import { MANIFEST_READ_ATTEMPTS, MAX_MANIFEST_BYTES } from "../limits.js";
import type { CallOptions, ManifestContent } from "../store.js";
import { requestError } from "../transport/request-error.js";
import type { HttpResponse } from "../transport/types.js";
import { pullScope, pushScope } from "../auth/scope.js";
import type { RepositoryClient } from "./repository-client.js";

/**
 * Manifests: HEAD and GET by tag or digest with the Accept header for every manifest and index
 * type we move (a registry may answer 404 to a GET without it), bytes kept exactly as received
 * and checked against the digest asked for or announced; PUT with the exact media type.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests
 */

/** `type/subtype` of a Content-Type, without parameters. */
export function bareMediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const bare = contentType.split(";")[0]?.trim().toLowerCase();
  return bare === undefined || bare.length === 0 ? undefined : bare;
}

/** The digest a response announces in `Docker-Content-Digest`, when it is one. */
export function announcedDigest(response: HttpResponse): Digest | undefined {
  const trimmed = response.headers.get("docker-content-digest")?.trim();
  return trimmed !== undefined && isDigest(trimmed) ? trimmed : undefined;
}

/**
 * Whether an announced digest contradicts `expected`: same algorithm, other value. A digest of
 * another algorithm says nothing about `expected`.
 */
export function contradicts(announced: Digest | undefined, expected: Digest): announced is Digest {
  return (
    announced !== undefined &&
    digestAlgorithm(announced) === digestAlgorithm(expected) &&
    announced !== expected
  );
}

/** The media type of manifest bytes: the document's own `mediaType`, else the Content-Type. */
function manifestMediaType(bytes: Uint8Array, contentType: string | undefined): string {
  try {
    const document = JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown;
    if (isJsonObject(document)) {
      const declared = document.mediaType;
      if (typeof declared === "string" && declared.length > 0) return declared;
    }
  } catch {
    // Not JSON: the Content-Type is all there is.
  }
  return bareMediaType(contentType) ?? "application/octet-stream";
}

export async function getManifest(
  client: RepositoryClient,
  reference: Tag | Digest,
  options: CallOptions = {},
): Promise<ManifestContent | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await getManifestOnce(client, reference, options);
    } catch (error) {
      // Bytes that do not hash to the digest were damaged on the way (a proxy, a flaky link) as
      // often as they are a lie: read again, a few times, before giving up. The transport
      // retries network failures; only this layer knows the bytes are wrong.
      if (!(error instanceof CorruptManifestError)) throw error;
      if (attempt >= MANIFEST_READ_ATTEMPTS) throw error.inner;
      client.endpoint.logger.log("warn", `reading manifest ${reference} again: ${error.inner.message}`, {
        attempt,
        repository: client.repository,
      });
    }
  }
}

/** A digest mismatch of the bytes read, which another read may not have. */
class CorruptManifestError extends Error {
  constructor(readonly inner: Error) {
    super(inner.message);
  }
}

async function getManifestOnce(
  client: RepositoryClient,
  reference: Tag | Digest,
  options: CallOptions,
): Promise<ManifestContent | undefined> {
  const { request, response } = await client.send(
    "get manifest",
    {
      method: "GET",
      url: client.endpoint.url(client.path(`manifests/${reference}`)),
      scopes: [pullScope(client.repository)],
      headers: { accept: MANIFEST_ACCEPT },
      bufferLimit: MAX_MANIFEST_BYTES,
    },
    options,
  );
  if (response.status === 404) {
    await response.discard();
    return undefined;
  }
  if (response.status !== 200) throw await client.fail(response, request);
  const bytes = response.bytes ?? new Uint8Array();
  const announced = announcedDigest(response);
  const expected: Digest = isDigest(reference) ? reference : (announced ?? digestOf(bytes));
  const actual = digestOf(bytes, digestAlgorithm(expected));
  if (actual !== expected) {
    throw new CorruptManifestError(
      requestError(
        "registry-digest-mismatch",
        `manifest ${reference} bytes hash to ${actual}, not ${expected}`,
        request,
        { status: response.status, url: response.url },
      ),
    );
  }
  if (isDigest(reference) && contradicts(announced, reference)) {
    throw requestError(
      "registry-digest-mismatch",
      `asked for manifest ${reference} but the registry announced ${announced}`,
      request,
      { status: response.status, url: response.url },
    );
  }
  return {
    digest: expected,
    mediaType: manifestMediaType(bytes, response.headers.get("content-type")),
    bytes,
  };
}

export async function resolveManifest(
  client: RepositoryClient,
  reference: Tag | Digest,
  options: CallOptions = {},
): Promise<Descriptor | undefined> {
  const { request, response } = await client.send(
    "resolve manifest",
    {
      method: "HEAD",
      url: client.endpoint.url(client.path(`manifests/${reference}`)),
      scopes: [pullScope(client.repository)],
      headers: { accept: MANIFEST_ACCEPT },
    },
    options,
  );
  if (response.status === 404) return undefined;
  if (response.status !== 200) throw await client.fail(response, request);
  const announced = announcedDigest(response);
  if (isDigest(reference) && contradicts(announced, reference)) {
    throw requestError(
      "registry-digest-mismatch",
      `asked for manifest ${reference} but the registry announced ${announced}`,
      request,
      { status: response.status, url: response.url },
    );
  }
  // By digest, the digest is the one asked for; by tag, the registry must announce it.
  const digest = isDigest(reference) ? reference : announced;
  const mediaType = bareMediaType(response.headers.get("content-type"));
  const size = Number(response.headers.get("content-length") ?? Number.NaN);
  if (
    digest === undefined ||
    mediaType === undefined ||
    !isManifestMediaType(mediaType) ||
    !Number.isSafeInteger(size) ||
    size < 0
  ) {
    // Some registries omit the digest, type or length on HEAD: read the manifest instead.
    const content = await getManifest(client, reference, options);
    return (
      content && { mediaType: content.mediaType, digest: content.digest, size: content.bytes.byteLength }
    );
  }
  return { mediaType, digest, size };
}

/** PUTs manifest bytes; returns the response headers the caller may need (`OCI-Subject`). */
export async function putManifest(
  client: RepositoryClient,
  content: ManifestContent,
  reference: Tag | Digest,
  options: CallOptions = {},
): Promise<{ readonly subjectProcessed: boolean }> {
  const url = client.endpoint.url(client.path(`manifests/${reference}`));
  const target = { method: "PUT", url, context: client.context("put manifest") } as const;
  const actual = digestOf(content.bytes, digestAlgorithm(content.digest));
  if (actual !== content.digest) {
    throw requestError(
      "registry-digest-mismatch",
      `refusing to push: the manifest bytes hash to ${actual}, not ${content.digest}`,
      target,
    );
  }
  if (isDigest(reference) && reference !== content.digest) {
    throw requestError(
      "registry-digest-mismatch",
      `refusing to push manifest ${content.digest} under digest ${reference}`,
      target,
    );
  }
  if (content.bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw requestError(
      "registry-too-large",
      `manifest of ${content.bytes.byteLength} bytes is over the ${MAX_MANIFEST_BYTES}-byte cap`,
      target,
    );
  }
  const { request, response } = await client.send(
    "put manifest",
    {
      method: "PUT",
      url,
      scopes: [pushScope(client.repository)],
      headers: { "content-type": content.mediaType },
      body: content.bytes,
    },
    options,
  );
  if (
    response.status !== 201 &&
    response.status !== 200 &&
    response.status !== 202 &&
    response.status !== 204
  ) {
    throw await client.fail(response, request);
  }
  await response.discard();
  const announced = announcedDigest(response);
  if (contradicts(announced, content.digest)) {
    throw requestError(
      "registry-digest-mismatch",
      `pushed manifest ${content.digest} but the registry stored ${announced}`,
      request,
      { status: response.status },
    );
  }
  return { subjectProcessed: response.headers.get("oci-subject") !== undefined };
}
