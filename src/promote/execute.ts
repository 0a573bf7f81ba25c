import { RepositoryKeyCache } from "../reference/index.js";
import { copyGraphs, type CopyEvent, type CopyOutcome, type CopyRun, type CopyTask } from "../copy/index.js";
import type { Logger } from "../log.js";
import {
  outcomeWithoutWrite,
  type EdgeError,
  type EdgeOutcome,
  type PlannedCopy,
  type PlannedDestination,
  type PlannedEdge,
  type PromotionEdge,
  type PromotionPlan,
} from "../plan/index.js";
import type { Digest } from "../reference/index.js";
import { openOnSide, type RepositoryOpener } from "../registry/index.js";
import type { AttachmentOutcome } from "../sign/index.js";

export interface ExecuteOptions {
  readonly provider: RepositoryOpener;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  readonly concurrency?: number;
  readonly onEvent?: (event: CopyEvent) => void;
  /**
   * Copy within this run (a pipelined promotion's, shared by every part of the plan) instead of
   * a run of its own; `concurrency` and `onEvent` are then the run's.
   */
  readonly copyRun?: CopyRun;
}

export interface ExecutionResult {
  readonly outcomes: readonly EdgeOutcome[];
  readonly copies: readonly CopyOutcome[];
  /** What was signed and attached, per subject and destination (when signing or carrying). */
  readonly attachments?: readonly AttachmentOutcome[];
}

const TAG_NOT_WRITTEN: EdgeError = {
  code: "tag-not-written",
  message: "the copy engine did not write this tag",
};

/** Names one (source repository, digest, destination repository) of a plan. */
export function copyKey(sourceKey: string, digest: Digest, destinationKey: string): string {
  return `${sourceKey}\u0000${digest}\u0000${destinationKey}`;
}

/** `copyKey` of an edge. */
export function edgeCopyKey(keys: RepositoryKeyCache, edge: PromotionEdge): string {
  return copyKey(keys.of(edge.source), edge.digest, keys.of(edge.destination));
}

/**
 * Carries out a plan: every planned copy goes to the copy engine (content first, tags last), and
 * each edge gets its outcome from the engine's result for its (source, digest, destination).
 */
export async function executePlan(plan: PromotionPlan, options: ExecuteOptions): Promise<ExecutionResult> {
  // Destinations that need content get one task fed from the source (one read fans out to all
  // of them). A destination that already holds the digest only needs tags: its own copy of the
  // manifest is the source, so the staging registry is not asked at all.
  const tasks: CopyTask[] = [];
  const taskTargets: { copy: PlannedCopy; destinations: PlannedDestination[] }[] = [];
  for (const copy of plan.copies) {
    const withContent = copy.destinations.filter((destination) => destination.needsContent);
    if (withContent.length > 0) {
      tasks.push({
        id: `${copy.sourceKey}@${copy.digest}`,
        source: openOnSide(options.provider, copy.source, "source"),
        digest: copy.digest,
        // The inventory has just seen the digest absent there (that is why it is copied), and
        // perhaps the whole repository empty: the engine need not ask again.
        destinations: withContent.map((destination) => ({
          store: openOnSide(options.provider, destination.location, "destination"),
          tags: destination.tags,
          seen: destination.repositoryEmpty === true ? "empty-repository" : "root-absent",
        })),
      });
      taskTargets.push({ copy, destinations: withContent });
    }
    for (const destination of copy.destinations.filter((candidate) => !candidate.needsContent)) {
      const store = openOnSide(options.provider, destination.location, "destination");
      tasks.push({
        id: `${destination.key}@${copy.digest}`,
        source: store,
        digest: copy.digest,
        destinations: [{ store, tags: destination.tags }],
      });
      taskTargets.push({ copy, destinations: [destination] });
    }
  }
  const copies = options.copyRun
    ? await options.copyRun.copy(tasks)
    : await copyGraphs(tasks, {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      });

  const targetsByTaskId = new Map(tasks.map((task, index) => [task.id, taskTargets[index]]));
  const byKey = new Map<string, CopyOutcome>();
  for (const outcome of copies) {
    const target = targetsByTaskId.get(outcome.taskId);
    const destination = target?.destinations[outcome.destinationIndex];
    if (target && destination)
      byKey.set(copyKey(target.copy.sourceKey, target.copy.digest, destination.key), outcome);
  }
  const keys = new RepositoryKeyCache();
  const outcomes = plan.edges.map((planned) => edgeOutcome(planned, byKey, keys));
  return { outcomes, copies };
}

function edgeOutcome(
  planned: PlannedEdge,
  copies: ReadonlyMap<string, CopyOutcome>,
  keys: RepositoryKeyCache,
): EdgeOutcome {
  const { edge, decision } = planned;
  const settled = outcomeWithoutWrite(decision);
  if (settled) return { edge, decision, ...settled };
  const copy = copies.get(edgeCopyKey(keys, edge));
  if (!copy) {
    return {
      edge,
      decision,
      outcome: "failed",
      error: { code: "not-run", message: "the copy for this edge did not run" },
    };
  }
  switch (copy.status) {
    case "copied":
      if (edge.tag === undefined || copy.tagsWritten.includes(edge.tag))
        return { edge, decision, outcome: "copied" };
      return { edge, decision, outcome: "failed", error: TAG_NOT_WRITTEN };
    case "tagged":
    case "unchanged":
      // The content was already there (or arrived meanwhile): a tag edge is written by this run.
      if (edge.tag === undefined) return { edge, decision, outcome: "unchanged" };
      if (copy.tagsWritten.includes(edge.tag)) return { edge, decision, outcome: "tagged" };
      return { edge, decision, outcome: "failed", error: TAG_NOT_WRITTEN };
    case "failed":
    case "aborted": {
      const error = copy.error;
      return {
        edge,
        decision,
        outcome: "failed",
        error: {
          // A failed or aborted copy always carries its error (copy/task.ts); the fallback is a bug.
          code: error?.code ?? (copy.status === "aborted" ? "aborted" : "internal"),
          message: error?.message ?? `copy ${copy.status}`,
          ...(error && "side" in error ? { side: error.side } : {}),
        },
      };
    }
  }
}
