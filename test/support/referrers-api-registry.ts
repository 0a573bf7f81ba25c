import { createHash } from "node:crypto";
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A registry with the OCI referrers API, for tests: distribution 2.8.2 (which has none, see
 * docs/test-harness.md) behind a reverse proxy on 127.0.0.1 that adds the API as
 * distribution-spec v1.1 describes it, and forwards everything else unchanged.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject
 *
 * - A manifest PUT whose body has a `subject` is forwarded; when the registry stores it, the
 *   proxy records its descriptor (media type, digest, size, artifactType or config media type,
 *   annotations) under the subject and answers with `OCI-Subject`, as a registry with the API
 *   does, so clients do not keep a fallback tag.
 * - `GET /v2/<name>/referrers/<digest>` answers the recorded descriptors as an image index
 *   (filtered by `artifactType`, with `OCI-Filters-Applied`).
 * - A manifest DELETE by digest forgets the referrer once the registry deleted it.
 * The record lives in memory: what was pushed through the proxy since it started.
 */

interface Recorded {
  readonly repository: string;
  readonly subject: string;
  readonly descriptor: Record<string, unknown>;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "host"]);
const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const REFERRERS_PATH = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/;

export interface ReferrersApiRegistry {
  /** `127.0.0.1:PORT`, how clients name the registry. */
  readonly host: string;
  readonly url: string;
  /** Referrers requests answered so far. */
  referrersRequests(): number;
  close(): Promise<void>;
}

export async function startReferrersApiRegistry(upstreamUrl: string): Promise<ReferrersApiRegistry> {
  const upstream = new URL(upstreamUrl);
  const recorded: Recorded[] = [];
  let referrersRequests = 0;

  const forward = (incoming: IncomingMessage, body: Buffer | undefined): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const headers: OutgoingHttpHeaders = { host: incoming.headers.host };
      for (const [name, value] of Object.entries(incoming.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
      }
      if (body) headers["content-length"] = body.length;
      const outgoing = httpRequest(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers,
        },
        resolve,
      );
      outgoing.on("error", reject);
      if (body) outgoing.end(body);
      else incoming.pipe(outgoing);
    });

  const relay = (from: IncomingMessage, to: ServerResponse, extra: OutgoingHttpHeaders = {}) => {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(from.headers)) {
      if (HOP_BY_HOP.has(name) || value === undefined) continue;
      headers[name] =
        name === "location" && typeof value === "string"
          ? value.replace(upstream.origin, `http://${host}`)
          : value;
    }
    to.writeHead(from.statusCode ?? 502, { ...headers, ...extra });
    from.pipe(to);
  };

  const readBody = async (incoming: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };

  const handle = async (incoming: IncomingMessage, response: ServerResponse) => {
    const url = new URL(incoming.url ?? "/", "http://proxy");
    const referrers = REFERRERS_PATH.exec(url.pathname);
    if (incoming.method === "GET" && referrers) {
      referrersRequests += 1;
      const [, repository, subject] = referrers;
      const artifactType = url.searchParams.get("artifactType");
      const manifests = recorded
        .filter((entry) => entry.repository === repository && entry.subject === subject)
        .map((entry) => entry.descriptor)
        .filter((descriptor) => artifactType === null || descriptor.artifactType === artifactType);
      const body = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }),
      );
      response.writeHead(200, {
        "content-type": "application/vnd.oci.image.index.v1+json",
        "content-length": body.length,
        ...(artifactType === null ? {} : { "oci-filters-applied": "artifactType" }),
      });
      response.end(body);
      return;
    }
    const manifest = MANIFEST_PATH.exec(url.pathname);
    if (incoming.method === "PUT" && manifest) {
      const body = await readBody(incoming);
      const answer = await forward(incoming, body);
      let document: {
        subject?: { digest?: string };
        artifactType?: string;
        config?: { mediaType?: string };
        annotations?: Record<string, string>;
      } = {};
      try {
        document = JSON.parse(body.toString("utf8")) as typeof document;
      } catch {
        // Not JSON: the registry answers for it.
      }
      const subject = document.subject?.digest;
      if (answer.statusCode === 201 && typeof subject === "string") {
        const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
        const [, repository] = manifest;
        const artifactType = document.artifactType ?? document.config?.mediaType;
        if (
          !recorded.some((entry) => entry.repository === repository && entry.descriptor.digest === digest)
        ) {
          recorded.push({
            repository: repository ?? "",
            subject,
            descriptor: {
              mediaType: incoming.headers["content-type"] ?? "application/vnd.oci.image.manifest.v1+json",
              digest,
              size: body.length,
              ...(artifactType === undefined ? {} : { artifactType }),
              ...(document.annotations === undefined ? {} : { annotations: document.annotations }),
            },
          });
        }
        relay(answer, response, { "oci-subject": subject });
        return;
      }
      relay(answer, response);
      return;
    }
    const answer = await forward(incoming, undefined);
    if (incoming.method === "DELETE" && manifest && answer.statusCode === 202) {
      const [, repository, reference] = manifest;
      for (let i = recorded.length - 1; i >= 0; i--) {
        const entry = recorded[i];
        if (entry && entry.repository === repository && entry.descriptor.digest === reference)
          recorded.splice(i, 1);
      }
    }
    relay(answer, response);
  };

  const server: Server = createServer((incoming, response) => {
    handle(incoming, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(502);
      response.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    url: `http://${host}`,
    referrersRequests: () => referrersRequests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
