/**
 * A fault-injecting reverse proxy for tests: a real HTTP server on 127.0.0.1 that forwards every
 * request to a real registry (or any HTTP server) and, for the requests a rule picks, breaks the
 * exchange the way networks and registries do: a 5xx, a 429 with `Retry-After`, a connection
 * reset before or in the middle of a body, a body shorter than its `Content-Length`, a slow or
 * stalled response, wrong bytes under the right digest, a redirect, or any scripted answer.
 *
 * Rules match by method and path (string prefix or RegExp) and fire with a probability or for an
 * exact count of matching requests. Random choices are seeded and made per request identity
 * (seed, rule, method, path, how many times that method and path were seen), not in arrival
 * order, so the same seed fails the same requests however the client interleaves them.
 *
 * With `latencyMs` it is also a delay line: every request waits that long before it is forwarded
 * (a registry far away; bench/wan.ts), and the proxy keeps when each request arrived and when its
 * answer ended, so a caller can tell how many requests were in flight over any stretch of time.
 *
 * The proxy keeps the client's `Host` header when it forwards, so the registry builds the URLs it
 * returns (upload `Location`s) on the proxy's address and later requests come back through it;
 * an absolute `Location` naming the upstream is rewritten to the proxy as well.
 */
import { createHash } from "node:crypto";
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { pipeline } from "node:stream/promises";

export type Fault =
  /** Answer with this status without forwarding (the registry never sees the request). */
  | {
      readonly kind: "status";
      readonly status: number;
      /** `Retry-After` value, e.g. "1" or an HTTP-date. */
      readonly retryAfter?: string;
      /**
       * "before" (default): the request is not forwarded. "after": it is forwarded and its effect
       * happens, but the client gets this status instead (a lost success).
       */
      readonly when?: "before" | "after";
    }
  /** Close the connection abruptly (TCP RST): before forwarding, or after it (a lost answer). */
  | { readonly kind: "reset"; readonly when?: "before" | "after" }
  /** Forward, send the headers and part of the body, then reset the connection. */
  | { readonly kind: "reset-mid-body"; readonly fraction?: number }
  /** Forward, promise the full `Content-Length`, send only part of the body, then end. */
  | { readonly kind: "truncate"; readonly fraction?: number }
  /** Forward after a pause (a slow registry). */
  | { readonly kind: "delay"; readonly ms: number }
  /**
   * Forward once `until` settles: a registry that answers nothing until the test says so (to
   * check what a client does meanwhile by order, never by time).
   */
  | { readonly kind: "hold"; readonly until: Promise<void> }
  /**
   * Never finish: with `fraction` undefined no headers are sent; otherwise the headers and that
   * part of the body are sent and then nothing more (until the client gives up or the proxy stops).
   */
  | { readonly kind: "stall"; readonly fraction?: number }
  /** Forward, then send the body at this rate. */
  | { readonly kind: "slow-body"; readonly bytesPerSecond: number }
  /** Forward, then flip bytes of the body (same length, same headers: wrong bytes for the digest). */
  | { readonly kind: "corrupt" }
  /** Answer with a redirect to `location(request)` without forwarding. */
  | {
      readonly kind: "redirect";
      readonly status?: 301 | 302 | 303 | 307 | 308;
      readonly location: (request: FaultRequest) => string;
    }
  /** Answer however the test likes (hostile registries). */
  | {
      readonly kind: "respond";
      readonly respond: (request: FaultRequest, response: ServerResponse) => void | Promise<void>;
    };

export type FaultKind = Fault["kind"];

export interface FaultRule {
  /** Names the rule in `events` (default: the fault kind). */
  readonly name?: string;
  /** Methods this rule applies to (default: all). */
  readonly method?: string | readonly string[];
  /** A path prefix or a RegExp tested against the path (without the query). Default: all. */
  readonly path?: string | RegExp;
  /** Chance that a matching request is faulted, in [0, 1]. Default 1. */
  readonly probability?: number;
  /** Fault at most this many matching requests (those the probability picked), then step aside. */
  readonly count?: number;
  /** Let this many matching requests through before the rule starts. */
  readonly skip?: number;
  readonly fault: Fault;
}

