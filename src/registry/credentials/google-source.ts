import type { RegistryHost, RepositoryPath } from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import {
  findApplicationDefaultCredentials,
  GoogleAuthError,
  googleAccessToken,
  isGoogleRegistry,
  type ApplicationDefaultOptions,
  type GoogleCredentials,
} from "../google-auth/index.js";
import type { Credential, CredentialSource } from "./types.js";

/**
 * The user name Google's registries take with an OAuth2 access token as the password, at the
 * registry's Docker token endpoint (`https://gcr.io/v2/token`, `https://<region>-docker.pkg.dev/v2/token`).
 * https://cloud.google.com/artifact-registry/docs/docker/authentication#token
 * (go-containerregistry's `google` keychain sends `_token`: Google reads only the password.)
 */
export const GOOGLE_ACCESS_TOKEN_USERNAME = "oauth2accesstoken";

export interface GoogleSourceOptions extends ApplicationDefaultOptions {
  /** Hosts marked as Google's besides gcr.io, *.gcr.io and *-docker.pkg.dev. */
  readonly googleRegistries: ReadonlySet<string>;
  readonly now?: () => number;
}

/**
 * Application Default Credentials for Google's registries (google-auth/), asked after every
 * explicit source: a credential in the environment, an auth file or a helper for the host wins.
 * Its password is a short-lived access token; the credential store asks again when it is due for
 * renewal, and the library renews it before it expires.
 */
export class GoogleCredentialSource implements CredentialSource {
  private credentials: Promise<GoogleCredentials | undefined> | undefined;

  constructor(private readonly options: GoogleSourceOptions) {}

  private find(): Promise<GoogleCredentials | undefined> {
    if (!this.credentials) {
      const found = findApplicationDefaultCredentials(this.options);
      this.credentials = found;
      found.catch(() => {
        if (this.credentials === found) this.credentials = undefined;
      });
    }
    return this.credentials;
  }

  async lookup(
    registry: RegistryHost,
    _repository: RepositoryPath | undefined,
    options: { readonly fresh?: boolean } = {},
  ): Promise<Credential | undefined> {
    if (!isGoogleRegistry(registry, this.options.googleRegistries)) return undefined;
    try {
      const credentials = await this.find();
      if (credentials === undefined) return undefined;
      const { token, renewAfter } = await googleAccessToken(credentials, {
        ...(this.options.now === undefined ? {} : { now: this.options.now }),
        ...(options.fresh === true ? { fresh: true } : {}),
      });
      return {
        kind: "basic",
        username: GOOGLE_ACCESS_TOKEN_USERNAME,
        password: token,
        source: `${credentials.where}${await principalText(credentials)}`,
        renewAfter,
      };
    } catch (error) {
      if (!(error instanceof GoogleAuthError)) throw error;
      throw new RegistryError(error.status === 403 ? "registry-denied" : "registry-auth", error.message, {
        operation: "look up credentials",
        registry,
      });
    }
  }

  describe(registry: RegistryHost): string[] {
    if (!isGoogleRegistry(registry, this.options.googleRegistries)) return [];
    return [
      "Google application default credentials ($GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata server)",
    ];
  }
}

async function principalText(credentials: GoogleCredentials): Promise<string> {
  const principal = await credentials.principal();
  return principal === undefined ? "" : ` (${principal})`;
}
