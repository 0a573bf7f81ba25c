import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  METADATA_ACCOUNT,
  startGoogleStandIns,
  type GoogleStandIns,
} from "../../../test/support/google-stand-ins.js";
import type { RegistryHost } from "../../reference/index.js";
import type { RegistryError } from "../errors.js";
import { googleRegistrySet, isGoogleRegistry } from "../google-auth/index.js";
import { CredentialStore } from "./credential-store.js";
import { GOOGLE_ACCESS_TOKEN_USERNAME, GoogleCredentialSource } from "./google-source.js";
import { defaultCredentialSources } from "./sources.js";
import type { Credential } from "./types.js";

/**
 * Google's Application Default Credentials through google-auth-library, against stand-ins of
 * the metadata server, the OAuth token endpoint, the STS and IAM Credentials on 127.0.0.1.
 */

const REGISTRY = "us-central1-docker.pkg.dev" as RegistryHost;
const TARGET = "promoter@k8s-artifacts-prod.iam.gserviceaccount.com";
const KEY_ACCOUNT = "ci-key@k8s-staging.iam.gserviceaccount.com";

let google: GoogleStandIns;
let directory: string;

beforeAll(async () => {
  google = await startGoogleStandIns();
  directory = await mkdtemp(path.join(os.tmpdir(), "google-credentials-"));
});
afterAll(async () => {
  await google.close();
  await rm(directory, { recursive: true, force: true });
});
beforeEach(() => {
  google.requests.length = 0;
  // The library reads these from the process, not from the environment it is handed.
  vi.stubEnv("GOOGLE_APPLICATION_CREDENTIALS", "");
  vi.stubEnv("GCE_METADATA_HOST", "");
  vi.stubEnv("METADATA_SERVER_DETECTION", "none");
});
afterEach(() => {
  vi.unstubAllEnvs();
});

async function writeJson(name: string, value: unknown): Promise<string> {
  const file = path.join(directory, name);
  await writeFile(file, JSON.stringify(value));
  return file;
}

function source(env: Record<string, string>, now?: () => number): GoogleCredentialSource {
  return new GoogleCredentialSource({
    env,
    homeDirectory: directory,
    googleRegistries: googleRegistrySet(["127.0.0.1:5999"]),
    ...(now === undefined ? {} : { now }),
  });
}

function useMetadataServer(): void {
  vi.stubEnv("GCE_METADATA_HOST", google.metadataHost);
  vi.stubEnv("METADATA_SERVER_DETECTION", "assume-present");
}

function basic(credential: Credential | undefined): Extract<Credential, { kind: "basic" }> {
  if (credential?.kind !== "basic")
    throw new Error(`expected a basic credential, got ${JSON.stringify(credential)}`);
  return credential;
}

describe("which registries are Google's", () => {
  it("gcr.io, its regional hosts, Artifact Registry's docker hosts, and marked hosts", () => {
    const marked = googleRegistrySet(["Registry.Internal:5000", "10.0.0.8"]);
    for (const host of [
      "gcr.io",
      "us.gcr.io",
      "eu.gcr.io",
      "europe-west1-docker.pkg.dev",
      "registry.internal:5000",
    ]) {
      expect(isGoogleRegistry(host as RegistryHost, marked), host).toBe(true);
    }
    expect(isGoogleRegistry("10.0.0.8:443" as RegistryHost, marked)).toBe(true);
    for (const host of [
      "gcr.io.evil.example",
      "evilgcr.io",
      "docker.pkg.dev",
      "pkg.dev",
      "ghcr.io",
      "registry.internal",
    ]) {
      expect(isGoogleRegistry(host as RegistryHost, marked), host).toBe(false);
    }
  });
});

