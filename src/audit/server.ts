import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describeError, truncateForMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { ENCODED_SECRET_FORMS, jsonText } from "../output/encode.js";
import { Redactor } from "../registry/index.js";
import type { Auditor } from "./auditor.js";
import { foldHostCase, registryHostProblem } from "../reference/index.js";
import {
  MalformedEventError,
  parseDistributionEnvelope,
  parseJsonBody,
  parsePubSubPush,
  plainEventsAttribution,
  type EventAttribution,
  type HostMapping,
  type ParsedEvents,
} from "./event.js";
import { FindingReader, FindingReaderBusyError, type FindingQueries } from "./finding-reader.js";
import {
  DEFAULT_FINDINGS_LIMIT,
  type AuditFinding,
  type FindingFilter,
  type FindingStore,
} from "./finding-store.js";
import type { AuditMetrics, RejectReason } from "./metrics.js";
import { securityHeaders, StatusPage, StatusProblem } from "./status-page.js";
import type { TrustCache } from "./trust-cache.js";
import { StatusStore } from "./status-store.js";
import { findingJson } from "./finding-json.js";
import { tokenMatches } from "./token-check.js";

export { findingJson } from "./finding-json.js";
export { tokenMatches } from "./token-check.js";

/**
 * The auditor's HTTP face (node:http):
 *   POST /events/<registry>  distribution notifications of that registry   (bearer token)
 *   POST /events   distribution notifications of `--registry-host NAME`, else unattributed
 *   POST /pubsub   Pub/Sub push message                 (bearer token, or ?token= for Pub/Sub)
 *   GET  /findings JSON findings with filters, a page at a time   (reader bearer token)
 *   GET  /healthz  liveness and manifest state
 *   GET  /metrics  Prometheus text
 * Every request is answered; no input can crash the process: handlers are wrapped, bodies are
 * capped, and a request is refused before its body is read when the token is wrong. Reading
 * findings takes its own token (a notification sender cannot read, a reader cannot send) and
 * runs off the event loop (finding-reader.ts), so readers never hold up notifications.
 */

/** Largest notification body read: distribution batches and Pub/Sub messages are a few KiB. */
export const MAX_EVENT_BODY_BYTES = 1024 * 1024;
/** A request must arrive completely within this time. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Most findings one `GET /findings` returns; `next` leads to the following page. */
export const MAX_FINDINGS_PAGE = 500;

export interface AuditServerOptions {
  readonly auditor: Auditor;
  readonly store: FindingStore;
  readonly metrics: AuditMetrics;
  /** The shared secret notification senders present as `Authorization: Bearer <token>`. */
  readonly token: string;
  /**
   * The secret `GET /findings` readers present as `Authorization: Bearer <token>`; distinct from
   * `token`. Without it `GET /findings` is refused.
   */
  readonly readerToken?: string;
  /** Where findings are read; default: a `FindingReader` on `store`'s database, closed with the server. */
  readonly findings?: FindingQueries;
  /** `--registry-host`: the registry of `POST /events`, and Pub/Sub host names. */
  readonly hostMapping: HostMapping;
  readonly logger: Logger;
  readonly maxBodyBytes?: number;
  readonly now?: () => number;
  /**
   * Removes known secrets from every response body. `GET /findings` serves what notifications
   * said (event ids, reasons) to anyone who asks: a registry that echoes the token into an event
   * must not publish it. Default: removes `token`.
   */
  readonly redact?: (text: string) => string;
  /**
   * The read-only token of the status page (`GET /status`, docs/auditor.md "Status page");
   * distinct from `token`. With neither it nor `acknowledgers` the page is off (404).
   */
  readonly viewerToken?: string;
  /** Name -> token of those who may acknowledge findings on the status page (and view it). */
  readonly acknowledgers?: ReadonlyMap<string, string>;
  /**
   * Verified signatures and attestations on the status page (trust settings given); told of
   * every event received, so a new signature or tag is checked again.
   */
  readonly trust?: TrustCache;
}

export interface AuditServer {
  /** `http://HOST:PORT` actually bound (port 0 picks a free one). */
  readonly url: string;
  readonly address: AddressInfo;
  close(): Promise<void>;
}

class HttpProblem extends Error {
  readonly status: number;
  readonly reject: RejectReason | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, message: string, reject?: RejectReason, retryAfterSeconds?: number) {
    super(message);
    this.status = status;
    this.reject = reject;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S.*?)[ \t]*$/i.exec(header);
  return match?.[1];
}

type Redact = (text: string) => string;

function sendJson(
  response: ServerResponse,
  redact: Redact,
  status: number,
  body: unknown,
  close = false,
  retryAfterSeconds?: number,
): void {
  if (response.headersSent) return;
  const text = `${redact(jsonText(body))}\n`;
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...(close ? { connection: "close" } : {}),
    ...(retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) }),
  });
  response.end(text);
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = request.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new HttpProblem(413, `body larger than ${limit} bytes`, "too-large"));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    request.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(new HttpProblem(413, `body larger than ${limit} bytes`, "too-large"));
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    });
    request.on("error", (error) => {
      if (done) return;
      done = true;
      reject(error);
    });
  });
}

