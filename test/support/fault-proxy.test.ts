import { createHash } from "node:crypto";
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy, seededUnit, type FaultRule } from "./fault-proxy.js";

/** An upstream that answers every GET with 64 KiB of known bytes and echoes request bodies. */
const PAYLOAD = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 31) % 251));
let upstream: Server;
let upstreamUrl: string;
const upstreamSeen: { method: string; path: string; host: string | undefined; body: Buffer }[] = [];

beforeAll(async () => {
  upstream = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      upstreamSeen.push({
        method: request.method ?? "",
        path: request.url ?? "",
        host: request.headers.host,
        body,
      });
      if (request.url === "/moved") {
        response.writeHead(201, {
          location: `${upstreamUrl}/v2/x/blobs/uploads/1?state=a`,
          "content-length": 0,
        });
        response.end();
      } else if (request.method === "PUT") {
        response.writeHead(201, { "content-length": body.length, "docker-content-digest": sha(body) });
        response.end(body);
      } else {
        response.writeHead(200, { "content-length": PAYLOAD.length, "docker-content-digest": sha(PAYLOAD) });
        response.end(request.method === "HEAD" ? undefined : PAYLOAD);
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise<void>((resolve) =>
    upstream.close(() => {
      resolve();
    }),
  );
});

let proxy: FaultProxy | undefined;
afterEach(async () => {
  await proxy?.stop();
  proxy = undefined;
  upstreamSeen.length = 0;
});

async function start(rules: FaultRule[], seed: number | string = 1): Promise<FaultProxy> {
  proxy = await FaultProxy.start({ upstream: upstreamUrl, rules, seed });
  return proxy;
}

function sha(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  ms: number;
}

/** One request on a fresh connection; rejects with the socket error (reset, premature close, timeout). */
function send(
  url: string,
  options: { method?: string; body?: Buffer; timeoutMs?: number; firstBytes?: (n: number) => void } = {},
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: options.method ?? "GET", agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        options.firstBytes?.(chunk.length);
      });
      response.on("error", reject);
      response.on("aborted", () => {
        reject(new Error("aborted"));
      });
      response.on("end", () => {
        if (!response.complete) reject(new Error("incomplete"));
        else
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
            ms: performance.now() - started,
          });
      });
    });
    request.on("error", reject);
    if (options.timeoutMs !== undefined) {
      request.setTimeout(options.timeoutMs, () => request.destroy(new Error("client timeout")));
    }
    request.end(options.body);
  });
}