describe("Application Default Credentials", () => {
  it("from the metadata server at GCE_METADATA_HOST: the account's token as oauth2accesstoken's password", async () => {
    useMetadataServer();
    const credential = basic(await source({}).lookup(REGISTRY, undefined));
    expect(credential.username).toBe(GOOGLE_ACCESS_TOKEN_USERNAME);
    expect(google.principalOf(credential.password)).toBe(METADATA_ACCOUNT);
    expect(credential.source).toContain("metadata server");
    expect(credential.source).toContain(METADATA_ACCOUNT);
    const tokenRequest = google.requests.find((request) => request.path.endsWith("/default/token"));
    expect(tokenRequest?.headers["metadata-flavor"]).toBe("Google");
  });

  it("only for Google's registries: another host gets nothing and nothing is asked", async () => {
    useMetadataServer();
    expect(await source({}).lookup("ghcr.io" as RegistryHost, undefined)).toBeUndefined();
    expect(google.requests).toEqual([]);
    expect(basic(await source({}).lookup("127.0.0.1:5999" as RegistryHost, undefined)).username).toBe(
      GOOGLE_ACCESS_TOKEN_USERNAME,
    );
  });

  it("none at all (no file, no metadata server): anonymous, not an error", async () => {
    expect(await source({}).lookup(REGISTRY, undefined)).toBeUndefined();
  });

  it("from a service-account key in $GOOGLE_APPLICATION_CREDENTIALS, at the key's token_uri", async () => {
    const key = await writeJson("key.json", google.serviceAccountKey(KEY_ACCOUNT));
    const credential = basic(
      await source({ GOOGLE_APPLICATION_CREDENTIALS: key }).lookup(REGISTRY, undefined),
    );
    expect(google.principalOf(credential.password)).toBe(KEY_ACCOUNT);
    expect(credential.source).toBe(`Google credentials in ${key} (${KEY_ACCOUNT})`);
    // The stand-in verified the signed assertion with the key's public half.
    expect(google.requests.map((request) => [request.service, request.status])).toEqual([["oauth", 200]]);
    expect(google.requests[0]?.body?.grant_type).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer");
  });

  it("from an external-account file (workload identity federation): STS exchange, then impersonation", async () => {
    const audience =
      "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/github/providers/actions";
    const caller = `principal://${audience}/subject/repo:kubernetes/k8s.io:ref:refs/heads/main`;
    google.allowImpersonation(caller, TARGET);
    const subjectFile = await writeJson("github-oidc-token", "");
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    await writeFile(
      subjectFile,
      `${encode({ alg: "RS256" })}.${encode({ sub: "repo:kubernetes/k8s.io:ref:refs/heads/main", iss: "https://token.actions.githubusercontent.com" })}.c2ln`,
    );
    const config = await writeJson("external.json", {
      type: "external_account",
      audience,
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      token_url: google.stsUrl,
      service_account_impersonation_url: `${google.iamCredentialsUrl}/v1/projects/-/serviceAccounts/${TARGET}:generateAccessToken`,
      credential_source: { file: subjectFile },
    });
    const credential = basic(
      await source({ GOOGLE_APPLICATION_CREDENTIALS: config }).lookup(REGISTRY, undefined),
    );
    expect(google.principalOf(credential.password)).toBe(TARGET);
    expect(credential.source).toContain(`${TARGET} (impersonated by a federated identity)`);
    const [sts, iam] = google.requests;
    expect(sts).toMatchObject({ service: "sts", status: 200, body: { audience } });
    expect(iam).toMatchObject({ service: "iam", status: 200, caller });
    expect(iam?.body?.scope).toEqual(["https://www.googleapis.com/auth/cloud-platform"]);
  });

  it("from an impersonated_service_account file, at the file's impersonation URL", async () => {
    const caller = "impersonator@k8s-staging.iam.gserviceaccount.com";
    google.allowImpersonation(caller, TARGET);
    const config = await writeJson("impersonated.json", {
      type: "impersonated_service_account",
      service_account_impersonation_url: `${google.iamCredentialsUrl}/v1/projects/-/serviceAccounts/${TARGET}:generateAccessToken`,
      source_credentials: google.serviceAccountKey(caller),
      delegates: [],
    });
    const credential = basic(
      await source({ GOOGLE_APPLICATION_CREDENTIALS: config }).lookup(REGISTRY, undefined),
    );
    expect(google.principalOf(credential.password)).toBe(TARGET);
    expect(credential.source).toContain(`${TARGET} (impersonated by ${caller})`);
    expect(google.requests.map((request) => [request.service, request.status])).toEqual([
      ["oauth", 200],
      ["iam", 200],
    ]);
  });

  it("a refused impersonation is a registry-denied error naming both principals and the missing permission", async () => {
    const caller = "not-allowed@k8s-staging.iam.gserviceaccount.com";
    const config = await writeJson("refused.json", {
      type: "impersonated_service_account",
      service_account_impersonation_url: `${google.iamCredentialsUrl}/v1/projects/-/serviceAccounts/${TARGET}:generateAccessToken`,
      source_credentials: google.serviceAccountKey(caller),
    });
    const error = (await source({ GOOGLE_APPLICATION_CREDENTIALS: config })
      .lookup(REGISTRY, undefined)
      .catch((caught: unknown) => caught)) as RegistryError;
    expect(error.code).toBe("registry-denied");
    expect(error.message).toContain(TARGET);
    expect(error.message).toContain(caller);
    expect(error.message).toContain("HTTP 403");
    expect(error.message).toContain("missing permission iam.serviceAccounts.getAccessToken");
    expect(error.message).toContain(REGISTRY);
    // The caller's own access token (issued by the stand-in) is nowhere in the message.
    for (const { token } of google.issued) expect(error.message).not.toContain(token);
  });

  it("a named file that is not there is an error naming the variable, not anonymous access", async () => {
    const missing = path.join(directory, "absent.json");
    const error = (await source({ GOOGLE_APPLICATION_CREDENTIALS: missing })
      .lookup(REGISTRY, undefined)
      .catch((caught: unknown) => caught)) as RegistryError;
    expect(error.code).toBe("registry-auth");
    expect(error.message).toContain("$GOOGLE_APPLICATION_CREDENTIALS");
    expect(error.message).toContain(missing);
  });
});

