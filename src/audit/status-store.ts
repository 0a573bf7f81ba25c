import type Database from "better-sqlite3";
import { describeError } from "../errors.js";
import { EDGE_OUTCOME_KINDS } from "../plan/index.js";
import { AuditStoreError } from "./finding-store.js";
import { openSqlite } from "./sqlite.js";
import { NO_EVIDENCE, PRESENT_OUTCOMES, type DigestEvidence } from "./status-model.js";

/**
 * What the status page adds to the findings database (docs/auditor.md, "Status page"):
 * acknowledgements of findings (who, why, when) and the promotion reports CI uploads
 * (`POST /status/api/reports`), with the latest outcome of every edge, so the page can say what
 * each mirror holds. Its own connection on the auditor's database file; its tables are created
 * when missing, so an older database gains them and keeps its findings.
 */

const STATUS_SCHEMA = `
CREATE TABLE IF NOT EXISTS acknowledgements (
  seq INTEGER PRIMARY KEY,
  by TEXT NOT NULL,
  reason TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS promotion_reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at TEXT NOT NULL,
  created_at TEXT,
  change TEXT,
  approved_by TEXT NOT NULL,
  revision TEXT,
  outcomes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS promotion_report_edges (
  report_id INTEGER NOT NULL,
  destination TEXT NOT NULL,
  digest TEXT NOT NULL,
  tag TEXT,
  outcome TEXT NOT NULL,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS promotion_report_edges_report ON promotion_report_edges (report_id);
CREATE TABLE IF NOT EXISTS edge_states (
  destination TEXT NOT NULL,
  digest TEXT NOT NULL,
  tag TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT,
  report_id INTEGER NOT NULL,
  first_present TEXT,
  PRIMARY KEY (destination, digest, tag)
);
`;

/** Most edges of a report kept for the promotions view (unchanged edges are only counted). */
export const MAX_LISTED_REPORT_EDGES = 2000;
/**
 * Most edges one answer of the promotions view lists, over all its reports, newest first; the
 * rest are counted (`unlistedEdges`). Keeps the answer a few MB at most whatever was uploaded.
 */
export const MAX_VIEWED_REPORT_EDGES = 500;
/** Longest text of an uploaded field; a tag has at most 128 characters (OCI distribution spec). */
const MAX_FIELD = 4096;
const MAX_TAG = 128;
const MAX_DIGEST = 256;
/** Longest approver name, revision and time: logins, e-mail addresses, commit ids. */
const MAX_NAME = 256;

export interface Acknowledgement {
  readonly seq: number;
  readonly by: string;
  readonly reason: string;
  readonly at: string;
}

/** One edge of an uploaded report, as the promotions view lists it. */
export interface ReportEdge {
  readonly destination: string;
  readonly digest: string;
  readonly tag: string | null;
  readonly outcome: string;
  readonly reason: string | null;
}

/** A promotion report as uploaded, checked (parseReportUpload). */
export interface ReportUpload {
  readonly createdAt: string | null;
  /** A link to the change (pull request, commit) that asked for the promotion. */
  readonly change: string | null;
  readonly approvedBy: readonly string[];
  readonly revision: string | null;
  readonly edges: readonly ReportEdge[];
}

export interface StoredReport {
  readonly id: number;
  readonly receivedAt: string;
  readonly createdAt: string | null;
  readonly change: string | null;
  readonly approvedBy: readonly string[];
  readonly revision: string | null;
  readonly outcomes: Readonly<Record<string, number>>;
  /** Edges that did something or failed (not `unchanged`), at most MAX_LISTED_REPORT_EDGES. */
  readonly edges: readonly ReportEdge[];
  /** Edges that did something or failed but are not in `edges` (MAX_VIEWED_REPORT_EDGES). */
  readonly unlistedEdges: number;
}

/** An uploaded report that is not a promotion report. */
export class ReportUploadError extends Error {}

