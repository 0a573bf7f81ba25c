import { describe, expect, it } from "vitest";
import { parseSince } from "./since.js";

const now = new Date("2026-12-05T12:00:00Z");
const daysAgo = (days: number) => new Date(now.getTime() - days * 86_400_000).toISOString();

describe("--manifest-diff-since", () => {
  it("reads Go-style durations with days and weeks", () => {
    expect(parseSince("14d", now).toISOString()).toBe(daysAgo(14));
    expect(parseSince("2w", now).toISOString()).toBe(daysAgo(14));
    expect(parseSince("36h", now).toISOString()).toBe(daysAgo(1.5));
    expect(parseSince("1h30m", now).toISOString()).toBe("2026-12-05T10:30:00.000Z");
  });

  it("reads git's relative forms, as kpromo's examples write them", () => {
    expect(parseSince("7 days", now).toISOString()).toBe(daysAgo(7));
    expect(parseSince("24 hours", now).toISOString()).toBe(daysAgo(1));
    expect(parseSince("1 week", now).toISOString()).toBe(daysAgo(7));
    expect(parseSince("2 weeks ago", now).toISOString()).toBe(daysAgo(14));
    expect(parseSince("7.days.ago", now).toISOString()).toBe(daysAgo(7));
    expect(parseSince("3 months", now).toISOString()).toBe("2026-09-05T12:00:00.000Z");
  });

  it("reads ISO dates, UTC when no zone is given", () => {
    expect(parseSince("2026-11-01", now).toISOString()).toBe("2026-11-01T00:00:00.000Z");
    expect(parseSince("2026-11-01T08:30:00+02:00", now).toISOString()).toBe("2026-11-01T06:30:00.000Z");
  });

  it("refuses what git would silently read as now or the future", () => {
    for (const text of ["garbage", "14", "14 fortnights", "", "d14", "2026-13-45"]) {
      expect(() => parseSince(text, now), text).toThrow(/is not a duration this promoter reads/);
    }
  });

  it("refuses a moment in the future or beyond a date's range (an empty window, or a crash)", () => {
    expect(() => parseSince("2099-01-01", now)).toThrow(/2099-01-01T00:00:00.000Z, in the future/);
    expect(() => parseSince("2026-12-05T13:00", now)).toThrow(/in the future/);
    for (const text of ["99999999999999d", "999999 years"]) {
      expect(() => parseSince(text, now), text).toThrow(/further than a date can/);
    }
    expect(parseSince("0s", now).toISOString()).toBe(now.toISOString());
  });
});
