import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import type * as GoogleAuthModule from "google-auth-library";
import type { AuthClient, ExternalAccountClientOptions } from "google-auth-library";
import { isJsonObject } from "../../json-shape.js";
import { describeError } from "../../errors.js";
import { MAX_CREDENTIAL_FILE_BYTES } from "../limits.js";
import { GoogleAuthError, googleFailure } from "./failure.js";

/**
 * Application Default Credentials (ADC), found as Google's client libraries find them, through
 * Google's own library (`google-auth-library`) rather than OAuth flows of our own:
 * 1. the file `$GOOGLE_APPLICATION_CREDENTIALS` names: a service-account key, an
 *    external-account configuration (workload identity federation, e.g. a GitHub OIDC token
 *    exchanged at Google's STS), an `impersonated_service_account` file, or a user's
 *    `authorized_user` file;
 * 2. gcloud's file, `$CLOUDSDK_CONFIG/application_default_credentials.json` (default
 *    `~/.config/gcloud/...`), which `gcloud auth application-default login` writes;
 * 3. the metadata server of the machine (GCE, Cloud Run, GKE Workload Identity, Prow), at
 *    `$GCE_METADATA_HOST` when set.
 * https://cloud.google.com/docs/authentication/application-default-credentials
 *
 * The endpoints a credential file names are honoured, as Google's Go library does (what kpromo
 * and go-containerregistry use): a key file's `token_uri` and an impersonation file's
 * `service_account_impersonation_url`, which the Node library would otherwise replace with
 * Google's public endpoints (a private service connect endpoint, or a stand-in in tests).
 */

type Env = Readonly<Record<string, string | undefined>>;

/** The OAuth scope registries and the IAM Credentials API accept. */
export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";
/** Google's public OAuth token endpoint (what a key file's `token_uri` normally says). */
const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";
/**
 * A token this close to its expiry is renewed before use (the library's default, stated so the
 * credential store renews at the same point): a token is never sent while it may expire in flight.
 */
export const GOOGLE_TOKEN_RENEW_MARGIN_MS = 5 * 60_000;

export interface ApplicationDefaultOptions {
  /** The promoter's environment (GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_CONFIG). */
  readonly env: Env;
  readonly homeDirectory: string;
}

/** Credentials found: the library's client, where they came from, and whose they are. */
export interface GoogleCredentials {
  readonly client: AuthClient;
  /** For messages: `the metadata server`, or the file. Never a secret. */
  readonly where: string;
  /** The principal, when known without asking (a key file's `client_email`, an impersonation target). */
  principal(): Promise<string | undefined>;
}

const UNKNOWN_EXPIRY_RECHECK_MS = 60_000;

type GoogleAuthLibrary = typeof GoogleAuthModule;

/**
 * Google's library, loaded on first use: it is ~40 ms of start-up for every command, and only
 * runs that reach a Google registry or sign as a service account need it.
 */
export function loadGoogleAuthLibrary(): Promise<GoogleAuthLibrary> {
  return import("google-auth-library");
}

/** An OAuth2 access token and when it should be renewed. */
export interface GoogleAccessToken {
  readonly token: string;
  /** Epoch milliseconds after which a new token is to be asked for. */
  readonly renewAfter: number;
}

