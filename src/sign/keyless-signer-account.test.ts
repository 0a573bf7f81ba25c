import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { captureIO } from "../../test/support/cli.js";
import { startGoogleStandIns, type GoogleStandIns } from "../../test/support/google-stand-ins.js";
import { STACK_LINE } from "../../test/support/promoter-process.js";
import { startSigstoreStandIns, type SigstoreStandIns } from "../../test/support/sigstore-stand-ins.js";
import { makeImage, writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { runCli } from "../cli/main.js";

/**
 * `--keyless --signer-account`: the identity token of a Google service account, obtained by
 * impersonating it with the Application Default Credentials (IAM Credentials generateIdToken,
 * audience `sigstore`, with the email), as kpromo's `--signer-account`; against stand-ins of
 * IAM Credentials, the OAuth token endpoint, Fulcio and Rekor on 127.0.0.1.
 */

const SIGNER = "krel-trust@k8s-releng-prod.iam.gserviceaccount.com";
const CALLER = "prow-build@k8s-infra-prow-build.iam.gserviceaccount.com";
const STRANGER = "someone-else@k8s-staging.iam.gserviceaccount.com";
const GOOGLE_ISSUER = "https://accounts.google.com";

let sigstore: SigstoreStandIns;
let google: GoogleStandIns;
let dir: string;
let callerKey: string;
let strangerKey: string;

beforeAll(async () => {
  [sigstore, google] = await Promise.all([startSigstoreStandIns(), startGoogleStandIns()]);
  dir = await mkdtemp(path.join(tmpdir(), "signer-account-"));
  callerKey = path.join(dir, "caller.json");
  strangerKey = path.join(dir, "stranger.json");
  await writeFile(callerKey, JSON.stringify(google.serviceAccountKey(CALLER)));
  await writeFile(strangerKey, JSON.stringify(google.serviceAccountKey(STRANGER)));
  google.allowImpersonation(CALLER, SIGNER);
  await writeFile(path.join(dir, "trusted_root.json"), JSON.stringify(sigstore.trustedRoot()));
});
afterAll(async () => {
  await Promise.all([sigstore.close(), google.close()]);
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  google.requests.length = 0;
});

async function writeManifest(name: string): Promise<string> {
  const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: `signer-account-${name}` });
  await writeOciLayoutDirectly(path.join(dir, `staging-${name}`, "app"), [{ content: image, tag: "v1" }]);
  const file = `${name}.yaml`;
  await writeFile(
    path.join(dir, file),
    `registries:\n- name: oci:staging-${name}\n  src: true\n- name: oci:mirror-${name}\nimages:\n- name: app\n  dmap:\n    "${image.digest}": ["v1"]\n`,
  );
  return file;
}

/** Keyless signing against the stand-ins, recognising our certificates by the account's name. */
function keylessFlags(): string[] {
  return [
    "--keyless",
    "--fulcio-url",
    sigstore.fulcioUrl,
    "--rekor-url",
    sigstore.rekorUrl,
    "--trusted-root",
    "trusted_root.json",
    "--certificate-identity",
    SIGNER,
    "--certificate-oidc-issuer",
    GOOGLE_ISSUER,
    "--no-attestations",
  ];
}

/** The CLI with `keyFile` as the job's Google credentials: its status and everything it printed. */
async function runWithCredentials(keyFile: string, args: readonly string[]) {
  const capture = captureIO({ cwd: dir, env: { HOME: dir, GOOGLE_APPLICATION_CREDENTIALS: keyFile } });
  const status = await runCli([...args], capture.io);
  return { status, all: `${capture.out()}\n${capture.err()}` };
}

function promote(manifest: string, keyFile: string, ...extra: string[]) {
  return runWithCredentials(keyFile, [
    "promote",
    "--manifest",
    manifest,
    "--confirm",
    ...keylessFlags(),
    ...extra,
  ]);
}

function expectNoTokenIn(text: string): void {
  for (const { token } of google.issued) expect(text).not.toContain(token);
}

