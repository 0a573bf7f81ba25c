export {
  observeRepositories,
  observeRepository,
  TAG_LIST_MIN_TAGS,
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
  type SignatureOptions,
  type SourceSignatureReport,
} from "./promote.js";
export { executeSignatures, type ExecuteSignaturesOptions } from "./signatures.js";
export {
  countOutcomes,
  promotionDocument,
  promotionFailed,
  promotionReport,
  writtenBytes,
  type PromotionDocumentOptions,
  type PromotionReportOptions,
} from "./report.js";
export { planSavedPlan, type SavedPlanCheck } from "./saved-plan.js";
export { promotePipelined, repositoryGroups } from "./pipeline.js";
