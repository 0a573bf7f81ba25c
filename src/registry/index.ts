/**
 * The registry layer's public face: the store interface every backend implements, its errors,
 * and the provider that opens remote registries and OCI layout directories.
 */
export * from "./store.js";
export * from "./errors.js";