describe("keyless signing as a service account (--signer-account)", () => {
  it("asks IAM Credentials for an identity token of the account, audience sigstore with its email, and signs with it", async () => {
    const fulcioBefore = sigstore.requests.filter((request) => request.service === "fulcio").length;
    const run = await promote(
      await writeManifest("signed"),
      callerKey,
      "--signer-account",
      SIGNER,
      "--iam-credentials-url",
      google.iamCredentialsUrl,
    );
    expect(run.status, run.all).toBe(0);
    expect(run.all).toMatch(/1 signed/);
    const iam = google.requests.filter((request) => request.service === "iam");
    expect(iam.length).toBeGreaterThanOrEqual(1);
    for (const request of iam) {
      expect(request).toMatchObject({
        method: "POST",
        path: `/v1/projects/-/serviceAccounts/${SIGNER}:generateIdToken`,
        status: 200,
        caller: CALLER,
      });
      expect(request.body).toMatchObject({ audience: "sigstore", includeEmail: true, delegates: [] });
      expect(request.headers.authorization).toMatch(/^Bearer ya29\./);
    }
    // The caller's access token came from its key at the key file's token endpoint.
    expect(google.requests.filter((request) => request.service === "oauth")).toMatchObject([
      { status: 200, caller: CALLER },
    ]);
    expect(sigstore.requests.filter((request) => request.service === "fulcio").length).toBeGreaterThan(
      fulcioBefore,
    );
    expectNoTokenIn(run.all);
  });

  it("kpromo's command line (cip --keyless --signer-account) signs as the account the same way", async () => {
    const manifest = await writeManifest("cip");
    const { status, all } = await runWithCredentials(callerKey, [
      "cip",
      `--manifest=${manifest}`,
      "--confirm",
      `--signer-account=${SIGNER}`,
      ...keylessFlags(),
      "--iam-credentials-url",
      google.iamCredentialsUrl,
    ]);
    expect(status, all).toBe(0);
    expect(all).not.toContain("is a Google service account kpromo signs as");
    expect(google.requests.filter((request) => request.service === "iam")).toMatchObject([
      { path: `/v1/projects/-/serviceAccounts/${SIGNER}:generateIdToken`, status: 200, caller: CALLER },
    ]);
    expectNoTokenIn(all);
  });

  it("a caller without the permission: a sign failure naming the account, the caller and the permission", async () => {
    const run = await promote(
      await writeManifest("refused"),
      strangerKey,
      "--signer-account",
      SIGNER,
      "--iam-credentials-url",
      google.iamCredentialsUrl,
    );
    expect(run.status, run.all).toBe(1);
    expect(run.all).toContain(SIGNER);
    expect(run.all).toContain(STRANGER);
    expect(run.all).toContain("HTTP 403");
    expect(run.all).toContain("missing permission iam.serviceAccounts.getOpenIdToken");
    expect(run.all).not.toMatch(STACK_LINE);
    expectNoTokenIn(run.all);
  });

  it("refuses contradictory or malformed flags", async () => {
    const manifest = await writeManifest("usage");
    const capture = () => captureIO({ cwd: dir, env: { HOME: dir } });
    const without = capture();
    expect(await runCli(["promote", "--manifest", manifest, "--signer-account", SIGNER], without.io)).toBe(2);
    expect(without.err()).toMatch(/are for --keyless/);
    const both = await promote(
      manifest,
      callerKey,
      "--signer-account",
      SIGNER,
      "--identity-token",
      "env://X",
    );
    expect(both.status).toBe(2);
    expect(both.all).toMatch(/either --identity-token or --signer-account/);
    const notEmail = await promote(manifest, callerKey, "--signer-account", "not an email");
    expect(notEmail.status).toBe(2);
    const plainUrl = await promote(
      manifest,
      callerKey,
      "--signer-account",
      SIGNER,
      "--iam-credentials-url",
      "http://iam.example.com",
    );
    expect(plainUrl.status).toBe(2);
    expect(plainUrl.all).toMatch(/must be https/);
  });
});
