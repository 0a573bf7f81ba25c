/**
 * image-promoter's library API. The CLI is a thin layer over these functions; other programs can
 * call them directly. Each layer's own index is its public face:
 * names and digests (reference), OCI content (oci), promotion manifests (manifest), planning
 * (plan), registries and OCI layouts (registry), graph copy (copy), promotion runs (promote),
 * signatures (sign), the auditor (audit).
 */
export * from "./errors.js";
export * from "./log.js";
export * from "./reference/index.js";
export * from "./oci/index.js";
export * from "./manifest/index.js";
export * from "./plan/index.js";
export * from "./registry/index.js";
export * from "./copy/index.js";
export * from "./promote/index.js";
export * from "./sign/index.js";
export * from "./audit/index.js";
export * from "./gitops/index.js";