export interface FaultRequest {
  readonly method: string;
  readonly path: string;
  readonly url: URL;
  readonly headers: IncomingHttpHeaders;
}

/** What happened to one request. */
export interface ProxyEvent {
  readonly method: string;
  readonly path: string;
  /** The status sent to the client, when one was sent. */
  readonly status?: number;
  /** The rule that faulted the request. */
  readonly fault?: string;
}

export interface FaultProxyOptions {
  /** The server to forward to, e.g. `http://127.0.0.1:5000`. */
  readonly upstream: string;
  readonly rules?: readonly FaultRule[];
  /** Seed of the random choices (default 1). */
  readonly seed?: number | string;
  /** Added to every request before it is forwarded or faulted: a round trip over distance. */
  readonly latencyMs?: number;
}

/** When one request arrived at the proxy and when its answer ended (`performance.now()`). */
export interface RequestSpan {
  readonly method: string;
  readonly path: string;
  readonly start: number;
  end: number | undefined;
}

interface RuleState {
  readonly rule: FaultRule;
  readonly index: number;
  matched: number;
  fired: number;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

export class FaultProxy {
  readonly events: ProxyEvent[] = [];
  /** Every request's arrival and end, in arrival order. */
  readonly spans: RequestSpan[] = [];
  private rules: RuleState[] = [];
  private readonly seen = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private readonly listeners = new Set<(request: FaultRequest) => void>();
  private readonly upstream: URL;
  private seed: string;
  private readonly latencyMs: number;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly url: string,
    options: FaultProxyOptions,
  ) {
    this.upstream = new URL(options.upstream);
    this.seed = String(options.seed ?? 1);
    this.latencyMs = options.latencyMs ?? 0;
    this.setRules(options.rules ?? []);
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const holder: { proxy?: FaultProxy } = {};
    const server = createServer((request, response) => {
      void holder.proxy?.handle(request, response);
    });
    // Registries keep connections alive; so does the client: no idle cut-off of our own.
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const proxy = new FaultProxy(server, `127.0.0.1:${port}`, `http://127.0.0.1:${port}`, options);
    holder.proxy = proxy;
    return proxy;
  }

  /** Replaces the rules (and their counters); `[]` makes the proxy transparent. */
  setRules(rules: readonly FaultRule[], seed?: number | string): void {
    this.rules = rules.map((rule, index) => ({ rule, index, matched: 0, fired: 0 }));
    if (seed !== undefined) this.seed = String(seed);
    this.seen.clear();
  }

