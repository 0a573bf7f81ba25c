import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attestationStatement,
  bundleReferrer,
  cosignPayload,
  keySignedAttestationLayer,
  keySignedBundle,
  keySignedLayer,
  pushToRegistry,
  signatureManifest,
} from "../support/hostile-signing.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { makeImage, type TestContent, type TestImage } from "../support/test-images.js";
import { readThirdParty } from "../support/third-party-artifacts.js";

/**
 * Staging's build provenance required by policy, through the real CLI and real registries: a
 * staging image without provenance is refused under `--source-provenance required`; one whose
 * provenance is validly signed by the trusted key but names another builder (a forged builder)
 * is refused with both builders named; one with a valid provenance is promoted and its builder,
 * source and the staging manifests that verified are in the report. The provenance predicates are
 * real ones (GitHub Actions builders' SLSA v1 and v0.2, from slsa-verifier's test data,
 * test/fixtures/third-party/SOURCES.md), restated about the test image and signed with the test
 * builder's key, in cosign's `.att` layout and as an attestation bundle referrer.
 */

const V1_BUILDER =
  "https://github.com/bazel-contrib/publish-to-bcr/.github/workflows/publish.yaml@refs/tags/v0.0.1";
const V02_BUILDER =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0";
const FORGED_BUILDER = "https://github.com/mallory/tools/.github/workflows/build.yml@refs/heads/main";
const BUILDERS =
  "https://github\\.com/(bazel-contrib/publish-to-bcr|slsa-framework/slsa-github-generator)/\\.github/workflows/[a-z_0-9]+\\.ya?ml@refs/tags/v.+";
const V1_SOURCE = "https://github.com/aspect-build/rules_lint";
const V02_SOURCE = "https://github.com/slsa-framework/example-package";

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let v1Predicate: Record<string, unknown>;
let v02Predicate: Record<string, unknown>;

const builder = generateKeyPairSync("ec", { namedCurve: "P-256" });
const mallory = generateKeyPairSync("ec", { namedCurve: "P-256" });

/** The predicate of a real provenance bundle (its DSSE payload's statement). */
async function realPredicate(file: string): Promise<Record<string, unknown>> {
  const bundle = JSON.parse((await readThirdParty(file)).toString("utf8")) as {
    dsseEnvelope: { payload: string };
  };
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString("utf8")) as {
    predicate: Record<string, unknown>;
  };
  return statement.predicate;
}

function image(name: string): TestImage {
  return makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: `hostile-provenance-${name}` });
}
function tagOf(digest: string, kind: "sig" | "att"): string {
  return `${digest.replace(":", "-")}.${kind}`;
}
function signature(content: TestImage): { content: TestContent; tag: string } {
  return {
    content: signatureManifest([
      keySignedLayer(builder.privateKey, cosignPayload("staging/app", content.digest)),
    ]),
    tag: tagOf(content.digest, "sig"),
  };
}
function attestation(
  content: TestImage,
  predicate: Record<string, unknown>,
  by = builder,
): { content: TestContent; tag: string } {
  return {
    content: signatureManifest([
      keySignedAttestationLayer(by.privateKey, attestationStatement(content.digest, undefined, predicate)),
    ]),
    tag: tagOf(content.digest, "att"),
  };
}

interface Case {
  readonly name: string;
  readonly image: TestImage;
  readonly extra: readonly { content: TestContent; tag?: string }[];
}

async function stageCases(file: string, cases: readonly Case[]): Promise<void> {
  for (const entry of cases) {
    await pushToRegistry(
      staging.host,
      `staging/${entry.name}`,
      [{ content: entry.image, tag: "v1" }, ...entry.extra],
      work,
    );
  }
  await writeFile(
    path.join(work, file),
    [
      "registries:",
      `- name: ${staging.host}/staging`,
      "  src: true",
      `- name: ${prod.host}/prod`,
      "images:",
      ...cases.flatMap((entry) => [
        `- name: ${entry.name}`,
        "  dmap:",
        `    "${entry.image.digest}": ["v1"]`,
      ]),
      "",
    ].join("\n"),
  );
}

