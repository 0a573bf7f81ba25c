import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { bundleFromJSON } from "@sigstore/bundle";
import { toSignedEntity, Verifier } from "@sigstore/verify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureIO } from "../../test/support/cli.js";
import {
  identityToken,
  startSigstoreStandIns,
  type SigstoreStandIns,
} from "../../test/support/sigstore-stand-ins.js";
import { makeImage, writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { runCli } from "../cli/main.js";
import { digestOf } from "../reference/index.js";
import { signingStatement } from "./bundle-format.js";
import { CosignAnnotation, CosignMediaType, simpleSigningPayload } from "./cosign-format.js";
import { createKeylessPolicy, trustMaterialFromTrustedRoot } from "./keyless-policy.js";
import { keylessOwnSignatures } from "./own-signatures.js";
import { createKeylessSigner } from "./signer.js";

/**
 * Keyless signing through @sigstore/sign against the Fulcio and Rekor stand-ins, and the
 * keyless policy verifying the result with @sigstore/verify.
 */

const SUBJECT = "release@example.com";
const ISSUER = "https://issuer.example";
const DIGEST = digestOf("image");
let services: SigstoreStandIns;
let otherServices: SigstoreStandIns;
let dir: string;

beforeAll(async () => {
  [services, otherServices] = await Promise.all([startSigstoreStandIns(), startSigstoreStandIns()]);
  dir = await mkdtemp(path.join(tmpdir(), "keyless-"));
});
afterAll(async () => {
  await Promise.all([services.close(), otherServices.close()]);
  await rm(dir, { recursive: true, force: true });
});

function signer(token = identityToken(SUBJECT, ISSUER)) {
  return createKeylessSigner({
    fulcioUrl: services.fulcioUrl,
    rekorUrl: services.rekorUrl,
    identityToken: "env://SIGSTORE_ID_TOKEN",
    env: { SIGSTORE_ID_TOKEN: token },
  });
}

describe("keyless signing (stand-in Fulcio and Rekor)", () => {
  it("makes a cosign layer with certificate, chain and Rekor bundle that the keyless policy accepts", async () => {
    const payload = simpleSigningPayload("registry.example.io/app", DIGEST);
    const annotations = await signer().signPayload(payload);
    expect(annotations[CosignAnnotation.certificate]).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const rekor = JSON.parse(annotations[CosignAnnotation.bundle] ?? "{}") as {
      Payload?: { logID?: string; integratedTime?: number };
    };
    expect(rekor.Payload?.logID).toMatch(/^[0-9a-f]{64}$/);
    const layer = {
      mediaType: CosignMediaType.simpleSigning,
      digest: digestOf(payload),
      size: payload.length,
      annotations,
    };
    const trust = await trustMaterialFromTrustedRoot(services.trustedRoot(), "stand-in root");
    const exact = createKeylessPolicy([{ subject: SUBJECT, issuer: ISSUER }], trust);
    expect(
      await exact.verifyLayer(layer, payload, { digest: DIGEST, identity: "registry.example.io/app" }),
    ).toEqual({
      ok: true,
      signer: `${SUBJECT} (${ISSUER})`,
    });
    const pattern = createKeylessPolicy(
      [{ subjectRegExp: ".*@example\\.com", issuerRegExp: "https://issuer\\..*" }],
      trust,
    );
    expect((await pattern.verifyLayer(layer, payload, { digest: DIGEST })).ok).toBe(true);

    const stranger = createKeylessPolicy([{ subject: "someone@example.com", issuer: ISSUER }], trust);
    expect(await stranger.verifyLayer(layer, payload, { digest: DIGEST })).toMatchObject({
      ok: false,
      reason: /does not accept/,
    });
    const partialMatch = createKeylessPolicy([{ subjectRegExp: "release", issuer: ISSUER }], trust);
    expect((await partialMatch.verifyLayer(layer, payload, { digest: DIGEST })).ok).toBe(false);
    const untrusted = createKeylessPolicy(
      [{ subject: SUBJECT, issuer: ISSUER }],
      await trustMaterialFromTrustedRoot(otherServices.trustedRoot(), "other root"),
    );
    expect(await untrusted.verifyLayer(layer, payload, { digest: DIGEST })).toMatchObject({
      ok: false,
      reason: /does not verify/,
    });
    const tampered = simpleSigningPayload("registry.example.io/evil", DIGEST);
    expect(
      (
        await exact.verifyLayer({ ...layer, digest: digestOf(tampered), size: tampered.length }, tampered, {
          digest: DIGEST,
        })
      ).ok,
    ).toBe(false);
    expect(await exact.verifyLayer(layer, payload, { digest: digestOf("other") })).toMatchObject({
      ok: false,
      reason: /signs sha256/,
    });
  });

  it("makes a DSSE bundle that @sigstore/verify accepts with the stand-ins' trust root", async () => {
    const serialized = await signer().signStatement(signingStatement(DIGEST, "registry.example.io/app"));
    const bundle = bundleFromJSON(serialized);
    expect(bundle.verificationMaterial.tlogEntries).toHaveLength(1);
    const trust = await trustMaterialFromTrustedRoot(services.trustedRoot(), "stand-in root");
    const verified = new Verifier(trust, { ctlogThreshold: 0 }).verify(toSignedEntity(bundle), {
      subjectAlternativeName: SUBJECT,
      extensions: { issuer: ISSUER },
    });
    expect(verified.identity?.subjectAlternativeName).toBe(SUBJECT);
  });

  it("recognises as its own only a layer or bundle that fully verifies as the configured identity", async () => {
    const identity = "registry.example.io/app";
    const payload = simpleSigningPayload(identity, DIGEST);
    const layerOf = (annotations: Record<string, string>) => ({
      mediaType: CosignMediaType.simpleSigning,
      digest: digestOf(payload),
      size: payload.length,
      annotations,
    });
    const trust = await trustMaterialFromTrustedRoot(services.trustedRoot(), "stand-in root");
    const own = keylessOwnSignatures(createKeylessPolicy([{ subject: SUBJECT, issuer: ISSUER }], trust));
    const ours = await signer().signPayload(payload);
    expect(await own.layer(layerOf(ours), DIGEST, identity)).toEqual({ ok: true });
    expect((await own.layer(layerOf(ours), DIGEST, "registry.example.io/other")).ok).toBe(false);
    expect((await own.layer({ ...layerOf(ours), size: payload.length + 1 }, DIGEST, identity)).ok).toBe(
      false,
    );
    expect(
      await own.layer(layerOf({ ...ours, [CosignAnnotation.rfc3161Timestamp]: "junk" }), DIGEST, identity),
    ).toMatchObject({ ok: false, reason: /annotations we do not write/ });
    const mallory = await signer(identityToken("mallory@example.com", ISSUER)).signPayload(payload);
    expect(await own.layer(layerOf(mallory), DIGEST, identity)).toMatchObject({
      ok: false,
      reason: /mallory@example\.com.*does not accept/,
    });
    const junk = {
      ...ours,
      [CosignAnnotation.certificate]: ours[CosignAnnotation.certificate]!.replace(/[A-Z]{8}/, "AAAAAAAA"),
    };
    expect((await own.layer(layerOf(junk), DIGEST, identity)).ok).toBe(false);
    // Without a configured identity, nothing is ours.
    expect((await keylessOwnSignatures(undefined).layer(layerOf(ours), DIGEST, identity)).ok).toBe(false);

    const statement = signingStatement(DIGEST, identity);
    const bundle = new TextEncoder().encode(JSON.stringify(await signer().signStatement(statement)));
    expect(await own.bundle(bundle, DIGEST, identity)).toEqual({ ok: true });
    expect((await own.bundle(bundle, digestOf("other"), identity)).ok).toBe(false);
    const foreign = new TextEncoder().encode(
      JSON.stringify(await signer(identityToken("mallory@example.com", ISSUER)).signStatement(statement)),
    );
    expect((await own.bundle(foreign, DIGEST, identity)).ok).toBe(false);
    expect((await own.bundle(new TextEncoder().encode("{}"), DIGEST, identity)).ok).toBe(false);
  });

  it("reports Fulcio failures without the identity token", async () => {
    services.failNext("fulcio", 1);
    const token = identityToken(SUBJECT, ISSUER);
    const error = await signer(token)
      .signPayload(simpleSigningPayload("x", DIGEST))
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "sign-failed" });
    expect((error as Error).message).toMatch(/CA_CREATE_SIGNING_CERTIFICATE_ERROR.*HTTP 503/);
    expect((error as Error).message).not.toContain(token);
    const broken = await signer("not-a-jwt")
      .signPayload(simpleSigningPayload("x", DIGEST))
      .catch((caught: unknown) => caught);
    expect((broken as Error).message).toMatch(/not a JWT/);
  });

  it("promotes with --keyless, verifies with a policy file, and does not re-sign on the next run", async () => {
    const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "keyless-promote" });
    await writeOciLayoutDirectly(path.join(dir, "staging", "app"), [{ content: image, tag: "v1" }]);
    await writeFile(
      path.join(dir, "promoter.yaml"),
      `registries:\n- name: oci:staging\n  src: true\n- name: oci:mirror-a\n- name: oci:mirror-b\nimages:\n- name: app\n  dmap:\n    "${image.digest}": ["v1"]\n`,
    );
    await writeFile(path.join(dir, "trusted_root.json"), JSON.stringify(services.trustedRoot()));
    await writeFile(
      path.join(dir, "policy.yaml"),
      `trustedRoot: trusted_root.json\ndefault:\n  keyless:\n    - subject: ${SUBJECT}\n      issuerRegExp: https://issuer\\.example\n`,
    );
    const run = async (...args: string[]) => {
      const capture = captureIO({ cwd: dir, env: { SIGSTORE_ID_TOKEN: identityToken(SUBJECT, ISSUER) } });
      const status = await runCli(args, capture.io);
      return { status, out: capture.out(), err: capture.err() };
    };
    const keyless = [
      "--keyless",
      "--fulcio-url",
      services.fulcioUrl,
      "--rekor-url",
      services.rekorUrl,
      "--trusted-root",
      "trusted_root.json",
      "--certificate-identity",
      SUBJECT,
      "--certificate-oidc-issuer",
      ISSUER,
      // The promotion record and the VSA in both layouts: keyless .att layers are recognised too.
      "--attestation-layout",
      "both",
    ];
    const promoted = await run("promote", "--manifest", "promoter.yaml", "--confirm", "--quiet", ...keyless);
    expect(promoted.status, promoted.err + promoted.out).toBe(0);
    // At each of the 2 mirrors: the .sig, two attestation referrers and the .att manifest.
    expect(promoted.out).toMatch(/8 signed/);

    const verified = await run("verify", "--manifest", "promoter.yaml", "--policy", "policy.yaml");
    expect(verified.status, verified.out + verified.err).toBe(0);
    expect(verified.out).toMatch(/2 valid/);

    await writeFile(
      path.join(dir, "other-policy.yaml"),
      `trustedRoot: trusted_root.json\ndefault:\n  keyless:\n    - subject: someone@example.com\n      issuer: ${ISSUER}\n`,
    );
    const refused = await run("verify", "--manifest", "promoter.yaml", "--policy", "other-policy.yaml");
    expect(refused.status).toBe(1);
    expect(refused.out).toMatch(
      /signed by release@example\.com from https:\/\/issuer\.example, which the policy does not accept/,
    );

    const fulcioCalls = services.requests.filter((request) => request.service === "fulcio").length;
    const again = await run("promote", "--manifest", "promoter.yaml", "--confirm", "--quiet", ...keyless);
    expect(again.status).toBe(0);
    expect(again.out).toMatch(/signatures and attachments in place/);
    expect(services.requests.filter((request) => request.service === "fulcio").length).toBe(fulcioCalls);
  });

  it("needs the trusted root and certificate identity, and refuses to write a signature it would not recognise", async () => {
    const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "keyless-misconfigured" });
    await writeOciLayoutDirectly(path.join(dir, "staging", "tool"), [{ content: image, tag: "v1" }]);
    await writeFile(
      path.join(dir, "tool.yaml"),
      `registries:\n- name: oci:staging\n  src: true\n- name: oci:mirror-c\nimages:\n- name: tool\n  dmap:\n    "${image.digest}": ["v1"]\n`,
    );
    await writeFile(path.join(dir, "trusted_root.json"), JSON.stringify(services.trustedRoot()));
    const run = async (...args: string[]) => {
      const capture = captureIO({ cwd: dir, env: { SIGSTORE_ID_TOKEN: identityToken(SUBJECT, ISSUER) } });
      const status = await runCli(
        ["promote", "--manifest", "tool.yaml", "--confirm", "--quiet", ...args],
        capture.io,
      );
      return { status, out: capture.out(), err: capture.err() };
    };
    const keylessFlags = ["--keyless", "--fulcio-url", services.fulcioUrl, "--rekor-url", services.rekorUrl];
    const bare = await run(...keylessFlags);
    expect(bare.status).toBe(2);
    expect(bare.err).toMatch(
      /--keyless needs --trusted-root FILE, --certificate-identity ID and --certificate-oidc-issuer URL/,
    );
    const unreadable = await run(
      ...keylessFlags,
      "--trusted-root",
      "missing.json",
      "--certificate-identity",
      SUBJECT,
      "--certificate-oidc-issuer",
      ISSUER,
    );
    expect(unreadable.status).toBe(2);
    expect(unreadable.err).toMatch(/cannot read --trusted-root missing\.json/);
    const stray = await runCli(
      ["promote", "--manifest", "tool.yaml", "--trusted-root", "trusted_root.json"],
      captureIO({ cwd: dir }).io,
    );
    expect(stray).toBe(2);

    // The token is release@example.com's; the flags name someone else: every run would sign again.
    const wrong = await run(
      ...keylessFlags,
      "--trusted-root",
      "trusted_root.json",
      "--certificate-identity",
      "someone@example.com",
      "--certificate-oidc-issuer",
      ISSUER,
    );
    expect(wrong.status).toBe(1);
    expect(wrong.out + wrong.err).toMatch(
      /would not be recognised as ours on the next run \(signed by release@example\.com/,
    );
    await expect(readFile(path.join(dir, "mirror-c", "tool", "index.json"), "utf8")).resolves.not.toMatch(
      /\.sig"/,
    );
  });
});
