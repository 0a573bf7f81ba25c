import {
  countDecisions,
  decisionTotals,
  formatShard,
  groupForDisplay,
  rowsFromOutcomes,
  outcomeTotals,
  rowsFromPlan,
  totalsText,
  type Shard,
} from "../../plan/index.js";
import { countOutcomes, writtenBytes, type PromotionResult } from "../../promote/index.js";
import { textValue } from "../../output/encode.js";
import { formatBytes, plural } from "../../output/quantities.js";
import { formatDuration } from "../format.js";
import { planMarkdown } from "./plan-markdown.js";
import { planText } from "./plan-text.js";
import { textSections } from "./sections.js";
import { signaturesMarkdown, signaturesText } from "./signatures.js";
import { sourceSignaturesMarkdown, sourceSignaturesText } from "./source-signatures.js";

/**
 * A promotion's plan or result for people (`promote` text and markdown); the JSON plan and
 * report are the library's (promote/report.ts).
 */

const DRY_RUN_TITLE = "Promotion plan (dry run: nothing was written; add --confirm to promote)";

export interface PromotionOutputOptions {
  readonly format: "text" | "markdown";
  /** A run that wrote: text shows only the problems (the plan was shown before the run). */
  readonly confirm: boolean;
  readonly cwd: string;
  readonly elapsedMs: number;
  readonly shard: Shard | undefined;
}

/** What `promote` prints on stdout after planning or running, for people. */
export function promotionOutput(result: PromotionResult, options: PromotionOutputOptions): string {
  const { confirm, cwd } = options;
  const { attachments } = result;
  const outcomes = result.execution?.attachments;
  const source = result.sourceSignatures;
  if (options.format === "markdown") {
    return `${promotionMarkdown(result, cwd, confirm)}${source ? sourceSignaturesMarkdown(source) : ""}${attachments ? signaturesMarkdown(attachments, outcomes) : ""}`;
  }
  const text = textSections(
    confirm
      ? [
          promotionText(result, cwd, "Promotion result: problems", true),
          attachments && outcomes ? signaturesText(attachments, { outcomes, onlyProblems: true }) : "",
        ]
      : [planSectionsText(result, cwd, DRY_RUN_TITLE)],
  );
  const prefix = options.shard ? `Shard ${formatShard(options.shard)}: ` : "";
  return `${text}${textValue(`${prefix}${promotionSummary(result, confirm, options.elapsedMs)}`)}\n`;
}

/** The plan with its source signatures and its signatures and attachments, as sections. */
export function planSectionsText(result: PromotionResult, cwd: string, title: string): string {
  return textSections([
    promotionText(result, cwd, title),
    result.sourceSignatures ? sourceSignaturesText(result.sourceSignatures) : "",
    result.attachments ? signaturesText(result.attachments) : "",
  ]);
}

function rows(result: PromotionResult) {
  return result.execution ? rowsFromOutcomes(result.execution.outcomes) : rowsFromPlan(result.plan.edges);
}

/** The plan or result as text; with `onlyProblems`, empty when there is none. */
export function promotionText(
  result: PromotionResult,
  cwd: string,
  title: string,
  onlyProblems = false,
): string {
  const groups = groupForDisplay(rows(result));
  if (
    onlyProblems &&
    !groups.some((group) =>
      group.digests.some((digest) => digest.lines.some((line) => line.kind === "problem")),
    )
  ) {
    return "";
  }
  return planText(groups, { cwd, title, onlyProblems });
}

/** Labelled counts: of outcomes after a run, of decisions for a plan. */
function totals(result: PromotionResult): [string, number][] {
  return result.execution
    ? outcomeTotals(countOutcomes(result.execution.outcomes))
    : decisionTotals(countDecisions(result.plan.edges));
}

function promotionMarkdown(result: PromotionResult, cwd: string, confirm: boolean): string {
  const title = confirm ? "Promotion result" : "Promotion plan (dry run)";
  return planMarkdown(groupForDisplay(rows(result)), { cwd, title, totals: totals(result) });
}

/** The one summary line: `Plan: 12 edges: 3 to copy, ...; 1.2 s`. */
function promotionSummary(result: PromotionResult, confirm: boolean, elapsedMs: number): string {
  const counted = totals(result);
  const parts = counted.some(([, count]) => count > 0) ? [totalsText(counted)] : [];
  const edges = result.plan.edges.length;
  const bytes = writtenBytes(result);
  const moved = bytes === undefined ? "" : `; ${formatBytes(bytes)} written`;
  const signed = signatureSummary(result);
  return `${confirm ? "Result" : "Plan"}: ${plural(edges, "edge")}${parts.length > 0 ? `: ${parts.join(", ")}` : ""}${moved}${signed}; ${formatDuration(elapsedMs)}`;
}

/** `; signatures: 3 signed, 6 written` (after a run) or `; signatures: 3 to sign` (plan). */
function signatureSummary(result: PromotionResult): string {
  if (!result.attachments) return "";
  const counts = new Map<string, number>();
  const add = (label: string, n = 1) => counts.set(label, (counts.get(label) ?? 0) + n);
  if (result.execution?.attachments) {
    for (const outcome of result.execution.attachments) add(outcome.status);
  } else {
    for (const work of result.attachments.works) {
      if (work.problem) add("unreadable");
      for (const { items } of work.subjects) {
        for (const item of items) {
          if (item.writeTo.length > 0)
            add(item.action === "sign" ? "to sign" : "to copy", item.writeTo.length);
          if (item.unreadable.length > 0) add("unreadable");
          if (item.conflicts.length > 0) add("conflicting");
        }
      }
    }
  }
  if (counts.size === 0) return result.attachments.signer ? "; signatures and attachments in place" : "";
  return `; signatures and attachments: ${[...counts].map(([label, n]) => `${n.toLocaleString("en-US")} ${label}`).join(", ")}`;
}
