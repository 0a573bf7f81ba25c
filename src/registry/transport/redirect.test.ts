import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ScriptedRegistry,
  selfSignedCertificate,
  sendBytes,
} from "../../../test/support/scripted-registry.js";
import { MemoryLogger } from "../../log.js";
import type { RegistryError } from "../errors.js";
import { RedirectTransport } from "./redirect.js";
import { SecurityPolicy } from "./security-policy.js";
import type { HttpRequest } from "./types.js";
import { UndiciTransport } from "./undici-transport.js";

const context = { operation: "get blob", registry: "scripted", repository: "app" };

describe("RedirectTransport", () => {
  let registry: ScriptedRegistry;
  let storage: ScriptedRegistry;
  let network: UndiciTransport;
  let transport: RedirectTransport;
  beforeAll(async () => {
    registry = await ScriptedRegistry.start();
    storage = await ScriptedRegistry.start();
    network = new UndiciTransport({ policy: new SecurityPolicy() });
    transport = new RedirectTransport(network, { logger: new MemoryLogger(), maxRedirects: 3 });
  });
  afterAll(async () => {
    await network.close();
    await registry.stop();
    await storage.stop();
  });
  afterEach(() => {
    registry.requests.length = 0;
    storage.requests.length = 0;
  });

  const get = (path: string): HttpRequest => ({
    method: "GET",
    url: new URL(path, registry.url),
    headers: { authorization: "Bearer registry-token", accept: "*/*" },
    context,
    bufferLimit: 1024,
  });

  it("follows a redirect to another origin without Authorization", async () => {
    registry.once("GET", "/v2/app/blobs/sha256:1", (_request, response) => {
      response.writeHead(307, { location: `${storage.url}/bucket/blob?X-Amz-Signature=abc` });
      response.end();
    });
    storage.once("GET", "/bucket/blob", (_request, response) => {
      sendBytes(response, 200, Buffer.from("data"));
    });
    const response = await transport.send(get("/v2/app/blobs/sha256:1"));
    expect(Buffer.from(response.bytes!).toString()).toBe("data");
    expect(response.url.origin).toBe(storage.url);
    expect(registry.requests[0]?.headers.authorization).toBe("Bearer registry-token");
    expect(storage.requests[0]?.headers.authorization).toBeUndefined();
    expect(storage.requests[0]?.headers.accept).toBe("*/*");
  });

  it("keeps Authorization on a relative redirect within the origin", async () => {
    registry.once("GET", "/old", (_request, response) => {
      response.writeHead(302, { location: "/new" });
      response.end();
    });
    registry.once("GET", "/new", (_request, response) => {
      sendBytes(response, 200, Buffer.from("ok"));
    });
    await transport.send(get("/old"));
    expect(registry.requestsTo("/new")[0]?.headers.authorization).toBe("Bearer registry-token");
  });

  it("does not give credentials back after a hop left the origin", async () => {
    registry.once("GET", "/a", (_request, response) => {
      response.writeHead(307, { location: `${storage.url}/b` });
      response.end();
    });
    storage.once("GET", "/b", (_request, response) => {
      response.writeHead(307, { location: `${registry.url}/c` });
      response.end();
    });
    registry.once("GET", "/c", (_request, response) => {
      sendBytes(response, 200, Buffer.from("ok"));
    });
    await transport.send(get("/a"));
    expect(registry.requestsTo("/c")[0]?.headers.authorization).toBeUndefined();
  });

  it("detects loops and too many hops", async () => {
    registry.on("GET", "/loop", (_request, response) => {
      response.writeHead(302, { location: "/loop2" });
      response.end();
    });
    registry.on("GET", "/loop2", (_request, response) => {
      response.writeHead(302, { location: "/loop" });
      response.end();
    });
    const loop = await transport.send(get("/loop")).catch((caught: unknown) => caught);
    expect((loop as RegistryError).code).toBe("registry-protocol");
    expect((loop as RegistryError).message).toContain("redirect loop");

    registry.on("GET", /^\/hop\d+$/, (request, response) => {
      response.writeHead(302, { location: `/hop${Number(request.path.slice(4)) + 1}` });
      response.end();
    });
    const hops = await transport.send(get("/hop0")).catch((caught: unknown) => caught);
    expect((hops as RegistryError).message).toContain("more than 3 redirects");
    expect(registry.requestsTo(/^\/hop/)).toHaveLength(4);
  });

  it("keeps a body on its origin: a 307 or 308 elsewhere is refused, a 303 drops the body", async () => {
    const form = new TextEncoder().encode("grant_type=refresh_token&refresh_token=secret-refresh");
    for (const status of [307, 308]) {
      registry.once("POST", "/token", (_request, response) => {
        response.writeHead(status, { location: `${storage.url}/collect` });
        response.end();
      });
      const error = await transport
        .send({ ...get("/token"), method: "POST", body: form, headers: {} })
        .catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-insecure");
      expect((error as RegistryError).message).toContain("refusing to send the body of POST");
    }
    registry.once("POST", "/token", (_request, response) => {
      response.writeHead(303, { location: `${storage.url}/collect` });
      response.end();
    });
    storage.once("GET", "/collect", (_request, response) => {
      sendBytes(response, 200, Buffer.from("{}"));
    });
    await transport.send({ ...get("/token"), method: "POST", body: form, headers: {} });
    expect(storage.requests.map((request) => [request.method, request.body.length])).toEqual([["GET", 0]]);
    // Within the origin a 307 keeps the body, as before.
    registry.once("POST", "/token", (_request, response) => {
      response.writeHead(307, { location: "/token2" });
      response.end();
    });
    registry.once("POST", "/token2", (request, response) => {
      sendBytes(response, 200, request.body);
    });
    const same = await transport.send({ ...get("/token"), method: "POST", body: form, headers: {} });
    expect(Buffer.from(same.bytes!).toString()).toContain("secret-refresh");
  });

  it("refuses to replay a streamed upload", async () => {
    registry.once("PUT", "/upload", (_request, response) => {
      response.writeHead(307, { location: "/elsewhere" });
      response.end();
    });
    async function* body() {
      await Promise.resolve();
      yield new Uint8Array([1]);
    }
    const error = await transport
      .send({ ...get("/upload"), method: "PUT", body: body(), headers: { "content-length": "1" } })
      .catch((caught: unknown) => caught);
    expect((error as RegistryError).message).toContain("cannot follow a redirect");
  });
});

describe("RedirectTransport from https", () => {
  it("refuses a redirect from https to plain http", async () => {
    const tls = await selfSignedCertificate(["registry.test"]);
    const secure = await ScriptedRegistry.start({ tls });
    const plain = await ScriptedRegistry.start();
    const network = new UndiciTransport({
      policy: new SecurityPolicy(),
      caCertificates: tls.cert,
      hostAddresses: new Map([["registry.test", "127.0.0.1"]]),
    });
    try {
      secure.once("GET", "/v2/app/blobs/sha256:1", (_request, response) => {
        response.writeHead(307, { location: `${plain.url}/blob` });
        response.end();
      });
      const transport = new RedirectTransport(network, { logger: new MemoryLogger() });
      const error = await transport
        .send({
          method: "GET",
          url: new URL(`https://registry.test:${secure.port}/v2/app/blobs/sha256:1`),
          headers: { authorization: "Bearer t" },
          context,
        })
        .catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-insecure");
      expect((error as RegistryError).message).toContain("from https to plain http");
      expect(plain.requests).toHaveLength(0);
    } finally {
      await network.close();
      await secure.stop();
      await plain.stop();
    }
  });
});
