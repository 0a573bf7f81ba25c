import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeylessSigner } from "../../src/sign/index.js";
import {
  attestationStatement,
  bundleReferrer,
  cosignPayload,
  keylessAttestationLayer,
  keylessLayerWith,
  keySignedAttestationLayer,
  keySignedBundle,
  keySignedLayer,
  pushToRegistry,
  signatureManifest,
  SLSA_PROVENANCE,
} from "../support/hostile-signing.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import {
  identityToken,
  startSigstoreStandIns,
  type SigstoreStandIns,
} from "../support/sigstore-stand-ins.js";
import { makeImage, type TestContent, type TestImage } from "../support/test-images.js";

/**
 * kpromo's staging check ("verify if present", `--source-signature if-present`) attacked through
 * the real CLI, real registries and the Fulcio and Rekor stand-ins: what a staging pusher can put
 * next to an image (a signature by another key or identity, by our identity from another Fulcio,
 * by an identity that merely contains ours, a genuine signature lifted from another digest, an
 * attestation by someone else, in either layout) must refuse the edge; an image with nothing
 * signed next to it is promoted and reported as unsigned. And cosign's `-regexp` identity flags
 * and `--max-signature-ops` on the signing side.
 */

const SUBJECT = "release@example.com";
const ISSUER = "https://issuer.example";
const MALLORY = "mallory@example.com";
/** Contains our identity: cosign's unanchored `-regexp` match would accept it. */
const LOOKALIKE = "release@example.com.evil";

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let services: SigstoreStandIns;
let rogue: SigstoreStandIns;

const builder = generateKeyPairSync("ec", { namedCurve: "P-256" });
const mallory = generateKeyPairSync("ec", { namedCurve: "P-256" });

function image(name: string): TestImage {
  return makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: `hostile-source-${name}` });
}
function tagOf(digest: string, kind: "sig" | "att"): string {
  return `${digest.replace(":", "-")}.${kind}`;
}

function promoter(...args: string[]) {
  return runPromoter(args, { cwd: work, env: { SIGSTORE_ID_TOKEN: identityToken(SUBJECT, ISSUER) } });
}

function keylessSigner(through: SigstoreStandIns, subject: string) {
  return createKeylessSigner({
    fulcioUrl: through.fulcioUrl,
    rekorUrl: through.rekorUrl,
    identityToken: "env://TOKEN",
    env: { TOKEN: identityToken(subject, ISSUER) },
  });
}

interface Case {
  readonly name: string;
  readonly image: TestImage;
  readonly extra: readonly { content: TestContent; tag?: string }[];
}

/** Pushes each case to `staging/<name>` and writes a manifest promoting them all to `prod/`. */
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

interface SourceSignaturesSection {
  mode: string;
  summary: Record<string, number>;
  digests: { source: string; digest: string; status: string; reason?: string }[];
}

async function sourceVerdicts(report: string): Promise<Map<string, { status: string; reason?: string }>> {
  const document = JSON.parse(await readFile(path.join(work, report), "utf8")) as {
    sourceSignatures?: SourceSignaturesSection;
  };
  return new Map(
    (document.sourceSignatures?.digests ?? []).map((entry) => [entry.source.split("/").pop() ?? "", entry]),
  );
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-source-signature-"));
  [staging, prod, services, rogue] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startSigstoreStandIns(),
    startSigstoreStandIns(),
  ]);
  await writeFile(path.join(work, "trusted_root.json"), JSON.stringify(services.trustedRoot()));
  await writeFile(
    path.join(work, "builder.pub"),
    builder.publicKey.export({ type: "spki", format: "pem" }).toString(),
  );
  await writeFile(
    path.join(work, "keyless-policy.yaml"),
    [
      "trustedRoot: trusted_root.json",
      "default:",
      "  keyless:",
      "    - subjectRegExp: release@example\\.com",
      "      issuerRegExp: https://issuer\\.example",
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop(), services.close(), rogue.close()]);
  await rm(work, { recursive: true, force: true });
});

