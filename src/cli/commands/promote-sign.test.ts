import { generateKeyPairSync, sign as cryptoSign } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { bundleFromJSON } from "@sigstore/bundle";
import { toSignedEntity, Verifier } from "@sigstore/verify";
import { createPublicKey } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import {
  readBlob,
  readTaggedManifest,
  verifyCosignSignature,
  type VerifierLocation,
} from "../../../test/support/cosign-verifier.js";
import {
  makeImage,
  makeIndex,
  makeLayerSetImage,
  sha256Digest,
  writeOciLayoutDirectly,
  type LayoutEntry,
  type TestImage,
} from "../../../test/support/test-images.js";
import { runCli } from "../main.js";

/** `promoter promote --sign-key` between OCI layouts, judged by the independent verifier. */

let dir: string;
const amd64 = makeImage({
  layers: 1,
  layerSize: 256,
  mediaTypes: "oci",
  seed: "ps-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 256,
  mediaTypes: "oci",
  seed: "ps-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const single = makeImage({ layers: 1, layerSize: 128, mediaTypes: "oci", seed: "ps-single" });
const MIRRORS = ["mirror-a", "mirror-b", "mirror-c"];

const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
const privatePem = key.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const publicPem = key.publicKey.export({ type: "spki", format: "pem" }).toString();
const stagingKey = generateKeyPairSync("ec", { namedCurve: "P-256" });

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "promote-sign-"));
  await writeFile(path.join(dir, "release.key"), privatePem);
  await writeFile(path.join(dir, "release.pub"), publicPem);
  await writeFile(
    path.join(dir, "staging.pub"),
    stagingKey.publicKey.export({ type: "spki", format: "pem" }).toString(),
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function manifestText(images: string): string {
  return `registries:
- name: oci:staging
  src: true
${MIRRORS.map((mirror) => `- name: oci:${mirror}\n`).join("")}images:
${images}`;
}

const IMAGES = `- name: app
  dmap:
    "${multi.digest}": ["v1"]
- name: tool
  dmap:
    "${single.digest}": ["v2"]
`;

async function run(...args: string[]) {
  const capture = captureIO({ cwd: dir, env: { PROMOTER_SIGN_KEY: privatePem } });
  const status = await runCli(args, capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

/** `promoter promote --manifest promoter.yaml ...args`. */
function promote(...args: string[]) {
  return run("promote", "--manifest", "promoter.yaml", ...args);
}

async function seedStaging(
  app: LayoutEntry[],
  tool: LayoutEntry[] = [{ content: single, tag: "v2" }],
): Promise<void> {
  await writeOciLayoutDirectly(path.join(dir, "staging", "app"), app);
  await writeOciLayoutDirectly(path.join(dir, "staging", "tool"), tool);
}

function at(mirror: string, image = "app"): VerifierLocation {
  return { kind: "layout", directory: path.join(dir, mirror, image) };
}

async function sigDigest(mirror: string, image: string, digest: string): Promise<string | undefined> {
  const bytes = await readTaggedManifest(at(mirror, image), `${digest.replace(":", "-")}.sig`);
  return bytes ? sha256Digest(bytes) : undefined;
}

/** A cosign signature by the staging key, made here without project code. */
function stagingSignature(digest: string): TestImage {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": "staging.example/tool" },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
  return makeLayerSetImage(
    [
      {
        mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
        bytes: payload,
        annotations: {
          "dev.cosignproject.cosign/signature": cryptoSign("sha256", payload, stagingKey.privateKey).toString(
            "base64",
          ),
        },
      },
    ],
    "{}",
  );
}

describe("promoter promote --sign-key (OCI layouts)", () => {
  it("plans the signatures, signs once per digest, writes identical .sig manifests, then has nothing to do", async () => {
    await seedStaging([{ content: multi, tag: "v1" }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));

    const dry = await promote("--sign-key", "release.key");
    expect(dry.status, dry.err).toBe(0);
    expect(dry.out).toMatch(/Signatures and attachments \(signing with key sha256:/);
    // Issue 17 item 8: each section of the plan after a blank line.
    expect(dry.out).toMatch(/\n\nSignatures and attachments \(/);
    expect(dry.out).toMatch(
      /app@sha256:.{12}… {2}as oci:mirror-a\/app\n {2}sign \(3 manifests\) -> 3 destinations/,
    );
    expect(dry.out).toMatch(/tool@sha256:.* as oci:mirror-a\/tool\n {2}sign -> 3 destinations/);
    // Signing attests too: the promotion record and the VSA of each signed manifest.
    expect(dry.out).toMatch(/ {2}attest promotion record \(3 manifests\) -> 3 destinations/);
    expect(dry.out).toMatch(/ {2}attest VSA \(3 manifests\) -> 3 destinations/);
    const json = await promote("--sign-key", "release.key", "--output", "json");
    const document = JSON.parse(json.out) as { signatures: { summary: { actions: Record<string, number> } } };
    // 4 signatures (the index, its 2 images, the tool) and 2 attestations of each.
    expect(document.signatures.summary.actions.sign).toBe(12);
    const markdown = await promote("--sign-key", "release.key", "--output", "markdown");
    expect(markdown.out).toContain("| `app` |");
    expect(markdown.out).toMatch(/\| sign \(3 manifests\) \| 3: oci:mirror-a/);
    expect(await sigDigest("mirror-a", "app", multi.digest)).toBeUndefined();

    const real = await promote(
      "--confirm",
      "--quiet",
      "--sign-key",
      "env://PROMOTER_SIGN_KEY",
      "--sign-identity",
      "registry.example.io/project",
      "--report",
      "report.json",
    );
    expect(real.status, real.err + real.out).toBe(0);
    // 4 signatures and 8 attestations, each written to 3 mirrors.
    expect(real.out).toMatch(/signatures and attachments: 36 signed/);
    for (const [image, digests] of [
      ["app", [multi.digest, amd64.digest, arm64.digest]],
      ["tool", [single.digest]],
    ] as const) {
      for (const digest of digests) {
        const manifests = new Set<string | undefined>();
        for (const mirror of MIRRORS) {
          const check = await verifyCosignSignature(at(mirror, image), digest, {
            publicKeyPem: publicPem,
            identity: `registry.example.io/project/${image}`,
          });
          expect(check.ok, `${mirror}/${image} ${digest}: ${check.reason ?? ""}`).toBe(true);
          manifests.add(check.manifestDigest);
        }
        expect(manifests.size).toBe(1);
      }
    }
    const report = JSON.parse(await readFile(path.join(dir, "report.json"), "utf8")) as {
      signatures: {
        summary: { outcomes: Record<string, number> };
        digests: { outcomes: { status: string }[] }[];
      };
    };
    expect(report.signatures.summary.outcomes.signed).toBe(36);

    const again = await promote(
      "--confirm",
      "--quiet",
      "--sign-key",
      "release.key",
      "--sign-identity",
      "registry.example.io/project",
    );
    expect(again.status).toBe(0);
    expect(again.out).toMatch(/signatures and attachments in place/);
  });

  it("signs on a later run what an earlier run copied unsigned", async () => {
    await seedStaging([{ content: multi, tag: "v1" }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));
    expect((await promote("--confirm", "--quiet")).status).toBe(0);
    expect(await sigDigest("mirror-b", "app", multi.digest)).toBeUndefined();

    const dry = await promote("--sign-key", "release.key", "--output", "json");
    const plan = JSON.parse(dry.out) as {
      summary: { decisions: Record<string, number> };
      signatures: { summary: { actions: Record<string, number> } };
    };
    expect(plan.summary.decisions.unchanged).toBe(6);
    expect(plan.signatures.summary.actions.sign).toBe(12);

    const signed = await promote("--confirm", "--quiet", "--sign-key", "release.key");
    expect(signed.status).toBe(0);
    for (const mirror of MIRRORS) {
      const check = await verifyCosignSignature(at(mirror), arm64.digest, {
        publicKeyPem: publicPem,
        identity: "oci:mirror-a/app",
      });
      expect(check.ok, check.reason).toBe(true);
    }
  });

  it("refuses edges whose staging digest is not signed by a source key; the signed ones promote", async () => {
    const toolSignature = stagingSignature(single.digest);
    await seedStaging(
      [{ content: multi, tag: "v1" }],
      [
        { content: single, tag: "v2" },
        { content: toolSignature, tag: `${single.digest.replace(":", "-")}.sig` },
      ],
    );
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));
    const args = ["--require-source-signature", "--source-public-key", "staging.pub"];

    const dry = await promote(...args, "--output", "json");
    expect(dry.status).toBe(1);
    const plan = JSON.parse(dry.out) as { edges: { image: string; decision: string; reason?: string }[] };
    const app = plan.edges.filter((edge) => edge.image === "app");
    expect(new Set(app.map((edge) => edge.decision))).toEqual(new Set(["refused-source-signature"]));
    expect(app[0]?.reason).toMatch(/no valid signature: no signature \(sha256-.*\.sig is absent\)/);
    expect(new Set(plan.edges.filter((edge) => edge.image === "tool").map((edge) => edge.decision))).toEqual(
      new Set(["copy"]),
    );

    const text = await promote(...args);
    expect(text.out).toMatch(/x refused: source not signed: v1 no signature/);

    const real = await promote(...args, "--confirm", "--quiet", "--report", "report.json");
    expect(real.status).toBe(1);
    const report = JSON.parse(await readFile(path.join(dir, "report.json"), "utf8")) as {
      edges: { image: string; outcome: string; error?: { code: string } }[];
    };
    for (const edge of report.edges) {
      if (edge.image === "app") {
        expect(edge.outcome).toBe("failed");
        expect(edge.error?.code).toBe("source-signature");
      } else {
        expect(edge.outcome).toBe("copied");
      }
    }
    // The staging signature came along (attachments of copied digests are carried by default).
    for (const mirror of MIRRORS) {
      expect(await sigDigest(mirror, "tool", single.digest)).toBe(toolSignature.digest);
      await expect(readFile(path.join(dir, mirror, "app", "index.json"))).rejects.toThrow();
    }

    // A signature by another key does not count.
    const wrong = await promote(
      "--require-source-signature",
      "--source-public-key",
      "release.pub",
      "--output",
      "json",
    );
    const wrongPlan = JSON.parse(wrong.out) as {
      edges: { image: string; decision: string; reason?: string }[];
    };
    const tool = wrongPlan.edges.find((edge) => edge.image === "tool");
    expect(tool?.decision).toBe("unchanged");
  });

  it("writes a sigstore bundle referrer with --signature-format bundle, verified by @sigstore/verify", async () => {
    await seedStaging([{ content: multi, tag: "v1" }]);
    await writeFile(
      path.join(dir, "promoter.yaml"),
      manifestText(`- name: tool\n  dmap:\n    "${single.digest}": ["v2"]\n`),
    );
    // Signatures only: --no-attestations writes no promotion record or VSA next to them.
    const args = [
      "--confirm",
      "--quiet",
      "--sign-key",
      "release.key",
      "--signature-format",
      "bundle",
      "--no-attestations",
    ];
    const result = await promote(...args);
    expect(result.status, result.err + result.out).toBe(0);

    const referrerDigests = new Set<string>();
    for (const mirror of MIRRORS) {
      const index = JSON.parse(await readFile(path.join(dir, mirror, "tool", "index.json"), "utf8")) as {
        manifests: { digest: string; annotations?: Record<string, string> }[];
      };
      const referrers = [];
      for (const entry of index.manifests) {
        const bytes = await readBlob(at(mirror, "tool"), entry.digest);
        const manifest = JSON.parse(bytes?.toString() ?? "{}") as {
          artifactType?: string;
          subject?: { digest: string };
          layers?: { digest: string; mediaType: string }[];
        };
        if (manifest.artifactType === "application/vnd.dev.sigstore.bundle.v0.3+json")
          referrers.push({ entry, manifest });
      }
      expect(referrers).toHaveLength(1);
      const referrer = referrers[0]!;
      referrerDigests.add(referrer.entry.digest);
      expect(referrer.manifest.subject?.digest).toBe(single.digest);
      const bundleBytes = await readBlob(at(mirror, "tool"), referrer.manifest.layers?.[0]?.digest ?? "");
      const bundle = bundleFromJSON(JSON.parse(bundleBytes?.toString() ?? "{}"));
      const hint =
        bundle.verificationMaterial.content.$case === "publicKey"
          ? bundle.verificationMaterial.content.publicKey.hint
          : "";
      const verifier = new Verifier(
        {
          certificateAuthorities: [],
          timestampAuthorities: [],
          tlogs: [],
          ctlogs: [],
          publicKey: (keyHint: string) => {
            expect(keyHint).toBe(hint);
            return { publicKey: createPublicKey(publicPem), validFor: () => true };
          },
        },
        { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
      );
      expect(() => verifier.verify(toSignedEntity(bundle))).not.toThrow();
      const payload =
        bundle.content.$case === "dsseEnvelope" ? bundle.content.dsseEnvelope.payload : Buffer.alloc(0);
      const statement = JSON.parse(payload.toString()) as {
        subject: { name: string; digest: { sha256: string } }[];
        predicateType: string;
      };
      expect(statement.predicateType).toBe("https://sigstore.dev/cosign/sign/v1");
      expect(statement.subject[0]).toEqual({
        name: "oci:mirror-a/tool",
        digest: { sha256: single.digest.slice(7) },
      });
      // Another key does not verify it.
      const stranger = new Verifier(
        {
          certificateAuthorities: [],
          timestampAuthorities: [],
          tlogs: [],
          ctlogs: [],
          publicKey: () => ({ publicKey: stagingKey.publicKey, validFor: () => true }),
        },
        { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
      );
      expect(() => stranger.verify(toSignedEntity(bundle))).toThrow(/signature/i);
    }
    expect(referrerDigests.size).toBe(1);
    const again = await promote(...args);
    expect(again.out).toMatch(/signatures and attachments in place/);
  });

  it("refuses an unusable key before anything is read, without printing key material", async () => {
    await writeFile(path.join(dir, "public-as-private.pem"), publicPem);
    await seedStaging([{ content: multi, tag: "v1" }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));
    const result = await promote("--confirm", "--sign-key", "public-as-private.pem");
    expect(result.status).toBe(2);
    expect(result.err).toMatch(
      /error\[sign-key\]: cannot use key public-as-private\.pem: it holds a public key/,
    );
    expect(result.err).not.toContain(publicPem.split("\n")[1]);
    await expect(readFile(path.join(dir, "mirror-a", "app", "index.json"))).rejects.toThrow();
    const usage = await promote("--sign-identity", "registry.example.io");
    expect(usage.status).toBe(2);
    expect(usage.err).toMatch(/need --sign-key or --keyless/);
    const missing = await promote("--require-source-signature");
    expect(missing.status).toBe(2);
  });
});