function text(value: unknown, where: string, optional: true, max?: number): string | null;
function text(value: unknown, where: string, optional?: false, max?: number): string;
function text(value: unknown, where: string, optional = false, max = MAX_FIELD): string | null {
  if ((value === undefined || value === null) && optional) return null;
  if (typeof value !== "string" || value.length > max) {
    throw new ReportUploadError(`${where} must be text (at most ${max.toLocaleString("en")} characters)`);
  }
  return value;
}

/**
 * One of promote's outcomes (docs/promotion.md): anything else would become a key of the
 * report's counts, shown in every later view.
 */
function outcome(value: unknown, where: string): string {
  if (typeof value !== "string" || !(EDGE_OUTCOME_KINDS as readonly string[]).includes(value)) {
    throw new ReportUploadError(`${where} must be one of ${EDGE_OUTCOME_KINDS.join(", ")}`);
  }
  return value;
}

/** A failed edge's `error` is `{code, message, side?}` in promote's report; older uploads sent text. */
function edgeReason(edge: Record<string, unknown>, where: string): string | null {
  const error = edge.error;
  if (isObject(error)) return text(error.message, `${where}.error.message`);
  if (error !== undefined && error !== null) return text(error, `${where}.error`);
  return text(edge.reason, `${where}.reason`, true);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks an upload: either the report of `promoter promote --report FILE` (docs/promotion.md,
 * "JSON plan and report") or `{"report": <it>, "change": URL, "approvedBy": [names], "revision": SHA}`,
 * which CI writes to say which change and whose approval the promotion carried out.
 */
export function parseReportUpload(json: unknown): ReportUpload {
  if (!isObject(json)) throw new ReportUploadError("expected a JSON object");
  const envelope = isObject(json.report) ? json : { report: json };
  const report = envelope.report as Record<string, unknown>;
  if (report.schema !== "image-promoter/promotion" || report.kind !== "report") {
    throw new ReportUploadError(
      'expected the report of promoter promote --report (schema "image-promoter/promotion", kind "report")',
    );
  }
  if (!Array.isArray(report.edges)) throw new ReportUploadError("report.edges must be a list");
  const approvedBy = envelope.approvedBy ?? [];
  if (!Array.isArray(approvedBy) || approvedBy.length > 100) {
    throw new ReportUploadError("approvedBy must be a list of at most 100 names");
  }
  const edges = report.edges.map((edge: unknown, index): ReportEdge => {
    const where = `report.edges[${index}]`;
    if (!isObject(edge)) throw new ReportUploadError(`${where} must be an object`);
    return {
      destination: text(edge.destination, `${where}.destination`),
      digest: text(edge.digest, `${where}.digest`, false, MAX_DIGEST),
      tag: text(edge.tag, `${where}.tag`, true, MAX_TAG),
      outcome: outcome(edge.outcome, `${where}.outcome`),
      reason: edgeReason(edge, where),
    };
  });
  return {
    createdAt: text(report.createdAt, "report.createdAt", true, MAX_NAME),
    change: text(envelope.change, "change", true),
    approvedBy: approvedBy.map((name, index) => text(name, `approvedBy[${index}]`, false, MAX_NAME)),
    revision: text(envelope.revision, "revision", true, MAX_NAME),
    edges,
  };
}

interface ReportRow {
  id: number;
  received_at: string;
  created_at: string | null;
  change: string | null;
  approved_by: string;
  revision: string | null;
  outcomes: string;
}

export class StatusStore {
  private readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /** Opens the auditor's database (FindingStore.open created it) and adds the page's tables. */
  static open(path: string): StatusStore {
    try {
      const db = openSqlite(path, { fileMustExist: true });
      db.pragma("busy_timeout = 5000");
      db.exec(STATUS_SCHEMA);
      return new StatusStore(db);
    } catch (error) {
      throw new AuditStoreError(`cannot open audit database ${path}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Records an acknowledgement; false when the finding does not exist or already has one. */
  acknowledge(ack: Acknowledgement): boolean {
    const exists = this.db.prepare("SELECT 1 FROM findings WHERE seq = ?").get(ack.seq);
    if (exists === undefined) return false;
    const result = this.db
      .prepare(
        "INSERT OR IGNORE INTO acknowledgements (seq, by, reason, at) VALUES (@seq, @by, @reason, @at)",
      )
      .run(ack);
    return result.changes === 1;
  }

  acknowledgements(seqs: readonly number[]): Map<number, Acknowledgement> {
    const found = new Map<number, Acknowledgement>();
    if (seqs.length === 0) return found;
    const rows = this.db
      .prepare(
        `SELECT seq, by, reason, at FROM acknowledgements WHERE seq IN (${seqs.map(() => "?").join(",")})`,
      )
      .all(...seqs) as Acknowledgement[];
    for (const row of rows) found.set(row.seq, row);
    return found;
  }

  /** Stores an uploaded report and the latest outcome of each of its edges; returns its id. */
  addReport(upload: ReportUpload, receivedAt: string): number {
    const outcomes: Record<string, number> = {};
    for (const edge of upload.edges) outcomes[edge.outcome] = (outcomes[edge.outcome] ?? 0) + 1;
    const insertReport = this.db.prepare(
      "INSERT INTO promotion_reports (received_at, created_at, change, approved_by, revision, outcomes) VALUES (?, ?, ?, ?, ?, ?)",
    );
    const insertEdge = this.db.prepare(
      "INSERT INTO promotion_report_edges (report_id, destination, digest, tag, outcome, reason) VALUES (?, ?, ?, ?, ?, ?)",
    );
    // A later report that fails an edge does not unsee a digest that was there: first_present stays.
    const upsertState = this.db.prepare(`
      INSERT INTO edge_states (destination, digest, tag, outcome, reason, report_id, first_present)
      VALUES (@destination, @digest, @tag, @outcome, @reason, @report, @present)
      ON CONFLICT (destination, digest, tag) DO UPDATE SET outcome = excluded.outcome,
        reason = excluded.reason, report_id = excluded.report_id,
        first_present = coalesce(edge_states.first_present, excluded.first_present)`);
    const run = this.db.transaction(() => {
      const id = Number(
        insertReport.run(
          receivedAt,
          upload.createdAt,
          upload.change,
          JSON.stringify(upload.approvedBy),
          upload.revision,
          JSON.stringify(outcomes),
        ).lastInsertRowid,
      );
      let listed = 0;
      for (const edge of upload.edges) {
        if (edge.outcome !== "unchanged" && listed < MAX_LISTED_REPORT_EDGES) {
          insertEdge.run(id, edge.destination, edge.digest, edge.tag, edge.outcome, edge.reason);
          listed += 1;
        }
        upsertState.run({
          ...edge,
          tag: edge.tag ?? "",
          report: id,
          present: PRESENT_OUTCOMES.has(edge.outcome) ? (upload.createdAt ?? receivedAt) : null,
        });
      }
      return id;
    });
    return run();
  }

  /** The newest reports first, with at most MAX_VIEWED_REPORT_EDGES edges listed in all. */
  recentReports(limit: number): StoredReport[] {
    const rows = this.db
      .prepare("SELECT * FROM promotion_reports ORDER BY id DESC LIMIT ?")
      .all(limit) as ReportRow[];
    const edges = this.db.prepare(
      "SELECT destination, digest, tag, outcome, reason FROM promotion_report_edges WHERE report_id = ? ORDER BY rowid LIMIT ?",
    );
    let budget = MAX_VIEWED_REPORT_EDGES;
    return rows.map((row) => {
      const outcomes = JSON.parse(row.outcomes) as Record<string, number>;
      const listed = budget > 0 ? (edges.all(row.id, budget) as ReportEdge[]) : [];
      budget -= listed.length;
      const changed = Object.entries(outcomes)
        .filter(([kind]) => kind !== "unchanged")
        .reduce((sum, [, count]) => sum + count, 0);
      return {
        id: row.id,
        receivedAt: row.received_at,
        createdAt: row.created_at,
        change: row.change,
        approvedBy: JSON.parse(row.approved_by) as string[],
        revision: row.revision,
        outcomes,
        edges: listed,
        unlistedEdges: Math.max(0, changed - listed.length),
      };
    });
  }

  /**
   * What the auditor knows of the digests promoted into `repositories`: verified pushes and
   * attachments among the findings, unacknowledged violations, and the edges of uploaded reports.
   * Keyed `repository digest`; `violated` holds the repositories with an unacknowledged violation.
   */
  evidence(repositories: readonly string[]): {
    byDigest: Map<string, DigestEvidence>;
    violated: Set<string>;
  } {
    const result = new Map<string, DigestEvidence>();
    const violated = new Set<string>();
    if (repositories.length === 0) return { byDigest: result, violated };
    const marks = repositories.map(() => "?").join(",");
    const get = (
      repository: string,
      digest: string,
    ): DigestEvidence & { tags: string[]; approvedBy: string[] } => {
      const key = `${repository} ${digest}`;
      let found = result.get(key) as (DigestEvidence & { tags: string[]; approvedBy: string[] }) | undefined;
      if (!found) {
        found = { ...NO_EVIDENCE, tags: [], approvedBy: [] };
        result.set(key, found);
      }
      return found;
    };
    type Mutable = { -readonly [K in keyof DigestEvidence]: DigestEvidence[K] };
    const findings = this.db
      .prepare(
        `SELECT f.repository, f.digest, f.tag, f.verdict, f.rule, f.subject, f.received_at, a.seq AS acked
         FROM findings f LEFT JOIN acknowledgements a ON a.seq = f.seq
         WHERE f.repository IN (${marks}) AND f.action = 'push' ORDER BY f.seq`,
      )
      .all(...repositories) as {
      repository: string;
      digest: string | null;
      tag: string | null;
      verdict: string;
      rule: string;
      subject: string | null;
      received_at: string;
      acked: number | null;
    }[];
    for (const row of findings) {
      if (row.verdict === "violation") {
        if (row.acked === null) violated.add(row.repository);
        if (row.digest !== null && row.acked === null)
          (get(row.repository, row.digest) as Mutable).violation = true;
        continue;
      }
      if (row.rule === "attached-artifact-tag" || row.rule === "referrer-of-promoted-digest") {
        if (row.subject === null) continue;
        const subject = get(row.repository, row.subject) as Mutable;
        if (row.tag?.endsWith(".att") === true) subject.attestation = true;
        else if (row.tag === null || row.tag.endsWith(".sig") || /^sha256-[0-9a-f]{64}$/.test(row.tag))
          subject.signature = true;
        continue;
      }
      if (row.digest === null) continue;
      const seen = get(row.repository, row.digest);
      (seen as Mutable).present = true;
      if (seen.firstSeen === null || row.received_at < seen.firstSeen)
        (seen as Mutable).firstSeen = row.received_at;
      if (row.tag !== null && !seen.tags.includes(row.tag)) seen.tags.push(row.tag);
    }
    const edges = this.db
      .prepare(
        `SELECT s.destination, s.digest, s.tag, s.outcome, s.reason, s.first_present, r.change, r.approved_by
         FROM edge_states s JOIN promotion_reports r ON r.id = s.report_id
         WHERE s.destination IN (${marks})`,
      )
      .all(...repositories) as {
      destination: string;
      digest: string;
      tag: string;
      outcome: string;
      reason: string | null;
      first_present: string | null;
      change: string | null;
      approved_by: string;
    }[];
    for (const row of edges) {
      const seen = get(row.destination, row.digest);
      const mutable = seen as Mutable;
      if (row.first_present !== null) {
        mutable.present = true;
        if (seen.firstSeen === null || row.first_present < seen.firstSeen)
          mutable.firstSeen = row.first_present;
        if (row.tag !== "" && PRESENT_OUTCOMES.has(row.outcome) && !seen.tags.includes(row.tag))
          seen.tags.push(row.tag);
      }
      if (!PRESENT_OUTCOMES.has(row.outcome))
        mutable.problem = `${row.outcome}${row.reason ? `: ${row.reason}` : ""}`;
      else if (row.outcome !== "unchanged" || seen.change === null) {
        mutable.change = row.change;
        mutable.approvedBy = JSON.parse(row.approved_by) as string[];
      }
    }
    return { byDigest: result, violated };
  }
}
