export {
  observeRepositories,
  observeRepository,
  TAG_LIST_THRESHOLD,
  type ObserveOptions,
} from "./inventory.js";
export { executePlan, type ExecuteOptions, type ExecutionResult } from "./execute.js";
export {
  planPromotion,
  planEdges,
  promote,
  runPlanned,
  type PlanPromotionOptions,
  type PlannedPromotion,
  type PromoteOptions,
  type PromotionResult,
} from "./promote.js";
export { runBounded } from "./bounded.js";
