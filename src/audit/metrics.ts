/**
 * The auditor's Prometheus metrics, rendered in the text exposition format:
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 * Counters live in memory (they restart at zero, which Prometheus handles); totals that must
 * survive restarts come from the findings database at scrape time.
 */

export type EventOutcome = "verified" | "violation" | "ignored" | "duplicate" | "pending" | "invalid";
export type RejectReason = "unauthorized" | "too-large" | "malformed" | "method" | "not-found" | "media-type";

export class AuditMetrics {
  readonly events = new Map<EventOutcome, number>();
  readonly rejected = new Map<RejectReason, number>();
  alertsSent = 0;
  alertFailures = 0;
  manifestReloads = 0;
  manifestReloadFailures = 0;
  /** Checks of the manifests (git fetch or file scan), polled or asked for before a violation. */
  manifestChecks = 0;
  manifestCheckFailures = 0;
  /** Violations corrected to verified. */
  retractions = 0;
  /** Epoch milliseconds of the last successful manifest load; undefined before the first. */
  lastManifestLoad: number | undefined;
  desiredRepositories = 0;
  desiredEdges = 0;

  countEvent(outcome: EventOutcome, by = 1): void {
    this.events.set(outcome, (this.events.get(outcome) ?? 0) + by);
  }

  countRejected(reason: RejectReason): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  /**
   * The exposition text. `findings` are the database totals per verdict, `pending` the events
   * waiting for a final judgement, `nowMs` the clock.
   */
  render(snapshot: { findings: Record<string, number>; pending: number; nowMs: number }): string {
    const lines: string[] = [];
    const family = (name: string, type: "counter" | "gauge", help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    family("promoter_audit_events_total", "counter", "Registry events received since start, by outcome.");
    const outcomes: EventOutcome[] = ["verified", "violation", "ignored", "duplicate", "pending", "invalid"];
    for (const outcome of outcomes) {
      lines.push(`promoter_audit_events_total{verdict="${outcome}"} ${this.events.get(outcome) ?? 0}`);
    }
    family("promoter_audit_findings", "gauge", "Findings stored in the audit database, by verdict.");
    for (const [verdict, count] of Object.entries(snapshot.findings)) {
      lines.push(`promoter_audit_findings{verdict="${verdict}"} ${count}`);
    }
    family(
      "promoter_audit_pending_events",
      "gauge",
      "Tagless manifest pushes waiting for a final judgement.",
    );
    lines.push(`promoter_audit_pending_events ${snapshot.pending}`);
    family("promoter_audit_requests_rejected_total", "counter", "Notification requests refused, by reason.");
    const reasons: RejectReason[] = [
      "unauthorized",
      "too-large",
      "malformed",
      "method",
      "not-found",
      "media-type",
    ];
    for (const reason of reasons) {
      lines.push(
        `promoter_audit_requests_rejected_total{reason="${reason}"} ${this.rejected.get(reason) ?? 0}`,
      );
    }
    family("promoter_audit_alerts_sent_total", "counter", "Alerts delivered to the alert webhook.");
    lines.push(`promoter_audit_alerts_sent_total ${this.alertsSent}`);
    family(
      "promoter_audit_alert_failures_total",
      "counter",
      "Alerts the webhook did not accept after all retries.",
    );
    lines.push(`promoter_audit_alert_failures_total ${this.alertFailures}`);
    family("promoter_audit_manifest_reloads_total", "counter", "Successful manifest loads.");
    lines.push(`promoter_audit_manifest_reloads_total ${this.manifestReloads}`);
    family(
      "promoter_audit_manifest_reload_failures_total",
      "counter",
      "Manifest changes that failed to load (the last good state stays in use).",
    );
    lines.push(`promoter_audit_manifest_reload_failures_total ${this.manifestReloadFailures}`);
    family(
      "promoter_audit_manifest_checks_total",
      "counter",
      "Checks of the manifests for changes (git fetches), polled or asked for before a violation, by result.",
    );
    lines.push(
      `promoter_audit_manifest_checks_total{result="ok"} ${this.manifestChecks - this.manifestCheckFailures}`,
    );
    lines.push(`promoter_audit_manifest_checks_total{result="failed"} ${this.manifestCheckFailures}`);
    family(
      "promoter_audit_retractions_total",
      "counter",
      "Violations retracted: a later check of the manifests explained them.",
    );
    lines.push(`promoter_audit_retractions_total ${this.retractions}`);
    family(
      "promoter_audit_manifest_reload_age_seconds",
      "gauge",
      "Seconds since the manifests were last loaded successfully.",
    );
    const age =
      this.lastManifestLoad === undefined ? Number.NaN : (snapshot.nowMs - this.lastManifestLoad) / 1000;
    lines.push(`promoter_audit_manifest_reload_age_seconds ${Number.isNaN(age) ? "NaN" : age.toFixed(3)}`);
    family("promoter_audit_desired_repositories", "gauge", "Production repositories in the desired state.");
    lines.push(`promoter_audit_desired_repositories ${this.desiredRepositories}`);
    family("promoter_audit_desired_edges", "gauge", "Promotion edges in the desired state.");
    lines.push(`promoter_audit_desired_edges ${this.desiredEdges}`);
    return `${lines.join("\n")}\n`;
  }
}
