/**
 * Promotion manifests, pure: the typed model, parsing text, and the rules. Reading them from disk
 * is manifest-files/.
 */
export type {
  DigestEntry,
  Finding,
  ImageEntry,
  ManifestSet,
  PromotionManifest,
  RegistryEntry,
  Severity,
  SourcePosition,
  TagEntry,
} from "./model.js";
export {
  compareFindings,
  countBySeverity,
  formatPosition,
  makeFinding,
  relativeFile,
  relativePosition,
  MANIFEST_RULES,
  sortFindings,
  type ManifestRuleId,
} from "./finding.js";
export {
  MAX_MANIFEST_FILE_BYTES,
  MAX_YAML_ALIAS_EXPANSION,
  MAX_YAML_ALIASES,
  MAX_YAML_DEPTH,
  MAX_YAML_ERRORS_PER_FILE,
} from "./yaml-source.js";
export {
  attachmentTagProblem,
  parsePlainManifest,
  parseThinManifest,
  type ManifestText,
  type ParsedPromotionManifest,
} from "./parse.js";
export {
  checkManifests,
  conflictDigests,
  createManifestSet,
  findTagConflicts,
  registryFindings,
  tagConflictFindings,
  type ManifestSetOptions,
  type TagClaim,
  type TagConflict,
} from "./rules.js";
export { applyRepositoryOwnership } from "./ownership.js";
export {
  FINDINGS_FAIL_ON,
  judgeFindings,
  preexistingFindings,
  type FindingsFailOn,
  type JudgedFindings,
} from "./finding-baseline.js";
export {
  applyRegistryPolicy,
  isWithinDirectory,
  parseAllowedRegistry,
  parseRegistryPolicyFile,
  REGISTRY_POLICY_FILE,
  registryRefusal,
  type AllowedRegistry,
  type RegistryPolicy,
  type TreeAllowList,
} from "./registry-policy.js";
export {
  countManifest,
  destinationRegistries,
  mergeImages,
  sourceRegistry,
  type ManifestCounts,
  type MergedDigest,
  type MergedImage,
  type UsableRegistry,
} from "./view.js";
export { validate, type ValidationResult, type ValidationSummary } from "./validate.js";