  /**
   * Calls `listener` as each request arrives, before it is forwarded or faulted (a test can act
   * at an exact point of a client's work, e.g. kill it at its 40th request). Returns a function
   * that removes the listener.
   */
  onRequest(listener: (request: FaultRequest) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Requests faulted so far, by rule name. */
  faultCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const event of this.events) {
      if (event.fault !== undefined) counts[event.fault] = (counts[event.fault] ?? 0) + 1;
    }
    return counts;
  }

  /** Requests seen so far (faulted or not). */
  get requestCount(): number {
    return this.events.length;
  }

  /**
   * Requests in flight on average between `from` and `to` (`performance.now()` times): the time
   * every request spent in that window, from arrival to the end of its answer, divided by its length.
   */
  averageInFlight(from: number, to: number): number {
    if (to <= from) return 0;
    let busy = 0;
    for (const span of this.spans) {
      const end = Math.min(span.end ?? to, to);
      const start = Math.max(span.start, from);
      if (end > start) busy += end - start;
    }
    return busy / (to - from);
  }

  /** Requests that arrived between `from` and `to`. */
  requestsBetween(from: number, to: number): number {
    return this.spans.filter((span) => span.start >= from && span.start < to).length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  /** The first rule that fires for this request, advancing its counters. */
  private pick(request: FaultRequest): RuleState | undefined {
    const identity = `${request.method} ${request.path}`;
    const nth = (this.seen.get(identity) ?? 0) + 1;
    this.seen.set(identity, nth);
    for (const state of this.rules) {
      const { rule } = state;
      if (!methodMatches(rule.method, request.method) || !pathMatches(rule.path, request.path)) continue;
      state.matched += 1;
      if (state.matched <= (rule.skip ?? 0)) continue;
      if (rule.count !== undefined && state.fired >= rule.count) continue;
      const probability = rule.probability ?? 1;
      if (probability < 1 && seededUnit(`${this.seed}|${state.index}|${identity}|${nth}`) >= probability) {
        continue;
      }
      state.fired += 1;
      return state;
    }
    return undefined;
  }

  private async handle(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(incoming.url ?? "/", this.url);
    const request: FaultRequest = {
      method: incoming.method ?? "GET",
      path: url.pathname,
      url,
      headers: incoming.headers,
    };
    const span: RequestSpan = {
      method: request.method,
      path: request.path,
      start: performance.now(),
      end: undefined,
    };
    this.spans.push(span);
    response.once("close", () => (span.end = performance.now()));
    for (const listener of this.listeners) listener(request);
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const picked = this.pick(request);
    const fault = picked?.rule.fault;
    const name = picked ? (picked.rule.name ?? picked.rule.fault.kind) : undefined;
    const record = (status?: number) =>
      this.events.push({
        method: request.method,
        path: request.path,
        ...(status === undefined ? {} : { status }),
        ...(name === undefined ? {} : { fault: name }),
      });

    try {
      if (fault && isBeforeForwarding(fault)) {
        await this.faultWithoutForwarding(fault, request, incoming, response);
        record(response.headersSent ? response.statusCode : undefined);
        return;
      }
      if (fault?.kind === "delay") await sleep(fault.ms);
      if (fault?.kind === "hold") await fault.until;
      const upstream = await this.forward(incoming, url);
      const headers = this.responseHeaders(upstream.headers);
      if (!fault) {
        response.writeHead(upstream.statusCode ?? 502, headers);
        // pipeline destroys the client's connection when the upstream breaks off.
        await pipeline(upstream, response);
        record(upstream.statusCode);
        return;
      }
      const body = await readAll(upstream);
      const status = upstream.statusCode ?? 502;
      await this.faultAfterForwarding(fault, request, status, headers, body, incoming, response);
      record(response.headersSent ? response.statusCode : undefined);
    } catch {
      // The client went away, or the upstream failed: drop the connection like a broken proxy.
      record(response.headersSent ? response.statusCode : undefined);
      incoming.socket.destroy();
    }
  }

  private async faultWithoutForwarding(
    fault: Fault,
    request: FaultRequest,
    incoming: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    switch (fault.kind) {
      case "status": {
        await drain(incoming);
        sendStatus(response, fault.status, fault.retryAfter);
        return;
      }
      case "reset":
        incoming.socket.resetAndDestroy();
        return;
      case "stall":
        // Say nothing; the client's timeout (or the proxy's stop) ends it.
        await new Promise<void>((resolve) => incoming.socket.once("close", resolve));
        return;
      case "redirect": {
        await drain(incoming);
        response.writeHead(fault.status ?? 307, { location: fault.location(request), "content-length": 0 });
        response.end();
        return;
      }
      case "respond":
        await drain(incoming);
        await fault.respond(request, response);
        return;
      default:
        throw new Error(`fault ${fault.kind} forwards first`);
    }
  }

  private async faultAfterForwarding(
    fault: Fault,
    _request: FaultRequest,
    status: number,
    headers: OutgoingHttpHeaders,
    body: Buffer,
    incoming: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const socket = incoming.socket;
    // A HEAD answer keeps the upstream's Content-Length (of the body it did not send).
    const withLength =
      incoming.method === "HEAD" ? headers : { ...headers, "content-length": String(body.length) };
    if (incoming.method === "HEAD" && BODY_FAULTS.has(fault.kind)) {
      // Nothing to cut or corrupt: the nearest thing is a lost answer.
      socket.resetAndDestroy();
      return;
    }
    switch (fault.kind) {
      case "status":
        sendStatus(response, fault.status, fault.retryAfter);
        return;
      case "reset":
        socket.resetAndDestroy();
        return;
      case "delay":
      case "hold":
        response.writeHead(status, withLength);
        response.end(body);
        return;
      case "reset-mid-body": {
        response.writeHead(status, withLength);
        response.write(body.subarray(0, partOf(body, fault.fraction)));
        // Let the first bytes reach the client before the reset.
        await sleep(20);
        socket.resetAndDestroy();
        return;
      }
      case "truncate": {
        response.writeHead(status, withLength);
        response.write(body.subarray(0, partOf(body, fault.fraction)));
        await sleep(20);
        socket.end();
        socket.destroySoon();
        return;
      }
      case "stall": {
        response.writeHead(status, withLength);
        response.write(body.subarray(0, partOf(body, fault.fraction)));
        await new Promise<void>((resolve) => socket.once("close", resolve));
        return;
      }
      case "slow-body": {
        response.writeHead(status, withLength);
        const chunk = Math.max(1, Math.floor(fault.bytesPerSecond / 10));
        for (let offset = 0; offset < body.length && !this.stopped; offset += chunk) {
          if (socket.destroyed) return;
          response.write(body.subarray(offset, offset + chunk));
          await sleep(100);
        }
        response.end();
        return;
      }
      case "corrupt": {
        const bytes = Buffer.from(body);
        if (bytes.length > 0) {
          // Flip bits spread over the body, so a streamed check fails whatever it reads first.
          for (let i = 0; i < bytes.length; i += Math.max(1, Math.floor(bytes.length / 8))) {
            bytes[i] = bytes[i]! ^ 0x5a;
          }
        }
        response.writeHead(status, withLength);
        response.end(bytes);
        return;
      }
      default:
        throw new Error(`fault ${fault.kind} does not forward`);
    }
  }

  /** Sends the request upstream with the client's Host header, streaming its body. */
  private forward(incoming: IncomingMessage, url: URL): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(incoming.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
      }
      const outgoing = httpRequest(
        {
          protocol: this.upstream.protocol,
          hostname: this.upstream.hostname,
          port: this.upstream.port,
          method: incoming.method,
          path: `${url.pathname}${url.search}`,
          headers,
        },
        resolve,
      );
      outgoing.on("error", reject);
      incoming.on("error", (error) => outgoing.destroy(error));
      incoming.pipe(outgoing);
    });
  }

  private responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (HOP_BY_HOP.has(name) || value === undefined) continue;
      out[name] = name === "location" && typeof value === "string" ? this.rewriteLocation(value) : value;
    }
    return out;
  }

  private rewriteLocation(location: string): string {
    try {
      const target = new URL(location);
      if (target.origin !== this.upstream.origin) return location;
      return `${this.url}${target.pathname}${target.search}`;
    } catch {
      return location;
    }
  }
}

