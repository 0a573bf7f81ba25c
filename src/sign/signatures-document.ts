import type { AttachmentOutcome } from "./execute-attachments.js";
import type { AttachmentPlan, AttachmentWork } from "./attachment-plan.js";

/**
 * The `signatures` section of the JSON plan and report (`promote`, and `verify --repair`'s
 * `repair`), documented in docs/signing.md.
 */

/** Outcomes by the promoted digest they belong to, in run order: one pass instead of a search per digest. */
export function outcomesByTarget(
  outcomes: readonly AttachmentOutcome[],
): Map<AttachmentWork["target"], AttachmentOutcome[]> {
  const byTarget = new Map<AttachmentWork["target"], AttachmentOutcome[]>();
  for (const outcome of outcomes) {
    const list = byTarget.get(outcome.target);
    if (list) list.push(outcome);
    else byTarget.set(outcome.target, [outcome]);
  }
  return byTarget;
}

/** The section for a plan and, after a run, its outcomes. */
export function signaturesDocument(
  plan: AttachmentPlan,
  outcomes?: readonly AttachmentOutcome[],
): Record<string, unknown> {
  const actions: Record<string, number> = { sign: 0, write: 0, unchanged: 0, conflict: 0 };
  const statuses: Record<string, number> = { signed: 0, written: 0, conflict: 0, skipped: 0, failed: 0 };
  for (const outcome of outcomes ?? []) statuses[outcome.status] = (statuses[outcome.status] ?? 0) + 1;
  const byTarget = outcomesByTarget(outcomes ?? []);
  const digests = plan.works.map((work) => ({
    project: work.target.project,
    image: work.target.image,
    source: work.target.sourceKey,
    digest: work.target.digest,
    identities: work.target.identities,
    destinations: work.target.destinations.map((destination) => destination.key),
    notes: work.notes,
    ...(work.problem ? { problem: work.problem } : {}),
    subjects: work.subjects.map(({ subject, items }) => ({
      digest: subject.digest,
      role: subject.role,
      signed: subject.sign,
      items: items.map((item) => {
        actions[item.action] = (actions[item.action] ?? 0) + 1;
        return {
          kind: item.kind,
          ...(item.tag ? { tag: item.tag } : {}),
          action: item.action,
          ...(item.digest ? { digest: item.digest } : {}),
          writeTo: item.writeTo,
          ...(item.unreadable.length > 0 ? { unreadable: item.unreadable } : {}),
          ...(item.conflicts.length > 0 ? { conflicts: item.conflicts } : {}),
          ...(item.detail ? { detail: item.detail } : {}),
        };
      }),
    })),
    ...(outcomes
      ? {
          outcomes: (byTarget.get(work.target) ?? []).map((outcome) => ({
            subject: outcome.subject,
            kind: outcome.kind,
            ...(outcome.tag ? { tag: outcome.tag } : {}),
            destination: outcome.destination,
            status: outcome.status,
            ...(outcome.digest ? { digest: outcome.digest } : {}),
            ...(outcome.error ? { error: outcome.error } : {}),
          })),
        }
      : {}),
  }));
  return {
    format: plan.format,
    attachments: plan.mode,
    ...(plan.signer ? { signer: plan.signer } : {}),
    ...(plan.attestations ? { attestations: plan.attestations } : {}),
    summary: { digests: plan.works.length, actions, ...(outcomes ? { outcomes: statuses } : {}) },
    digests,
  };
}
