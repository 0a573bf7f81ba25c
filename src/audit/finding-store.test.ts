import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Digest, RepositoryPath, Tag } from "../reference/index.js";
import type { RegistryEvent } from "./event.js";
import { FindingStore, type NewFinding } from "./finding-store.js";

const DIGEST = `sha256:${"a".repeat(64)}` as Digest;
const RECEIVED_AT = "2026-01-01T00:00:00.000Z";

function pushEvent(id: string): RegistryEvent {
  return {
    id,
    source: "distribution",
    action: "push",
    targetKind: "manifest",
    host: "registry.example",
    attribution: "endpoint",
    repository: "prod/hello" as RepositoryPath,
    digest: DIGEST,
    tag: "v1.0.0" as Tag,
  };
}

function finding(eventId: string, verdict: "violation" | "verified"): NewFinding {
  return {
    eventId,
    verdict,
    rule: verdict === "violation" ? "unexpected-tag" : "promoted-tag",
    action: "push",
    repository: "registry.example/prod/hello",
    digest: DIGEST,
    tag: "v1.0.0",
    mediaType: null,
    reason: verdict === "violation" ? "no manifest asks for it" : "promoted",
    parent: null,
    subject: null,
    source: "distribution",
    eventTime: null,
    receivedAt: RECEIVED_AT,
    decidedAt: RECEIVED_AT,
    alert: verdict === "violation" ? "sent" : "none",
  };
}

describe("FindingStore retractions", () => {
  let directory: string;
  let file: string;
  let store: FindingStore;

  beforeEach(() => {
    directory = mkdtempSync(path.join(os.tmpdir(), "finding-store-"));
    file = path.join(directory, "audit.db");
    store = FindingStore.open(file);
  });

  afterEach(() => {
    store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("keeps the event of a violation only, for review", () => {
    store.record(finding("violation-1", "violation"), pushEvent("violation-1"));
    store.record(finding("verified-1", "verified"), pushEvent("verified-1"));
    const toReview = store.violationsToReview("2025-12-31T23:00:00.000Z", 10);
    expect(toReview.map(({ finding: kept, event }) => [kept.eventId, event.id])).toEqual([
      ["violation-1", "violation-1"],
    ]);
    expect(store.violationsToReview("2026-01-01T00:00:01.000Z", 10)).toEqual([]);
  });

  it("corrects a violation to verified, keeps what it said, and queues its retraction alert once", () => {
    const recorded = store.record(finding("violation-1", "violation"), pushEvent("violation-1"));
    const seq = recorded?.seq ?? -1;
    const corrected = store.retract(seq, {
      rule: "promoted-tag",
      reason: "promoted (by the manifests of commit 0123456789ab)",
      parent: null,
      subject: null,
      at: "2026-01-01T00:01:00.000Z",
      alert: "pending",
    });
    expect(corrected).toMatchObject({
      verdict: "verified",
      rule: "promoted-tag",
      alert: "sent",
      retractionAlert: "pending",
      retracted: {
        at: "2026-01-01T00:01:00.000Z",
        rule: "unexpected-tag",
        reason: "no manifest asks for it",
      },
    });
    expect(store.countByVerdict()).toMatchObject({ violation: 0, verified: 1 });
    expect(store.violationsToReview("2025-12-31T23:00:00.000Z", 10)).toEqual([]);
    expect(store.undeliveredRetractionAlerts().map((kept) => kept.seq)).toEqual([seq]);
    store.setRetractionAlertState(seq, "sent");
    expect(store.undeliveredRetractionAlerts()).toEqual([]);
    // Retracted once: a second correction changes nothing.
    expect(
      store.retract(seq, {
        rule: "promoted-digest",
        reason: "again",
        parent: null,
        subject: null,
        at: "2026-01-01T00:02:00.000Z",
        alert: "pending",
      }),
    ).toBeUndefined();
  });

  it("opens a database of schema 1 and migrates it, keeping its findings", () => {
    store.record(finding("old-1", "violation"));
    store.close();
    // Turn it back into what the previous version wrote.
    const db = new Database(file);
    db.exec("DROP INDEX findings_retraction_alert");
    for (const column of [
      "event",
      "retracted_at",
      "retracted_rule",
      "retracted_reason",
      "retraction_alert",
    ]) {
      db.exec(`ALTER TABLE findings DROP COLUMN ${column}`);
    }
    db.prepare("UPDATE meta SET value = '1' WHERE key = 'schema'").run();
    db.close();

    store = FindingStore.open(file);
    expect(store.query().map((kept) => [kept.eventId, kept.verdict, kept.retracted])).toEqual([
      ["old-1", "violation", null],
    ]);
    // An old violation kept no event: it is never reviewed.
    expect(store.violationsToReview("2025-12-31T23:00:00.000Z", 10)).toEqual([]);
    store.record(finding("new-1", "violation"), pushEvent("new-1"));
    expect(store.violationsToReview("2025-12-31T23:00:00.000Z", 10)).toHaveLength(1);
  });
});
