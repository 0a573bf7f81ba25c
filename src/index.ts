/**
 * image-promoter's library API. The CLI is a thin layer over these functions; other programs can
 * call them directly.
 */
export * from "./errors.js";
export * from "./log.js";
export * from "./reference/index.js";
export * from "./oci/index.js";
export * from "./manifest/index.js";
export { countEdges, promotionEdges, type PromotionEdge } from "./plan/edge.js";
export * from "./audit/index.js";
