import { foldHostCase } from "../../reference/index.js";
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { maxHeaderSize } from "node:http";
import { isIP } from "node:net";
import { finished, Readable, Transform } from "node:stream";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import type { Dispatcher } from "undici";
import { onAbort } from "../../concurrency/index.js";
import { AbortedError, describeError } from "../../errors.js";
import { logsAt, type Logger } from "../../log.js";
import { redactUrl } from "../redact.js";
import { RegistryError } from "../errors.js";
import { BodyTooLargeError, discardBody, emptyBody, readBody } from "./body.js";
import {
  deadlineSummary,
  DEFAULT_MIN_BYTES_PER_SECOND,
  TransferDeadline,
  type DeadlineTimers,
  type TransferPace,
} from "./deadline.js";
import {
  INTERNAL_ADDRESS_ERROR_CODE,
  type ConnectLookup,
  type InternalAddressGuard,
} from "./network-address.js";
import { requestError } from "./request-error.js";
import type { SecurityPolicy } from "./security-policy.js";
import { speaksTls } from "./tls-probe.js";
import { Agent, requestOn } from "./undici-core.js";
import {
  isReplayableBody,
  type HttpRequest,
  type HttpResponse,
  type ResponseHeaders,
  type Transport,
} from "./types.js";

/**
 * The bottom layer: one HTTP request on undici. `undici.request` (rather than `fetch`) because it
 * gives the body as a Node stream with back-pressure for multi-gigabyte blobs, never follows
 * redirects by itself (the redirect layer does, by hand), and has per-request headers and
 * body-idle timeouts, so a stalled connection cannot hang a run. On top of those every attempt
 * has an overall deadline that grows with the bytes it moves (see deadline.ts), so a registry
 * that trickles cannot hang it either.
 *
 * This layer also enforces the scheme policy on every URL, redirect targets and token realms
 * included: plain HTTP only to loopback hosts and hosts named insecure; TLS always verified.
 */

export interface UndiciTransportOptions {
  readonly policy: SecurityPolicy;
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots. */
  readonly caCertificates?: string;
  /** Host name -> IP address, consulted before DNS (like `curl --resolve`); for tests and pinning. */
  readonly hostAddresses?: ReadonlyMap<string, string>;
  /**
   * Stall timeout before response headers arrive (refreshed while a request body is sent); also
   * the allowance of each request's deadline before the minimum rate applies.
   */
  readonly headersTimeoutMs?: number;
  /** Longest silence while a response body streams. */
  readonly bodyTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Minimum average rate of a request after its allowance (default 16 KiB/s; see deadline.ts). */
  readonly minBytesPerSecond?: number;
  /** Time for the deadlines (tests inject one). */
  readonly deadlineTimers?: DeadlineTimers;
  readonly userAgent?: string;
  /**
   * Offer HTTP/2 in the TLS handshake for requests that carry no blob (default false); the
   * registry picks by ALPN, so one without it is spoken to over HTTP/1.1. See `UndiciTransport`.
   */
  readonly http2?: boolean;
  /** Gets one debug line per response (method, redacted URL, status, time to headers). */
  readonly logger?: Logger;
  /** Refuses connections to internal addresses, checked on IP literals and on every DNS answer. */
  readonly internalAddressGuard?: InternalAddressGuard;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 60_000;
export const DEFAULT_BODY_TIMEOUT_MS = 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for net/tls.connect that answers from `hostAddresses` first. */
export function lookupWithOverrides(hostAddresses: ReadonlyMap<string, string>) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    const pinned = hostAddresses.get(foldHostCase(hostname));
    if (pinned === undefined) {
      dnsLookup(hostname, options, callback);
      return;
    }
    const family = isIP(pinned) === 6 ? 6 : 4;
    if (options.all) callback(null, [{ address: pinned, family }]);
    else callback(null, pinned, family);
  };
}