describe("FaultProxy", () => {
  it("forwards requests and bodies unchanged, keeping the client's Host and rewriting upstream Locations", async () => {
    const p = await start([]);
    const answer = await send(`${p.url}/v2/x/blobs/sha256:a`);
    expect(answer.status).toBe(200);
    expect(answer.body.equals(PAYLOAD)).toBe(true);
    const put = await send(`${p.url}/v2/x/manifests/v1`, { method: "PUT", body: Buffer.from("hello") });
    expect(put.body.toString()).toBe("hello");
    expect(upstreamSeen.map((seen) => seen.host)).toEqual([p.host, p.host]);
    const moved = await send(`${p.url}/moved`);
    expect(moved.headers.location).toBe(`${p.url}/v2/x/blobs/uploads/1?state=a`);
    expect(p.events.map((event) => [event.method, event.path, event.status, event.fault])).toEqual([
      ["GET", "/v2/x/blobs/sha256:a", 200, undefined],
      ["PUT", "/v2/x/manifests/v1", 201, undefined],
      ["GET", "/moved", 201, undefined],
    ]);
  });

  it("answers 5xx and 429 with Retry-After for an exact count, by method and path, without forwarding", async () => {
    const p = await start([
      { method: "GET", path: /\/blobs\//, count: 2, fault: { kind: "status", status: 503 } },
      { method: "PUT", path: "/v2/", count: 1, fault: { kind: "status", status: 429, retryAfter: "2" } },
    ]);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await send(`${p.url}/v2/x/blobs/sha256:a`)).status);
    expect(statuses).toEqual([503, 503, 200]);
    expect((await send(`${p.url}/v2/x/manifests/sha256:a`)).status).toBe(200); // GET, not a blob
    const limited = await send(`${p.url}/v2/x/manifests/v1`, { method: "PUT", body: Buffer.from("x") });
    expect(limited.status).toBe(429);
    expect(limited.headers["retry-after"]).toBe("2");
    expect(JSON.parse(limited.body.toString())).toMatchObject({ errors: [{ code: "UNAVAILABLE" }] });
    expect((await send(`${p.url}/v2/x/manifests/v1`, { method: "PUT", body: Buffer.from("y") })).status).toBe(
      201,
    );
    // The faulted requests never reached the registry.
    expect(upstreamSeen.map((seen) => `${seen.method} ${seen.body.toString()}`)).toEqual([
      "GET ",
      "GET ",
      "PUT y",
    ]);
    expect(p.faultCounts()).toEqual({ status: 3 });
  });

  it("can let the request through and lose the answer", async () => {
    const p = await start([
      { method: "PUT", count: 1, fault: { kind: "status", status: 500, when: "after" } },
    ]);
    const answer = await send(`${p.url}/v2/x/manifests/v1`, { method: "PUT", body: Buffer.from("written") });
    expect(answer.status).toBe(500);
    expect(upstreamSeen.map((seen) => seen.body.toString())).toEqual(["written"]);
  });

  it("resets the connection, before an answer or in the middle of a body", async () => {
    const p = await start([
      { path: "/before", fault: { kind: "reset" } },
      { path: "/middle", fault: { kind: "reset-mid-body", fraction: 0.25 } },
    ]);
    await expect(send(`${p.url}/before`)).rejects.toThrow(/ECONNRESET|socket hang up/);
    let received = 0;
    await expect(send(`${p.url}/middle`, { firstBytes: (n) => (received += n) })).rejects.toThrow(
      /ECONNRESET|aborted|incomplete/,
    );
    expect(received).toBe(PAYLOAD.length / 4);
  });

  it("sends fewer bytes than Content-Length promises", async () => {
    const p = await start([{ path: "/v2/", fault: { kind: "truncate", fraction: 0.5 } }]);
    let received = 0;
    let length: string | undefined;
    await expect(
      new Promise((resolve, reject) => {
        const request = httpRequest(`${p.url}/v2/x/blobs/sha256:a`, { agent: false }, (response) => {
          length = response.headers["content-length"];
          response.on("data", (chunk: Buffer) => (received += chunk.length));
          response.on("aborted", () => {
            reject(new Error("aborted"));
          });
          response.on("error", reject);
          response.on("end", () => {
            if (response.complete) resolve(received);
            else reject(new Error("incomplete"));
          });
        });
        request.on("error", reject);
        request.end();
      }),
    ).rejects.toThrow(/aborted|incomplete|ECONNRESET/);
    expect(length).toBe(String(PAYLOAD.length));
    expect(received).toBe(PAYLOAD.length / 2);
  });

  it("corrupts bytes under the right digest and length", async () => {
    const p = await start([{ method: "GET", count: 1, fault: { kind: "corrupt" } }]);
    const answer = await send(`${p.url}/v2/x/blobs/sha256:a`);
    expect(answer.headers["docker-content-digest"]).toBe(sha(PAYLOAD));
    expect(answer.body.length).toBe(PAYLOAD.length);
    expect(sha(answer.body)).not.toBe(sha(PAYLOAD));
    expect((await send(`${p.url}/v2/x/blobs/sha256:a`)).body.equals(PAYLOAD)).toBe(true);
  });

  it("delays, slows and stalls answers", async () => {
    const p = await start([
      { path: "/delay", fault: { kind: "delay", ms: 300 } },
      { path: "/slow", fault: { kind: "slow-body", bytesPerSecond: 64 * 1024 * 2 } },
      { path: "/stall-headers", fault: { kind: "stall" } },
      { path: "/stall-body", fault: { kind: "stall", fraction: 0.1 } },
    ]);
    expect((await send(`${p.url}/delay`)).ms).toBeGreaterThanOrEqual(290);
    const slow = await send(`${p.url}/slow`);
    expect(slow.body.equals(PAYLOAD)).toBe(true);
    expect(slow.ms).toBeGreaterThanOrEqual(400); // 64 KiB at 128 KiB/s in 10 steps
    await expect(send(`${p.url}/stall-headers`, { timeoutMs: 300 })).rejects.toThrow(/client timeout/);
    let received = 0;
    await expect(
      send(`${p.url}/stall-body`, { timeoutMs: 300, firstBytes: (n) => (received += n) }),
    ).rejects.toThrow(/client timeout|aborted|incomplete/);
    expect(received).toBe(Math.floor(PAYLOAD.length * 0.1));
  });

  it("redirects and answers as scripted", async () => {
    const p = await start([
      {
        path: "/r",
        fault: { kind: "redirect", location: (request) => `http://elsewhere.test${request.path}` },
      },
      {
        path: "/scripted",
        fault: {
          kind: "respond",
          respond: (_request, response) => {
            response.writeHead(418, { "content-length": 2 });
            response.end("no");
          },
        },
      },
    ]);
    const redirected = await send(`${p.url}/r/a`);
    expect([redirected.status, redirected.headers.location]).toEqual([307, "http://elsewhere.test/r/a"]);
    expect((await send(`${p.url}/scripted`)).status).toBe(418);
    expect(upstreamSeen).toEqual([]);
  });

  it("fails the same requests for the same seed, whatever the order they arrive in", async () => {
    const paths = Array.from({ length: 200 }, (_, i) => `/v2/x/blobs/sha256:${i}`);
    const failedWith = async (seed: number, order: string[]) => {
      const p = await start([{ probability: 0.2, fault: { kind: "status", status: 500 } }], seed);
      const failed: string[] = [];
      await Promise.all(
        order.map(async (path) => {
          if ((await send(`${p.url}${path}`)).status === 500) failed.push(path);
        }),
      );
      await p.stop();
      proxy = undefined;
      return failed.sort();
    };
    const first = await failedWith(7, paths);
    const reversed = await failedWith(7, [...paths].reverse());
    const other = await failedWith(8, paths);
    expect(reversed).toEqual(first);
    expect(other).not.toEqual(first);
    // About 20%.
    expect(first.length).toBeGreaterThan(20);
    expect(first.length).toBeLessThan(60);
    expect(seededUnit("a")).toBe(seededUnit("a"));
  });

  it("tells listeners about each request as it arrives, until they unsubscribe", async () => {
    const p = await start([{ path: "/v2/gone", fault: { kind: "status", status: 500 } }]);
    const seen: string[] = [];
    const stop = p.onRequest((request) => seen.push(`${request.method} ${request.path}`));
    await send(`${p.url}/v2/`);
    await send(`${p.url}/v2/gone`);
    stop();
    await send(`${p.url}/v2/later`);
    expect(seen).toEqual(["GET /v2/", "GET /v2/gone"]);
  });

  it("steps aside after skip and count, and takes new rules at run time", async () => {
    const p = await start([{ skip: 1, count: 1, fault: { kind: "status", status: 502 } }]);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await send(`${p.url}/v2/`)).status);
    expect(statuses).toEqual([200, 502, 200]);
    p.setRules([{ fault: { kind: "status", status: 503 } }]);
    expect((await send(`${p.url}/v2/`)).status).toBe(503);
    p.setRules([]);
    expect((await send(`${p.url}/v2/`)).status).toBe(200);
  });
  it("as a delay line, forwards unchanged and counts the requests in flight over any stretch", async () => {
    // Two requests held until both have arrived: they overlap for certain, whatever the timing.
    let arrived = 0;
    let release: () => void = () => undefined;
    const bothHere = new Promise<void>((resolve) => (release = resolve));
    proxy = await FaultProxy.start({
      upstream: upstreamUrl,
      latencyMs: 5,
      rules: [
        {
          path: "/v2/held",
          fault: {
            kind: "respond",
            respond: async (_request, response) => {
              arrived += 1;
              if (arrived === 2) release();
              await bothHere;
              response.writeHead(200, { "content-length": 0 });
              response.end();
            },
          },
        },
      ],
    });
    const p = proxy;
    const forwarded = await send(`${p.url}/v2/x/blobs/sha256:a`);
    expect(forwarded.body.equals(PAYLOAD)).toBe(true);
    await Promise.all([send(`${p.url}/v2/held`), send(`${p.url}/v2/held`)]);
    expect(p.spans.map((span) => span.path)).toEqual(["/v2/x/blobs/sha256:a", "/v2/held", "/v2/held"]);
    const held = p.spans.slice(1);
    const bothIn = Math.max(...held.map((span) => span.start));
    const firstOut = Math.min(...held.map((span) => span.end ?? Number.NaN));
    expect(firstOut).toBeGreaterThan(bothIn);
    expect(p.averageInFlight(bothIn, firstOut)).toBeCloseTo(2, 6);
    expect(p.requestsBetween(held[0]!.start, bothIn + 1)).toBe(2);
    const all = p.spans[0]!.start;
    const last = Math.max(...p.spans.map((span) => span.end ?? Number.NaN));
    const busy = p.spans.reduce((sum, span) => sum + (span.end ?? Number.NaN) - span.start, 0);
    expect(p.averageInFlight(all, last)).toBeCloseTo(busy / (last - all), 6);
  });
});
