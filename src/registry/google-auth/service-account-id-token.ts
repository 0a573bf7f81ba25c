import type { Impersonated } from "google-auth-library";
import {
  CLOUD_PLATFORM_SCOPE,
  findApplicationDefaultCredentials,
  googleClientOptions,
  loadGoogleAuthLibrary,
  type ApplicationDefaultOptions,
  type GoogleCredentials,
} from "./application-default.js";
import { GoogleAuthError, googleFailure } from "./failure.js";

/** The audience Fulcio accepts identity tokens for (kpromo and cosign ask for it). */
export const SIGSTORE_AUDIENCE = "sigstore";

/** A token this close to its `exp` is not handed out: a new one is asked for. */
const ID_TOKEN_RENEW_MARGIN_MS = 5 * 60_000;

export interface ServiceAccountIdTokenOptions extends ApplicationDefaultOptions {
  /** The service account whose identity tokens are wanted (`name@project.iam.gserviceaccount.com`). */
  readonly serviceAccount: string;
  readonly audience?: string;
  /** The IAM Credentials API (default Google's public one): a private endpoint, or a stand-in. */
  readonly iamCredentialsUrl?: string;
  readonly now?: () => number;
}

/** The `exp` claim of a JWT in epoch milliseconds, or undefined when it has none. */
function expiryOf(jwt: string): number | undefined {
  const payload = jwt.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { exp?: unknown };
    return typeof claims.exp === "number" ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * OpenID Connect identity tokens of a service account, obtained by impersonating it with the
 * Application Default Credentials: IAM Credentials `generateIdToken` with the audience
 * `sigstore` and `includeEmail`, so that Fulcio's certificate names the account's email. This is
 * what kpromo's `--signer-account` does. The caller needs `iam.serviceAccounts.getOpenIdToken`
 * on the account (roles/iam.serviceAccountTokenCreator).
 * https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateIdToken
 */
export class ServiceAccountIdTokens {
  private credentials: Promise<GoogleCredentials> | undefined;
  private client: Impersonated | undefined;
  private current: { token: string; renewAfter: number } | undefined;

  constructor(private readonly options: ServiceAccountIdTokenOptions) {}

  private async source(): Promise<GoogleCredentials> {
    this.credentials ??= findApplicationDefaultCredentials(this.options, [CLOUD_PLATFORM_SCOPE]).then(
      (found) => {
        if (found === undefined) {
          throw new GoogleAuthError(
            `no Google credentials to impersonate ${this.options.serviceAccount} with (looked in $GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials and the metadata server)`,
          );
        }
        return found;
      },
    );
    this.credentials.catch(() => (this.credentials = undefined));
    return this.credentials;
  }

  /** A current identity token (a JWT) of the service account. */
  async token(): Promise<string> {
    const now = (this.options.now ?? Date.now)();
    if (this.current !== undefined && now < this.current.renewAfter) return this.current.token;
    const source = await this.source();
    this.client ??= new (await loadGoogleAuthLibrary()).Impersonated({
      sourceClient: source.client,
      targetPrincipal: this.options.serviceAccount,
      targetScopes: [CLOUD_PLATFORM_SCOPE],
      ...googleClientOptions(),
      ...(this.options.iamCredentialsUrl === undefined
        ? {}
        : { endpoint: this.options.iamCredentialsUrl.replace(/\/+$/, "") }),
    });
    let token: string;
    try {
      token = await this.client.fetchIdToken(this.options.audience ?? SIGSTORE_AUDIENCE, {
        includeEmail: true,
      });
    } catch (error) {
      const caller = (await source.principal()) ?? source.where;
      throw googleFailure(
        error,
        `get an identity token for ${this.options.serviceAccount}`,
        caller,
        source.where,
      );
    }
    if (typeof token !== "string" || token.split(".").length !== 3) {
      throw new GoogleAuthError(
        `IAM Credentials answered generateIdToken for ${this.options.serviceAccount} without a JWT`,
      );
    }
    const expiry = expiryOf(token);
    this.current = { token, renewAfter: expiry === undefined ? now : expiry - ID_TOKEN_RENEW_MARGIN_MS };
    return token;
  }
}