/**
 * A view of undici's response headers, read where they lie rather than copied per response
 * (a tag check reads two or three of them). undici gives them with lower-case names (its
 * `parseHeaders`), as own properties of a plain object: `hasOwn` keeps a header named like an
 * Object.prototype member (`constructor`, `__proto__`) from reading the prototype's.
 */
function wrapHeaders(raw: Dispatcher.ResponseData["headers"]): ResponseHeaders {
  const values = (name: string): string | string[] | undefined => {
    const key = name.toLowerCase();
    return Object.hasOwn(raw, key) ? raw[key] : undefined;
  };
  return {
    get: (name) => {
      const value = values(name);
      return Array.isArray(value) ? value.join(", ") : value;
    },
    all: (name) => {
      const value = values(name);
      if (value === undefined) return [];
      return Array.isArray(value) ? [...value] : [value];
    },
  };
}

/** Node and undici error codes that another attempt will not fix. */
const PERMANENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  "ENOTFOUND",
  INTERNAL_ADDRESS_ERROR_CODE,
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "UND_ERR_INVALID_ARG",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_NOT_SUPPORTED",
]);

/** The Node or undici error code of a network failure (or of its first cause that has one). */
export function networkErrorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") return code;
  return networkErrorCode((error as { cause?: unknown }).cause);
}

/**
 * Whether a failure raised by this layer may succeed when tried again: connection refused or
 * reset, timeouts; not TLS verification failures, unknown host names, or our own refusals.
 */
export function isTransientNetworkError(error: unknown): boolean {
  if (!(error instanceof RegistryError)) return false;
  if (error.code === "registry-timeout") return true;
  if (error.code !== "registry-network") return false;
  const code = networkErrorCode(error.cause);
  return code === undefined || !PERMANENT_NETWORK_CODES.has(code);
}

/**
 * The cause of a timeout with nothing from the host: no connection in time, or no response
 * headers in time while the request sent nothing (or had nothing to send).
 */
const SILENT_HOST_CODE = "PROMOTER_SILENT_HOST";

function silentHostError(): Error {
  return Object.assign(new Error("the host sent nothing before the deadline"), { code: SILENT_HOST_CODE });
}

/**
 * Whether a `registry-timeout` error says the host sent nothing at all (it did not accept the
 * connection in time, or sent no response headers), rather than that an answer or an upload was
 * too slow: the first is a host that may be down, the second a transfer that may be too large.
 */
