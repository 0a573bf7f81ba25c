import { Readable } from "node:stream";
import type { Descriptor } from "../../oci/index.js";
import { DigestVerifier, type Digest } from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import type { CallOptions } from "../store.js";
import { requestError } from "../transport/request-error.js";
import type { HttpRequest } from "../transport/types.js";
import { networkError } from "../transport/undici-transport.js";
import { pullScope } from "../auth/scope.js";
import type { RepositoryClient } from "./repository-client.js";

/**
 * Blob reads: HEAD for existence, GET streamed and verified while it streams. A blob GET may be
 * redirected to a storage backend (S3, GCS, a CDN); the redirect layer follows it without
 * credentials.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-blobs
 */

export async function hasBlob(
  client: RepositoryClient,
  digest: Digest,
  options: CallOptions = {},
): Promise<boolean> {
  const { request, response } = await client.send(
    "check blob",
    {
      method: "HEAD",
      url: client.endpoint.url(client.path(`blobs/${digest}`)),
      scopes: [pullScope(client.repository)],
    },
    options,
  );
  if (response.status === 200) return true;
  if (response.status === 404) return false;
  throw await client.fail(response, request);
}

/**
 * Passes `source` through while hashing it; fails (instead of ending) when it has more or fewer
 * bytes than `descriptor.size` or hashes to another digest. Failures of the source are mapped
 * to RegistryErrors that name the registry, repository and digest.
 */
export function verifiedBlobStream(source: Readable, descriptor: Descriptor, request: HttpRequest): Readable {
  const verifier = new DigestVerifier(descriptor.digest);
  const fail = (summary: string) =>
    requestError("registry-digest-mismatch", `blob ${descriptor.digest}: ${summary}`, request);
  async function* verify(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        verifier.update(chunk);
        if (verifier.bytesSeen > descriptor.size) {
          throw fail(`the registry sent more than the ${descriptor.size} bytes the descriptor announces`);
        }
        yield chunk;
      }
    } catch (error) {
      if (error instanceof RegistryError) throw error;
      throw networkError(error, request, "body");
    } finally {
      if (!source.destroyed) source.destroy();
    }
    if (verifier.bytesSeen !== descriptor.size) {
      throw fail(
        `the registry sent ${verifier.bytesSeen} bytes, the descriptor announces ${descriptor.size}`,
      );
    }
    const actual = verifier.finish();
    if (actual !== descriptor.digest) throw fail(`the bytes received hash to ${actual}`);
  }
  return Readable.from(verify(), { objectMode: false });
}

export async function openBlob(
  client: RepositoryClient,
  descriptor: Descriptor,
  options: CallOptions = {},
): Promise<Readable> {
  const { request, response } = await client.send(
    "get blob",
    {
      method: "GET",
      url: client.endpoint.url(client.path(`blobs/${descriptor.digest}`)),
      scopes: [pullScope(client.repository)],
    },
    options,
  );
  if (response.status === 404) {
    await response.discard();
    throw requestError("registry-not-found", `blob ${descriptor.digest} not found`, request, {
      status: 404,
      url: response.url,
    });
  }
  if (response.status !== 200)
    throw await client.fail(response, request, `cannot read blob ${descriptor.digest}`);
  const length = response.headers.get("content-length");
  if (length !== undefined && Number(length) !== descriptor.size) {
    await response.discard();
    throw requestError(
      "registry-digest-mismatch",
      `blob ${descriptor.digest}: the registry announces ${length} bytes, the descriptor ${descriptor.size}`,
      request,
      { status: response.status, url: response.url },
    );
  }
  return verifiedBlobStream(response.body, descriptor, { ...request, url: response.url });
}