const REGISTRY_EVENTS_PREFIX = "/events/";

/**
 * Which registry the events posted to `route` are about (see `EventAttribution`): the
 * `<registry>` of `/events/<registry>`, as the manifests spell it, or why that names no registry
 * (answered once the sender has shown the token, so a misconfigured registry is logged);
 * undefined for other routes.
 */
function eventsAttribution(
  route: string,
  mapping: HostMapping,
): EventAttribution | { readonly kind: "bad-endpoint"; readonly problem: string } | undefined {
  if (route === "/events") return plainEventsAttribution(mapping);
  if (!route.startsWith(REGISTRY_EVENTS_PREFIX)) return undefined;
  let registry: string;
  try {
    registry = decodeURIComponent(route.slice(REGISTRY_EVENTS_PREFIX.length));
  } catch {
    return { kind: "bad-endpoint", problem: "the registry name is not URL-encoded text" };
  }
  const problem = registryHostProblem(registry);
  if (problem) return { kind: "bad-endpoint", problem };
  return { kind: "endpoint", host: foldHostCase(registry) };
}

function isJsonContentType(value: string | undefined): boolean {
  // Distribution sends application/vnd.docker.distribution.events.v1+json; Pub/Sub application/json.
  return value === undefined || /json/i.test(value);
}

/** Removes the token (and credential patterns) from text. */
function tokenRedaction(token: string): Redact {
  const redactor = new Redactor({ encodings: ENCODED_SECRET_FORMS });
  redactor.add(token);
  return (text) => redactor.redact(text);
}