/** Faults that act on a response body. */
const BODY_FAULTS: ReadonlySet<FaultKind> = new Set(["reset-mid-body", "truncate", "corrupt", "slow-body"]);

function isBeforeForwarding(fault: Fault): boolean {
  switch (fault.kind) {
    case "status":
    case "reset":
      return fault.when !== "after";
    case "stall":
      return fault.fraction === undefined;
    case "redirect":
    case "respond":
      return true;
    default:
      return false;
  }
}

function methodMatches(wanted: FaultRule["method"], method: string): boolean {
  if (wanted === undefined) return true;
  return typeof wanted === "string" ? wanted === method : wanted.includes(method);
}

function pathMatches(wanted: FaultRule["path"], path: string): boolean {
  if (wanted === undefined) return true;
  return typeof wanted === "string" ? path.startsWith(wanted) : wanted.test(path);
}

/** A number in [0, 1) from a string: the first 48 bits of its SHA-256. */
export function seededUnit(text: string): number {
  const hex = createHash("sha256").update(text).digest("hex").slice(0, 12);
  return Number.parseInt(hex, 16) / 2 ** 48;
}

function partOf(body: Buffer, fraction = 0.5): number {
  if (body.length <= 1) return 0;
  return Math.min(body.length - 1, Math.max(0, Math.floor(body.length * fraction)));
}

function sendStatus(response: ServerResponse, status: number, retryAfter: string | undefined): void {
  const bytes = Buffer.from(
    JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: `injected fault: HTTP ${status}` }] }),
  );
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": bytes.length,
    ...(retryAfter === undefined ? {} : { "retry-after": retryAfter }),
  });
  response.end(bytes);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function drain(stream: IncomingMessage): Promise<void> {
  if (stream.complete) return;
  for await (const _chunk of stream) {
    // Discarded: the answer does not depend on the body.
  }
}