describe("--source-signature if-present: what is present must be ours", () => {
  it("key: promotes the unsigned and the signed, refuses forged, lifted and foreign attestations", async () => {
    const unsigned = image("k-unsigned");
    const signed = image("k-signed");
    const forged = image("k-forged");
    const lifted = image("k-lifted");
    const attested = image("k-attested");
    const foreignAtt = image("k-foreign-att");
    const foreignBundle = image("k-foreign-bundle");
    const sig = (key: typeof builder, payloadDigest: string) =>
      signatureManifest([keySignedLayer(key.privateKey, cosignPayload("staging/app", payloadDigest))]);
    const cases: Case[] = [
      { name: "k-unsigned", image: unsigned, extra: [] },
      {
        name: "k-signed",
        image: signed,
        extra: [{ content: sig(builder, signed.digest), tag: tagOf(signed.digest, "sig") }],
      },
      {
        name: "k-forged",
        image: forged,
        extra: [{ content: sig(mallory, forged.digest), tag: tagOf(forged.digest, "sig") }],
      },
      // The builder's genuine signature of another image, under this digest's tag.
      {
        name: "k-lifted",
        image: lifted,
        extra: [{ content: sig(builder, signed.digest), tag: tagOf(lifted.digest, "sig") }],
      },
      {
        name: "k-attested",
        image: attested,
        extra: [
          {
            content: signatureManifest([
              keySignedAttestationLayer(builder.privateKey, attestationStatement(attested.digest)),
            ]),
            tag: tagOf(attested.digest, "att"),
          },
        ],
      },
      {
        name: "k-foreign-att",
        image: foreignAtt,
        extra: [
          { content: sig(builder, foreignAtt.digest), tag: tagOf(foreignAtt.digest, "sig") },
          {
            content: signatureManifest([
              keySignedAttestationLayer(mallory.privateKey, attestationStatement(foreignAtt.digest)),
            ]),
            tag: tagOf(foreignAtt.digest, "att"),
          },
        ],
      },
      {
        name: "k-foreign-bundle",
        image: foreignBundle,
        extra: [
          {
            content: bundleReferrer(
              keySignedBundle(
                mallory.privateKey,
                mallory.publicKey,
                attestationStatement(foreignBundle.digest),
              ),
              foreignBundle.descriptor,
              SLSA_PROVENANCE,
            ),
          },
        ],
      },
    ];
    await stageCases("keyed.yaml", cases);

    const plan = await promoter(
      "promote",
      "--manifest",
      "keyed.yaml",
      "--source-signature",
      "if-present",
      "--source-public-key",
      "builder.pub",
      "--attachments",
      "none",
    );
    expectClear(
      plan,
      1,
      /Source signatures \(if-present\): 2 verified, 1 unsigned \(not required\), 4 refused/,
    );
    expect(plan.stdout).toMatch(
      new RegExp(`staging/k-unsigned@sha256:[0-9a-f]+…?\\s+source unsigned \\(not required\\)`),
    );

    // Required (a dry run): the unsigned and the only-attested are refused too.
    const required = await promoter(
      "promote",
      "--manifest",
      "keyed.yaml",
      "--require-source-signature",
      "--source-public-key",
      "builder.pub",
      "--attachments",
      "none",
      "--report",
      "keyed-required.json",
    );
    expectClear(required, 1);
    const strict = await sourceVerdicts("keyed-required.json");
    expect(strict.get("k-unsigned")?.status).toBe("refused");
    expect(strict.get("k-attested")?.status).toBe("refused");
    expect(strict.get("k-signed")?.status).toBe("verified");

    const run = await promoter(
      "promote",
      "--manifest",
      "keyed.yaml",
      "--confirm",
      "--quiet",
      "--source-signature",
      "if-present",
      "--source-public-key",
      "builder.pub",
      "--attachments",
      "none",
      "--report",
      "keyed-report.json",
    );
    expectClear(run, 1);
    for (const name of ["k-unsigned", "k-signed", "k-attested"])
      expect(await inProduction(name), name).toBe(true);
    for (const name of ["k-forged", "k-lifted", "k-foreign-att", "k-foreign-bundle"]) {
      expect(await inProduction(name), name).toBe(false);
    }
    const verdicts = await sourceVerdicts("keyed-report.json");
    expect(verdicts.get("k-unsigned")?.status).toBe("unsigned");
    expect(verdicts.get("k-signed")?.status).toBe("verified");
    expect(verdicts.get("k-forged")?.reason).toMatch(
      /^a signature is present but none verifies: .*does not verify/,
    );
    expect(verdicts.get("k-lifted")?.reason).toMatch(
      /^a signature is present but none verifies: .*the payload signs sha256:[0-9a-f]+, not sha256:/,
    );
    expect(verdicts.get("k-foreign-att")?.reason).toMatch(
      /^an attestation is present but none verifies: sha256-[0-9a-f]+\.att layer/,
    );
    expect(verdicts.get("k-foreign-bundle")?.reason).toMatch(
      /^an attestation is present but none verifies: attestation bundle sha256:/,
    );
  });

  it("keyless: refuses signatures and attestations by another identity, a lookalike, or another Fulcio", async () => {
    const cases: Case[] = [];
    const layerCase = async (name: string, through: SigstoreStandIns, subject: string) => {
      const content = image(name);
      const payload = cosignPayload("staging/app", content.digest);
      const annotations = await keylessSigner(through, subject).signPayload(payload);
      cases.push({
        name,
        image: content,
        extra: [
          {
            content: signatureManifest([keylessLayerWith("staging/app", content.digest, annotations)]),
            tag: tagOf(content.digest, "sig"),
          },
        ],
      });
    };
    await layerCase("l-ours", services, SUBJECT);
    await layerCase("l-mallory", services, MALLORY);
    await layerCase("l-lookalike", services, LOOKALIKE);
    await layerCase("l-rogue-fulcio", rogue, SUBJECT);
    const attestationCase = async (name: string, subject: string, layout: "att" | "bundle") => {
      const content = image(name);
      const bundle = await keylessSigner(services, subject).signStatement(
        attestationStatement(content.digest),
      );
      cases.push({
        name,
        image: content,
        extra:
          layout === "att"
            ? [
                {
                  content: signatureManifest([keylessAttestationLayer(bundle)]),
                  tag: tagOf(content.digest, "att"),
                },
              ]
            : [{ content: bundleReferrer(bundle, content.descriptor, SLSA_PROVENANCE) }],
      });
    };
    await attestationCase("a-ours-att", SUBJECT, "att");
    await attestationCase("a-ours-bundle", SUBJECT, "bundle");
    await attestationCase("a-mallory-att", MALLORY, "att");
    await attestationCase("a-mallory-bundle", MALLORY, "bundle");
    await stageCases("keyless.yaml", cases);

    const run = await promoter(
      "promote",
      "--manifest",
      "keyless.yaml",
      "--confirm",
      "--quiet",
      "--source-signature",
      "if-present",
      "--source-policy",
      "keyless-policy.yaml",
      "--attachments",
      "none",
      "--report",
      "keyless-report.json",
    );
    expectClear(run, 1);
    const verdicts = await sourceVerdicts("keyless-report.json");
    for (const name of ["l-ours", "a-ours-att", "a-ours-bundle"]) {
      expect(verdicts.get(name)?.status, name).toBe("verified");
      expect(await inProduction(name), name).toBe(true);
    }
    for (const name of ["l-mallory", "l-lookalike", "l-rogue-fulcio", "a-mallory-att", "a-mallory-bundle"]) {
      expect(verdicts.get(name)?.status, name).toBe("refused");
      expect(await inProduction(name), name).toBe(false);
    }
    expect(verdicts.get("l-mallory")?.reason).toMatch(
      /signed by mallory@example\.com from https:\/\/issuer\.example, which the policy does not accept/,
    );
    expect(verdicts.get("l-lookalike")?.reason).toMatch(/signed by release@example\.com\.evil/);
    expect(verdicts.get("l-rogue-fulcio")?.reason).toMatch(/keyless signature does not verify/);
    expect(verdicts.get("a-mallory-att")?.reason).toMatch(
      /^an attestation is present but none verifies: .*mallory@example\.com/,
    );
    expect(verdicts.get("a-mallory-bundle")?.reason).toMatch(
      /^an attestation is present but none verifies: attestation bundle .*mallory@example\.com/,
    );
  });

  it("refuses contradictory or incomplete source flags (exit 2)", async () => {
    expectClear(
      await promoter(
        "promote",
        "--manifest",
        "keyed.yaml",
        "--source-signature",
        "sometimes",
        "--source-public-key",
        "builder.pub",
      ),
      2,
      /--source-signature/,
    );
    expectClear(
      await promoter("promote", "--manifest", "keyed.yaml", "--source-signature", "if-present"),
      2,
      /--source-signature if-present needs --source-public-key FILE or --source-policy FILE/,
    );
    expectClear(
      await promoter(
        "promote",
        "--manifest",
        "keyed.yaml",
        "--require-source-signature",
        "--source-signature",
        "if-present",
        "--source-public-key",
        "builder.pub",
      ),
      2,
      /--require-source-signature contradicts --source-signature if-present/,
    );
  });
});

