import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ScriptedRegistry,
  selfSignedCertificate,
  sendBytes,
  sendJson,
} from "../../../test/support/scripted-registry.js";
import { AbortedError } from "../../errors.js";
import { RegistryError } from "../errors.js";
import { readBody } from "./body.js";
import { SecurityPolicy } from "./security-policy.js";
import type { HttpRequest } from "./types.js";
import { UndiciTransport, isTransientNetworkError } from "./undici-transport.js";

const context = { operation: "test", registry: "scripted", repository: "app", side: "source" as const };

describe("UndiciTransport", () => {
  let server: ScriptedRegistry;
  const transports: UndiciTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((transport) => transport.close()));
    await server.stop();
  });

  async function setUp(options: Partial<ConstructorParameters<typeof UndiciTransport>[0]> = {}) {
    server = await ScriptedRegistry.start();
    const transport = new UndiciTransport({ policy: new SecurityPolicy(), ...options });
    transports.push(transport);
    const request = (path: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
      method: "GET",
      url: new URL(path, server.url),
      context,
      ...extra,
    });
    return { transport, request };
  }

  it("streams bodies, or buffers them under a cap", async () => {
    const { transport, request } = await setUp();
    server.on("GET", "/small", (_request, response) => {
      sendBytes(response, 200, Buffer.from("hello"));
    });
    const streamed = await transport.send(request("/small"));
    expect(Buffer.from(await readBody(streamed.body, 100)).toString()).toBe("hello");
    const buffered = await transport.send(request("/small", { bufferLimit: 5 }));
    expect(Buffer.from(buffered.bytes!).toString()).toBe("hello");
    expect(server.requests[0]?.headers["user-agent"]).toBe("image-promoter");
  });

  it("refuses a body over its cap, by Content-Length or while reading an endless body", async () => {
    const { transport, request } = await setUp();
    server.on("GET", "/announced", (_request, response) => {
      sendBytes(response, 200, Buffer.alloc(2048));
    });
    server.on("GET", "/endless", (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      const pump = () => {
        while (response.write(chunk)) {
          /* keep writing until back-pressure */
        }
      };
      response.on("drain", pump);
      response.on("close", () => response.off("drain", pump));
      pump();
    });
    for (const path of ["/announced", "/endless"]) {
      const error = await transport
        .send(request(path, { bufferLimit: 1024 }))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as RegistryError).code).toBe("registry-too-large");
      expect((error as RegistryError).message).toContain("1024-byte cap");
      expect((error as RegistryError).message).toContain("scripted/app");
    }
  });

  it("times out a response whose headers never come, and one whose body stalls", async () => {
    const { transport, request } = await setUp({ headersTimeoutMs: 200, bodyTimeoutMs: 200 });
    server.on("GET", "/stall-headers", () => {
      /* never answer */
    });
    server.on("GET", "/stall-body", (_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("partial");
    });
    const started = Date.now();
    const headersError = await transport.send(request("/stall-headers")).catch((caught: unknown) => caught);
    expect((headersError as RegistryError).code).toBe("registry-timeout");
    expect((headersError as RegistryError).message).toContain("no response headers in time");
    expect(isTransientNetworkError(headersError)).toBe(true);
    const bodyError = await transport
      .send(request("/stall-body", { bufferLimit: 1000 }))
      .catch((caught: unknown) => caught);
    expect((bodyError as RegistryError).code).toBe("registry-timeout");
    expect((bodyError as RegistryError).message).toContain("the response body stalled");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("stops when the caller aborts", async () => {
    const { transport, request } = await setUp();
    server.on("GET", "/slow", () => {
      /* never answer */
    });
    const controller = new AbortController();
    const pending = transport.send(request("/slow", { signal: controller.signal }));
    setTimeout(() => {
      controller.abort();
    }, 50);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
  });

  it("uses plain HTTP only for loopback and insecure hosts", async () => {
    const { transport } = await setUp({ hostAddresses: new Map([["registry.test", "127.0.0.1"]]) });
    server.on("GET", "/v2/", (_request, response) => {
      sendJson(response, 200, {});
    });
    const url = new URL(`http://registry.test:${server.port}/v2/`);
    const error = await transport.send({ method: "GET", url, context }).catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-insecure");
    expect(server.requests).toHaveLength(0);

    const insecure = new UndiciTransport({
      policy: new SecurityPolicy([`registry.test:${server.port}`]),
      hostAddresses: new Map([["registry.test", "127.0.0.1"]]),
    });
    transports.push(insecure);
    expect((await insecure.send({ method: "GET", url, context })).status).toBe(200);
    expect(server.requests[0]?.headers.host).toBe(`registry.test:${server.port}`);
  });
});

describe("UndiciTransport over TLS", () => {
  let tls: { key: string; cert: string };
  let server: ScriptedRegistry;
  beforeAll(async () => {
    tls = await selfSignedCertificate(["registry.test"]);
    server = await ScriptedRegistry.start({ tls });
    server.on("GET", "/v2/", (_request, response) => {
      sendJson(response, 200, {});
    });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("verifies certificates, trusting an extra CA bundle when given", async () => {
    const url = new URL(`https://registry.test:${server.port}/v2/`);
    const hostAddresses = new Map([["registry.test", "127.0.0.1"]]);
    const untrusting = new UndiciTransport({ policy: new SecurityPolicy(), hostAddresses });
    const error = await untrusting.send({ method: "GET", url, context }).catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-network");
    // A certificate problem is not worth retrying.
    expect(isTransientNetworkError(error)).toBe(false);
    await untrusting.close();

    const trusting = new UndiciTransport({
      policy: new SecurityPolicy(),
      hostAddresses,
      caCertificates: tls.cert,
    });
    expect((await trusting.send({ method: "GET", url, context })).status).toBe(200);
    await trusting.close();
  });
});