describe("in the credential store", () => {
  it("an access token due to expire is renewed: each lookup after that gets the principal's current token", async () => {
    const stand = await startGoogleStandIns({ accessTokenSeconds: 120 });
    try {
      vi.stubEnv("GCE_METADATA_HOST", stand.metadataHost);
      vi.stubEnv("METADATA_SERVER_DETECTION", "assume-present");
      // 120 s is inside the five minutes before expiry in which a token is renewed.
      const store = new CredentialStore([source({})]);
      const first = basic(await store.lookup(REGISTRY, undefined));
      const second = basic(await store.lookup(REGISTRY, undefined));
      expect(second.password).not.toBe(first.password);
      expect(stand.principalOf(second.password)).toBe(METADATA_ACCOUNT);
      expect(stand.issued).toHaveLength(2);
    } finally {
      await stand.close();
    }
  });

  it("a long-lived token is asked for once, and renewed once its renewal time has come", async () => {
    useMetadataServer();
    let clock = Date.now();
    const store = new CredentialStore([source({})], undefined, () => clock);
    const first = basic(await store.lookup(REGISTRY, undefined));
    expect(basic(await store.lookup(REGISTRY, undefined)).password).toBe(first.password);
    expect(google.requests.filter((request) => request.path.endsWith("/token"))).toHaveLength(1);
    // The store asks again after the renewal time; the library, whose clock is the real one,
    // answers from its cache while its token is good: nothing is renewed before it is due.
    clock += 56 * 60_000;
    expect(basic(await store.lookup(REGISTRY, undefined)).password).toBe(first.password);
  });

  it("a token refused before its time is renewed on request, once for all who held it", async () => {
    useMetadataServer();
    const store = new CredentialStore([source({})]);
    const first = basic(await store.lookup(REGISTRY, undefined));
    // Long-lived: asked again, the library answers from its cache.
    expect(basic(await store.lookup(REGISTRY, undefined)).password).toBe(first.password);
    google.expireIssued();
    const renewals = await Promise.all([1, 2, 3].map(() => store.renew(REGISTRY, undefined, first)));
    const renewed = basic(renewals[0]);
    expect(renewed.password).not.toBe(first.password);
    expect(google.isValid(renewed.password)).toBe(true);
    for (const other of renewals) expect(basic(other).password).toBe(renewed.password);
    expect(basic(await store.lookup(REGISTRY, undefined)).password).toBe(renewed.password);
    // A credential that is not short-lived is not asked for again.
    const explicit = { kind: "basic", username: "u", password: "p", source: "test" } as const;
    expect(await store.renew(REGISTRY, undefined, explicit)).toBe(explicit);
  });

  it("explicit credentials win over Application Default Credentials", async () => {
    useMetadataServer();
    const sources = defaultCredentialSources({
      env: { PROMOTER_AUTH_US__CENTRAL1__DOCKER_PKG_DEV: "_json_key:explicit" },
      homeDirectory: directory,
    });
    const store = new CredentialStore(sources);
    expect(await store.lookup(REGISTRY, undefined)).toMatchObject({
      username: "_json_key",
      password: "explicit",
    });
    expect(google.requests).toEqual([]);
    expect(store.places(REGISTRY).at(-1)).toContain("Google application default credentials");
    expect(store.places("ghcr.io" as RegistryHost).join(" ")).not.toContain("Google");
  });
});
