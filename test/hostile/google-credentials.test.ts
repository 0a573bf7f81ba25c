import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { registryAuthVariable } from "../../src/registry/index.js";
import { METADATA_ACCOUNT, startGoogleStandIns, type GoogleStandIns } from "../support/google-stand-ins.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoInspectRaw } from "../support/skopeo.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * Google's Application Default Credentials, end to end: bin/promoter.js promotes from a plain
 * staging registry to a real distribution registry whose token server takes Google access
 * tokens as `oauth2accesstoken`'s password (as gcr.io's and pkg.dev's do), the registry marked
 * as Google's with `--google-registry`, and the tokens coming from stand-ins of the metadata
 * server and IAM Credentials on 127.0.0.1.
 */

const TARGET = "promoter@k8s-artifacts-prod.iam.gserviceaccount.com";
const ROBOT = { username: "robot", password: "Robot-pw-1c2d3e4f" };
const IMAGES = [0, 1, 2, 3].map((index) =>
  makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: `google-credentials-${index}` }),
);

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let google: GoogleStandIns;
/** Every password the production token server was shown for `oauth2accesstoken`, in order. */
const shown: { password: string; accepted: boolean }[] = [];
/** Set by a case: what the token server does once it accepted a Google token. */
let afterAccepting: (() => void) | undefined;

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "google-credentials-"));
  google = await startGoogleStandIns();
  staging = await startRegistry();
  prod = await startRegistry({
    auth: "token",
    anonymous: "none",
    users: [
      {
        username: "oauth2accesstoken",
        password: "",
        access: "all",
        acceptsPassword: (password) => {
          const accepted = google.isValid(password) && google.principalOf(password) !== undefined;
          shown.push({ password, accepted });
          if (accepted && afterAccepting !== undefined) {
            const then = afterAccepting;
            afterAccepting = undefined;
            then();
          }
          return accepted;
        },
      },
      { ...ROBOT, access: "all" },
    ],
  });
  for (const [index, image] of IMAGES.entries()) {
    await pushTagsWithSkopeo(work, staging.host, `staging/app-${index}`, [{ content: image, tag: "v1" }]);
  }
}, 120_000);

afterEach(() => {
  shown.length = 0;
  google.requests.length = 0;
  afterAccepting = undefined;
});

afterAll(async () => {
  await Promise.allSettled([staging.stop(), prod.stop(), google.close()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** A manifest promoting every image from staging to `prod/<name>/app-N`. */
async function writeManifest(name: string): Promise<string> {
  const file = path.join(work, `${name}.yaml`);
  const lines = [
    "registries:",
    `- name: ${staging.host}/staging`,
    "  src: true",
    `- name: ${prod.host}/${name}`,
    "images:",
  ];
  for (const [index, image] of IMAGES.entries()) {
    lines.push(`- name: app-${index}`, "  dmap:", `    "${image.digest}": ["v1"]`);
  }
  await writeFile(file, `${lines.join("\n")}\n`);
  return file;
}

function promote(manifest: string, env: Record<string, string>) {
  return runPromoter(["promote", "--manifest", manifest, "--confirm", "--google-registry", prod.host], {
    cwd: work,
    env,
    timeoutMs: 120_000,
  });
}

/** A token of the metadata server's account, to judge the result with skopeo. */
async function metadataToken(): Promise<string> {
  const answer = await fetch(`${google.url}/computeMetadata/v1/instance/service-accounts/default/token`, {
    headers: { "metadata-flavor": "Google" },
  });
  return ((await answer.json()) as { access_token: string }).access_token;
}

async function expectPromoted(name: string): Promise<void> {
  const creds = { username: "oauth2accesstoken", password: await metadataToken() };
  for (const [index, image] of IMAGES.entries()) {
    const { digest } = await skopeoInspectRaw(`docker://${prod.host}/${name}/app-${index}:v1`, { creds });
    expect(digest).toBe(image.digest);
  }
}

function expectNoTokenIn(text: string): void {
  for (const { token } of google.issued) expect(text).not.toContain(token);
}

describe("Google's registries with Application Default Credentials", () => {
  it("Workload Identity: the metadata server's token as oauth2accesstoken, renewed when it expires mid-run", async () => {
    // Once the token server has accepted one Google token, every token issued so far expires:
    // the rest of the run needs a new one from the metadata server.
    afterAccepting = () => {
      google.expireIssued();
    };
    const manifest = await writeManifest("workload-identity");
    const run = await promote(manifest, { GCE_METADATA_HOST: google.metadataHost });
    expectClear(run, 0);
    expectNoTokenIn(`${run.stdout}\n${run.stderr}`);
    const metadataTokens = google.requests.filter((request) => request.path.endsWith("/default/token"));
    expect(metadataTokens.length).toBeGreaterThanOrEqual(2);
    expect(metadataTokens.every((request) => request.headers["metadata-flavor"] === "Google")).toBe(true);
    // The expired token was refused, and a renewed one accepted after it.
    const firstRefused = shown.findIndex((attempt) => !attempt.accepted);
    expect(firstRefused).toBeGreaterThan(0);
    expect(shown.slice(firstRefused).some((attempt) => attempt.accepted)).toBe(true);
    expect(
      new Set(shown.filter((attempt) => attempt.accepted).map((attempt) => attempt.password)).size,
    ).toBeGreaterThanOrEqual(2);
    expect(run.stderr).toContain(
      `credentials for ${prod.host} from Google credentials from the metadata server (${METADATA_ACCOUNT})`,
    );
    await expectPromoted("workload-identity");
  });

  it("an explicit credential for the registry wins: the metadata server is not asked", async () => {
    const manifest = await writeManifest("explicit");
    const run = await promote(manifest, {
      GCE_METADATA_HOST: google.metadataHost,
      [registryAuthVariable(prod.host)]: `${ROBOT.username}:${ROBOT.password}`,
    });
    expectClear(run, 0);
    expect(google.requests).toEqual([]);
    expect(shown).toEqual([]);
    await expectPromoted("explicit");
  });

  it("impersonation through an impersonated_service_account file; refused, a clear line naming both principals and the permission", async () => {
    const caller = "release-manager@k8s-staging.iam.gserviceaccount.com";
    const credentials = path.join(work, "impersonated.json");
    await writeFile(
      credentials,
      JSON.stringify({
        type: "impersonated_service_account",
        service_account_impersonation_url: `${google.iamCredentialsUrl}/v1/projects/-/serviceAccounts/${TARGET}:generateAccessToken`,
        source_credentials: google.serviceAccountKey(caller),
      }),
    );
    const manifest = await writeManifest("impersonated");
    const refused = await promote(manifest, { GOOGLE_APPLICATION_CREDENTIALS: credentials });
    expectClear(refused, 1, /missing permission iam\.serviceAccounts\.getAccessToken/);
    const all = `${refused.stdout}\n${refused.stderr}`;
    expect(all).toContain(TARGET);
    expect(all).toContain(caller);
    expect(all).toContain("HTTP 403");
    expectNoTokenIn(all);

    google.allowImpersonation(caller, TARGET);
    const run = await promote(manifest, { GOOGLE_APPLICATION_CREDENTIALS: credentials });
    expectClear(run, 0);
    const accepted = shown
      .filter((attempt) => attempt.accepted)
      .map((attempt) => google.principalOf(attempt.password));
    expect(new Set(accepted)).toEqual(new Set([TARGET]));
    await expectPromoted("impersonated");
  });
});
