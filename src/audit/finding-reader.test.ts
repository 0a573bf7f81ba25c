import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FindingReader, FindingReaderBusyError } from "./finding-reader.js";
import { FindingStore, type NewFinding } from "./finding-store.js";

function finding(i: number): NewFinding {
  return {
    eventId: `distribution:reader-${i}`,
    verdict: i % 2 === 0 ? "violation" : "verified",
    rule: "unexpected-tag",
    action: "push",
    repository: "reg.example/prod/app",
    digest: `sha256:${i.toString(16).padStart(64, "0")}`,
    tag: `t${i}`,
    mediaType: null,
    reason: "test",
    parent: null,
    subject: null,
    source: "distribution",
    eventTime: null,
    receivedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    decidedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    alert: "none",
  };
}

let directory: string;
let file: string;
let store: FindingStore;

beforeAll(() => {
  directory = mkdtempSync(path.join(os.tmpdir(), "promoter-finding-reader-"));
  file = path.join(directory, "audit.db");
  store = FindingStore.open(file);
  for (let i = 0; i < 20; i++) store.record(finding(i));
});

afterAll(() => {
  store.close();
  rmSync(directory, { recursive: true, force: true });
});

describe("FindingReader", () => {
  it("answers what the store answers, from its own thread", async () => {
    const reader = new FindingReader(file);
    try {
      for (const filter of [{}, { verdict: "violation" as const, limit: 3 }, { tag: "t7" }, { before: 5 }]) {
        expect(await reader.query(filter)).toEqual(store.query(filter));
      }
      // Written after the reader started: seen (the WAL is shared).
      store.record(finding(20));
      expect((await reader.query({ limit: 1 }))[0]?.tag).toBe("t20");
    } finally {
      await reader.close();
    }
  });

  it("refuses more waiting reads than it may queue, as busy", async () => {
    const reader = new FindingReader(file, { maxQueued: 1 });
    try {
      const first = reader.query({});
      await expect(reader.query({})).rejects.toThrow(FindingReaderBusyError);
      expect((await first).length).toBeGreaterThan(0);
    } finally {
      await reader.close();
    }
  });

  it("gives up a read that takes too long and answers the next one with a new worker", async () => {
    const reader = new FindingReader(file, { timeoutMs: 0 });
    await expect(reader.query({})).rejects.toThrow(/took longer than/);
    await reader.close();
    const patient = new FindingReader(file);
    expect((await patient.query({ limit: 2 })).length).toBe(2);
    await patient.close();
  });
});

describe("FindingStore.countByVerdict", () => {
  it("counts once, then follows what this store records, without asking the database again", () => {
    const own = path.join(directory, "counts.db");
    const counting = FindingStore.open(own);
    try {
      counting.record(finding(1));
      counting.record(finding(2));
      counting.record(finding(2)); // a redelivery is not counted twice
      expect(counting.countByVerdict()).toEqual({ verified: 1, violation: 1 });
      // Rows removed behind its back do not change what it reports: no query per call.
      const other = new Database(own);
      other.prepare("DELETE FROM findings").run();
      other.close();
      expect(counting.countByVerdict()).toEqual({ verified: 1, violation: 1 });
      counting.record(finding(4));
      expect(counting.countByVerdict()).toEqual({ verified: 1, violation: 2 });
    } finally {
      counting.close();
    }
  });
});
