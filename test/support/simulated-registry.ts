import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import type { AddressInfo, Socket } from "node:net";

/**
 * A registry held in memory, on 127.0.0.1, for scale and latency benchmarks (bench/k8sio.ts) and
 * the tests that assert their request counts at a smaller scale. It speaks the part of the
 * distribution API a promotion uses (manifests and blobs by HEAD, GET and PUT; uploads by POST,
 * PATCH and PUT, monolithic or chunked; cross-repository mounts; tag listings), optionally
 * answers tag listings as Google's registries do (with the `manifest` map), and waits a fixed
 * time before every answer, like a registry a round trip away.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
 */

export interface SimulatedManifest {
  readonly mediaType: string;
  readonly bytes: Buffer;
}

export interface SimulatedRepository {
  /** Tag -> digest. */
  readonly tags: Map<string, string>;
  /** Digest -> manifest; may be shared between repositories and registries. */
  readonly manifests: Map<string, SimulatedManifest>;
  /** Digest -> bytes. */
  readonly blobs: Map<string, Buffer>;
}

export interface SimulatedRegistryOptions {
  /** Added before every answer, in milliseconds (default 0). */
  readonly latencyMs?: number;
  /** Answer tag listings with Google's `manifest` map (default false). */
  readonly manifestMap?: boolean;
  /**
   * Serve HTTPS with this key and certificate, speaking HTTP/2 to clients that offer it (and
   * HTTP/1.1 to the others), as Google's registries do. Default: plain HTTP/1.1.
   */
  readonly tls?: { readonly key: string; readonly cert: string };
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

const ROUTE = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.*)$/;
const UPLOAD = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/;