function fileVariable(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value;
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function readCredentialFile(file: string, named: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    if ((await stat(file)).size > MAX_CREDENTIAL_FILE_BYTES) {
      throw new GoogleAuthError(`${named} ${file} is larger than ${MAX_CREDENTIAL_FILE_BYTES} bytes`);
    }
    text = await readFile(file, "utf8");
  } catch (error) {
    if (error instanceof GoogleAuthError) throw error;
    throw new GoogleAuthError(`cannot read ${named} ${file}: ${describeError(error)}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new GoogleAuthError(`${named} ${file} is not valid JSON`);
  }
  if (!isJsonObject(document) || typeof document.type !== "string") {
    throw new GoogleAuthError(`${named} ${file} is not a Google credential file (no "type")`);
  }
  return document;
}

/** A `fetch` that sends requests for Google's token endpoint to the one the file names. */
function fetchWithTokenUri(tokenUri: string | undefined): typeof fetch | undefined {
  if (tokenUri === undefined || tokenUri === GOOGLE_TOKEN_URL) return undefined;
  return (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url !== GOOGLE_TOKEN_URL) return fetch(input, init);
    return input instanceof Request ? fetch(new Request(tokenUri, input), init) : fetch(tokenUri, init);
  };
}

function stringField(document: Record<string, unknown>, name: string): string | undefined {
  const value = document[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/**
 * How long one request to Google's token endpoint, STS or IAM Credentials may take: the library
 * sets no limit of its own, and a silent endpoint must not hold a run forever. (The metadata
 * server's requests have the limits of the library's own metadata client.)
 */
const GOOGLE_REQUEST_TIMEOUT_MS = 60_000;

interface ClientOptions {
  eagerRefreshThresholdMillis: number;
  transporterOptions: { timeout: number; fetchImplementation?: typeof fetch };
}

/** The library's client options for clients made here (and by the signer's impersonation). */
export function googleClientOptions(): ClientOptions {
  return clientOptions(undefined);
}

function clientOptions(document: Record<string, unknown> | undefined): ClientOptions {
  const fetchImplementation =
    document === undefined ? undefined : fetchWithTokenUri(stringField(document, "token_uri"));
  return {
    eagerRefreshThresholdMillis: GOOGLE_TOKEN_RENEW_MARGIN_MS,
    transporterOptions: {
      timeout: GOOGLE_REQUEST_TIMEOUT_MS,
      ...(fetchImplementation === undefined ? {} : { fetchImplementation }),
    },
  };
}

/** The service account an impersonation URL names (`.../serviceAccounts/NAME:generateAccessToken`). */
function impersonationTarget(url: string): { endpoint: string; target: string } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const match = /\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(parsed.pathname);
  if (!match?.[1]) return undefined;
  return { endpoint: parsed.origin, target: decodeURIComponent(match[1]) };
}

/**
 * The library's client for one credential document, by its type, with the type's own
 * constructor (Google's advice over the catch-all `fromJSON`): `service_account`,
 * `authorized_user`, `external_account`, and `impersonated_service_account` over one of those.
 * Whatever else is refused by name.
 */
function clientFromDocument(
  library: GoogleAuthLibrary,
  document: Record<string, unknown>,
  file: string,
  scopes: readonly string[],
  nested = false,
): { client: AuthClient; principal?: string } {
  const options = clientOptions(document);
  switch (document.type) {
    case "service_account": {
      const email = stringField(document, "client_email");
      const key = stringField(document, "private_key");
      if (email === undefined || key === undefined) {
        throw new GoogleAuthError(`${file}: a service_account key needs client_email and private_key`);
      }
      const keyId = stringField(document, "private_key_id");
      const client = new library.JWT({
        ...options,
        email,
        key,
        scopes: [...scopes],
        ...(keyId === undefined ? {} : { keyId }),
      });
      return { client, principal: email };
    }
    case "authorized_user": {
      const clientId = stringField(document, "client_id");
      const clientSecret = stringField(document, "client_secret");
      const refreshToken = stringField(document, "refresh_token");
      if (clientId === undefined || clientSecret === undefined || refreshToken === undefined) {
        throw new GoogleAuthError(
          `${file}: an authorized_user file needs client_id, client_secret and refresh_token`,
        );
      }
      return { client: new library.UserRefreshClient({ ...options, clientId, clientSecret, refreshToken }) };
    }
    case "external_account": {
      const client = library.ExternalAccountClient.fromJSON({
        ...(document as unknown as ExternalAccountClientOptions),
        ...options,
      });
      if (client === null) throw new GoogleAuthError(`${file}: not a usable external_account configuration`);
      client.scopes = [...scopes];
      const url = stringField(document, "service_account_impersonation_url");
      const target = url === undefined ? undefined : impersonationTarget(url)?.target;
      return target === undefined
        ? { client }
        : { client, principal: `${target} (impersonated by a federated identity)` };
    }
    case "impersonated_service_account": {
      const source = document.source_credentials;
      const url = stringField(document, "service_account_impersonation_url");
      const named = url === undefined ? undefined : impersonationTarget(url);
      if (nested || !isJsonObject(source) || named === undefined) {
        throw new GoogleAuthError(
          `${file}: an impersonated_service_account file needs source_credentials (not themselves impersonated) and a service_account_impersonation_url ending in serviceAccounts/NAME:generateAccessToken`,
        );
      }
      const delegates = Array.isArray(document.delegates)
        ? document.delegates.filter((delegate): delegate is string => typeof delegate === "string")
        : [];
      const made = clientFromDocument(library, source, file, [CLOUD_PLATFORM_SCOPE], true);
      const client = new library.Impersonated({
        sourceClient: made.client,
        targetPrincipal: named.target,
        targetScopes: [...scopes],
        delegates,
        endpoint: named.endpoint,
        ...clientOptions(undefined),
      });
      const caller = made.principal ?? `the ${String(source.type)} credentials`;
      return { client, principal: `${named.target} (impersonated by ${caller})` };
    }
    default:
      throw new GoogleAuthError(
        `${file}: credential type ${JSON.stringify(document.type)} is not supported (service_account, authorized_user, external_account, impersonated_service_account are)`,
      );
  }
}

/**
 * The Application Default Credentials of this environment (see the module comment), or
 * undefined when there are none: no file and no metadata server. A file that is named but
 * unusable is an error, not "none".
 */
export async function findApplicationDefaultCredentials(
  options: ApplicationDefaultOptions,
  scopes: readonly string[] = [CLOUD_PLATFORM_SCOPE],
): Promise<GoogleCredentials | undefined> {
  const named = fileVariable(options.env, "GOOGLE_APPLICATION_CREDENTIALS");
  const gcloudFile = path.join(
    fileVariable(options.env, "CLOUDSDK_CONFIG") ?? path.join(options.homeDirectory, ".config", "gcloud"),
    "application_default_credentials.json",
  );
  const file = named ?? ((await exists(gcloudFile)) ? gcloudFile : undefined);
  if (file !== undefined) {
    const document = await readCredentialFile(
      file,
      named === undefined ? "gcloud's application default credentials" : "$GOOGLE_APPLICATION_CREDENTIALS",
    );
    const library = await loadGoogleAuthLibrary();
    let made: { client: AuthClient; principal?: string };
    try {
      made = clientFromDocument(library, document, file, scopes);
    } catch (error) {
      if (error instanceof GoogleAuthError) throw error;
      throw new GoogleAuthError(`cannot use ${file}: ${describeError(error)}`);
    }
    return {
      client: made.client,
      where: `Google credentials in ${file}`,
      principal: () => Promise.resolve(made.principal),
    };
  }
  // The metadata server: asked whether it is there (at $GCE_METADATA_HOST when set, which the
  // library reads from the process), then used by the library's Compute client.
  const library = await loadGoogleAuthLibrary();
  const { gcpMetadata } = library;
  let available: boolean;
  try {
    available = await gcpMetadata.isAvailable();
  } catch (error) {
    throw googleFailure(error, "reach the metadata server", undefined);
  }
  if (!available) return undefined;
  const client = new library.Compute({ ...clientOptions(undefined), scopes: [...scopes] });
  let email: Promise<string | undefined> | undefined;
  return {
    client,
    where: "Google credentials from the metadata server",
    principal: () => {
      email ??= gcpMetadata
        .instance<string>("service-accounts/default/email")
        .then((answer) => (typeof answer === "string" && answer.length > 0 ? answer : undefined))
        .catch(() => undefined);
      return email;
    },
  };
}

/**
 * A current access token of `credentials`, renewed by the library when near its expiry, or now
 * (`fresh`) when the last one was refused.
 */
export async function googleAccessToken(
  credentials: GoogleCredentials,
  options: { readonly now?: () => number; readonly fresh?: boolean } = {},
): Promise<GoogleAccessToken> {
  const now = options.now ?? Date.now;
  let answer: { token?: string | null };
  if (options.fresh === true) {
    // The token was refused before its time: mark it expired so the library mints a new one.
    credentials.client.setCredentials({ ...credentials.client.credentials, expiry_date: 1 });
  }
  try {
    answer = await credentials.client.getAccessToken();
  } catch (error) {
    throw googleFailure(error, "get a Google access token", await credentials.principal(), credentials.where);
  }
  if (typeof answer.token !== "string" || answer.token.length === 0) {
    throw new GoogleAuthError(`${credentials.where} gave no access token`);
  }
  const expiry = credentials.client.credentials.expiry_date;
  // Without a known expiry the library is asked again after a minute (it answers from its cache
  // while the token is good), so a token is never used for long past its end.
  const renewAfter =
    typeof expiry === "number" && expiry > 0
      ? expiry - GOOGLE_TOKEN_RENEW_MARGIN_MS
      : now() + UNKNOWN_EXPIRY_RECHECK_MS;
  return { token: answer.token, renewAfter };
}
