/**
 * The GitOps workflow around the promoter: `snapshot` (a registry as an images.yaml),
 * `manifest add` (in-place edits of images.yaml), `check` (pre-merge judgement of a change) and
 * the git reading that `promote --changed-since` shares with it.
 */
export {
  addToImagesFile,
  checkImagesFileEditable,
  ImagesFileEditError,
  type ImagesFileAddition,
  type ImagesFileChange,
  type ImagesFileEdit,
} from "./images-file.js";
export {
  addToManifest,
  ManifestAddRefusedError,
  REFUSED_TAGS,
  type ManifestAddOptions,
  type ManifestAddResult,
} from "./manifest-add.js";
export {
  SnapshotError,
  takeManifestBasedSnapshot,
  takeSnapshot,
  type ManifestSnapshot,
  type ManifestSnapshotOptions,
  type Snapshot,
  type SnapshotDigest,
  type SnapshotImage,
  type SnapshotOptions,
} from "./snapshot.js";
export {
  dropTaglessChildren,
  filterByTags,
  inventoryCsv,
  inventoryYaml,
  kpromoSnapshotStdout,
  SNAPSHOT_OUTPUTS,
  snapshotText,
  snapshotYaml,
  sortInventory,
  type InventoryDigest,
  type InventoryImage,
  type SnapshotOutput,
} from "./snapshot-format.js";
export { manifestBasedInventory, repositoryBelow } from "./manifest-snapshot.js";
export {
  CHECK_TITLES,
  DEFAULT_VULNERABILITY_THRESHOLD,
  MAX_ITEMS_PER_CHECK,
  runCheck,
  type CheckId,
  type CheckItem,
  type CheckOptions,
  type CheckReport,
  type CheckResult,
  type CheckStatus,
} from "./check.js";
export { changedEdgeFilter, diffEdges, PromotedContent, type EdgeDiff } from "./edge-diff.js";
export { edgesChangedSince } from "./changed-since.js";
export { registryPolicyAtRevision } from "./registry-policy-at-revision.js";
export {
  loadManifestsAtRevision,
  type RevisionManifests,
  type RevisionOptions,
} from "./revision-manifests.js";
export {
  GIT_MODE,
  GitCommandError,
  isRegularFile,
  lastCommitBefore,
  listEntries,
  listTree,
  locateRepository,
  MAX_GIT_OUTPUT_BYTES,
  readBlobs,
  resolveCommit,
  runGit,
  showFile,
  type GitOptions,
  type GitRepository,
  type TreeFile,
} from "./git.js";
export {
  MAX_TREE_ENTRIES_SEARCHED,
  ManifestTreeRefusedError,
  refuseHiddenRepositories,
  type HiddenRepositorySearch,
} from "./hidden-repositories.js";
export { compareTagVersions, previousInSeries, tagSeries } from "./tag-series.js";
export {
  applyVulnerabilityGate,
  MAX_VULNERABILITY_REPORT_BYTES,
  parseVulnerabilityReport,
  reportedDigests,
  SEVERITY_THRESHOLDS,
  severityRank,
  VULNERABILITY_SEVERITIES,
  VulnerabilityReportError,
  type SeverityThreshold,
  type VulnerabilityFinding,
  type VulnerabilityGate,
  type VulnerabilityReport,
  type VulnerabilitySeverity,
} from "./vulnerability-report.js";
export {
  ImageFactsError,
  MAX_PLATFORM_IMAGES,
  readImageFacts,
  readImageKind,
  type ImageFacts,
  type ImageKind,
  type PlatformImage,
} from "./image-facts.js";