async function inProduction(name: string): Promise<boolean> {
  const response = await fetch(`${prod.url}/v2/prod/${name}/manifests/v1`, {
    method: "HEAD",
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  return response.ok;
}

/** The digest a staging tag resolves to, as the registry says. */
async function stagingDigest(repository: string, tag: string): Promise<string> {
  const response = await fetch(`${staging.url}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  expect(response.ok, `${repository}:${tag}`).toBe(true);
  return response.headers.get("docker-content-digest") ?? "";
}

interface Verdict {
  source: string;
  status: string;
  reason?: string;
  provenance: string;
  build?: Record<string, unknown>;
  inputs: { uri: string; digest: string }[];
}

async function verdicts(report: string): Promise<Map<string, Verdict>> {
  const document = JSON.parse(await readFile(path.join(work, report), "utf8")) as {
    sourceSignatures?: { digests: Verdict[] };
  };
  return new Map(
    (document.sourceSignatures?.digests ?? []).map((entry) => [entry.source.split("/").pop() ?? "", entry]),
  );
}

function promoter(...args: string[]) {
  return runPromoter(args, { cwd: work });
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-build-provenance-"));
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  await writeFile(
    path.join(work, "builder.pub"),
    builder.publicKey.export({ type: "spki", format: "pem" }).toString(),
  );
  v1Predicate = await realPredicate("slsa-verifier/MODULE.bazel.intoto.jsonl");
  v02Predicate = await realPredicate("slsa-verifier/binary-linux-amd64-workflow_dispatch.intoto.jsonl");
}, 120_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("--source-provenance required: who built it", () => {
  it("refuses no provenance and a forged builder, promotes a valid provenance and reports its builder", async () => {
    const none = image("none");
    const valid = image("valid");
    const bundled = image("bundled");
    const forged = image("forged");
    const foreign = image("foreign");
    const sbomAndForeign = image("sbom-and-foreign");
    const forgedPredicate = {
      ...v1Predicate,
      runDetails: { builder: { id: FORGED_BUILDER } },
    };
    const cases: Case[] = [
      { name: "p-none", image: none, extra: [signature(none)] },
      { name: "p-valid", image: valid, extra: [signature(valid), attestation(valid, v1Predicate)] },
      // SLSA v0.2 as an attestation bundle referrer (cosign's new bundle format, key-signed).
      {
        name: "p-bundled",
        image: bundled,
        extra: [
          signature(bundled),
          {
            content: bundleReferrer(
              keySignedBundle(
                builder.privateKey,
                builder.publicKey,
                attestationStatement(bundled.digest, "https://slsa.dev/provenance/v0.2", v02Predicate),
              ),
              bundled.descriptor,
              "https://slsa.dev/provenance/v0.2",
            ),
          },
        ],
      },
      // Signed by the trusted key, but naming another builder.
      { name: "p-forged", image: forged, extra: [signature(forged), attestation(forged, forgedPredicate)] },
      // The real predicate, signed by someone the policy does not trust.
      {
        name: "p-foreign",
        image: foreign,
        extra: [signature(foreign), attestation(foreign, v1Predicate, mallory)],
      },
      // A valid SBOM attestation next to a provenance by someone else: the attestations verify
      // (one is enough), but the provenance present does not.
      {
        name: "p-sbom-and-foreign",
        image: sbomAndForeign,
        extra: [
          signature(sbomAndForeign),
          {
            content: signatureManifest([
              keySignedAttestationLayer(
                builder.privateKey,
                attestationStatement(sbomAndForeign.digest, "https://spdx.dev/Document", {
                  spdxVersion: "SPDX-2.3",
                }),
              ),
              keySignedAttestationLayer(
                mallory.privateKey,
                attestationStatement(sbomAndForeign.digest, undefined, v1Predicate),
              ),
            ]),
            tag: tagOf(sbomAndForeign.digest, "att"),
          },
        ],
      },
    ];
    await stageCases("provenance.yaml", cases);
    const policyFlags = [
      "--source-signature",
      "required",
      "--source-public-key",
      "builder.pub",
      "--attachments",
      "none",
    ];

    const run = await promoter(
      "promote",
      "--manifest",
      "provenance.yaml",
      "--confirm",
      ...policyFlags,
      "--source-provenance",
      "required",
      "--source-builder-id-regexp",
      BUILDERS,
      "--source-repository",
      V1_SOURCE,
      "--source-repository",
      V02_SOURCE,
      "--source-build-level",
      "3",
      "--report",
      "required.json",
    );
    expectClear(run, 1, /Build provenance: 2 verified, 0 absent \(not required\)/);
    expect(await inProduction("p-valid")).toBe(true);
    expect(await inProduction("p-bundled")).toBe(true);
    for (const name of ["p-none", "p-forged", "p-foreign", "p-sbom-and-foreign"]) {
      expect(await inProduction(name), name).toBe(false);
    }

    const judged = await verdicts("required.json");
    expect(judged.get("p-none")).toMatchObject({ status: "refused", provenance: "absent" });
    expect(judged.get("p-none")?.reason).toMatch(
      /^no SLSA provenance .* is attached, and the policy requires one$/,
    );
    expect(judged.get("p-forged")).toMatchObject({ status: "refused", provenance: "refused" });
    expect(judged.get("p-forged")?.reason).toContain(
      `built by "${FORGED_BUILDER}", which does not match the expected builder "${BUILDERS.replaceAll("\\", "\\\\")}"`,
    );
    expect(judged.get("p-foreign")?.status).toBe("refused");
    expect(judged.get("p-foreign")?.reason).toMatch(/an attestation is present but none verifies/);

    const validVerdict = judged.get("p-valid");
    expect(validVerdict).toMatchObject({
      status: "verified",
      provenance: "verified",
      build: {
        builderId: V1_BUILDER,
        buildType: "https://actions.github.io/buildtypes/workflow/v1",
        sourceRepository: V1_SOURCE,
        sourceCommit: "8f70009fde0c94ade6ce2a054b94718c819126ec",
        slsaBuildLevel: 3,
        attestation: { predicateType: "https://slsa.dev/provenance/v1" },
      },
    });
    // The inputs are the staging .sig and .att manifests, by the digests the registry serves.
    const sig = await stagingDigest("staging/p-valid", tagOf(valid.digest, "sig"));
    const att = await stagingDigest("staging/p-valid", tagOf(valid.digest, "att"));
    expect(validVerdict?.inputs).toEqual([
      { uri: `${staging.host}/staging/p-valid@${sig}`, digest: sig },
      { uri: `${staging.host}/staging/p-valid@${att}`, digest: att },
    ]);
    expect(judged.get("p-bundled")?.build).toMatchObject({
      builderId: V02_BUILDER,
      sourceRepository: V02_SOURCE,
      sourceCommit: "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
      attestation: { predicateType: "https://slsa.dev/provenance/v0.2" },
    });

    // kpromo's default (if-present, no expectations): the unproven image goes with a note and the
    // other builder is only reported; what does not verify is still refused.
    const lenient = await promoter(
      "promote",
      "--manifest",
      "provenance.yaml",
      ...policyFlags,
      "--report",
      "if-present.json",
    );
    expectClear(lenient, 1, /Build provenance: 1 verified, 1 absent \(not required\)/);
    const defaults = await verdicts("if-present.json");
    expect(defaults.get("p-none")).toMatchObject({ status: "verified", provenance: "absent" });
    expect(defaults.get("p-forged")).toMatchObject({
      status: "verified",
      build: { builderId: FORGED_BUILDER },
    });
    expect(defaults.get("p-foreign")?.status).toBe("refused");
    expect(defaults.get("p-sbom-and-foreign")).toMatchObject({ status: "refused", provenance: "refused" });
    expect(defaults.get("p-sbom-and-foreign")?.reason).toMatch(
      /^no SLSA provenance is acceptable: sha256-[0-9a-f]{64}\.att layer sha256:[0-9a-f]{64}: the envelope verifies with none of the public keys$/,
    );
  });

  it.each([
    [["--source-provenance", "required"], /take effect with --source-signature/],
    [
      ["--source-signature", "required", "--source-public-key", "builder.pub", "--source-build-level", "2"],
      /--source-build-level 2 needs --source-builder-id or --source-builder-id-regexp/,
    ],
    [
      [
        "--source-signature",
        "required",
        "--source-public-key",
        "builder.pub",
        "--source-builder-id-regexp",
        "(?i)x",
      ],
      /--source-builder-id-regexp: not portable RE2 syntax/,
    ],
    [
      [
        "--source-signature",
        "required",
        "--source-public-key",
        "builder.pub",
        "--source-provenance",
        "always",
      ],
      /--source-provenance/,
    ],
  ])("refuses bad flags %j with one clear line", async (flags, message) => {
    await writeFile(path.join(work, "empty.yaml"), "registries: []\nimages: []\n");
    const run = await promoter("promote", "--manifest", "empty.yaml", ...flags);
    expectClear(run, 2, message);
  });
});
