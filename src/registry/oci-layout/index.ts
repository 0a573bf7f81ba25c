/**
 * OCI image layout directories as repository stores: each repository of an `oci:DIR` tree is
 * its own layout at `DIR/<repository>`.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
 */
export {
  openOciLayoutRepository,
  type OciLayoutOptions,
  type OciLayoutRepository,
} from "./oci-layout-store.js";
export { listOciLayoutRepositories, type ListOciLayoutRepositoriesOptions } from "./catalog.js";
export { layoutPathProblem, IMAGE_LAYOUT_VERSION, OCI_LAYOUT_FILE, INDEX_JSON_FILE } from "./layout-files.js";
export { REF_NAME_ANNOTATION } from "./layout-index.js";
export {
  MAX_LAYOUT_MANIFEST_BYTES,
  MAX_INDEX_JSON_BYTES,
  MAX_OCI_LAYOUT_FILE_BYTES,
  MAX_CATALOG_DEPTH,
  MAX_CATALOG_FOLDERS,
} from "./limits.js";
