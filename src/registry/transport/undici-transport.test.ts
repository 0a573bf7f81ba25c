import { getEventListeners } from "node:events";
import { createServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  ScriptedRegistry,
  selfSignedCertificate,
  sendBytes,
  sendJson,
} from "../../../test/support/scripted-registry.js";
import { AbortedError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { RegistryError } from "../errors.js";
import { readBody } from "./body.js";
import { SecurityPolicy } from "./security-policy.js";
import type { HttpRequest } from "./types.js";
import { UndiciTransport, isTransientNetworkError } from "./undici-transport.js";

const context = { operation: "test", registry: "scripted", repository: "app" };

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

  it("shares one abort listener on the caller's signal among its requests in flight (issue 15)", async () => {
    const { transport, request } = await setUp();
    const held: (() => void)[] = [];
    server.on("HEAD", "/held", (_request, response) => {
      held.push(() => response.writeHead(200).end());
    });
    const controller = new AbortController();
    const sent = Array.from({ length: 20 }, () =>
      transport.send(request("/held", { method: "HEAD", signal: controller.signal })),
    );
    await vi.waitFor(() => {
      expect(held).toHaveLength(20);
    });
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    for (const answer of held) answer();
    expect((await Promise.all(sent)).map((response) => response.status)).toEqual(Array(20).fill(200));
  });

  it("keeps an HTTP/1.1 connection open after a HEAD, as after any other request (issue 15)", async () => {
    const { transport, request } = await setUp();
    // Like distribution and most Go servers: no `Connection: keep-alive` in the answer.
    server.on("HEAD", "/manifest", (_request, response) => {
      response.writeHead(200, { "content-length": "1234" }).end();
    });
    for (let i = 0; i < 20; i += 1) {
      expect((await transport.send(request("/manifest", { method: "HEAD" }))).status).toBe(200);
    }
    expect(server.requests).toHaveLength(20);
    // undici drops a brand-new connection whose answer comes while it still counts the request
    // as being written; every later HEAD reuses the one that replaces it (before: 20).
    expect(server.connections).toBeLessThanOrEqual(2);
  });

  it("builds its per-request debug line only for a logger that takes debug lines", async () => {
    const lines: string[] = [];
    const logger = (accepts: boolean): Logger => ({
      log: (_level, message) => lines.push(message),
      accepts: (level) => accepts || level !== "debug",
    });
    const quiet = await setUp({ logger: logger(false) });
    server.on("HEAD", "/x", (_request, response) => {
      response.writeHead(200).end();
    });
    await quiet.transport.send(quiet.request("/x", { method: "HEAD" }));
    expect(lines).toEqual([]);
    await Promise.all(transports.splice(0).map((transport) => transport.close()));
    await server.stop();
    const verbose = await setUp({ logger: logger(true) });
    server.on("HEAD", "/x", (_request, response) => {
      response.writeHead(200).end();
    });
    await verbose.transport.send(verbose.request("/x", { method: "HEAD" }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^HEAD http:\/\/127\.0\.0\.1:\d+\/x 200$/);
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
    // The body's stall timeout and the deadline (7 bytes earn no time to speak of) fire together;
    // on a busy machine the deadline may even come before undici has handed over the headers.
    expect((bodyError as RegistryError).message).toMatch(
      /the response body stalled|below the minimum rate|no response headers in time/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("ends a HEAD that is never answered by its deadline, and one the caller aborts (the HEAD path)", async () => {
    const { transport, request } = await setUp({ headersTimeoutMs: 200 });
    server.on("HEAD", "/silent", () => {
      /* never answer */
    });
    const started = Date.now();
    const timedOut = await transport
      .send(request("/silent", { method: "HEAD" }))
      .catch((caught: unknown) => caught);
    expect((timedOut as RegistryError).code).toBe("registry-timeout");
    expect(isTransientNetworkError(timedOut)).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);

    const controller = new AbortController();
    const pending = transport.send(request("/silent", { method: "HEAD", signal: controller.signal }));
    setTimeout(() => {
      controller.abort();
    }, 50);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    // Already stopped before it is sent: refused at once.
    await expect(
      transport.send(request("/silent", { method: "HEAD", signal: controller.signal })),
    ).rejects.toBeInstanceOf(AbortedError);
  });

  it("answers a HEAD with its status and headers, an empty body and a reusable connection", async () => {
    const { transport, request } = await setUp();
    server.on("HEAD", "/manifest", (_request, response) => {
      response
        .writeHead(200, {
          "content-length": "1234",
          "Docker-Content-Digest": "sha256:abc",
          link: ["<a>", "<b>"],
        })
        .end();
    });
    const response = await transport.send(request("/manifest", { method: "HEAD" }));
    expect(response.status).toBe(200);
    expect(response.headers.get("docker-content-digest")).toBe("sha256:abc");
    expect(response.headers.all("Link")).toEqual(["<a>", "<b>"]);
    expect(Buffer.from(await readBody(response.body, 10)).byteLength).toBe(0);
    await response.discard();
  });

  it("reads headers by name in any case, and never a prototype member for a header the host did not send", async () => {
    const { transport, request } = await setUp();
    for (const method of ["HEAD", "GET"] as const) {
      server.on(method, "/odd-headers", (_request, response) => {
        // setHeader, not an object literal, where `__proto__` would set the prototype.
        response.setHeader("Content-Length", "0");
        response.setHeader("X-Mixed-Case", "yes");
        response.setHeader("__proto__", "sent");
        response.setHeader("WWW-Authenticate", ['Bearer realm="a"', 'Basic realm="b"']);
        response.writeHead(200).end();
      });
    }
    for (const method of ["HEAD", "GET"] as const) {
      const response = await transport.send(request("/odd-headers", { method }));
      await response.discard();
      expect(response.headers.get("x-MIXED-case")).toBe("yes");
      expect(response.headers.get("__proto__")).toBe("sent");
      expect(response.headers.get("www-authenticate")).toBe('Bearer realm="a", Basic realm="b"');
      const challenges = response.headers.all("WWW-Authenticate");
      challenges.push("not theirs");
      expect(response.headers.all("www-authenticate")).toEqual(['Bearer realm="a"', 'Basic realm="b"']);
      for (const member of ["constructor", "toString", "hasOwnProperty", "valueOf"]) {
        expect(response.headers.get(member)).toBeUndefined();
        expect(response.headers.all(member)).toEqual([]);
      }
    }
  });
  it("ends a response that trickles by its deadline, though it is never silent long enough to stall", async () => {
    const { transport, request } = await setUp({
      headersTimeoutMs: 1000,
      bodyTimeoutMs: 10_000,
      minBytesPerSecond: 1024,
    });
    server.on("GET", "/trickle", (_request, response) => {
      response.writeHead(200, { "content-length": "100000" });
      response.flushHeaders();
      const timer = setInterval(() => response.write("x"), 50);
      response.on("close", () => {
        clearInterval(timer);
      });
    });
    const started = Date.now();
    const buffered = await transport
      .send(request("/trickle", { bufferLimit: 200_000 }))
      .catch((caught: unknown) => caught);
    expect((buffered as RegistryError).code).toBe("registry-timeout");
    expect((buffered as RegistryError).message).toMatch(
      /timed out: \d+ bytes moved in [\d.]+ s, below the minimum rate of 1 KiB\/s after the first 1 s/,
    );
    expect(isTransientNetworkError(buffered)).toBe(true);
    // A streamed body keeps its deadline while the caller reads it.
    const streamed = await transport.send(request("/trickle"));
    const read = await readBody(streamed.body, 200_000).catch((caught: unknown) => caught);
    expect((read as RegistryError).code).toBe("registry-timeout");
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it("gives a fast body all the time it needs past the allowance", async () => {
    const { transport, request } = await setUp({ headersTimeoutMs: 500, minBytesPerSecond: 64 * 1024 });
    server.on("GET", "/steady", (_request, response) => {
      // 64 KiB every 100 ms for 1.5 s: three times the allowance, ten times the minimum rate.
      response.writeHead(200, { "content-length": String(15 * 64 * 1024) });
      let sent = 0;
      const timer = setInterval(() => {
        response.write(Buffer.alloc(64 * 1024, 0x61));
        if (++sent === 15) {
          clearInterval(timer);
          response.end();
        }
      }, 100);
      response.on("close", () => {
        clearInterval(timer);
      });
    });
    const response = await transport.send(request("/steady", { bufferLimit: 1024 * 1024 }));
    expect(response.bytes?.byteLength).toBe(15 * 64 * 1024);
  });

  it("grants a request's own wait for its answer only once its body is sent, and meters what is sent", async () => {
    const { transport } = await setUp({ headersTimeoutMs: 500, minBytesPerSecond: 1024 * 1024 });
    let reads = 0;
    const slow = createServer((incoming, response) => {
      const answer = async () => {
        if (incoming.url === "/verify") {
          // Takes the body at once, then verifies it for a while before answering.
          for await (const _chunk of incoming as AsyncIterable<Buffer>) reads += 1;
          await new Promise((resolve) => setTimeout(resolve, 1500));
        } else {
          // Takes a chunk (64 KiB at most) every 1.5 s: far below 1 MiB/s.
          for await (const _chunk of incoming as AsyncIterable<Buffer>) {
            reads += 1;
            await new Promise((resolve) => setTimeout(resolve, 1500));
          }
        }
        response.writeHead(201, { "content-length": "0" });
        response.end();
      };
      answer().catch(() => {
        // The client gave up: that is the point.
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
    async function* blob(chunks: number): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < chunks; i++) {
        await Promise.resolve();
        yield Buffer.alloc(64 * 1024, i);
      }
    }
    const upload = (path: string, chunks: number): HttpRequest => ({
      method: "PUT",
      url: new URL(path, origin),
      headers: { "content-length": String(chunks * 64 * 1024) },
      body: blob(chunks),
      headersTimeoutMs: 60_000,
      context,
    });
    try {
      expect((await transport.send(upload("/verify", 2))).status).toBe(201);
      const started = Date.now();
      const error = await transport.send(upload("/slow", 256)).catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-timeout");
      expect((error as RegistryError).message).toMatch(/bytes sent in [\d.]+ s, below the minimum rate/);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(reads).toBeGreaterThan(0);
      // A body held in memory (an upload chunk) is metered as it goes too.
      const chunk = await transport
        .send({
          method: "PATCH",
          url: new URL("/slow", origin),
          body: Buffer.alloc(16 * 1024 * 1024),
          headersTimeoutMs: 60_000,
          context,
        })
        .catch((caught: unknown) => caught);
      expect((chunk as RegistryError).message, (chunk as RegistryError).message).toMatch(
        /bytes sent in [\d.]+ s, below the minimum rate/,
      );
    } finally {
      slow.closeAllConnections();
      await new Promise((resolve) => slow.close(resolve));
    }
  });

  it("refuses response headers over Node's limit as too large, not as a network error to retry", async () => {
    const { transport, request } = await setUp();
    server.on("GET", "/huge-header", (_request, response) => {
      response.writeHead(401, { "www-authenticate": `Bearer realm="x",scope="${"x".repeat(64 * 1024)}"` });
      response.end();
    });
    const error = await transport.send(request("/huge-header")).catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-too-large");
    expect((error as RegistryError).message).toMatch(/response headers are over the \d+-byte limit/);
    expect(isTransientNetworkError(error)).toBe(false);
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

  it("says that a server reached over plain HTTP speaks TLS, and refuses plain HTTP to a host named HTTPS", async () => {
    const transport = new UndiciTransport({ policy: new SecurityPolicy() });
    // Node's TLS server closes a connection that starts with plain HTTP (Go's answers 400).
    const plain = new URL(`http://127.0.0.1:${server.port}/v2/`);
    for (const method of ["GET", "HEAD"] as const) {
      const error = await transport.send({ method, url: plain, context }).catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-https-required");
      expect((error as RegistryError).message).toContain(
        `127.0.0.1:${server.port} speaks TLS, not plain HTTP: reach it over HTTPS with --https-registry 127.0.0.1:${server.port}`,
      );
    }
    await transport.close();

    const https = new UndiciTransport({ policy: new SecurityPolicy([], [`127.0.0.1:${server.port}`]) });
    const refused = await https
      .send({ method: "GET", url: plain, context })
      .catch((caught: unknown) => caught);
    expect((refused as RegistryError).code).toBe("registry-insecure");
    await https.close();
  });
});

describe("UndiciTransport over plain HTTP", () => {
  it("returns a plain server's 400 as it is", async () => {
    const server = await ScriptedRegistry.start();
    server.on("GET", "/v2/", (_request, response) => {
      sendJson(response, 400, { errors: [{ code: "UNSUPPORTED", message: "no" }] });
    });
    const transport = new UndiciTransport({ policy: new SecurityPolicy() });
    try {
      const response = await transport.send({ method: "GET", url: new URL("/v2/", server.url), context });
      expect(response.status).toBe(400);
      await response.discard();
    } finally {
      await transport.close();
      await server.stop();
    }
  });
});

describe("UndiciTransport against a host that sends bytes after a HEAD answer", () => {
  it("never reads them as the answer to the next request on the connection", async () => {
    // A raw HTTP/1.1 server: HEAD /a is answered with a body anyway (forbidden, RFC 9110
    // section 9.3.2) followed by a whole forged response; HEAD /b has its real answer. The
    // connection is kept after a HEAD (undici would close it), so the forged bytes wait on it.
    const sockets = new Set<Socket>();
    const server = createTcpServer((socket) => {
      sockets.add(socket);
      let pending = "";
      socket.on("data", (chunk: Buffer) => {
        pending += chunk.toString("latin1");
        for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
          const head = pending.slice(0, end);
          pending = pending.slice(end + 4);
          if (head.startsWith("HEAD /a ")) {
            socket.write(
              "HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:aaaa\r\nContent-Length: 5\r\n\r\nhello" +
                "HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:forged\r\nContent-Length: 0\r\n\r\n",
            );
          } else {
            socket.write(
              "HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:bbbb\r\nContent-Length: 0\r\n\r\n",
            );
          }
        }
      });
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const transport = new UndiciTransport({ policy: new SecurityPolicy() });
    const head = (path: string): HttpRequest => ({
      method: "HEAD",
      url: new URL(`http://127.0.0.1:${port}${path}`),
      context,
    });
    try {
      const first = await transport.send(head("/a"));
      expect(first.headers.get("docker-content-digest")).toBe("sha256:aaaa");
      for (let i = 0; i < 5; i += 1) {
        // The forged answer must never be taken for this one; a broken connection may fail it
        // (a retryable network error), but then a fresh connection gives the real answer.
        const second = await transport.send(head("/b")).catch((caught: unknown) => caught);
        if (second instanceof RegistryError) {
          expect(isTransientNetworkError(second)).toBe(true);
          continue;
        }
        expect(
          (second as { headers: { get(name: string): string | undefined } }).headers.get(
            "docker-content-digest",
          ),
        ).toBe("sha256:bbbb");
      }
    } finally {
      await transport.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
