import type { Descriptor } from "../../oci/index.js";
import type { Digest, RepositoryPath } from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import { DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES } from "../limits.js";
import { redactUrl } from "../redact.js";
import type { CallOptions } from "../store.js";
import { requestError } from "../transport/request-error.js";
import type { HttpRequest, HttpResponse } from "../transport/types.js";
import { pullScope, pushScope } from "../auth/scope.js";
import { announcedDigest, contradicts } from "./manifests.js";
import type { RepositoryClient } from "./repository-client.js";

/**
 * Blob uploads: `POST /v2/<name>/blobs/uploads/` opens a session, then either one `PUT
 * <location>?digest=` with the whole streamed body (monolithic), or `PATCH` chunks and a closing
 * `PUT` (chunked) when the registry asks for chunks (`OCI-Chunk-Min-Length`) or the provider is
 * configured to chunk. The single-request `POST ?digest=` upload is not used: distribution 2.8.2
 * answers it without storing the blob.
 *
 * Cross-repository mount: `POST ...?mount=<digest>&from=<repo>`; 201 means mounted, 202 means
 * declined and opens an upload session, which the next `putBlob` of that digest uses instead of
 * opening another.
 *
 * Upload `Location`s may be relative or absolute, but must stay on the registry's origin: the
 * session carries the user's credentials, and a registry that hands uploads to another host
 * (a misconfigured proxy that answers with its internal name or plain http) is refused with a
 * clear error instead of leaking them or failing obscurely.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-blobs
 */

export interface UploadSession {
  readonly location: URL;
  /** `OCI-Chunk-Min-Length` from the registry, when it sent one. */
  readonly chunkMinLength?: number;
  readonly openedAt: number;
}

/**
 * Upload sessions opened by declined mounts, waiting for the `putBlob` of the same repository and
 * digest that follows. One per registry, so it does not matter which store object asks.
 */
export class PendingSessions {
  private readonly sessions = new Map<string, UploadSession>();

  put(repository: RepositoryPath, digest: Digest, session: UploadSession): void {
    if (this.sessions.size >= MAX_PENDING_SESSIONS) {
      const oldest = this.sessions.keys().next();
      if (!oldest.done) this.sessions.delete(oldest.value);
    }
    this.sessions.set(`${repository}@${digest}`, session);
  }

  take(repository: RepositoryPath, digest: Digest, now: number): UploadSession | undefined {
    const key = `${repository}@${digest}`;
    const session = this.sessions.get(key);
    this.sessions.delete(key);
    if (!session || now - session.openedAt > PENDING_SESSION_MAX_AGE_MS) return undefined;
    return session;
  }
}

/** Sessions from declined mounts are used within this time or forgotten (registries expire them). */
const PENDING_SESSION_MAX_AGE_MS = 5 * 60_000;
const MAX_PENDING_SESSIONS = 1000;

function uploadLocation(client: RepositoryClient, response: HttpResponse, request: HttpRequest): URL {
  const location = response.headers.get("location");
  if (location === undefined || location.length === 0) {
    throw requestError("registry-protocol", "upload response without a Location header", request, {
      status: response.status,
    });
  }
  let url: URL;
  try {
    url = new URL(location, response.url);
  } catch {
    throw requestError("registry-protocol", "upload Location is not a URL", request, {
      status: response.status,
    });
  }
  if (url.origin !== client.endpoint.origin) {
    throw requestError(
      url.protocol === "http:" && client.endpoint.origin.startsWith("https:")
        ? "registry-insecure"
        : "registry-protocol",
      `refusing upload Location on another origin (${redactUrl(url)}); uploads stay on ${client.endpoint.origin}`,
      request,
      { status: response.status },
    );
  }
  return url;
}

function chunkMinLength(response: HttpResponse): number | undefined {
  const value = response.headers.get("oci-chunk-min-length");
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  const length = Number(value.trim());
  return length > 0 ? length : undefined;
}

function sessionFrom(
  client: RepositoryClient,
  response: HttpResponse,
  request: HttpRequest,
  now: number,
): UploadSession {
  const minimum = chunkMinLength(response);
  return {
    location: uploadLocation(client, response, request),
    ...(minimum === undefined ? {} : { chunkMinLength: minimum }),
    openedAt: now,
  };
}

async function openSession(
  client: RepositoryClient,
  now: number,
  options: CallOptions,
): Promise<UploadSession> {
  const { request, response } = await client.send(
    "upload blob",
    {
      method: "POST",
      url: client.endpoint.url(client.path("blobs/uploads/")),
      scopes: [pushScope(client.repository)],
      // Opening a session has no effect a repeat would double (an unused session expires).
      idempotent: true,
    },
    options,
  );
  if (response.status !== 202) throw await client.fail(response, request, "cannot open an upload session");
  await response.discard();
  return sessionFrom(client, response, request, now);
}