describe("signing: cosign's -regexp identity flags and --max-signature-ops", () => {
  const keyless = (...identity: string[]) => [
    "--keyless",
    "--fulcio-url",
    services.fulcioUrl,
    "--rekor-url",
    services.rekorUrl,
    "--trusted-root",
    "trusted_root.json",
    ...identity,
  ];
  const fulcioCalls = () => services.requests.filter((request) => request.service === "fulcio").length;

  it("recognises its own signatures by an identity expression, matched whole", async () => {
    const app = image("regexp-sign");
    await stageCases("regexp.yaml", [{ name: "regexp-sign", image: app, extra: [] }]);
    const byExpression = keyless(
      "--certificate-identity-regexp",
      "release@example\\.com",
      "--certificate-oidc-issuer-regexp",
      "https://issuer\\.(example|test)",
    );
    const before = fulcioCalls();
    expectClear(
      await promoter("promote", "--manifest", "regexp.yaml", "--confirm", "--quiet", ...byExpression),
      0,
    );
    // One certificate per signature: the image's, and its promotion record's and VSA's.
    expect(fulcioCalls()).toBe(before + 3);
    // The second run recognises the signature and attestations as ours and makes none.
    expectClear(
      await promoter("promote", "--manifest", "regexp.yaml", "--confirm", "--quiet", ...byExpression),
      0,
    );
    expect(fulcioCalls()).toBe(before + 3);

    // A part of the identity is not the identity: the new signature would not count as ours.
    const second = image("regexp-part");
    await stageCases("regexp-part.yaml", [{ name: "regexp-part", image: second, extra: [] }]);
    expectClear(
      await promoter(
        "promote",
        "--manifest",
        "regexp-part.yaml",
        "--confirm",
        "--quiet",
        ...keyless("--certificate-identity-regexp", "release@example", "--certificate-oidc-issuer", ISSUER),
      ),
      1,
      /would not be recognised as ours/,
    );
  });

  it("refuses expressions JavaScript would read otherwise, and both forms at once (exit 2)", async () => {
    for (const [pattern, why] of [
      ["(?<=x)release@example\\.com", /lookahead or lookbehind/],
      ["(release)@example\\.com\\1", /backreference/],
      ["(?i)release@example\\.com", /inline flag/],
      ["\\Arelease@example\\.com\\z", /\\A/],
    ] as const) {
      expectClear(
        await promoter(
          "promote",
          "--manifest",
          "regexp.yaml",
          ...keyless("--certificate-identity-regexp", pattern, "--certificate-oidc-issuer", ISSUER),
        ),
        2,
        why,
      );
    }
    expectClear(
      await promoter(
        "verify",
        "--manifest",
        "regexp.yaml",
        "--public-key",
        "builder.pub",
        "--repair",
        ...keyless(
          "--certificate-identity",
          SUBJECT,
          "--certificate-identity-regexp",
          "x",
          "--certificate-oidc-issuer",
          ISSUER,
        ),
      ),
      2,
      /give --certificate-identity or --certificate-identity-regexp, not both/,
    );
    expectClear(
      await promoter("promote", "--manifest", "regexp.yaml", "--certificate-identity-regexp", "x"),
      2,
      /are for --keyless/,
    );
  });

  it("--max-signature-ops bounds the signatures made at once", async () => {
    const cases = ["ops-a", "ops-b", "ops-c", "ops-d"].map((name) => ({
      name,
      image: image(name),
      extra: [],
    }));
    await stageCases("ops.yaml", cases);
    const flags = keyless("--certificate-identity", SUBJECT, "--certificate-oidc-issuer", ISSUER);
    services.holdFulcio(300);
    try {
      services.fulcioPeak();
      expectClear(
        await promoter(
          "promote",
          "--manifest",
          "ops.yaml",
          "--confirm",
          "--quiet",
          "--max-signature-ops",
          "1",
          ...flags,
        ),
        0,
      );
      expect(services.fulcioPeak(), "one certificate request at a time").toBe(1);
      // The same four digests signed again at another destination, with the default bound.
      await writeFile(
        path.join(work, "ops-mirror.yaml"),
        (await readFile(path.join(work, "ops.yaml"), "utf8")).replace(
          `${prod.host}/prod`,
          `${prod.host}/mirror`,
        ),
      );
      expectClear(
        await promoter("promote", "--manifest", "ops-mirror.yaml", "--confirm", "--quiet", ...flags),
        0,
      );
      expect(services.fulcioPeak(), "the default signs several at once").toBeGreaterThan(1);
    } finally {
      services.holdFulcio(0);
    }
    expectClear(
      await promoter("promote", "--manifest", "ops.yaml", "--max-signature-ops", "0", ...flags),
      2,
      /--max-signature-ops must be between 1 and 1024/,
    );
  });
});