export class SimulatedRegistry {
  readonly repositories = new Map<string, SimulatedRepository>();
  /** Requests answered, by method. */
  readonly requests = new Map<string, number>();
  private readonly uploads = new Map<string, { repository: string; chunks: Buffer[] }>();
  private nextUpload = 1;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server | ReturnType<typeof createSecureServer>,
    readonly host: string,
    private readonly options: SimulatedRegistryOptions,
  ) {
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(options: SimulatedRegistryOptions = {}): Promise<SimulatedRegistry> {
    const holder: { registry?: SimulatedRegistry } = {};
    const handler = (request: AnyRequest, response: AnyResponse) => {
      holder.registry?.receive(request, response);
    };
    const server = options.tls
      ? createSecureServer({ key: options.tls.key, cert: options.tls.cert, allowHTTP1: true }, handler)
      : createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    holder.registry = new SimulatedRegistry(server, `127.0.0.1:${port}`, options);
    return holder.registry;
  }

  repository(name: string): SimulatedRepository {
    let repository = this.repositories.get(name);
    if (!repository) {
      repository = { tags: new Map(), manifests: new Map(), blobs: new Map() };
      this.repositories.set(name, repository);
    }
    return repository;
  }

  /** All requests answered. */
  get total(): number {
    let sum = 0;
    for (const count of this.requests.values()) sum += count;
    return sum;
  }

  resetCounts(): void {
    this.requests.clear();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  private receive(request: AnyRequest, response: AnyResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const answer = () => {
        this.answer(request, Buffer.concat(chunks), response);
      };
      const latency = this.options.latencyMs ?? 0;
      if (latency > 0) setTimeout(answer, latency);
      else answer();
    });
  }

  private answer(request: AnyRequest, body: Buffer, response: AnyResponse): void {
    const method = request.method ?? "GET";
    this.requests.set(method, (this.requests.get(method) ?? 0) + 1);
    const url = new URL(request.url ?? "/", "http://simulated");
    if (url.pathname === "/v2/" || url.pathname === "/v2") {
      send(response, 200, {});
      return;
    }
    const upload = UPLOAD.exec(url.pathname);
    if (upload) {
      this.upload(method, upload[1] ?? "", upload[2] ?? "", url, body, response);
      return;
    }
    const route = ROUTE.exec(url.pathname);
    if (!route) {
      error(response, 404, "NAME_UNKNOWN", "no such route");
      return;
    }
    const [, name = "", kind, reference = ""] = route;
    if (kind === "tags") {
      this.listTags(name, response);
      return;
    }
    if (kind === "blobs") {
      this.blob(method, name, reference, response);
      return;
    }
    this.manifest(method, name, reference, request, body, response);
  }

  private listTags(name: string, response: AnyResponse): void {
    const repository = this.repositories.get(name);
    if (!repository) {
      error(response, 404, "NAME_UNKNOWN", "repository name not known to registry");
      return;
    }
    const tags = [...repository.tags.keys()].sort();
    if (!this.options.manifestMap) {
      send(response, 200, { name, tags });
      return;
    }
    const byDigest = new Map<string, string[]>();
    for (const [tag, digest] of repository.tags) {
      const list = byDigest.get(digest) ?? [];
      list.push(tag);
      byDigest.set(digest, list);
    }
    const manifest: Record<string, unknown> = {};
    for (const [digest, stored] of repository.manifests) {
      manifest[digest] = {
        imageSizeBytes: String(stored.bytes.length),
        layerId: "",
        mediaType: stored.mediaType,
        tag: byDigest.get(digest) ?? [],
        timeCreatedMs: "1733400000000",
        timeUploadedMs: "1733400000000",
      };
    }
    send(response, 200, { child: [], manifest, name, tags });
  }

  private manifest(
    method: string,
    name: string,
    reference: string,
    request: AnyRequest,
    body: Buffer,
    response: AnyResponse,
  ): void {
    if (method === "PUT") {
      const repository = this.repository(name);
      const digest = sha256Digest(body);
      if (reference.startsWith("sha256:") && reference !== digest) {
        error(response, 400, "DIGEST_INVALID", "manifest digest did not match");
        return;
      }
      repository.manifests.set(digest, { mediaType: request.headers["content-type"] ?? "", bytes: body });
      if (!reference.startsWith("sha256:")) repository.tags.set(reference, digest);
      response.writeHead(201, {
        location: `/v2/${name}/manifests/${digest}`,
        "docker-content-digest": digest,
      });
      response.end();
      return;
    }
    const repository = this.repositories.get(name);
    const digest = reference.startsWith("sha256:") ? reference : repository?.tags.get(reference);
    const stored = digest === undefined ? undefined : repository?.manifests.get(digest);
    if (!stored || digest === undefined) {
      error(response, 404, "MANIFEST_UNKNOWN", "manifest unknown");
      return;
    }
    response.writeHead(200, {
      "content-type": stored.mediaType,
      "content-length": stored.bytes.length,
      "docker-content-digest": digest,
    });
    if (method === "HEAD") response.end();
    else response.end(stored.bytes);
  }

  private blob(method: string, name: string, digest: string, response: AnyResponse): void {
    const bytes = this.repositories.get(name)?.blobs.get(digest);
    if (!bytes) {
      error(response, 404, "BLOB_UNKNOWN", "blob unknown to registry");
      return;
    }
    response.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": bytes.length,
      "docker-content-digest": digest,
    });
    if (method === "HEAD") response.end();
    else response.end(bytes);
  }

  private upload(
    method: string,
    name: string,
    id: string,
    url: URL,
    body: Buffer,
    response: AnyResponse,
  ): void {
    const repository = this.repository(name);
    if (method === "POST" && id === "") {
      const mount = url.searchParams.get("mount");
      const from = url.searchParams.get("from");
      const mounted = mount && from ? this.repositories.get(from)?.blobs.get(mount) : undefined;
      if (mount && mounted) {
        repository.blobs.set(mount, mounted);
        response.writeHead(201, { location: `/v2/${name}/blobs/${mount}`, "docker-content-digest": mount });
        response.end();
        return;
      }
      const digest = url.searchParams.get("digest");
      if (digest) {
        this.finish(repository, name, digest, body, response);
        return;
      }
      const session = String(this.nextUpload++);
      this.uploads.set(session, { repository: name, chunks: [] });
      response.writeHead(202, { location: `/v2/${name}/blobs/uploads/${session}`, range: "0-0" });
      response.end();
      return;
    }
    const upload = this.uploads.get(id);
    if (upload?.repository !== name) {
      error(response, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
      return;
    }
    if (method === "PATCH") {
      upload.chunks.push(body);
      const size = upload.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      response.writeHead(202, {
        location: `/v2/${name}/blobs/uploads/${id}`,
        range: `0-${Math.max(0, size - 1)}`,
      });
      response.end();
      return;
    }
    if (method === "PUT") {
      this.uploads.delete(id);
      this.finish(
        repository,
        name,
        url.searchParams.get("digest") ?? "",
        Buffer.concat([...upload.chunks, body]),
        response,
      );
      return;
    }
    if (method === "DELETE") {
      this.uploads.delete(id);
      response.writeHead(204);
      response.end();
      return;
    }
    error(response, 405, "UNSUPPORTED", "method not allowed");
  }

  private finish(
    repository: SimulatedRepository,
    name: string,
    digest: string,
    bytes: Buffer,
    response: AnyResponse,
  ): void {
    if (sha256Digest(bytes) !== digest) {
      error(response, 400, "DIGEST_INVALID", "digest did not match");
      return;
    }
    repository.blobs.set(digest, bytes);
    response.writeHead(201, { location: `/v2/${name}/blobs/${digest}`, "docker-content-digest": digest });
    response.end();
  }
}

function send(response: AnyResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  response.writeHead(status, { "content-type": "application/json", "content-length": bytes.length });
  response.end(bytes);
}

function error(response: AnyResponse, status: number, code: string, message: string): void {
  send(response, status, { errors: [{ code, message }] });
}
