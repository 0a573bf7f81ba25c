import type { RegistryHost, RepositoryPath } from "../../reference/index.js";

/**
 * A credential for one registry, and where it came from (for messages; never the secret).
 * - `basic`: a user name and password (or a personal access token used as password); sent as
 *   HTTP Basic to registries that ask for it, and to token endpoints.
 * - `identity-token`: an OAuth2 refresh token (docker config `identitytoken`), exchanged at the
 *   token endpoint with a `grant_type=refresh_token` POST.
 * - `registry-token`: a bearer token sent as is (docker config `registrytoken`).
 */
export type Credential =
  | {
      readonly kind: "basic";
      readonly username: string;
      readonly password: string;
      readonly source: string;
      /**
       * Epoch milliseconds after which the credential store asks its source again: for a
       * short-lived password (a Google access token). Absent: good for the whole run.
       */
      readonly renewAfter?: number;
    }
  | {
      readonly kind: "identity-token";
      readonly username: string;
      readonly identityToken: string;
      readonly source: string;
    }
  | { readonly kind: "registry-token"; readonly token: string; readonly source: string };

/** Where credentials come from: environment, credential files, helper programs. */
export interface CredentialSource {
  /**
   * The credential for a registry, or undefined when this source has none. `repository` lets
   * sources with per-repository entries (containers auth.json) pick the most specific one.
   */
  lookup(
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    options?: {
      readonly signal?: AbortSignal;
      /** The last credential was refused: a source of short-lived ones mints a new one. */
      readonly fresh?: boolean;
    },
  ): Promise<Credential | undefined>;
  /** Where this source looks, for "looked in" lists: a file path, a variable name. */
  describe(registry: RegistryHost): string[];
}
