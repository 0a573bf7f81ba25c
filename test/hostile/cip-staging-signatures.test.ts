import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeylessSigner } from "../../src/sign/index.js";
import {
  cosignPayload,
  keylessLayerWith,
  pushToRegistry,
  signatureManifest,
} from "../support/hostile-signing.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import {
  identityToken,
  startSigstoreStandIns,
  type SigstoreStandIns,
} from "../support/sigstore-stand-ins.js";
import { makeImage, type TestImage } from "../support/test-images.js";

/**
 * kpromo's presubmit passes `--certificate-identity-regexp` and `--certificate-oidc-issuer`: what
 * staging carries must be signed by that identity when it is signed at all. Through `promoter
 * cip`, with the real CLI, a real registry and the Fulcio/Rekor stand-ins: a staging pusher's
 * own signature refuses the edge, the expected identity's passes, an unsigned image passes, and
 * without a trusted root nothing present can be verified, so a signed image is refused.
 */

const SUBJECT = "https://github.com/kubernetes/release/.github/workflows/build.yml@refs/heads/main";
const ISSUER = "https://token.actions.githubusercontent.com";
const MALLORY = "mallory@example.com";

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let services: SigstoreStandIns;

const image = (name: string): TestImage =>
  makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: `cip-staging-${name}` });
const unsigned = image("unsigned");
const ours = image("ours");
const theirs = image("theirs");
const sigTag = (digest: string) => `${digest.replace(":", "-")}.sig`;

async function signedBy(content: TestImage, subject: string): Promise<TestImage> {
  const signer = createKeylessSigner({
    fulcioUrl: services.fulcioUrl,
    rekorUrl: services.rekorUrl,
    identityToken: "env://TOKEN",
    env: { TOKEN: identityToken(subject, ISSUER) },
  });
  const annotations = await signer.signPayload(cosignPayload("staging/app", content.digest));
  return signatureManifest([keylessLayerWith("staging/app", content.digest, annotations)]);
}

function cip(options: string) {
  return runPromoter(
    [
      "cip",
      "--manifest=promoter-manifest.yaml",
      "--certificate-identity-regexp=^https://github\\.com/kubernetes/.*$",
      `--certificate-oidc-issuer=${ISSUER}`,
    ],
    {
      cwd: work,
      env: { PROMOTER_CIP_OPTIONS: `--allow-registry 127.0.0.1 --quiet --report report.json ${options}` },
    },
  );
}

async function decisions(): Promise<Record<string, string>> {
  const report = JSON.parse(await readFile(path.join(work, "report.json"), "utf8")) as {
    edges: { image: string; decision: string }[];
  };
  return Object.fromEntries(report.edges.map((edge) => [edge.image, edge.decision]));
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "cip-staging-signatures-"));
  [staging, prod, services] = await Promise.all([startRegistry(), startRegistry(), startSigstoreStandIns()]);
  await writeFile(path.join(work, "trusted_root.json"), JSON.stringify(services.trustedRoot()));
  await pushToRegistry(staging.host, "staging/unsigned", [{ content: unsigned, tag: "v1" }], work);
  for (const [name, content, signer] of [
    ["ours", ours, SUBJECT],
    ["theirs", theirs, MALLORY],
  ] as const) {
    const signature = await signedBy(content, signer);
    await pushToRegistry(
      staging.host,
      `staging/${name}`,
      [
        { content, tag: "v1" },
        { content: signature, tag: sigTag(content.digest) },
      ],
      work,
    );
  }
  await writeFile(
    path.join(work, "promoter-manifest.yaml"),
    [
      "registries:",
      `- name: ${staging.host}/staging`,
      "  src: true",
      `- name: ${prod.host}/prod`,
      "images:",
      ...[
        ["unsigned", unsigned],
        ["ours", ours],
        ["theirs", theirs],
      ].flatMap(([name, content]) => [
        `- name: ${name as string}`,
        "  dmap:",
        `    "${(content as TestImage).digest}": ["v1"]`,
      ]),
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop(), services.close()]);
  await rm(work, { recursive: true, force: true });
});

describe("cip's --certificate-* flags check what staging carries", () => {
  it("with the trusted root: the identity's signature and no signature pass, anyone else's is refused", async () => {
    const run = await cip("--trusted-root trusted_root.json");
    expectClear(run, 1);
    expect(await decisions()).toEqual({ unsigned: "copy", ours: "copy", theirs: "refused-source-signature" });
  });

  it("without a trusted root a present signature cannot be verified: refused, and a note says why", async () => {
    const run = await cip("");
    expectClear(run, 1, /staging signatures cannot be verified without --trusted-root FILE/);
    expect(await decisions()).toEqual({
      unsigned: "copy",
      ours: "refused-source-signature",
      theirs: "refused-source-signature",
    });
  });

  it("a pattern matches the whole identity (cosign: anywhere), and an unanchored one is noted", async () => {
    const run = await runPromoter(
      [
        "cip",
        "--manifest=promoter-manifest.yaml",
        "--certificate-identity-regexp=kubernetes",
        `--certificate-oidc-issuer=${ISSUER}`,
      ],
      {
        cwd: work,
        env: {
          PROMOTER_CIP_OPTIONS:
            "--allow-registry 127.0.0.1 --quiet --report report.json --trusted-root trusted_root.json",
        },
      },
    );
    expectClear(run, 1, /--certificate-identity-regexp must match the whole value here/);
    expect((await decisions()).ours).toBe("refused-source-signature");
  });
});
