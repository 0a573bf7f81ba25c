/**
 * Promotion manifests on disk, the I/O edge of manifest/: reading a plain manifest or a thin tree
 * without leaving it, and the registry policy from the operator's options and the tree's file.
 */
export {
  describeTreeFileRefusal,
  ManifestTree,
  TreeFileRefusedError,
  type TreeEntryKind,
  type TreeFileRead,
  type TreeFileRefusal,
} from "./tree-files.js";
export {
  EmptyManifestTreeError,
  loadManifests,
  ManifestIoError,
  manifestTreeOf,
  MAX_CONCURRENT_MANIFEST_READS,
  MAX_MANIFEST_TREE_DEPTH,
  readTreeFile,
  THIN_IMAGES_FILE,
  THIN_MANIFEST_FILE,
  type LoadManifestOptions,
  type ManifestInput,
} from "./load.js";
export {
  loadRegistryPolicy,
  manifestTreeRoot,
  parseAllowRegistryOptions,
  realDirectory,
  registryPolicyFile,
  type RegistryPolicyOptions,
} from "./registry-policy-load.js";
