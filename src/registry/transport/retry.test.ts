import { afterEach, describe, expect, it } from "vitest";
import { FakeClock, ScriptedRegistry, sendError, sendJson } from "../../../test/support/scripted-registry.js";
import { MemoryLogger } from "../../log.js";
import { RegistryError } from "../errors.js";
import { SecurityPolicy } from "./security-policy.js";
import { DEFAULT_RETRY_POLICY, RetryTransport, isRetryableStatus, parseRetryAfter } from "./retry.js";
import type { HttpRequest } from "./types.js";
import { UndiciTransport } from "./undici-transport.js";

const context = { operation: "test", registry: "scripted" };

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");
  it("reads delta-seconds and HTTP-dates", () => {
    expect(parseRetryAfter("30", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:12 GMT", now)).toBe(12_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 23:00:00 GMT", now)).toBe(0);
    // An empty or unreadable value is no instruction (not "retry now"): backoff applies.
    expect(parseRetryAfter("", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
  it("retries 408, 429 and 5xx but not 501 or 4xx", () => {
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 501, 505].some(isRetryableStatus)).toBe(false);
  });
});

describe("RetryTransport against a scripted server", () => {
  let server: ScriptedRegistry;
  let network: UndiciTransport;
  afterEach(async () => {
    await network.close();
    await server.stop();
  });

  async function setUp(maxAttempts = 4) {
    server = await ScriptedRegistry.start();
    network = new UndiciTransport({ policy: new SecurityPolicy() });
    const clock = new FakeClock();
    const logger = new MemoryLogger();
    const transport = new RetryTransport(network, {
      policy: { ...DEFAULT_RETRY_POLICY, maxAttempts },
      clock,
      logger,
      random: () => 0.5,
    });
    const get = (path: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
      method: "GET",
      url: new URL(path, server.url),
      context,
      bufferLimit: 1024,
      ...extra,
    });
    return { transport, clock, logger, get };
  }

  it("retries 503 until success with exponential backoff and jitter", async () => {
    const { transport, clock, get } = await setUp();
    server.once("GET", "/x", (_request, response) => {
      sendError(response, 503, "UNAVAILABLE", "busy");
    });
    server.once("GET", "/x", (_request, response) => {
      sendError(response, 502, "BAD_GATEWAY", "busy");
    });
    server.once("GET", "/x", (_request, response) => {
      sendJson(response, 200, { ok: true });
    });
    const response = await transport.send(get("/x"));
    expect(response.status).toBe(200);
    expect(server.requestsTo("/x")).toHaveLength(3);
    // Full jitter at 0.5: half of 250 ms, then half of 500 ms.
    expect(clock.sleeps).toEqual([125, 250]);
  });

  it("honours Retry-After in seconds and as an HTTP-date on 429", async () => {
    const { transport, clock, get } = await setUp();
    server.once("GET", "/x", (_request, response) => {
      sendError(response, 429, "TOOMANYREQUESTS", "slow down", { "retry-after": "7" });
    });
    server.once("GET", "/x", (_request, response) => {
      sendError(response, 429, "TOOMANYREQUESTS", "slow down", {
        "retry-after": new Date(clock.now() + 20_000).toUTCString(),
      });
    });
    server.once("GET", "/x", (_request, response) => {
      sendJson(response, 200, {});
    });
    expect((await transport.send(get("/x"))).status).toBe(200);
    expect(clock.sleeps).toEqual([7000, 20_000]);
  });

  it("gives up at once when Retry-After is beyond the cap, returning the 429", async () => {
    const { transport, clock, logger, get } = await setUp();
    server.on("GET", "/x", (_request, response) => {
      sendError(response, 429, "TOOMANYREQUESTS", "come back tomorrow", { "retry-after": "86400" });
    });
    const response = await transport.send(get("/x"));
    expect(response.status).toBe(429);
    expect(clock.sleeps).toEqual([]);
    expect(server.requestsTo("/x")).toHaveLength(1);
    expect(logger.lines.some((line) => line.message.includes("more than the 60 s cap"))).toBe(true);
  });

  it("returns the last failure after maxAttempts", async () => {
    const { transport, get } = await setUp(3);
    server.on("GET", "/x", (_request, response) => {
      sendError(response, 500, "INTERNAL", "broken");
    });
    expect((await transport.send(get("/x"))).status).toBe(500);
    expect(server.requestsTo("/x")).toHaveLength(3);
  });

  it("retries a connection reset and says how many attempts failed", async () => {
    const { transport, get } = await setUp(3);
    server.on("GET", "/reset", (_request, response) => {
      response.socket?.destroy();
    });
    const error = await transport.send(get("/reset")).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe("registry-network");
    expect((error as RegistryError).message).toContain("gave up after 3 attempts");
    expect(server.requestsTo("/reset")).toHaveLength(3);
  });

  it("does not retry POST or a streamed body", async () => {
    const { transport, get } = await setUp();
    server.on(undefined, "/x", (_request, response) => {
      sendError(response, 503, "UNAVAILABLE", "busy");
    });
    expect((await transport.send(get("/x", { method: "POST" }))).status).toBe(503);
    async function* stream() {
      await Promise.resolve();
      yield new Uint8Array([1, 2, 3]);
    }
    expect(
      (await transport.send(get("/x", { method: "PUT", body: stream(), headers: { "content-length": "3" } })))
        .status,
    ).toBe(503);
    expect(server.requestsTo("/x")).toHaveLength(2);
    // An explicitly idempotent POST (opening an upload session) is retried.
    expect((await transport.send(get("/x", { method: "POST", idempotent: true }))).status).toBe(503);
    expect(server.requestsTo("/x")).toHaveLength(6);
  });
});
