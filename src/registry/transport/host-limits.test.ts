import { afterEach, describe, expect, it } from "vitest";
import { FakeClock, ScriptedRegistry, sendJson } from "../../../test/support/scripted-registry.js";
import { AbortedError } from "../../errors.js";
import { Semaphore } from "../../concurrency/index.js";
import { HostLimitTransport, RateLimiter } from "./host-limits.js";
import { SecurityPolicy } from "./security-policy.js";
import { UndiciTransport } from "./undici-transport.js";

describe("Semaphore", () => {
  it("admits at most its capacity, in order, and lets waits be aborted", async () => {
    const semaphore = new Semaphore(2);
    const a = await semaphore.acquire();
    const b = await semaphore.acquire();
    const order: string[] = [];
    const c = semaphore.acquire().then((release) => {
      order.push("c");
      return release;
    });
    const controller = new AbortController();
    const d = semaphore.acquire(controller.signal);
    const e = semaphore.acquire().then((release) => {
      order.push("e");
      return release;
    });
    expect(semaphore.waiting).toBe(3);
    controller.abort();
    await expect(d).rejects.toBeInstanceOf(AbortedError);
    a();
    a(); // a second release of the same slot does nothing
    (await c)();
    b();
    (await e)();
    expect(order).toEqual(["c", "e"]);
    expect(semaphore.inUse).toBe(0);
  });
});

describe("RateLimiter", () => {
  it("spaces request starts 1/rate apart", async () => {
    // A clock that stands still while requests queue: each wait is measured from the same now.
    const sleeps: number[] = [];
    const still = { now: () => 1000, sleep: (ms: number) => (sleeps.push(ms), Promise.resolve()) };
    const limiter = new RateLimiter(4, still);
    await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire()]);
    expect(sleeps).toEqual([250, 500]);
  });

  it("lets a request through at once after a quiet period", async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(2, clock);
    await limiter.acquire();
    clock.advance(5000);
    await limiter.acquire();
    expect(clock.sleeps).toEqual([]);
  });
});

describe("HostLimitTransport", () => {
  let server: ScriptedRegistry;
  let network: UndiciTransport;
  afterEach(async () => {
    await network.close();
    await server.stop();
  });

  it("keeps at most maxConcurrent requests in flight per host", async () => {
    server = await ScriptedRegistry.start();
    network = new UndiciTransport({ policy: new SecurityPolicy() });
    let inFlight = 0;
    let peak = 0;
    server.on("GET", "/x", async (_request, response) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 30));
      inFlight -= 1;
      sendJson(response, 200, {});
    });
    const transport = new HostLimitTransport(network, {
      defaults: { maxConcurrent: 8 },
      perHost: { "127.0.0.1": { maxConcurrent: 3 } },
      clock: new FakeClock(),
    });
    expect(transport.limitFor(server.host)).toEqual({ maxConcurrent: 3 });
    expect(transport.limitFor("other.example:443")).toEqual({ maxConcurrent: 8 });
    await Promise.all(
      Array.from({ length: 12 }, () =>
        transport.send({
          method: "GET",
          url: new URL("/x", server.url),
          context: { operation: "t", registry: "r" },
          bufferLimit: 100,
        }),
      ),
    );
    expect(server.requestsTo("/x")).toHaveLength(12);
    expect(peak).toBe(3);
  });
});
