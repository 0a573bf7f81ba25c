/**
 * The registry layer's public face: the store roles every backend implements, its errors, the
 * side a promotion opens a store for, and the provider that opens remote registries
 * (distribution spec v1.1 client) and OCI layout directories.
 */
export * from "./store.js";
export * from "./errors.js";
export { onSide, openOnSide, type Side } from "./side.js";
export {
  createStoreProvider,
  type HostProblem,
  type RegistryStoreProvider,
  type StoreProviderOptions,
  type StoreTimeouts,
} from "./provider.js";
export {
  MAX_MANIFEST_BYTES,
  MAX_ERROR_BODY_BYTES,
  MAX_TOKEN_RESPONSE_BYTES,
  MAX_LISTING_BYTES,
  MAX_REDIRECTS,
} from "./limits.js";
export {
  Redactor,
  redactUrl,
  redactText,
  redactingLogger,
  REDACTED,
  type RedactorOptions,
  type SecretEncoding,
} from "./redact.js";
export type { HostLimit } from "./transport/host-limits.js";
export { DEFAULT_MAX_CONCURRENT_PER_HOST } from "./transport/host-limits.js";
export {
  backoffDelayMs,
  DEFAULT_RETRY_POLICY,
  isRetryableStatus,
  parseRetryAfter,
  type RetryPolicy,
} from "./transport/retry.js";
export { DEFAULT_MIN_BYTES_PER_SECOND } from "./transport/deadline.js";
export { systemClock, type Clock } from "./transport/clock.js";
export { createHttpStack, type HttpStack, type HttpStackOptions } from "./http-stack.js";
export type { HttpMethod, HttpRequest, HttpResponse, ResponseHeaders, Transport } from "./transport/types.js";
export { INTERNAL_ADDRESS_ERROR_CODE, type InternalAddressPolicy } from "./transport/network-address.js";
export {
  CredentialStore,
  EnvCredentialSource,
  FileCredentialSource,
  REGISTRY_AUTH_VARIABLE,
  defaultCredentialSources,
  registryAuthVariable,
  parseAuthDocument,
  credentialFromEntry,
  type Credential,
  type CredentialSource,
} from "./credentials/index.js";
export {
  googleRegistrySet,
  isGoogleRegistry,
  ServiceAccountIdTokens,
  SIGSTORE_AUDIENCE,
} from "./google-auth/index.js";
export { RemoteRepository } from "./remote/remote-repository.js";
export { DOCKER_HUB_API_HOST } from "./remote/endpoint.js";
export { addManifestMap, tagsOfManifestMap } from "./remote/manifest-map.js";
export {
  openOciLayoutRepository,
  listOciLayoutRepositories,
  type OciLayoutOptions,
  type OciLayoutRepository,
} from "./oci-layout/index.js";
