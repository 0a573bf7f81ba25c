import { relativePosition, type SourcePosition } from "../manifest/index.js";
import {
  countDecisions,
  EDGE_OUTCOME_KINDS,
  isFailureOutcome,
  jsonEdge,
  outcomeWithoutWrite,
  PLAN_DOCUMENT_SCHEMA,
  PLAN_DOCUMENT_VERSION,
  type EdgeOutcome,
  type EdgeOutcomeKind,
  type PlanDocument,
  type PromotionEdge,
  type Shard,
} from "../plan/index.js";
import { RepositoryKeyCache } from "../reference/index.js";
import type { RequestCount } from "../registry/index.js";
import { signaturesDocument } from "../sign/index.js";
import type { PromotionResult, SourceSignatureReport } from "./promote.js";

/**
 * The `sourceSignatures` section: the policy's mode, counts per verdict, and each judged source
 * digest (`unsigned` ones are promoted: "source unsigned (not required)") with its build
 * provenance (`provenance`, and `build` when verified) and the staging manifests that verified.
 */
export function sourceSignaturesDocument(report: SourceSignatureReport): Record<string, unknown> {
  const keys = new RepositoryKeyCache();
  const summary = { verified: 0, unsigned: 0, refused: 0 };
  for (const verdict of report.verdicts) summary[verdict.status] += 1;
  return {
    mode: report.mode,
    summary,
    digests: report.verdicts.map((verdict) => ({
      source: keys.of(verdict.request.location),
      digest: verdict.request.digest,
      status: verdict.status,
      ...(verdict.reason === undefined ? {} : { reason: verdict.reason }),
      signers: verdict.signers,
      provenance: verdict.provenance,
      ...(verdict.build === undefined ? {} : { build: verdict.build }),
      inputs: verdict.inputs,
    })),
  };
}

/**
 * The JSON documents of a promotion (docs/promotion.md, "JSON plan and report"): the plan
 * (`--plan-file`, a dry run's `--output json`) and the report of a run (`--report`). The library
 * builds them so that every caller writes the same document; the CLI only serialises it.
 */

export interface PromotionDocumentOptions {
  /** `plan`: the edges and their decisions; `report`: also what happened to each (after a run). */
  readonly kind: "plan" | "report";
  /** Manifest positions are written relative to this folder (the CLI gives its working directory). */
  readonly cwd?: string;
  /** The document's `createdAt`; now by default. */
  readonly now?: Date;
}

/** The statistics a report adds to the document: where the run's time and requests went. */
export interface PromotionReportOptions extends PromotionDocumentOptions {
  /** The run's wall time, from start to the end of the last write. */
  readonly durationMs: number;
  /** `StoreProvider.requestCounts()` at the end of the run. */
  readonly requests: ReadonlyMap<string, RequestCount>;
  /** The shard this worker ran (docs/sharding.md). */
  readonly shard?: Shard;
}

/** Counts of each outcome, every kind present (0 when none). */
export function countOutcomes(outcomes: readonly EdgeOutcome[]): Record<EdgeOutcomeKind, number> {
  const counts = Object.fromEntries(EDGE_OUTCOME_KINDS.map((kind) => [kind, 0])) as Record<
    EdgeOutcomeKind,
    number
  >;
  for (const { outcome } of outcomes) counts[outcome] += 1;
  return counts;
}

/**
 * The outcome of every edge: what happened, or for a dry run what is already settled. One at a
 * time: the real registry.k8s.io tree has ~720,000 edges.
 */
function* settledOutcomes(
  result: PromotionResult,
): Generator<{ edge: PromotionEdge; outcome: EdgeOutcomeKind }> {
  if (result.execution) {
    yield* result.execution.outcomes;
    return;
  }
  for (const { edge, decision } of result.plan.edges) {
    const settled = outcomeWithoutWrite(decision);
    if (settled) yield { edge, outcome: settled.outcome };
  }
}

/**
 * Whether some edge was refused or failed (for a dry run: is already settled as refused or
 * missing). The CLI exits 1 then.
 */
export function promotionFailed(
  result: PromotionResult,
  options: {
    /**
     * Edges missing from the source (and the destination) that do not fail the run: kpromo's
     * "_LOST_" digests (`promote --missing-source warn|new`). By default every one fails.
     */
    readonly tolerateMissingSource?: (edge: PromotionEdge) => boolean;
  } = {},
): boolean {
  const tolerated = options.tolerateMissingSource;
  for (const { edge, outcome } of settledOutcomes(result)) {
    if (isFailureOutcome(outcome) && !(outcome === "missing-source" && tolerated?.(edge) === true))
      return true;
  }
  return false;
}

/** Bytes the run wrote (blobs and manifests); undefined for a dry run. */
export function writtenBytes(result: PromotionResult): number | undefined {
  return result.execution?.copies.reduce((sum, copy) => sum + copy.stats.bytesWritten, 0);
}

/** The plan, or with `kind: "report"` the run's outcomes, as a plan document. */
export function promotionDocument(result: PromotionResult, options: PromotionDocumentOptions): PlanDocument {
  const keys = new RepositoryKeyCache();
  const { cwd } = options;
  const position =
    cwd === undefined
      ? (given: SourcePosition) => given
      : (given: SourcePosition) => relativePosition(cwd, given);
  // A report lists what happened to each edge; before a run (or for a plan) what was decided.
  const outcomes = options.kind === "report" ? result.execution?.outcomes : undefined;
  const edges = (outcomes ?? result.plan.edges).map((edge) => jsonEdge(edge, keys, position));
  return {
    schema: PLAN_DOCUMENT_SCHEMA,
    version: PLAN_DOCUMENT_VERSION,
    kind: options.kind,
    createdAt: (options.now ?? new Date()).toISOString(),
    summary: {
      edges: result.plan.edges.length,
      decisions: countDecisions(result.plan.edges),
      ...(outcomes ? { outcomes: countOutcomes(outcomes) } : {}),
    },
    edges,
    ...(result.sourceSignatures
      ? { sourceSignatures: sourceSignaturesDocument(result.sourceSignatures) }
      : {}),
  };
}

/** The document with the run's statistics (`promote --report`, `--output json`). */
export function promotionReport(result: PromotionResult, options: PromotionReportOptions): PlanDocument {
  return {
    ...promotionDocument(result, options),
    ...(options.shard ? { shard: options.shard } : {}),
    requests: Object.fromEntries(options.requests),
    durationMs: Math.round(options.durationMs),
    timings: Object.fromEntries(
      Object.entries(result.timings).map(([key, value]) => [key, Math.round(value)]),
    ),
    bytesWritten: writtenBytes(result) ?? 0,
    validation: {
      errors: result.validation.summary.errors,
      warnings: result.validation.summary.warnings,
    },
    ...(result.attachments
      ? { signatures: signaturesDocument(result.attachments, result.execution?.attachments) }
      : {}),
  };
}