/**
 * Tries to mount `descriptor` from `from`; true when the blob now exists here. A declined mount's
 * session is kept in `pending` for the upload that follows.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
 */
export async function mountBlob(
  client: RepositoryClient,
  descriptor: Descriptor,
  from: RepositoryPath,
  now: number,
  options: CallOptions = {},
): Promise<boolean> {
  const pending = client.endpoint.pendingUploads;
  const pair = mountPair(from, client.repository);
  if (client.endpoint.refusedMounts.has(pair)) return false;
  let sent;
  try {
    sent = await client.send(
      "mount blob",
      {
        method: "POST",
        url: client.endpoint.url(client.path("blobs/uploads/"), { mount: descriptor.digest, from }),
        scopes: [pushScope(client.repository), pullScope(from)],
        idempotent: true,
      },
      options,
    );
  } catch (error) {
    // Distribution answers 401 (not 202) when the token does not grant pull on `from`: the
    // mount is refused, but an upload with push on this repository alone may still work.
    if (
      error instanceof RegistryError &&
      (error.code === "registry-auth" || error.code === "registry-denied")
    ) {
      refuseMounts(client, pair, error.code);
      return false;
    }
    throw error;
  }
  const { request, response } = sent;
  if (response.status === 403) {
    await response.discard();
    refuseMounts(client, pair, "registry-denied");
    return false;
  }
  if (response.status === 201) {
    await response.discard();
    return true;
  }
  if (response.status === 202) {
    await response.discard();
    if (response.headers.get("location") !== undefined) {
      pending.put(client.repository, descriptor.digest, sessionFrom(client, response, request, now));
    }
    client.endpoint.logger.log("debug", `mount of ${descriptor.digest} from ${from} declined; uploading`, {
      repository: client.repository,
    });
    return false;
  }
  throw await client.fail(response, request, `cannot mount blob ${descriptor.digest} from ${from}`);
}

/** The key under which `RegistryEndpoint.refusedMounts` remembers a refused pair. */
export function mountPair(from: RepositoryPath, to: RepositoryPath): string {
  return `${from} -> ${to}`;
}

/** Remembers that mounts from one repository into another are not allowed, to stop asking. */
function refuseMounts(client: RepositoryClient, pair: string, why: string): void {
  client.endpoint.refusedMounts.add(pair);
  client.endpoint.logger.log("debug", `mounts ${pair} refused (${why}); uploading instead`, {
    registry: client.endpoint.host,
  });
}

/** Yields `content`, failing when it is longer or shorter than `size`. */
async function* exactly(
  content: AsyncIterable<Uint8Array>,
  size: number,
  fail: (summary: string) => Error,
): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of content) {
    seen += chunk.byteLength;
    if (seen > size) throw fail(`the source gave more than the ${size} bytes the descriptor announces`);
    yield chunk;
  }
  if (seen !== size) throw fail(`the source gave ${seen} bytes, the descriptor announces ${size}`);
}

/** Groups a stream into chunks of `chunkBytes` (the last may be shorter). */
async function* rechunk(content: AsyncIterable<Uint8Array>, chunkBytes: number): AsyncGenerator<Uint8Array> {
  let buffered: Uint8Array[] = [];
  let length = 0;
  for await (const piece of content) {
    let offset = 0;
    while (offset < piece.byteLength) {
      const take = Math.min(chunkBytes - length, piece.byteLength - offset);
      buffered.push(piece.subarray(offset, offset + take));
      length += take;
      offset += take;
      if (length === chunkBytes) {
        yield Buffer.concat(buffered, length);
        buffered = [];
        length = 0;
      }
    }
  }
  if (length > 0) yield Buffer.concat(buffered, length);
}

function closingUrl(session: URL, digest: Digest): URL {
  const url = new URL(session);
  url.searchParams.set("digest", digest);
  return url;
}

function checkStored(response: HttpResponse, request: HttpRequest, descriptor: Descriptor): void {
  const announced = announcedDigest(response);
  if (contradicts(announced, descriptor.digest)) {
    throw requestError(
      "registry-digest-mismatch",
      `uploaded blob ${descriptor.digest} but the registry stored ${announced}`,
      request,
      { status: response.status },
    );
  }
}

