/**
 * Size caps and bounds for reading OCI image layout directories. A layout may come from anyone
 * (a download, a mirror tool); reading it must not buffer gigabytes or walk forever.
 */

/** Manifests and indexes read into memory: the same 4 MiB registries accept. */
export const MAX_LAYOUT_MANIFEST_BYTES = 4 * 1024 * 1024;

/** `index.json`: about 250 bytes per entry, so 64 MiB holds a quarter of a million tags. */
export const MAX_INDEX_JSON_BYTES = 64 * 1024 * 1024;

/** The `oci-layout` marker file (`{"imageLayoutVersion":"1.0.0"}`). */
export const MAX_OCI_LAYOUT_FILE_BYTES = 4 * 1024;

/** Folder depth `listOciLayoutRepositories` descends below the prefix. */
export const MAX_CATALOG_DEPTH = 32;

/** Folders `listOciLayoutRepositories` visits before giving up. */
export const MAX_CATALOG_FOLDERS = 1_000_000;

/**
 * Blob files remembered as hashed and matching their digest (by path and file identity), per
 * process: past this the memory is cleared and blobs are hashed again when next checked.
 */
export const MAX_VERIFIED_BLOB_FILES = 100_000;
