import { describe, expect, it } from "vitest";
import { FakeClock } from "../../../test/support/scripted-registry.js";
import { QuotaPacer, QuotaSpent, readQuotaHeaders } from "./quota.js";
import type { ResponseHeaders } from "./types.js";

function headers(values: Record<string, string>): ResponseHeaders {
  const lower = new Map(Object.entries(values).map(([name, value]) => [name.toLowerCase(), value]));
  return {
    get: (name) => lower.get(name.toLowerCase()),
    all: (name) => {
      const value = lower.get(name.toLowerCase());
      return value === undefined ? [] : [value];
    },
  };
}

describe("readQuotaHeaders", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("reads the IETF draft's RateLimit-* fields, in seconds to the reset", () => {
    expect(
      readQuotaHeaders(
        headers({ "RateLimit-Limit": "100", "RateLimit-Remaining": "42", "RateLimit-Reset": "30" }),
        now,
      ),
    ).toEqual({ limit: 100, remaining: 42, resetMs: 30_000 });
  });

  it("reads Docker Hub's fields with a window, and the later draft's structured fields", () => {
    expect(
      readQuotaHeaders(
        headers({ "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600" }),
        now,
      ),
    ).toEqual({ limit: 100, remaining: 76, windowMs: 21_600_000 });
    expect(
      readQuotaHeaders(
        headers({ RateLimit: '"default";r=50;t=30', "RateLimit-Policy": '"default";q=100;w=60' }),
        now,
      ),
    ).toEqual({ limit: 100, remaining: 50, resetMs: 30_000, windowMs: 60_000 });
  });

  it("takes a reset in Unix seconds as a time, and ignores what it cannot read", () => {
    expect(readQuotaHeaders(headers({ "RateLimit-Reset": String(now / 1000 + 12) }), now)).toEqual({
      resetMs: 12_000,
    });
    expect(readQuotaHeaders(headers({ "RateLimit-Remaining": "many" }), now)).toEqual({});
  });
});

describe("QuotaPacer", () => {
  it("pauses for Retry-After after a 429, halves the pace once per burst, and counts the wait once", async () => {
    const clock = new FakeClock();
    const pacer = new QuotaPacer({ clock, maxWaitMs: 60_000 });
    // A burst of four requests in one instant, all answered 429.
    const started = await Promise.all([1, 2, 3, 4].map(() => pacer.acquire()));
    for (const startedAt of started) pacer.observe(429, headers({ "Retry-After": "2" }), startedAt);
    expect(pacer.throttledResponses).toBe(4);
    // Four starts in the last second: half of that pace, 2 requests/s.
    expect(pacer.slowedToPerSecond()).toBe(2);
    const before = clock.now();
    await Promise.all([pacer.acquire(), pacer.acquire()]);
    // Paused 2 s, then the second start 500 ms after the first (the fake clock has moved on
    // by the first sleep when the second request asks).
    expect(clock.sleeps).toEqual([2000, 500]);
    expect(clock.now() - before).toBe(2500);
    expect(pacer.waitedMs).toBe(2500);
  });

  it("spreads an advertised budget over the time to its reset and keeps a reserve", async () => {
    const clock = new FakeClock();
    const pacer = new QuotaPacer({ clock, maxWaitMs: 60_000 });
    const first = await pacer.acquire();
    // 11 left of 100 with 10 s to go: the reserve is 10, so 1 more request in 10 s.
    pacer.observe(
      200,
      headers({ "RateLimit-Limit": "100", "RateLimit-Remaining": "11", "RateLimit-Reset": "10" }),
      first,
    );
    await pacer.acquire();
    await pacer.acquire();
    expect(clock.sleeps).toEqual([10_000]);
    // At the reserve: paused until the reset.
    pacer.observe(
      200,
      headers({ "RateLimit-Limit": "100", "RateLimit-Remaining": "10", "RateLimit-Reset": "20" }),
      clock.now(),
    );
    const before = clock.now();
    await pacer.acquire();
    expect(clock.now() - before).toBe(20_000);
  });

  it("refuses at once when the quota is spent for longer than the run waits", async () => {
    const clock = new FakeClock();
    const pacer = new QuotaPacer({ clock, maxWaitMs: 60_000 });
    pacer.observe(429, headers({ "Retry-After": "600" }), clock.now());
    await expect(pacer.acquire()).rejects.toBeInstanceOf(QuotaSpent);
    expect(pacer.refusedRequests).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });
});
