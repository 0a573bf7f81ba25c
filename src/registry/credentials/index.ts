export type { Credential, CredentialSource } from "./types.js";
export { CredentialStore } from "./credential-store.js";
export {
  EnvCredentialSource,
  FileCredentialSource,
  REGISTRY_AUTH_VARIABLE,
  defaultCredentialSources,
  registryAuthVariable,
  type DefaultSourcesOptions,
  type FileSourceOptions,
} from "./sources.js";
export {
  normalizeAuthKey,
  DOCKER_HUB_AUTH_KEY,
  parseAuthDocument,
  credentialFromEntry,
} from "./auth-file.js";
export { runCredentialHelper, DEFAULT_HELPER_TIMEOUT_MS } from "./helper.js";