export function startAuditServer(
  options: AuditServerOptions,
  listen: { readonly host: string; readonly port: number },
): Promise<AuditServer> {
  const limit = options.maxBodyBytes ?? MAX_EVENT_BODY_BYTES;
  const now = options.now ?? Date.now;
  const { logger, metrics } = options;
  const ownReader = options.findings === undefined;
  const findings = options.findings ?? new FindingReader(options.store.path);
  const redact = options.redact ?? tokenRedaction(options.token);
  const statusEnabled = options.viewerToken !== undefined || (options.acknowledgers?.size ?? 0) > 0;
  const statusStore = statusEnabled ? StatusStore.open(options.store.path) : undefined;
  const statusPage = statusStore
    ? new StatusPage(
        {
          ...(options.viewerToken === undefined ? {} : { viewerToken: options.viewerToken }),
          ...(options.acknowledgers === undefined ? {} : { acknowledgers: options.acknowledgers }),
        },
        {
          desiredState: () => options.auditor.desiredState,
          findings,
          store: statusStore,
          ingestToken: options.token,
          redact,
          now,
          readBody,
          ...(options.trust ? { trust: options.trust } : {}),
        },
      )
    : undefined;

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "http://audit.invalid");
    const route = url.pathname;
    if (route === "/status" || route.startsWith("/status/")) {
      if (!statusPage)
        throw new HttpProblem(404, "the status page is off (no --viewer-token-file)", "not-found");
      try {
        await statusPage.handle(request, response, url);
      } catch (error) {
        if (error instanceof StatusProblem) {
          throw new HttpProblem(
            error.status,
            error.message,
            error.status === 401 || error.status === 403 ? "unauthorized" : undefined,
          );
        }
        if (error instanceof FindingReaderBusyError) throw new HttpProblem(503, error.message, undefined, 1);
        throw error;
      }
      return;
    }
    const attribution = eventsAttribution(route, options.hostMapping);
    if (attribution !== undefined || route === "/pubsub") {
      if (request.method !== "POST") throw new HttpProblem(405, "use POST", "method");
      const presented =
        bearerToken(request) ??
        (route === "/pubsub" ? (url.searchParams.get("token") ?? undefined) : undefined);
      if (!tokenMatches(presented, options.token)) {
        throw new HttpProblem(401, "missing or wrong bearer token", "unauthorized");
      }
      if (attribution?.kind === "bad-endpoint") {
        throw new HttpProblem(
          400,
          `${truncateForMessage(route, 200)}: /events/<registry> names a registry host such as registry.example.io or 127.0.0.1:5000 (${attribution.problem})`,
          "malformed",
        );
      }
      if (!isJsonContentType(request.headers["content-type"])) {
        throw new HttpProblem(415, "expected a JSON body", "media-type");
      }
      const body = await readBody(request, limit);
      let parsed: ParsedEvents;
      try {
        const json = parseJsonBody(body);
        parsed =
          attribution !== undefined
            ? parseDistributionEnvelope(json, attribution)
            : parsePubSubPush(json, options.hostMapping);
      } catch (error) {
        if (error instanceof MalformedEventError) throw new HttpProblem(400, error.message, "malformed");
        throw error;
      }
      if (parsed.events.length === 0 && parsed.problems.length > 0 && attribution !== undefined) {
        throw new HttpProblem(400, parsed.problems.map((problem) => problem.reason).join("; "), "malformed");
      }
      for (const problem of parsed.problems) {
        metrics.countEvent("invalid");
        logger.log("warn", "audit event skipped", { route, reason: problem.reason });
      }
      const result = options.auditor.receive(parsed.events);
      options.trust?.observe(parsed.events);
      sendJson(response, redact, 200, { ...result, rejected: parsed.problems });
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD")
      throw new HttpProblem(405, "use GET", "method");
    if (route === "/findings") {
      if (options.readerToken === undefined || !tokenMatches(bearerToken(request), options.readerToken)) {
        throw new HttpProblem(401, "missing or wrong reader token", "unauthorized");
      }
      const filter = findingFilter(url.searchParams);
      const pageSize = filter.limit ?? DEFAULT_FINDINGS_LIMIT;
      let rows: AuditFinding[];
      try {
        // One more than the page tells whether another page follows.
        rows = await findings.query({ ...filter, limit: pageSize + 1 });
      } catch (error) {
        if (error instanceof FindingReaderBusyError) throw new HttpProblem(503, error.message, undefined, 1);
        throw error;
      }
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      sendJson(response, redact, 200, {
        findings: page.map(findingJson),
        next: rows.length > pageSize && last ? last.seq : null,
      });
      return;
    }
    if (route === "/healthz") {
      const age = metrics.lastManifestLoad === undefined ? null : (now() - metrics.lastManifestLoad) / 1000;
      sendJson(response, redact, 200, {
        status: "ok",
        pendingEvents: options.auditor.pendingCount,
        desiredRepositories: options.auditor.desiredState.repositories.size,
        manifestReloadAgeSeconds: age,
      });
      return;
    }
    if (route === "/metrics") {
      const text = metrics.render({
        findings: options.store.countByVerdict(),
        pending: options.auditor.pendingCount,
        nowMs: now(),
      });
      response.writeHead(200, {
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
        "content-length": Buffer.byteLength(text),
      });
      response.end(text);
      return;
    }
    throw new HttpProblem(404, `no route ${route}`, "not-found");
  };

  const server: Server = createServer((request, response) => {
    // Before any handler: refusals and errors carry them too (docs/auditor.md, "Who may see and do what").
    for (const [name, value] of Object.entries(securityHeaders())) response.setHeader(name, value);
    handle(request, response).catch((error: unknown) => {
      if (error instanceof HttpProblem) {
        if (error.reject) metrics.countRejected(error.reject);
        if (error.status !== 404) {
          logger.log("warn", "audit request refused", {
            method: request.method,
            path: request.url?.split("?")[0],
            status: error.status,
            reason: error.message,
            remote: request.socket.remoteAddress,
          });
        }
        // A refused body is not read: close the connection instead of draining it.
        const unread = !request.complete;
        sendJson(response, redact, error.status, { error: error.message }, unread, error.retryAfterSeconds);
        if (unread) response.on("finish", () => request.socket.destroy());
        return;
      }
      logger.log("error", "audit request failed", {
        path: request.url?.split("?")[0],
        error: describeError(error),
      });
      sendJson(response, redact, 500, { error: "internal error" }, !request.complete);
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = Math.min(REQUEST_TIMEOUT_MS, 20_000);
  server.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => {
      if (ownReader) void findings.close();
      statusStore?.close();
      reject(error);
    };
    server.once("error", failed);
    server.listen(listen.port, listen.host, () => {
      server.off("error", failed);
      server.on("error", (error) => {
        logger.log("error", "audit server error", { error: describeError(error) });
      });
      const address = server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}`,
        address,
        close: async () => {
          await new Promise<void>((done) => {
            server.close(() => {
              done();
            });
            server.closeAllConnections();
          });
          if (ownReader) await findings.close();
          statusStore?.close();
        },
      });
    });
  });
}

/** Reads `/findings` query parameters; refuses bad values with 400. */
function findingFilter(params: URLSearchParams): FindingFilter {
  const filter: { -readonly [K in keyof FindingFilter]: FindingFilter[K] } = {};
  const verdict = params.get("verdict");
  if (verdict !== null) {
    if (verdict !== "verified" && verdict !== "violation") {
      throw new HttpProblem(400, "verdict must be verified or violation");
    }
    filter.verdict = verdict;
  }
  for (const name of ["repository", "digest", "tag"] as const) {
    const value = params.get(name);
    if (value !== null) filter[name] = value;
  }
  const since = params.get("since");
  if (since !== null) {
    const normalised = normaliseTime(since);
    if (normalised === undefined) {
      throw new HttpProblem(400, "since must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z");
    }
    filter.since = normalised;
  }
  for (const [name, max] of [
    ["limit", MAX_FINDINGS_PAGE],
    ["before", Number.MAX_SAFE_INTEGER],
  ] as const) {
    const value = params.get(name);
    if (value === null) continue;
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new HttpProblem(400, `${name} must be a whole number from 1 to ${max}`);
    }
    filter[name] = Number(value);
  }
  return filter;
}

/** An ISO 8601 time normalised so it compares with stored times as text, or undefined. */
export function normaliseTime(value: string): string | undefined {
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}
