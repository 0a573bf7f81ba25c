/**
 * Google's credentials, through Google's own library: Application Default Credentials for
 * Google's registries, and identity tokens of a service account for keyless signing.
 */
export { googleRegistrySet, isGoogleRegistry } from "./hosts.js";
export {
  CLOUD_PLATFORM_SCOPE,
  GOOGLE_TOKEN_RENEW_MARGIN_MS,
  findApplicationDefaultCredentials,
  googleAccessToken,
  type ApplicationDefaultOptions,
  type GoogleAccessToken,
  type GoogleCredentials,
} from "./application-default.js";
export { GoogleAuthError, describeGoogleAnswer, googleFailure } from "./failure.js";
export {
  SIGSTORE_AUDIENCE,
  ServiceAccountIdTokens,
  type ServiceAccountIdTokenOptions,
} from "./service-account-id-token.js";
