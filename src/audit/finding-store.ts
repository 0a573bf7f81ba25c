import type Database from "better-sqlite3";
import { PromoterError, describeError } from "../errors.js";
import type { AuditRule, Verdict } from "./decide.js";
import type { AuditAction, EventSource, RegistryEvent } from "./event.js";
import { openSqlite } from "./sqlite.js";

/**
 * Durable findings in an embedded SQLite database (WAL mode, so `promoter audit findings` can
 * read while the server writes). One row per judged event, keyed by the event id: a redelivered
 * event is recorded once. Events whose judgement is pending (see decide.ts) wait in their own
 * table and survive a restart.
 *
 * A violation declared while the manifests could not be refreshed keeps its event, so it can be
 * judged again when the manifests' branch moves: one that a revision on the branch when it
 * arrived turns out to explain is retracted. The row then says `verified` with the new rule and reason, and
 * `retracted_*` keep what it said before and when it changed; its retraction is alerted like a
 * violation (docs/auditor.md, "Timing").
 */

/** The default database file, relative to the current directory. */
export const DEFAULT_AUDIT_DB = "promoter-audit.db";

export type AlertState = "none" | "pending" | "sent" | "failed";

export interface AuditFinding {
  /** Insertion order; stable, usable as a cursor. */
  readonly seq: number;
  readonly eventId: string;
  readonly verdict: Verdict;
  readonly rule: AuditRule;
  readonly action: AuditAction;
  /** `host/path`. */
  readonly repository: string;
  readonly digest: string | null;
  readonly tag: string | null;
  readonly mediaType: string | null;
  readonly reason: string;
  readonly parent: string | null;
  readonly subject: string | null;
  readonly source: EventSource;
  /** When the registry says it happened. */
  readonly eventTime: string | null;
  readonly receivedAt: string;
  readonly decidedAt: string;
  readonly alert: AlertState;
  /** Set when the finding was a violation and was corrected: what it said, and when it changed. */
  readonly retracted: Retraction | null;
  /** Delivery of the alert that says it was retracted. */
  readonly retractionAlert: AlertState;
}

export interface Retraction {
  /** ISO time of the correction. */
  readonly at: string;
  /** The violation's rule and reason. */
  readonly rule: AuditRule;
  readonly reason: string;
}

export type NewFinding = Omit<AuditFinding, "seq" | "retracted" | "retractionAlert">;

/** What a retracted violation says now. */
export interface Correction {
  readonly rule: AuditRule;
  readonly reason: string;
  readonly parent: string | null;
  readonly subject: string | null;
  /** ISO time. */
  readonly at: string;
  readonly alert: AlertState;
}

/** A violation that may be retracted, with the event it judged. */
export interface ViolationToReview {
  readonly finding: AuditFinding;
  readonly event: RegistryEvent;
}

export interface FindingFilter {
  readonly verdict?: Verdict;
  /** Exact `host/path`, or a prefix when it ends with `/`. */
  readonly repository?: string;
  readonly digest?: string;
  readonly tag?: string;
  /** Findings received at or after this ISO time. */
  readonly since?: string;
  /** Findings with `seq` below this (paging backwards from the newest). */
  readonly before?: number;
  readonly limit?: number;
}

export const DEFAULT_FINDINGS_LIMIT = 100;
export const MAX_FINDINGS_LIMIT = 10_000;

export interface PendingEvent {
  readonly event: RegistryEvent;
  readonly receivedAt: string;
  /** ISO time after which the event is judged finally. */
  readonly deadline: string;
}

export class AuditStoreError extends PromoterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("audit-store", message, options);
  }
}

