import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { pipeline } from "node:stream/promises";

/**
 * A registry quota in front of a real registry: an HTTP reverse proxy on 127.0.0.1 that
 * enforces a token bucket, as Artifact Registry and Docker Hub enforce theirs. Every request
 * takes a token; the bucket holds `capacity` and refills `refillPerSecond` tokens a second. With
 * none left the request is not forwarded: the answer is `429 Too Many Requests` with
 * `Retry-After` (seconds until the next token; or `retryAfterSeconds` when given). With
 * `advertise`, every answer also says what is left, as the IETF RateLimit header draft does:
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the bucket is full).
 * https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/
 */
export interface QuotaProxyOptions {
  /** The registry to forward to, e.g. `http://127.0.0.1:5000`. */
  readonly upstream: string;
  readonly capacity: number;
  readonly refillPerSecond: number;
  /** Send the RateLimit headers on every answer. Default false: a 429 is the only sign. */
  readonly advertise?: boolean;
  /** `Retry-After` of a 429, in seconds, instead of the time to the next token. */
  readonly retryAfterSeconds?: number;
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

export class QuotaProxy {
  /** Requests forwarded to the registry. */
  forwarded = 0;
  /** Requests answered 429. */
  throttled = 0;
  /** The fewest tokens left after a forwarded request took its own. */
  lowestRemaining = Number.POSITIVE_INFINITY;
  private tokens: number;
  private refilledAt = performance.now();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly options: QuotaProxyOptions,
    private readonly server: Server,
    /** `127.0.0.1:PORT` */
    readonly host: string,
  ) {
    this.tokens = options.capacity;
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(options: QuotaProxyOptions): Promise<QuotaProxy> {
    const holder: { proxy?: QuotaProxy } = {};
    const server = createServer((request, response) => {
      holder.proxy?.handle(request, response).catch(() => {
        request.socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const proxy = new QuotaProxy(options, server, `127.0.0.1:${port}`);
    holder.proxy = proxy;
    return proxy;
  }

  private refill(): void {
    const now = performance.now();
    const { capacity, refillPerSecond } = this.options;
    this.tokens = Math.min(capacity, this.tokens + ((now - this.refilledAt) / 1000) * refillPerSecond);
    this.refilledAt = now;
  }

  private quotaHeaders(): Record<string, string> {
    if (!this.options.advertise) return {};
    const { capacity, refillPerSecond } = this.options;
    return {
      "ratelimit-limit": String(capacity),
      "ratelimit-remaining": String(Math.floor(this.tokens)),
      "ratelimit-reset": String(Math.ceil((capacity - this.tokens) / refillPerSecond)),
    };
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    this.refill();
    if (this.tokens < 1) {
      this.throttled += 1;
      const retryAfter =
        this.options.retryAfterSeconds ?? Math.ceil((1 - this.tokens) / this.options.refillPerSecond);
      request.resume();
      response.writeHead(429, {
        "content-type": "application/json",
        "retry-after": String(retryAfter),
        ...this.quotaHeaders(),
      });
      response.end(JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS", message: "quota exceeded" }] }));
      return;
    }
    this.tokens -= 1;
    this.forwarded += 1;
    this.lowestRemaining = Math.min(this.lowestRemaining, this.tokens);
    const upstream = new URL(this.options.upstream);
    const headers = { ...request.headers, host: upstream.host };
    const forwarded = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: request.method,
      path: request.url,
      headers,
    });
    const answer = new Promise<IncomingMessage>((resolve, reject) => {
      forwarded.once("response", resolve);
      forwarded.once("error", reject);
    });
    await pipeline(request, forwarded);
    const upstreamResponse = await answer;
    const responseHeaders: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstreamResponse.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      // Location headers name the registry; the client must come back through the proxy.
      responseHeaders[name] =
        name === "location" && typeof value === "string" ? value.replace(upstream.host, this.host) : value;
    }
    response.writeHead(upstreamResponse.statusCode ?? 502, { ...responseHeaders, ...this.quotaHeaders() });
    await pipeline(upstreamResponse, response);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}
