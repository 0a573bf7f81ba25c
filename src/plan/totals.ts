import type { EdgeDecisionKind } from "./decide.js";
import { EDGE_OUTCOME_KINDS, type EdgeOutcomeKind } from "./outcome.js";

/**
 * How the plan and the result count edges, in words: one vocabulary for the summary line, the
 * Markdown totals table and `check`'s summary, so "refused tag moves" reads the same wherever it
 * is counted. Every decision kind has a label, so the parts always add up to the total.
 */

const DECISION_LABELS: Record<EdgeDecisionKind, string> = {
  copy: "to copy",
  "add-tag": "tags to add",
  unchanged: "unchanged",
  "refused-tag-move": "refused tag moves",
  "missing-source": "missing in source",
  "refused-conflict": "conflicting claims",
  "refused-source-signature": "refused: source not signed",
  unreadable: "unreadable",
};

const DECISION_ORDER: readonly EdgeDecisionKind[] = [
  "copy",
  "add-tag",
  "unchanged",
  "refused-tag-move",
  "missing-source",
  "refused-conflict",
  "refused-source-signature",
  "unreadable",
];

const OUTCOME_LABELS: Record<EdgeOutcomeKind, string> = {
  copied: "copied",
  tagged: "tagged",
  unchanged: "unchanged",
  "refused-tag-move": "refused tag moves",
  "missing-source": "missing in source",
  failed: "failed",
};

/** Labelled counts of a plan's decisions (`countDecisions`), every kind in a fixed order. */
export function decisionTotals(counts: Readonly<Record<EdgeDecisionKind, number>>): [string, number][] {
  return DECISION_ORDER.map((kind) => [DECISION_LABELS[kind], counts[kind]]);
}

/** Labelled counts of a run's outcomes (`countOutcomes`), every kind in a fixed order. */
export function outcomeTotals(counts: Readonly<Record<EdgeOutcomeKind, number>>): [string, number][] {
  return EDGE_OUTCOME_KINDS.map((kind) => [OUTCOME_LABELS[kind], counts[kind]]);
}

/** `3 to copy, 1 refused tag moves`: the counts that are not zero (`none` when all are). */
export function totalsText(totals: readonly (readonly [string, number])[]): string {
  const parts = totals
    .filter(([, count]) => count > 0)
    .map(([label, count]) => `${count.toLocaleString("en-US")} ${label}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}
