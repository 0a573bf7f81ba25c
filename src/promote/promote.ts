import type { CopyEvent } from "../copy/index.js";
import { silentLogger, type Logger } from "../log.js";
import { findTagConflicts, validate, type ManifestSet, type ValidationResult } from "../manifest/index.js";
import {
  decidePlan,
  destinationQuestions,
  indexConflicts,
  promotionEdges,
  RepositoryKeys,
  sourceQuestions,
  type Inventory,
  type PromotionEdge,
  type PromotionPlan,
} from "../plan/index.js";
import type { StoreProvider } from "../registry/index.js";
import { executePlan, type ExecutionResult } from "./execute.js";
import { observeRepositories } from "./inventory.js";

export interface PlanPromotionOptions {
  readonly provider: StoreProvider;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Inventory requests in flight across repositories (per-host limits apply below). */
  readonly concurrency?: number;
  /** Keep only some edges (sharding, or the digests of one change). */
  readonly filter?: (edge: PromotionEdge) => boolean;
}

export interface PlannedPromotion {
  readonly validation: ValidationResult;
  readonly plan: PromotionPlan;
  readonly inventory: { readonly destinations: Inventory; readonly sources: Inventory };
  readonly timings: { readonly inventoryMs: number; readonly planMs: number };
}

/**
 * Reads what the manifests need from the registries and decides every edge. Writes nothing.
 * Invalid manifest entries are left out (and reported by `validation`); everything valid is
 * planned, so one bad entry does not block the rest.
 */
export async function planPromotion(
  set: ManifestSet,
  options: PlanPromotionOptions,
): Promise<PlannedPromotion> {
  const logger = options.logger ?? silentLogger;
  const validation = validate(set);
  const keys = new RepositoryKeys();
  const all = promotionEdges(set);
  const edges: PromotionEdge[] = [];
  for (const edge of all) if (!options.filter || options.filter(edge)) edges.push(edge);
  const conflicts = indexConflicts(findTagConflicts(set.manifests));
  return planEdges(edges, conflicts, { ...options, logger }, keys, validation);
}

/** Planning from edges directly (a saved plan re-checked before it runs). */
export async function planEdges(
  edges: readonly PromotionEdge[],
  conflicts: ReturnType<typeof indexConflicts>,
  options: PlanPromotionOptions,
  keys = new RepositoryKeys(),
  validation: ValidationResult = EMPTY_VALIDATION,
): Promise<PlannedPromotion> {
  const observe = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  };
  const started = performance.now();
  const { destinations: destinationQs } = destinationQuestions(edges, keys);
  options.logger?.log("info", "reading destinations", {
    repositories: destinationQs.size,
    edges: edges.length,
  });
  const destinations = await observeRepositories(destinationQs, options.provider, "destination", observe);
  const sourceQs = sourceQuestions(edges, destinations, conflicts, keys);
  options.logger?.log("info", "reading sources", { repositories: sourceQs.size });
  const sources = await observeRepositories(sourceQs, options.provider, "source", observe);
  const inventoryMs = performance.now() - started;
  const planStarted = performance.now();
  const inventory = { destinations, sources };
  const plan = decidePlan(edges, inventory, conflicts, keys);
  return { validation, plan, inventory, timings: { inventoryMs, planMs: performance.now() - planStarted } };
}

const EMPTY_VALIDATION: ValidationResult = validate({ manifests: [], findings: [] });

export interface PromoteOptions extends PlanPromotionOptions {
  /** Write to the registries. Without it the run is a dry run. */
  readonly confirm: boolean;
  /** Blob transfers in flight (the copy engine's `concurrency`). */
  readonly copyConcurrency?: number;
  readonly onEvent?: (event: CopyEvent) => void;
}

export interface PromotionResult extends PlannedPromotion {
  /** Present when `confirm` was given. */
  readonly execution?: ExecutionResult;
  readonly timings: PlannedPromotion["timings"] & { readonly executeMs?: number };
}

/** Plans, and with `confirm` executes, a promotion. */
export async function promote(set: ManifestSet, options: PromoteOptions): Promise<PromotionResult> {
  const planned = await planPromotion(set, options);
  if (!options.confirm) return planned;
  return runPlanned(planned, options);
}

export async function runPlanned(
  planned: PlannedPromotion,
  options: PromoteOptions,
): Promise<PromotionResult> {
  const started = performance.now();
  const execution = await executePlan(planned.plan, {
    provider: options.provider,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.copyConcurrency === undefined ? {} : { concurrency: options.copyConcurrency }),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  return { ...planned, execution, timings: { ...planned.timings, executeMs: performance.now() - started } };
}
