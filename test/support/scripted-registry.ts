/**
 * A scripted HTTP peer for exact protocol cases: a real HTTP (or HTTPS) server on 127.0.0.1
 * whose answers a test scripts route by route, and which records every request it received.
 * Also an in-memory registry (`memoryRegistryRoutes`) for tests that need a working registry
 * behind scripted auth or faults, and a fake clock.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import type { Clock } from "../../src/registry/transport/clock.js";

const execFileAsync = promisify(execFile);

export interface ScriptedRequest {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  readonly url: URL;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
}

export type ScriptedHandler = (request: ScriptedRequest, response: ServerResponse) => void | Promise<void>;

interface Route {
  readonly method: string | undefined;
  readonly path: string | RegExp;
  readonly handler: ScriptedHandler;
  remaining: number;
}

export interface ScriptedRegistryOptions {
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: { readonly key: string; readonly cert: string };
}

export class ScriptedRegistry {
  /** Every request received, in order. */
  readonly requests: ScriptedRequest[] = [];
  private readonly routes: Route[] = [];
  private readonly sockets = new Set<Socket>();
  /** Connections accepted so far (keep-alive is visible as fewer connections than requests). */
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly url: string,
  ) {
    server.on("connection", (socket: Socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(options: ScriptedRegistryOptions = {}): Promise<ScriptedRegistry> {
    const holder: { registry?: ScriptedRegistry } = {};
    const listener = (request: IncomingMessage, response: ServerResponse) => {
      void holder.registry?.handle(request, response);
    };
    const server = options.tls
      ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener)
      : createHttpServer(listener);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const registry = new ScriptedRegistry(
      server,
      `127.0.0.1:${port}`,
      `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    );
    holder.registry = registry;
    return registry;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Adds a route. Routes are tried in the order added; one with `times` answers that many
   * requests and then steps aside. `path` matches the path exactly (string) or by RegExp.
   */
  on(method: string | undefined, path: string | RegExp, handler: ScriptedHandler, times = Infinity): this {
    this.routes.push({ method, path, handler, remaining: times });
    return this;
  }

  once(method: string | undefined, path: string | RegExp, handler: ScriptedHandler): this {
    return this.on(method, path, handler, 1);
  }

  /** Requests whose path matches. */
  requestsTo(path: string | RegExp, method?: string): ScriptedRequest[] {
    return this.requests.filter(
      (request) =>
        (method === undefined || request.method === method) &&
        (typeof path === "string" ? request.path === path : path.test(request.path)),
    );
  }

  private async handle(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of incoming) chunks.push(chunk as Buffer);
    } catch {
      return;
    }
    const url = new URL(incoming.url ?? "/", this.url);
    const request: ScriptedRequest = {
      method: incoming.method ?? "GET",
      path: url.pathname,
      url,
      headers: incoming.headers,
      body: Buffer.concat(chunks),
    };
    this.requests.push(request);
    const route = this.routes.find(
      (candidate) =>
        candidate.remaining > 0 &&
        (candidate.method === undefined || candidate.method === request.method) &&
        (typeof candidate.path === "string"
          ? candidate.path === request.path
          : candidate.path.test(request.path)),
    );
    if (!route) {
      sendError(response, 404, "UNSCRIPTED", `no route for ${request.method} ${request.path}`);
      return;
    }
    route.remaining -= 1;
    try {
      await route.handler(request, response);
    } catch (error) {
      if (!response.headersSent) sendError(response, 500, "SCRIPT_FAILED", String(error));
      else response.destroy();
    }
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const bytes = Buffer.from(JSON.stringify(body));
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": bytes.length,
    ...headers,
  });
  response.end(bytes);
}

export function sendBytes(
  response: ServerResponse,
  status: number,
  bytes: Uint8Array,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { "content-length": bytes.byteLength, ...headers });
  response.end(bytes);
}

/** A distribution-style error body. */
export function sendError(
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(response, status, { errors: [{ code, message }] }, headers);
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A Bearer challenge header value. */
export function bearerChallenge(realm: string, service: string, scope?: string): string {
  return `Bearer realm="${realm}",service="${service}"${scope ? `,scope="${scope}"` : ""}`;
}

/**
 * A clock for tests: `sleep` returns at once and moves `now` forward, and every wait is
 * recorded, so a 30-second Retry-After costs nothing and can be asserted exactly.
 */
export class FakeClock implements Clock {
  readonly sleeps: number[] = [];

  constructor(public nowMs = Date.parse("2025-01-01T00:00:00Z")) {}

  now(): number {
    return this.nowMs;
  }

  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.nowMs += Math.max(0, ms);
    return Promise.resolve();
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }
}

export interface MemoryRepository {
  readonly manifests: Map<string, { bytes: Buffer; mediaType: string }>;
  readonly tags: Map<string, string>;
  readonly blobs: Map<string, Buffer>;
}

export interface MemoryRegistry {
  readonly repositories: Map<string, MemoryRepository>;
  repository(name: string): MemoryRepository;
}

export function createMemoryRegistry(): MemoryRegistry {
  const repositories = new Map<string, MemoryRepository>();
  return {
    repositories,
    repository(name) {
      let repository = repositories.get(name);
      if (!repository) {
        repository = { manifests: new Map(), tags: new Map(), blobs: new Map() };
        repositories.set(name, repository);
      }
      return repository;
    },
  };
}

/**
 * Routes that make `scripted` behave like a small registry over `memory`: manifests and blobs
 * (GET, HEAD, PUT, DELETE), uploads (POST, PATCH, PUT; mount from another repository), tags list
 * (no pagination). `guard` runs first on every request and may answer it itself (auth, faults):
 * return true when it did.
 */
export function memoryRegistryRoutes(
  scripted: ScriptedRegistry,
  memory: MemoryRegistry,
  guard: (request: ScriptedRequest, response: ServerResponse) => boolean = () => false,
  options: {
    readonly chunkMinLength?: number;
    /**
     * Answer tags lists as Google's registries do: with the `manifest` map of every manifest
     * (tagged or not) by digest, `pageSize` entries of each a page (default: all on one page).
     */
    readonly manifestMap?: { readonly pageSize?: number };
  } = {},
): void {
  const uploads = new Map<string, { repository: string; data: Buffer }>();
  let nextUpload = 1;
  const pattern = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.+)$/;
  scripted.on(undefined, /^\/v2\/.+/, (request, response) => {
    if (guard(request, response)) return;
    const uploadMatch = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(request.path);
    if (uploadMatch) {
      const [, name = "", id = ""] = uploadMatch;
      const repository = memory.repository(name);
      if (request.method === "POST" && id === "") {
        const mount = request.url.searchParams.get("mount");
        const from = request.url.searchParams.get("from");
        if (mount && from) {
          const source = memory.repositories.get(from)?.blobs.get(mount);
          if (source) {
            repository.blobs.set(mount, source);
            response.writeHead(201, {
              location: `/v2/${name}/blobs/${mount}`,
              "docker-content-digest": mount,
            });
            response.end();
            return;
          }
        }
        const session = String(nextUpload++);
        uploads.set(session, { repository: name, data: Buffer.alloc(0) });
        response.writeHead(202, {
          location: `/v2/${name}/blobs/uploads/${session}`,
          range: "0-0",
          ...(options.chunkMinLength === undefined
            ? {}
            : { "oci-chunk-min-length": String(options.chunkMinLength) }),
        });
        response.end();
        return;
      }
      const upload = uploads.get(id);
      if (!upload) {
        sendError(response, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
        return;
      }
      if (request.method === "PATCH") {
        upload.data = Buffer.concat([upload.data, request.body]);
        response.writeHead(202, {
          location: `/v2/${name}/blobs/uploads/${id}`,
          range: `0-${upload.data.length - 1}`,
        });
        response.end();
        return;
      }
      if (request.method === "PUT") {
        upload.data = Buffer.concat([upload.data, request.body]);
        const digest = request.url.searchParams.get("digest") ?? "";
        if (sha256(upload.data) !== digest) {
          sendError(response, 400, "DIGEST_INVALID", "provided digest did not match uploaded content");
          return;
        }
        uploads.delete(id);
        repository.blobs.set(digest, upload.data);
        response.writeHead(201, { location: `/v2/${name}/blobs/${digest}`, "docker-content-digest": digest });
        response.end();
        return;
      }
      if (request.method === "DELETE") {
        uploads.delete(id);
        response.writeHead(204);
        response.end();
        return;
      }
    }
    const match = pattern.exec(request.path);
    if (!match) {
      sendError(response, 404, "UNSUPPORTED", "unknown path");
      return;
    }
    const [, name = "", kind, reference = ""] = match;
    const repository = memory.repositories.get(name);
    if (kind === "tags") {
      if (!repository) {
        sendError(response, 404, "NAME_UNKNOWN", "repository name not known to registry");
        return;
      }
      const tags = [...repository.tags.keys()].sort();
      if (!options.manifestMap) {
        sendJson(response, 200, { name, tags });
        return;
      }
      sendJson(
        response,
        200,
        ...googleTagsPage(name, repository, tags, request.url, options.manifestMap.pageSize),
      );
      return;
    }
    if (kind === "blobs") {
      const blob = repository?.blobs.get(reference);
      if (request.method === "DELETE") {
        if (blob) repository?.blobs.delete(reference);
        sendBytes(response, blob ? 202 : 404, new Uint8Array());
        return;
      }
      if (!blob) {
        sendError(response, 404, "BLOB_UNKNOWN", "blob unknown to registry");
        return;
      }
      response.writeHead(200, {
        "content-length": blob.length,
        "docker-content-digest": reference,
        "content-type": "application/octet-stream",
      });
      response.end(request.method === "HEAD" ? undefined : blob);
      return;
    }
    // manifests
    if (request.method === "PUT") {
      const target = memory.repository(name);
      const digest = sha256(request.body);
      const mediaType = request.headers["content-type"] ?? "";
      target.manifests.set(digest, { bytes: request.body, mediaType });
      if (!reference.startsWith("sha256:")) target.tags.set(reference, digest);
      response.writeHead(201, {
        location: `/v2/${name}/manifests/${digest}`,
        "docker-content-digest": digest,
      });
      response.end();
      return;
    }
    const digest = reference.startsWith("sha256:") ? reference : repository?.tags.get(reference);
    const manifest = digest === undefined ? undefined : repository?.manifests.get(digest);
    if (request.method === "DELETE") {
      if (manifest && digest) repository?.manifests.delete(digest);
      sendBytes(response, manifest ? 202 : 404, new Uint8Array());
      return;
    }
    if (!manifest || digest === undefined) {
      sendError(response, 404, "MANIFEST_UNKNOWN", "manifest unknown");
      return;
    }
    response.writeHead(200, {
      "content-type": manifest.mediaType,
      "content-length": manifest.bytes.length,
      "docker-content-digest": digest,
    });
    response.end(request.method === "HEAD" ? undefined : manifest.bytes);
  });
}

/**
 * One page of a tags listing as Google Container Registry and Artifact Registry write it: the
 * tags, and `manifest` (digest -> tag list, media type, size and times as decimal strings),
 * paginated with `n` and `last` like the tags, with a `Link` to the next page.
 * https://github.com/google/go-containerregistry/blob/main/pkg/v1/google/list.go
 */
function googleTagsPage(
  name: string,
  repository: MemoryRepository,
  tags: readonly string[],
  url: URL,
  pageSize: number | undefined,
): [Record<string, unknown>, Record<string, string>] {
  const digests = [...repository.manifests.keys()].sort();
  const page = Number(url.searchParams.get("page") ?? "0");
  const size = pageSize ?? Math.max(tags.length, digests.length, 1);
  const slice = <T>(items: readonly T[]) => items.slice(page * size, (page + 1) * size);
  const manifest: Record<string, unknown> = {};
  for (const digest of slice(digests)) {
    const stored = repository.manifests.get(digest);
    manifest[digest] = {
      imageSizeBytes: String(stored?.bytes.length ?? 0),
      layerId: "",
      mediaType: stored?.mediaType ?? "",
      tag: [...repository.tags].filter(([, target]) => target === digest).map(([tag]) => tag),
      timeCreatedMs: "1733400000000",
      timeUploadedMs: "1733400000000",
    };
  }
  const more = (page + 1) * size < Math.max(tags.length, digests.length);
  return [
    { child: [], manifest, name, tags: slice(tags) },
    more ? { link: `</v2/${name}/tags/list?page=${page + 1}>; rel="next"` } : {},
  ];
}

/**
 * A self-signed certificate for the given DNS names and IP addresses, made with openssl in a
 * temporary folder. Use it as the server's key/cert and pass `cert` as the client's CA.
 */
export async function selfSignedCertificate(
  names: readonly string[],
  addresses: readonly string[] = [],
): Promise<{ key: string; cert: string }> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "scripted-tls-"));
  try {
    const keyFile = path.join(directory, "key.pem");
    const certFile = path.join(directory, "cert.pem");
    const subjectAltName = [...names.map((name) => `DNS:${name}`), ...addresses.map((ip) => `IP:${ip}`)].join(
      ",",
    );
    await execFileAsync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      `/CN=${names[0] ?? addresses[0] ?? "scripted"}`,
      "-addext",
      `subjectAltName=${subjectAltName}`,
    ]);
    return { key: await readFile(keyFile, "utf8"), cert: await readFile(certFile, "utf8") };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