async function monolithicUpload(
  client: RepositoryClient,
  session: UploadSession,
  descriptor: Descriptor,
  content: AsyncIterable<Uint8Array>,
  options: CallOptions,
): Promise<void> {
  const url = closingUrl(session.location, descriptor.digest);
  const context = client.context("upload blob");
  const fail = (summary: string) =>
    requestError("registry-digest-mismatch", `blob ${descriptor.digest}: ${summary}`, {
      method: "PUT",
      url,
      context,
    });
  const { request, response } = await client.send(
    "upload blob",
    {
      method: "PUT",
      url,
      scopes: [pushScope(client.repository)],
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(descriptor.size),
      },
      body: exactly(content, descriptor.size, fail),
      headersTimeoutMs: client.endpoint.upload.commitTimeoutMs,
    },
    options,
  );
  if (response.status !== 201)
    throw await client.fail(response, request, `cannot upload blob ${descriptor.digest}`);
  await response.discard();
  checkStored(response, request, descriptor);
}

async function chunkedUpload(
  client: RepositoryClient,
  session: UploadSession,
  descriptor: Descriptor,
  content: AsyncIterable<Uint8Array>,
  options: CallOptions,
): Promise<void> {
  const configured = client.endpoint.upload.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const chunkBytes = Math.min(MAX_CHUNK_BYTES, Math.max(configured, session.chunkMinLength ?? 1));
  const context = client.context("upload blob");
  let location = session.location;
  let offset = 0;
  const fail = (summary: string) =>
    requestError("registry-digest-mismatch", `blob ${descriptor.digest}: ${summary}`, {
      method: "PATCH",
      url: location,
      context,
    });
  for await (const chunk of rechunk(exactly(content, descriptor.size, fail), chunkBytes)) {
    const end = offset + chunk.byteLength - 1;
    const { request, response } = await client.send(
      "upload blob chunk",
      {
        method: "PATCH",
        url: location,
        scopes: [pushScope(client.repository)],
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${offset}-${end}`,
        },
        body: chunk,
      },
      options,
    );
    if (response.status !== 202) {
      throw await client.fail(
        response,
        request,
        `cannot upload bytes ${offset}-${end} of blob ${descriptor.digest}`,
      );
    }
    await response.discard();
    location = uploadLocation(client, response, request);
    const range = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get("range")?.trim() ?? "");
    if (range?.[1] !== undefined && Number(range[1]) !== end) {
      throw requestError(
        "registry-protocol",
        `after bytes ${offset}-${end} of blob ${descriptor.digest} the registry holds 0-${range[1]}`,
        request,
        { status: response.status },
      );
    }
    offset = end + 1;
  }
  const { request, response } = await client.send(
    "upload blob",
    {
      method: "PUT",
      url: closingUrl(location, descriptor.digest),
      scopes: [pushScope(client.repository)],
      // Only after every chunk was accepted; repeating the close is harmless.
      idempotent: true,
      headersTimeoutMs: client.endpoint.upload.commitTimeoutMs,
    },
    options,
  );
  if (response.status !== 201)
    throw await client.fail(response, request, `cannot close upload of blob ${descriptor.digest}`);
  await response.discard();
  checkStored(response, request, descriptor);
}

/** Cancels an upload session after a failure, without waiting long or reporting problems. */
async function cancelSession(client: RepositoryClient, session: UploadSession): Promise<void> {
  try {
    const signal = AbortSignal.timeout(CANCEL_TIMEOUT_MS);
    const { response } = await client.send(
      "cancel upload",
      { method: "DELETE", url: session.location, scopes: [pushScope(client.repository)], idempotent: false },
      { signal },
    );
    await response.discard();
  } catch {
    // The registry expires abandoned sessions anyway.
  }
}

const CANCEL_TIMEOUT_MS = 5000;

/**
 * Uploads a blob from a stream of exactly `descriptor.size` bytes. Never replays the stream: on
 * failure the session is cancelled and the error thrown; a caller that wants another attempt
 * opens a new source stream and calls again, which opens a new session.
 */
export async function uploadBlob(
  client: RepositoryClient,
  descriptor: Descriptor,
  content: AsyncIterable<Uint8Array>,
  now: number,
  options: CallOptions = {},
): Promise<void> {
  const pending = client.endpoint.pendingUploads;
  const session =
    pending.take(client.repository, descriptor.digest, now) ?? (await openSession(client, now, options));
  const chunked = client.endpoint.upload.chunkBytes !== undefined || session.chunkMinLength !== undefined;
  try {
    if (chunked) await chunkedUpload(client, session, descriptor, content, options);
    else await monolithicUpload(client, session, descriptor, content, options);
  } catch (error) {
    if (!(error instanceof RegistryError && error.code === "registry-auth"))
      await cancelSession(client, session);
    throw error;
  }
}
