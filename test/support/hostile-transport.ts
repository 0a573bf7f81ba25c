/**
 * Hostile registry behaviour for the transport-bounds corpus (test/hostile/transport.test.ts):
 * answers that trickle, listings that never end or wander off to another origin, and a server
 * that reads uploads slowly. The pieces answer through a FaultProxy `respond` rule (the rest of
 * the registry stays real) or through `HostileServer`, which hands over the raw request so an
 * upload body can be read as slowly as an attacker likes.
 */
import { createHash } from "node:crypto";
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Sends `body` a few bytes at a time with a pause between them: never silent for as long as a
 * stall timeout, never done either. Stops when the client hangs up. With `headers` undefined
 * the status line and headers themselves are trickled over the raw socket.
 */
export async function trickle(
  response: ServerResponse,
  options: {
    readonly status?: number;
    readonly headers?: OutgoingHttpHeaders;
    readonly body: Buffer;
    readonly bytesPerTick?: number;
    readonly intervalMs?: number;
  },
): Promise<void> {
  const step = options.bytesPerTick ?? 1;
  const interval = options.intervalMs ?? 2000;
  response.writeHead(options.status ?? 200, options.headers ?? {});
  response.flushHeaders();
  for (let offset = 0; offset < options.body.length; offset += step) {
    if (response.destroyed || response.socket?.destroyed !== false) return;
    response.write(options.body.subarray(offset, offset + step));
    await sleep(interval);
  }
  response.end();
}

/**
 * Reads a request body one chunk (what the socket has, at most 64 KiB) per `intervalMs`, until
 * it ends or the client leaves: often enough that the sender is never blocked for a whole stall
 * timeout, slow enough to take forever.
 */
export async function readSlowly(request: IncomingMessage, intervalMs: number): Promise<number> {
  let total = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      total += chunk.length;
      await sleep(intervalMs);
    }
  } catch {
    // The client gave up.
  }
  return total;
}

/** `sha256:` of `text`: digests for descriptors that only need to look real. */
function fakeDigest(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

/** Counts what an endless listing served. */
export interface ListingTally {
  pages: number;
  entries: number;
  bytes: number;
}

export function newTally(): ListingTally {
  return { pages: 0, entries: 0, bytes: 0 };
}

/**
 * A `respond` handler for `tags/list` or `_catalog` that never ends: every page holds
 * `perPage` new names and a `Link: <...>; rel="next"` to the following page (`next(page)`
 * gives its URL; by default the same path with `?page=N+1`). `padBytes` of white space make
 * each page as large as the attacker likes without adding names.
 */
export function endlessListing(options: {
  readonly field: "tags" | "repositories";
  readonly perPage: number;
  readonly tally: ListingTally;
  readonly padBytes?: number;
  readonly next?: (page: number, path: string) => string;
}) {
  return (request: { url: URL; path: string }, response: ServerResponse): void => {
    const page = Number(request.url.searchParams.get("page") ?? "0");
    const names: string[] = [];
    for (let i = 0; i < options.perPage; i++) {
      names.push(options.field === "tags" ? `p${page}-${i}` : `staging/r${page}-${i}`);
    }
    const json = JSON.stringify({ name: "staging/app", [options.field]: names });
    const body =
      options.padBytes === undefined
        ? Buffer.from(json)
        : Buffer.concat([
            Buffer.from(json.slice(0, -1)),
            Buffer.alloc(options.padBytes, 0x20),
            Buffer.from("}"),
          ]);
    options.tally.pages += 1;
    options.tally.entries += names.length;
    options.tally.bytes += body.length;
    const next = options.next?.(page + 1, request.path) ?? `${request.path}?page=${page + 1}`;
    response.writeHead(200, {
      "content-type": "application/json",
      "content-length": body.length,
      link: `<${next}>; rel="next"`,
    });
    response.end(body);
  };
}

/**
 * A `respond` handler for `GET /v2/<name>/referrers/<digest>` that never ends: pages of
 * `perPage` referrer descriptors (new digests every page) with a `Link` to the next page.
 */
export function endlessReferrers(options: {
  readonly perPage: number;
  readonly tally: ListingTally;
  readonly next?: (page: number, path: string) => string;
}) {
  return (request: { url: URL; path: string }, response: ServerResponse): void => {
    const page = Number(request.url.searchParams.get("page") ?? "0");
    const manifests = [];
    for (let i = 0; i < options.perPage; i++) {
      manifests.push({
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: fakeDigest(`referrer ${page} ${i}`),
        size: 512,
        artifactType: "application/vnd.example.hostile",
      });
    }
    const body = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }),
    );
    options.tally.pages += 1;
    options.tally.entries += manifests.length;
    options.tally.bytes += body.length;
    const next = options.next?.(page + 1, request.path) ?? `${request.path}?page=${page + 1}`;
    response.writeHead(200, {
      "content-type": "application/vnd.oci.image.index.v1+json",
      "content-length": body.length,
      link: `<${next}>; rel="next"`,
    });
    response.end(body);
  };
}

export interface HostileRequest {
  readonly method: string;
  readonly path: string;
  readonly url: URL;
}

/**
 * A hostile peer on 127.0.0.1 that gives its handler the raw request (body unread) and records
 * every request it received.
 */
export class HostileServer {
  readonly requests: HostileRequest[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    /** `127.0.0.1:PORT` */
    readonly host: string,
    readonly port: number,
  ) {
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return `http://${this.host}`;
  }

  static async start(
    handler: (request: IncomingMessage, response: ServerResponse, url: URL) => void | Promise<void>,
  ): Promise<HostileServer> {
    const holder: { server?: HostileServer } = {};
    const server = createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://127.0.0.1");
      holder.server?.requests.push({ method: request.method ?? "GET", path: url.pathname, url });
      Promise.resolve(handler(request, response, url)).catch(() => {
        request.socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const hostile = new HostileServer(server, `127.0.0.1:${port}`, port);
    holder.server = hostile;
    return hostile;
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
