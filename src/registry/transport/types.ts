import type { Readable } from "node:stream";
import type { RegistryHost, RepositoryPath } from "../../reference/index.js";

/**
 * The HTTP transport stack of the registry client. Each concern is one layer that wraps the next
 * (`Transport`), outermost first:
 *
 *   auth -> redirect -> retry -> host limits (and quota pacing) -> circuit breaker -> count
 *     -> undici (TLS, timeouts, scheme policy)
 *
 * Auth sits above redirects so that credentials are attached once and the redirect layer can
 * drop them when a hop leaves the registry's origin; retry sits below redirects so each hop is
 * retried on its own; limits sit below retry so they bound (and pace) every attempt; the circuit
 * breaker sits below limits so a request that waited for a slot behind a host's fatal failure
 * fails at once; counting sits right above the network so every attempt that reaches it, and
 * only those, is counted.
 */

export type HttpMethod = "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";

/** Who a request is for, so that any layer can raise an error that names it. */
export interface RequestContext {
  /** What the caller was doing, e.g. `get manifest`, `upload blob`. */
  readonly operation: string;
  /** The registry as people write it (`docker.io`, `127.0.0.1:5000`). */
  readonly registry: string;
  readonly repository?: string;
}

/** What the auth layer needs to authorise a request to a registry's own origin. */
export interface RequestAuth {
  /** The registry host as people name it (`docker.io`); credentials are looked up for it. */
  readonly registry: RegistryHost;
  /** `scheme://host[:port]` of the registry's API; credentials are sent to this origin only. */
  readonly origin: string;
  /** The repository whose credentials apply (containers auth.json may match a path prefix). */
  readonly repository?: RepositoryPath;
  /** Token scopes, e.g. `repository:foo:pull` or `repository:foo:pull,push`. */
  readonly scopes: readonly string[];
}

/**
 * A request body: bytes in memory can be sent again (retry, redirect, 401 with a fresh token);
 * a stream can be sent once.
 */
export type RequestBody = Uint8Array | AsyncIterable<Uint8Array>;

export interface HttpRequest {
  readonly method: HttpMethod;
  readonly url: URL;
  /** Header names in lower case. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  readonly context: RequestContext;
  readonly auth?: RequestAuth;
  /**
   * Whether the retry layer may send this request again. Default: GET, HEAD, PUT and DELETE
   * with a body held in memory (or none).
   */
  readonly idempotent?: boolean;
  /**
   * Read the whole response body into memory (at most this many bytes) before the response is
   * returned, so that a failure while reading is retried like any other network failure.
   * Without it the body is a stream the caller must consume or discard.
   */
  readonly bufferLimit?: number;
  /**
   * Stall timeout while waiting for response headers, overriding the transport default; the
   * request's deadline grants this wait on top once the request body has been sent.
   */
  readonly headersTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ResponseHeaders {
  /** The header's value; repeated headers are joined with ", ". */
  get(name: string): string | undefined;
  /** Each occurrence of a header (`WWW-Authenticate` and `Link` may repeat). */
  all(name: string): string[];
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: ResponseHeaders;
  /** The URL that answered (after redirects). */
  readonly url: URL;
  /** The body, when the request asked for `bufferLimit`. */
  readonly bytes?: Uint8Array;
  /** The body as a stream; empty when `bytes` is set. Consume it or call `discard`. */
  readonly body: Readable;
  /** Drops the rest of the body so the connection can be reused (or is closed). */
  discard(): Promise<void>;
}

export interface Transport {
  send(request: HttpRequest): Promise<HttpResponse>;
}

/** Whether a body can be sent more than once. */
export function isReplayableBody(body: RequestBody | undefined): boolean {
  return body === undefined || body instanceof Uint8Array;
}

/** The default idempotency of a request (see `HttpRequest.idempotent`). */
export function isIdempotent(request: HttpRequest): boolean {
  if (request.idempotent !== undefined) return request.idempotent;
  const idempotentMethod =
    request.method === "GET" ||
    request.method === "HEAD" ||
    request.method === "PUT" ||
    request.method === "DELETE";
  return idempotentMethod && isReplayableBody(request.body);
}
