import type { ManifestSet } from "../manifest/index.js";
import { PlanBinding, type SavedPlanEdge } from "../plan/index.js";
import { planPromotion, type PlannedPromotion, type PlanPromotionOptions } from "./promote.js";

/**
 * A saved plan (`promote --from-plan`, docs/promotion.md#saved-plans) planned again from the
 * manifests. The plan only selects among the edges the manifests declare: what runs, and what is
 * shown, comes from the manifests. Run `planned` only when `undeclared` and `drift` are empty.
 */
export interface SavedPlanCheck {
  /** The manifests' edges the plan names, decided against the registries now. */
  readonly planned: PlannedPromotion;
  /** One line per edge of the plan the manifests do not declare (field by field). */
  readonly undeclared: readonly string[];
  /** One line per edge whose decision is no longer the one the plan shows. */
  readonly drift: readonly string[];
}

export async function planSavedPlan(
  set: ManifestSet,
  saved: readonly SavedPlanEdge[],
  options: Omit<PlanPromotionOptions, "filter">,
): Promise<SavedPlanCheck> {
  const binding = new PlanBinding(saved);
  const planned = await planPromotion(set, { ...options, filter: binding.includes });
  return { planned, undeclared: binding.undeclared(), drift: binding.drift(planned.plan.edges) };
}