const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS findings (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  verdict TEXT NOT NULL CHECK (verdict IN ('verified', 'violation')),
  rule TEXT NOT NULL,
  action TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT,
  tag TEXT,
  media_type TEXT,
  reason TEXT NOT NULL,
  parent TEXT,
  subject TEXT,
  source TEXT NOT NULL,
  event_time TEXT,
  received_at TEXT NOT NULL,
  decided_at TEXT NOT NULL,
  alert TEXT NOT NULL DEFAULT 'none',
  event TEXT,
  retracted_at TEXT,
  retracted_rule TEXT,
  retracted_reason TEXT,
  retraction_alert TEXT NOT NULL DEFAULT 'none'
);
CREATE INDEX IF NOT EXISTS findings_repository ON findings (repository, digest);
CREATE INDEX IF NOT EXISTS findings_verdict ON findings (verdict, seq);
CREATE INDEX IF NOT EXISTS findings_alert ON findings (alert) WHERE alert = 'pending';
CREATE TABLE IF NOT EXISTS pending_events (
  event_id TEXT PRIMARY KEY,
  event TEXT NOT NULL,
  received_at TEXT NOT NULL,
  deadline TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/** Schema 1 to 2: violations keep their event; retractions. */
const MIGRATE_1_TO_2 = `
ALTER TABLE findings ADD COLUMN event TEXT;
ALTER TABLE findings ADD COLUMN retracted_at TEXT;
ALTER TABLE findings ADD COLUMN retracted_rule TEXT;
ALTER TABLE findings ADD COLUMN retracted_reason TEXT;
ALTER TABLE findings ADD COLUMN retraction_alert TEXT NOT NULL DEFAULT 'none';
`;
const INDEXES_2 = `
CREATE INDEX IF NOT EXISTS findings_retraction_alert ON findings (retraction_alert) WHERE retraction_alert = 'pending';
`;

interface FindingRow {
  seq: number;
  event_id: string;
  verdict: Verdict;
  rule: AuditRule;
  action: AuditAction;
  repository: string;
  digest: string | null;
  tag: string | null;
  media_type: string | null;
  reason: string;
  parent: string | null;
  subject: string | null;
  source: EventSource;
  event_time: string | null;
  received_at: string;
  decided_at: string;
  alert: AlertState;
  /** Absent in a schema 1 database opened read-only. */
  retracted_at?: string | null;
  retracted_rule?: AuditRule | null;
  retracted_reason?: string | null;
  retraction_alert?: AlertState;
}

/** Findings from rows of `SELECT * FROM findings` (as `findingQuery` selects them). */
export function findingsFromRows(rows: readonly unknown[]): AuditFinding[] {
  return (rows as readonly FindingRow[]).map(fromRow);
}

/**
 * The SQL for a findings query, newest first (`seq` descending). Pure: the server runs it on its
 * reader thread, `audit findings` on its own connection.
 */
export function findingQuery(filter: FindingFilter = {}): { sql: string; params: (string | number)[] } {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (filter.verdict !== undefined) {
    where.push("verdict = ?");
    params.push(filter.verdict);
  }
  if (filter.repository !== undefined) {
    if (filter.repository.endsWith("/")) {
      where.push("substr(repository, 1, ?) = ?");
      params.push(filter.repository.length, filter.repository);
    } else {
      where.push("repository = ?");
      params.push(filter.repository);
    }
  }
  if (filter.digest !== undefined) {
    where.push("digest = ?");
    params.push(filter.digest);
  }
  if (filter.tag !== undefined) {
    where.push("tag = ?");
    params.push(filter.tag);
  }
  if (filter.since !== undefined) {
    where.push("received_at >= ?");
    params.push(filter.since);
  }
  if (filter.before !== undefined) {
    where.push("seq < ?");
    params.push(filter.before);
  }
  const limit = Math.min(Math.max(filter.limit ?? DEFAULT_FINDINGS_LIMIT, 1), MAX_FINDINGS_LIMIT);
  const sql = `SELECT * FROM findings ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ${limit}`;
  return { sql, params };
}

function fromRow(row: FindingRow): AuditFinding {
  return {
    seq: row.seq,
    eventId: row.event_id,
    verdict: row.verdict,
    rule: row.rule,
    action: row.action,
    repository: row.repository,
    digest: row.digest,
    tag: row.tag,
    mediaType: row.media_type,
    reason: row.reason,
    parent: row.parent,
    subject: row.subject,
    source: row.source,
    eventTime: row.event_time,
    receivedAt: row.received_at,
    decidedAt: row.decided_at,
    alert: row.alert,
    retracted:
      typeof row.retracted_at === "string" && typeof row.retracted_rule === "string"
        ? { at: row.retracted_at, rule: row.retracted_rule, reason: row.retracted_reason ?? "" }
        : null,
    retractionAlert: row.retraction_alert ?? "none",
  };
}

export class FindingStore {
  private readonly db: Database.Database;
  readonly path: string;
  private verdictCounts: Record<Verdict, number> | undefined;

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
  }

  /** Opens (and creates or migrates) the database for the server. */
  static open(path: string): FindingStore {
    let db: Database.Database;
    try {
      db = openSqlite(path);
      db.pragma("journal_mode = WAL");
      // Another process (audit findings) may hold a read transaction briefly.
      db.pragma("busy_timeout = 5000");
      db.pragma("synchronous = NORMAL");
      db.exec(SCHEMA);
      const version = db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get() as
        string | undefined;
      if (version === undefined) {
        db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
      } else if (Number(version) > SCHEMA_VERSION) {
        db.close();
        throw new AuditStoreError(
          `${path} was written by a newer image-promoter (schema ${version}, this one knows ${SCHEMA_VERSION})`,
        );
      } else if (Number(version) === 1) {
        db.transaction(() => {
          db.exec(MIGRATE_1_TO_2);
          db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(String(SCHEMA_VERSION));
        })();
      }
      db.exec(INDEXES_2);
    } catch (error) {
      if (error instanceof AuditStoreError) throw error;
      throw new AuditStoreError(`cannot open audit database ${path}: ${describeError(error)}`, {
        cause: error,
      });
    }
    const store = new FindingStore(db, path);
    store.countByVerdict();
    return store;
  }

  /** Opens an existing database read-only (for `promoter audit findings`). */
  static openReadOnly(path: string): FindingStore {
    try {
      const db = openSqlite(path, { readonly: true, fileMustExist: true });
      db.pragma("busy_timeout = 5000");
      return new FindingStore(db, path);
    } catch (error) {
      throw new AuditStoreError(`cannot open audit database ${path}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Whether this event id was judged or is pending: a redelivery. */
  hasEvent(eventId: string): boolean {
    const row = this.db
      .prepare(
        "SELECT 1 FROM findings WHERE event_id = ? UNION ALL SELECT 1 FROM pending_events WHERE event_id = ? LIMIT 1",
      )
      .get(eventId, eventId);
    return row !== undefined;
  }

  /**
   * Records a finding and drops the event from pending; undefined when it was already recorded.
   * A violation given `event` keeps it, to be judged again (`violationsToReview`).
   */
  record(finding: NewFinding, event?: RegistryEvent): AuditFinding | undefined {
    const insert = this.db.prepare(`
      INSERT OR IGNORE INTO findings (event_id, verdict, rule, action, repository, digest, tag, media_type,
        reason, parent, subject, source, event_time, received_at, decided_at, alert, event)
      VALUES (@eventId, @verdict, @rule, @action, @repository, @digest, @tag, @mediaType,
        @reason, @parent, @subject, @source, @eventTime, @receivedAt, @decidedAt, @alert, @event)`);
    const removePending = this.db.prepare("DELETE FROM pending_events WHERE event_id = ?");
    const run = this.db.transaction((value: NewFinding) => {
      const kept = value.verdict === "violation" && event !== undefined ? JSON.stringify(event) : null;
      const result = insert.run({ ...value, event: kept });
      removePending.run(value.eventId);
      return result.changes === 1 ? Number(result.lastInsertRowid) : undefined;
    });
    const seq = run(finding);
    if (seq === undefined) return undefined;
    if (this.verdictCounts) this.verdictCounts[finding.verdict] += 1;
    return { seq, ...finding, retracted: null, retractionAlert: "none" };
  }

  /**
   * Violations received at or after `receivedSince` (ISO time) that kept their event, newest
   * first, at most `limit`: what a move of the manifests' branch may explain.
   */
  violationsToReview(receivedSince: string, limit: number): ViolationToReview[] {
    const rows = this.db
      .prepare(
        "SELECT * FROM findings WHERE verdict = 'violation' AND event IS NOT NULL AND received_at >= ? ORDER BY seq DESC LIMIT ?",
      )
      .all(receivedSince, limit) as (FindingRow & { event: string })[];
    return rows.map((row) => ({ finding: fromRow(row), event: JSON.parse(row.event) as RegistryEvent }));
  }

  /**
   * Violations received before `receivedBefore` (ISO time) are final: they drop their event and
   * are never judged again. Returns how many.
   */
  settleViolations(receivedBefore: string): number {
    return this.db
      .prepare(
        "UPDATE findings SET event = NULL WHERE verdict = 'violation' AND event IS NOT NULL AND received_at < ?",
      )
      .run(receivedBefore).changes;
  }

  /**
   * Corrects a violation to verified, keeping what it said; undefined when it is no violation
   * (any more).
   */
  retract(seq: number, correction: Correction): AuditFinding | undefined {
    const result = this.db
      .prepare(
        `UPDATE findings SET verdict = 'verified', retracted_at = @at, retracted_rule = rule,
           retracted_reason = reason, rule = @rule, reason = @reason, parent = @parent,
           subject = @subject, retraction_alert = @alert, event = NULL
         WHERE seq = @seq AND verdict = 'violation'`,
      )
      .run({ seq, ...correction });
    if (result.changes !== 1) return undefined;
    if (this.verdictCounts) {
      this.verdictCounts.violation -= 1;
      this.verdictCounts.verified += 1;
    }
    const row = this.db.prepare("SELECT * FROM findings WHERE seq = ?").get(seq) as FindingRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  setRetractionAlertState(seq: number, state: AlertState): void {
    this.db.prepare("UPDATE findings SET retraction_alert = ? WHERE seq = ?").run(state, seq);
  }

  /** Retractions whose alert was not delivered yet. */
  undeliveredRetractionAlerts(): AuditFinding[] {
    const rows = this.db
      .prepare("SELECT * FROM findings WHERE retraction_alert = 'pending' ORDER BY seq")
      .all() as FindingRow[];
    return rows.map(fromRow);
  }

  addPending(pending: PendingEvent): boolean {
    const result = this.db
      .prepare(
        "INSERT OR IGNORE INTO pending_events (event_id, event, received_at, deadline) VALUES (?, ?, ?, ?)",
      )
      .run(pending.event.id, JSON.stringify(pending.event), pending.receivedAt, pending.deadline);
    return result.changes === 1;
  }

  removePending(eventId: string): void {
    this.db.prepare("DELETE FROM pending_events WHERE event_id = ?").run(eventId);
  }

  listPending(): PendingEvent[] {
    const rows = this.db
      .prepare("SELECT event, received_at, deadline FROM pending_events ORDER BY received_at, event_id")
      .all() as { event: string; received_at: string; deadline: string }[];
    return rows.map((row) => ({
      event: JSON.parse(row.event) as RegistryEvent,
      receivedAt: row.received_at,
      deadline: row.deadline,
    }));
  }

  pendingCount(): number {
    return this.db.prepare("SELECT COUNT(*) FROM pending_events").pluck().get() as number;
  }

  /** A verified tag in `repository` pointing at `digest`, or undefined. */
  verifiedTagFor(repository: string, digest: string): string | undefined {
    return this.db
      .prepare(
        "SELECT tag FROM findings WHERE repository = ? AND digest = ? AND verdict = 'verified' AND tag IS NOT NULL LIMIT 1",
      )
      .pluck()
      .get(repository, digest) as string | undefined;
  }

  setAlertState(seq: number, state: AlertState): void {
    this.db.prepare("UPDATE findings SET alert = ? WHERE seq = ?").run(state, seq);
  }

  /** Violations whose alert was not delivered yet (the process stopped before it could). */
  undeliveredAlerts(): AuditFinding[] {
    const rows = this.db
      .prepare("SELECT * FROM findings WHERE alert = 'pending' ORDER BY seq")
      .all() as FindingRow[];
    return rows.map(fromRow);
  }

  /** Newest first. */
  query(filter: FindingFilter = {}): AuditFinding[] {
    const { sql, params } = findingQuery(filter);
    return findingsFromRows(this.db.prepare(sql).all(...params));
  }

  /**
   * Findings per verdict over the database's whole life. Counted once, then kept up to date by
   * `record` (this process is the only writer): `GET /metrics` needs no token, so what it costs
   * must not grow with the database.
   */
  countByVerdict(): Record<Verdict, number> {
    if (!this.verdictCounts) {
      const counts: Record<Verdict, number> = { verified: 0, violation: 0 };
      const rows = this.db.prepare("SELECT verdict, COUNT(*) AS n FROM findings GROUP BY verdict").all() as {
        verdict: Verdict;
        n: number;
      }[];
      for (const row of rows) counts[row.verdict] = row.n;
      this.verdictCounts = counts;
    }
    return { ...this.verdictCounts };
  }
}