export function isSilentHostTimeout(error: unknown): boolean {
  if (!(error instanceof RegistryError) || error.code !== "registry-timeout") return false;
  const code = networkErrorCode(error.cause);
  return (
    code === SILENT_HOST_CODE || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT"
  );
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Maps an undici or socket failure to a RegistryError (or AbortedError when asked to stop). */
export function networkError(error: unknown, request: HttpRequest, phase: "request" | "body"): Error {
  if (error instanceof RegistryError || error instanceof AbortedError) return error;
  if (request.signal?.aborted)
    return new AbortedError(`${request.context.operation} aborted`, { cause: error });
  const code = networkErrorCode(error) ?? "";
  const detail = describeError(error);
  const cause = error instanceof Error ? error : undefined;
  if (code === "UND_ERR_HEADERS_OVERFLOW") {
    // A WWW-Authenticate or Link header of megabytes: refused by the parser, not worth retrying.
    return requestError(
      "registry-too-large",
      `response headers are over the ${maxHeaderSize}-byte limit`,
      request,
      { cause },
    );
  }
  if (TIMEOUT_CODES.has(code)) {
    const what =
      code === "UND_ERR_HEADERS_TIMEOUT"
        ? "no response headers in time"
        : code === "UND_ERR_BODY_TIMEOUT"
          ? "the response body stalled"
          : "could not connect in time";
    return requestError("registry-timeout", `timed out: ${what}`, request, { cause });
  }
  const summary = `network error${phase === "body" ? " while reading the response" : ""}: ${code ? `${code} ` : ""}${detail}`;
  return requestError("registry-network", summary, request, { cause });
}

/**
 * HTTP/1.1 by default, every connection kept alive, HEADs included (see `reset` below: by
 * default undici closes the connection after every HEAD, and checking 700,000 tags would cost
 * 700,000 connections and TLS handshakes).
 *
 * With `http2`, two connection pools: requests without a blob body in either direction (HEAD,
 * manifests, tag lists, upload sessions, tokens) go over HTTP/2 when a TLS registry offers it,
 * one connection per host multiplexing them all. It is not the default because Node's HTTP/2
 * streams cost about 2.4 times the CPU of a kept-alive HTTP/1.1 request (`npm run
 * bench:request`: ~245 against ~100 µs through the whole client), and with the per-host limit
 * (16) as many HTTP/1.1 connections wait no more round trips: each pays its handshake once.
 *
 * Blob uploads (a streamed request body) and downloads (a streamed response) keep to HTTP/1.1
 * connections of their own: HTTP/2 flow control caps what one connection has in flight (Go's
 * HTTP/2 server, distribution's, accepts 1 MiB per connection per round trip), so across
 * regions several TCP connections move large layers much faster than streams of one.
 */
export class UndiciTransport implements Transport {
  private readonly agent: Agent;
  /** For requests without blobs; the same as `agent` unless HTTP/2 is on. */
  private readonly multiplexed: Agent;
  private readonly options: UndiciTransportOptions;
  /** Per host (`name:port`): whether it answered a TLS handshake, asked once (see tls-probe.ts). */
  private readonly tlsAnswers = new Map<string, Promise<boolean>>();
  /** Every attempt's schedule (see deadline.ts). */
  private readonly pace: TransferPace;
  private readonly userAgent: string;

  constructor(options: UndiciTransportOptions) {
    this.options = options;
    this.pace = {
      allowanceMs: options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      minBytesPerSecond: options.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND,
    };
    this.userAgent = options.userAgent ?? "image-promoter";
    const secureContext =
      options.caCertificates === undefined
        ? undefined
        : createSecureContext({ ca: [...rootCertificates, options.caCertificates] });
    this.agent = UndiciTransport.createAgent(options, false, secureContext);
    this.multiplexed =
      options.http2 === true ? UndiciTransport.createAgent(options, true, secureContext) : this.agent;
  }

  private static createAgent(
    options: UndiciTransportOptions,
    allowH2: boolean,
    secureContext: SecureContext | undefined,
  ): Agent {
    return new Agent({
      allowH2,
      headersTimeout: options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      bodyTimeout: options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
      connect: {
        rejectUnauthorized: true,
        timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        // One secure context for every connection: a `ca` list would be parsed again (Node's
        // ~140 roots and the extra ones) for each new connection, ~20 ms of CPU a handshake.
        ...(secureContext === undefined ? {} : { secureContext }),
        ...UndiciTransport.lookupOption(options),
      },
    });
  }

  /** The connect `lookup`: host overrides first, then DNS, every answer checked by the guard. */
  private static lookupOption(options: UndiciTransportOptions): { lookup?: ConnectLookup } {
    const pinned = options.hostAddresses !== undefined && options.hostAddresses.size > 0;
    if (!pinned && options.internalAddressGuard === undefined) return {};
    const base: ConnectLookup = pinned ? lookupWithOverrides(options.hostAddresses) : dnsLookup;
    return { lookup: options.internalAddressGuard?.lookup(base) ?? base };
  }

  /**
   * Whether a plain-HTTP request's failure (`status` 400, or a closed connection) came from a
   * TLS server: asked of the host once, with a TLS handshake (tls-probe.ts).
   */
  private answeredByTls(url: URL, failure: { status?: number; code?: string }): Promise<boolean> {
    if (url.protocol !== "http:") return Promise.resolve(false);
    const tlsLike =
      failure.status === 400 ||
      (failure.code !== undefined &&
        (TLS_LIKE_CLOSE_CODES.has(failure.code) || failure.code.startsWith("HPE_")));
    if (!tlsLike) return Promise.resolve(false);
    const key = foldHostCase(url.host);
    let answer = this.tlsAnswers.get(key);
    if (!answer) {
      const lookup = UndiciTransport.lookupOption(this.options).lookup;
      answer = speaksTls(url.hostname, Number(url.port || 80), {
        timeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        ...(lookup === undefined ? {} : { lookup }),
      });
      this.tlsAnswers.set(key, answer);
    }
    return answer;
  }

  /**
   * Whether a blob's bytes travel in this request (see the class comment): a streamed body, a
   * chunk of a chunked upload (the client PATCHes only blob chunks), or a streamed response.
   */
  private static carriesBlob(request: HttpRequest): boolean {
    if (request.method === "PATCH") return true;
    if (!isReplayableBody(request.body)) return true;
    return request.method === "GET" && request.bufferLimit === undefined;
  }

  async send(request: HttpRequest): Promise<HttpResponse> {
    const { url } = request;
    if (url.protocol === "http:") {
      if (!this.options.policy.allowsPlainHttp(url.host)) {
        throw requestError(
          "registry-insecure",
          `refusing plain HTTP to ${url.host}: only loopback registries and those named with --insecure-registry are reached without TLS`,
          request,
        );
      }
    } else if (url.protocol !== "https:") {
      throw requestError("registry-protocol", `unsupported URL scheme ${url.protocol}`, request);
    }
    const internal = this.options.internalAddressGuard?.refusal(url);
    if (internal !== undefined) throw requestError("registry-insecure", internal, request);
    if (request.signal?.aborted) throw new AbortedError(`${request.context.operation} aborted`);

    // How this attempt is stopped (by its deadline or the caller): an AbortController's signal
    // for `undici.request`, the dispatch controller for a HEAD (see `head`), set once sent.
    const stop: AttemptStop = {};
    const attempt = this.startAttempt(request, stop);
    if (request.method === "HEAD" && request.body === undefined) return this.sendHead(request, stop, attempt);
    const { deadline, settle } = attempt;
    /** The deadline's own error when it fired, else `error` mapped as usual. */
    const failure = (error: unknown, phase: "request" | "body"): Error => {
      settle();
      return attemptFailure(error, request, stop, phase);
    };
    const unanswered = (error: unknown): Promise<Error> => this.unanswered(error, request, stop, attempt);

    const headers: Record<string, string> = { "user-agent": this.userAgent, ...request.headers };
    let body: Buffer | Readable | undefined;
    // A request's own wait for its answer (`headersTimeoutMs`) starts once its body is sent.
    const bodySent = () => {
      if (request.headersTimeoutMs !== undefined) deadline.extend(request.headersTimeoutMs);
    };
    if (request.body instanceof Uint8Array) {
      const bytes = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
      headers["content-length"] = String(bytes.byteLength);
      if (bytes.byteLength <= METERED_SLICE_BYTES) {
        body = bytes;
        deadline.progress(bytes.byteLength);
        bodySent();
      } else {
        // Larger bodies (upload chunks, big manifests) go in slices, so that a registry that
        // reads them slowly falls behind the deadline as it reads, not only at the end.
        body = Readable.from(meteredChunks(slices(bytes), deadline, bodySent), { objectMode: false });
      }
    } else if (request.body !== undefined) {
      body = Readable.from(meteredChunks(request.body, deadline, bodySent), { objectMode: false });
    } else {
      if (request.method === "PUT" || request.method === "POST" || request.method === "PATCH") {
        headers["content-length"] = "0";
      }
      bodySent();
    }

    const started = Date.now();
    const abort = new AbortController();
    stop.to = (reason) => {
      abort.abort(reason);
    };
    if (stop.reason !== undefined) abort.abort(stop.reason);
    let raw;
    try {
      raw = await requestOn(UndiciTransport.carriesBlob(request) ? this.agent : this.multiplexed, url, {
        method: request.method,
        headers,
        body: body ?? null,
        signal: abort.signal,
        ...(request.headersTimeoutMs === undefined ? {} : { headersTimeout: request.headersTimeoutMs }),
      });
    } catch (error) {
      if (body instanceof Readable) body.destroy();
      throw await unanswered(error);
    }
    attempt.answered = true;
    if (await this.answeredByTls(url, { status: raw.statusCode })) {
      raw.body.on("error", () => undefined);
      await discardBody(raw.body);
      settle();
      throw httpsRequired(request);
    }

    this.logResponse(request, raw.statusCode, started);
    const responseHeaders = wrapHeaders(raw.headers);
    // Errors while a caller streams the body are mapped by the caller; keep one listener so an
    // unconsumed body that fails cannot crash the process.
    raw.body.on("error", () => undefined);
    if (request.method === "HEAD") {
      await discardBody(raw.body);
      settle();
      return new BodilessResponse(raw.statusCode, responseHeaders, url);
    }
    // The deadline keeps counting while the caller reads the body, and ends when it is closed.
    const stream = meteredBody(raw.body, deadline, settle);
    if (request.bufferLimit === undefined) {
      return {
        status: raw.statusCode,
        headers: responseHeaders,
        url,
        body: stream,
        discard: () => discardBody(stream),
      };
    }

    const limit = request.bufferLimit;
    const announced = Number(responseHeaders.get("content-length") ?? Number.NaN);
    if (Number.isFinite(announced) && announced > limit) {
      stream.destroy();
      settle();
      throw requestError(
        "registry-too-large",
        `response of ${announced} bytes is over the ${limit}-byte cap`,
        request,
        { status: raw.statusCode },
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await readBody(stream, limit);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        settle();
        throw requestError("registry-too-large", `response body is over the ${limit}-byte cap`, request, {
          status: raw.statusCode,
        });
      }
      throw failure(error, "body");
    }
    settle();
    return {
      status: raw.statusCode,
      headers: responseHeaders,
      url,
      bytes,
      body: emptyBody(),
      discard: () => Promise.resolve(),
    };
  }

  /**
   * The deadline of one attempt and its hold on the caller's signal: either stops the attempt
   * through `stop`; `settle` ends both once the attempt is over.
   */
  private startAttempt(request: HttpRequest, stop: AttemptStop): Attempt {
    const pace = this.pace;
    const attempt: Attempt = {
      answered: false,
      deadline: new TransferDeadline(
        pace,
        (report) => {
          const silent = !attempt.answered && report.bytesMoved === 0;
          stopAttempt(
            stop,
            requestError("registry-timeout", deadlineSummary(pace, report, attempt.answered), request, {
              ...(silent ? { cause: silentHostError() } : {}),
            }),
          );
        },
        this.options.deadlineTimers,
      ),
      settle: () => {
        attempt.deadline.finish();
        stopFollowingCaller?.();
      },
    };
    // One listener on the caller's signal (the run's, shared by every request) for all requests
    // (concurrency/abort-listeners.ts).
    const callerSignal = request.signal;
    const stopFollowingCaller = callerSignal
      ? onAbort(callerSignal, () => {
          stopAttempt(stop, callerSignal.reason);
        })
      : undefined;
    return attempt;
  }

  /** The error for a request that got no answer: mapped, or "this host wants TLS". */
  private async unanswered(
    error: unknown,
    request: HttpRequest,
    stop: AttemptStop,
    attempt: Attempt,
  ): Promise<Error> {
    attempt.settle();
    const mapped = attemptFailure(error, request, stop, "request");
    const code = networkErrorCode(error);
    if (
      mapped instanceof RegistryError &&
      mapped.code === "registry-network" &&
      (await this.answeredByTls(request.url, code === undefined ? {} : { code }))
    ) {
      return httpsRequired(request, mapped);
    }
    return mapped;
  }

  /**
   * A HEAD without a body: the lean path a tag check takes (700,000 of them in a promotion of
   * registry.k8s.io), with nothing built that only a body or an AbortSignal would need.
   */
  private async sendHead(request: HttpRequest, stop: AttemptStop, attempt: Attempt): Promise<HttpResponse> {
    const { url } = request;
    // The request's own wait for its answer starts at once: a HEAD has no body to send first.
    if (request.headersTimeoutMs !== undefined) attempt.deadline.extend(request.headersTimeoutMs);
    const headers = request.headers
      ? { "user-agent": this.userAgent, ...request.headers }
      : { "user-agent": this.userAgent };
    const started = Date.now();
    let answer: HeadAnswer;
    try {
      answer = await this.head(url, headers, request.headersTimeoutMs, stop);
    } catch (error) {
      throw await this.unanswered(error, request, stop, attempt);
    }
    attempt.answered = true;
    attempt.settle();
    if (url.protocol === "http:" && (await this.answeredByTls(url, { status: answer.statusCode }))) {
      throw httpsRequired(request);
    }
    this.logResponse(request, answer.statusCode, started);
    return new BodilessResponse(answer.statusCode, wrapHeaders(answer.headers), url);
  }

  /**
   * One HEAD through undici's dispatcher rather than `undici.request`: there is no body, so no
   * response stream, request handler or AbortSignal need exist (about a third of the CPU of a
   * tag check in a promotion that checks 700,000). `stop` is how the caller's deadline and
   * signal end it: the dispatch controller's `abort`, or at once if already stopped.
   *
   * undici closes an HTTP/1.1 connection after every HEAD unless told `reset: false` (in case a
   * server sends a body anyway, undici#258). A HEAD answer has no body (RFC 9110 section 9.3.2),
   * and bytes a host sends after one break only that host's own connection (the next answer on
   * it fails to parse and is retried), so the connection is kept.
   */
  private head(
    url: URL,
    headers: Record<string, string>,
    headersTimeoutMs: number | undefined,
    stop: AttemptStop,
  ): Promise<HeadAnswer> {
    return new Promise<HeadAnswer>((resolve, reject) => {
      let answer: HeadAnswer | undefined;
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (controller) => {
          if (stop.reason !== undefined) {
            controller.abort(toError(stop.reason));
            return;
          }
          stop.to = (reason) => {
            controller.abort(toError(reason));
          };
        },
        onResponseStart: (_controller, statusCode, responseHeaders) => {
          answer = { statusCode, headers: responseHeaders };
        },
        onResponseEnd: () => {
          stop.to = undefined;
          if (answer === undefined) reject(new Error("the HEAD ended without an answer"));
          else resolve(answer);
        },
        onResponseError: (_controller, error) => {
          stop.to = undefined;
          reject(error);
        },
      };
      try {
        this.multiplexed.dispatch(
          {
            origin: url.origin,
            path: `${url.pathname}${url.search}`,
            method: "HEAD",
            headers,
            reset: false,
            ...(headersTimeoutMs === undefined ? {} : { headersTimeout: headersTimeoutMs }),
          },
          handler,
        );
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  private logResponse(request: HttpRequest, status: number, started: number): void {
    // Asked first: building and redacting this line for every request cost more than the rest
    // of this layer in a run that does not show it.
    if (logsAt(this.options.logger, "debug"))
      this.options.logger?.log("debug", `${request.method} ${redactUrl(request.url)} ${status}`, {
        ms: Date.now() - started,
        operation: request.context.operation,
      });
  }

  /** Closes idle connections; pending requests finish first. */
  async close(): Promise<void> {
    await Promise.all([
      this.agent.close(),
      this.multiplexed === this.agent ? undefined : this.multiplexed.close(),
    ]);
  }
}

/** Why an attempt was stopped (once it is), and how to stop it while it is under way. */
interface AttemptStop {
  reason?: unknown;
  to?: ((reason: unknown) => void) | undefined;
}

/** Stops an attempt (the first reason wins). */
function stopAttempt(stop: AttemptStop, reason: unknown): void {
  if (stop.reason !== undefined) return;
  stop.reason = reason;
  stop.to?.(reason);
}

/** One attempt's deadline, whether its answer came, and how to end its deadline and signal hold. */
interface Attempt {
  answered: boolean;
  readonly deadline: TransferDeadline;
  readonly settle: () => void;
}

/** The deadline's own error when it stopped the attempt, else `error` mapped as usual. */
function attemptFailure(
  error: unknown,
  request: HttpRequest,
  stop: AttemptStop,
  phase: "request" | "body",
): Error {
  const reason = stop.reason;
  if (reason instanceof RegistryError && !request.signal?.aborted) return reason;
  return networkError(error, request, phase);
}

interface HeadAnswer {
  readonly statusCode: number;
  readonly headers: Dispatcher.ResponseData["headers"];
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/**
 * A response without a body (a HEAD's): its empty `body` stream is made only if someone asks
 * for it, which for a tag check nobody does.
 */
class BodilessResponse implements HttpResponse {
  private emptyStream: Readable | undefined;

  constructor(
    readonly status: number,
    readonly headers: ResponseHeaders,
    readonly url: URL,
  ) {}

  get body(): Readable {
    this.emptyStream ??= emptyBody();
    return this.emptyStream;
  }

  discard(): Promise<void> {
    return Promise.resolve();
  }
}

/** Ways a server that expects TLS may end a plain-HTTP request without an HTTP answer. */
const TLS_LIKE_CLOSE_CODES: ReadonlySet<string> = new Set(["ECONNRESET", "UND_ERR_SOCKET"]);

/** The error of a plain-HTTP request answered by a TLS server, with what to do about it. */
function httpsRequired(request: HttpRequest, cause?: Error): RegistryError {
  const host = request.url.host;
  return requestError(
    "registry-https-required",
    `${host} speaks TLS, not plain HTTP: reach it over HTTPS with --https-registry ${host} (and --registry-ca FILE when a private CA signed its certificate)`,
    request,
    cause === undefined ? {} : { cause },
  );
}

/** Request bodies held in memory above this size are sent in slices of it (see `send`). */
const METERED_SLICE_BYTES = 64 * 1024;

/** `bytes` in slices of METERED_SLICE_BYTES (views, not copies). */
function* slices(bytes: Buffer): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += METERED_SLICE_BYTES) {
    yield bytes.subarray(offset, offset + METERED_SLICE_BYTES);
  }
}

/**
 * Passes a request body through, counting what the connection takes toward the deadline, and
 * calls `sent` once the connection has taken all of it.
 */
async function* meteredChunks(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  deadline: TransferDeadline,
  sent: () => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    deadline.progress(chunk.byteLength);
    yield chunk;
  }
  sent();
}

/**
 * A response body that counts what the caller reads toward the deadline, and calls `settled`
 * once it is closed (read to the end, destroyed, or failed). A failure of `source`, the
 * deadline's abort included, reaches the caller through it.
 */
function meteredBody(source: Readable, deadline: TransferDeadline, settled: () => void): Readable {
  const metered = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      deadline.progress(chunk.byteLength);
      callback(null, chunk);
    },
  });
  metered.on("error", () => undefined);
  // Wired by hand, not with `pipeline`, which makes and aborts an AbortController per body:
  // building that AbortError (its stack) cost more CPU than the rest of a small body's path.
  // What `pipeline` did: a failure of the source fails the metered stream, and closing the
  // metered stream (read to the end, or dropped by its reader) lets the source go.
  metered.once("close", () => {
    settled();
    if (!source.destroyed) source.destroy();
  });
  finished(source, (error) => {
    if (error) metered.destroy(error);
  });
  source.pipe(metered);
  return metered;
}
