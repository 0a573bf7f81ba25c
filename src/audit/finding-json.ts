import type { AuditFinding } from "./finding-store.js";

/** The JSON form of a finding (`GET /findings`, `promoter audit findings --output json`). */
export function findingJson(finding: AuditFinding): Record<string, unknown> {
  return {
    verdict: finding.verdict,
    action: finding.action,
    repository: finding.repository,
    digest: finding.digest,
    tag: finding.tag,
    reason: finding.reason,
    rule: finding.rule,
    mediaType: finding.mediaType,
    parent: finding.parent,
    subject: finding.subject,
    eventId: finding.eventId,
    source: finding.source,
    eventTime: finding.eventTime,
    receivedAt: finding.receivedAt,
    decidedAt: finding.decidedAt,
    alert: finding.alert,
    // A violation later corrected to verified: what it said, and when it changed.
    retracted: finding.retracted,
    seq: finding.seq,
  };
}
