import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import {
  parseRegistryLocation,
  parseRepositoryPath,
  repositoryIn,
  type Tag,
} from "../../src/reference/index.js";
import { createStoreProvider } from "../../src/registry/index.js";
import { captureIO } from "../support/cli.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";
import {
  readTaggedManifest,
  verifyCosignSignature,
  type VerifierLocation,
} from "../support/cosign-verifier.js";
import { findFreePort, startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoInspectRaw } from "../support/skopeo.js";
import {
  allBlobs,
  allManifests,
  makeImage,
  makeIndex,
  makeLayerSetImage,
  makeReferrer,
  sha256Digest,
  type LayerSetLayer,
  type TestContent,
  type TestImage,
} from "../support/test-images.js";

/**
 * Signing on promotion against real registries: a staging registry and three destination
 * registries (distribution 2.8.2, no referrers API). The judge is the independent cosign
 * verifier over plain HTTP; skopeo checks the image manifests.
 */

let work: string;
let staging: TestRegistry;
let destinations: TestRegistry[];

const amd64 = makeImage({
  layers: 1,
  layerSize: 2048,
  mediaTypes: "oci",
  seed: "sig-e2e-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 2048,
  mediaTypes: "oci",
  seed: "sig-e2e-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const tool = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "sig-e2e-tool" });
const referrer = makeReferrer({
  subject: multi.descriptor,
  artifactType: "application/spdx+json",
  seed: "sig-e2e-sbom-referrer",
});

const release = generateKeyPairSync("ec", { namedCurve: "P-256" });
const releasePublic = release.publicKey.export({ type: "spki", format: "pem" }).toString();
const builder = generateKeyPairSync("ec", { namedCurve: "P-256" });
const builderPublic = builder.publicKey.export({ type: "spki", format: "pem" }).toString();
const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });
const strangerPublic = stranger.publicKey.export({ type: "spki", format: "pem" }).toString();
const IDENTITY = "registry.example.io/project";

/** A `.sig`/`.att`-shaped manifest built here, without project code. */
function layerSet(layers: LayerSetLayer[]): TestImage {
  return makeLayerSetImage(layers, '{"architecture":"","os":"","config":{}}');
}

function signatureBy(key: KeyObject, digest: string, identity: string): TestImage {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": identity },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
  return layerSet([
    {
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      bytes: payload,
      annotations: {
        "dev.cosignproject.cosign/signature": cryptoSign("sha256", payload, key).toString("base64"),
      },
    },
  ]);
}

const builderSig = signatureBy(builder.privateKey, multi.digest, "staging.example/app");
const strangerSig = signatureBy(stranger.privateKey, multi.digest, "elsewhere.example/app");
const attestation = layerSet([
  {
    mediaType: "application/vnd.dsse.envelope.v1+json",
    bytes: Buffer.from('{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'),
    annotations: { predicateType: "https://slsa.dev/provenance/v1" },
  },
]);
const sbom = layerSet([
  {
    mediaType: "text/spdx+json",
    bytes: Buffer.from('{"spdxVersion":"SPDX-2.3","name":"app"}'),
    annotations: {},
  },
]);

/** Pushes content with the project's client (seeding only; the judge does not use it). */
async function push(
  registry: TestRegistry,
  repository: string,
  entries: { content: TestContent; tag?: string }[],
): Promise<void> {
  const provider = createStoreProvider({ homeDirectory: work, env: {} });
  const store = provider.repository(
    repositoryIn(parseRegistryLocation(registry.host), parseRepositoryPath(repository)),
  );
  for (const { content, tag } of entries) {
    for (const blob of allBlobs(content)) await store.putBlob(blob.descriptor, Readable.from([blob.bytes]));
    for (const manifest of allManifests(content)) {
      await store.putManifest(
        { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
        manifest.digest,
      );
    }
    if (tag !== undefined) {
      await store.putManifest(
        { digest: content.digest, mediaType: content.mediaType, bytes: content.bytes },
        tag as Tag,
      );
    }
  }
  await provider.close();
}

function at(registry: TestRegistry, image: string): VerifierLocation {
  return { kind: "registry", baseUrl: registry.url, repository: `prod/${image}` };
}

async function promoter(...args: string[]) {
  const capture = captureIO({ cwd: work, env: { HOME: work, SIGSTORE_ID_TOKEN: unsignedJwt() } });
  const status = await runCli(allowingLoopbackRegistries(args), capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

/** `promote --manifest app.yaml --confirm`, signing with release.key for IDENTITY, reporting to `report`. */
function promoteAppSigned(report: string) {
  return promoter(
    "promote",
    "--manifest",
    "app.yaml",
    "--confirm",
    "--quiet",
    "--sign-key",
    "release.key",
    "--sign-identity",
    IDENTITY,
    "--report",
    report,
  );
}

function unsignedJwt(): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "none" })}.${encode({ sub: "release@example.com", iss: "https://issuer.example" })}.`;
}

function manifestYaml(images: string): string {
  return [
    "registries:",
    `- name: ${staging.host}/staging`,
    "  src: true",
    ...destinations.map((registry) => `- name: ${registry.host}/prod`),
    "images:",
    images,
  ].join("\n");
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "signatures-e2e-"));
  [staging, ...destinations] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry(),
    startRegistry(),
  ]);
  await writeFile(
    path.join(work, "release.key"),
    release.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  );
  await writeFile(path.join(work, "release.pub"), releasePublic);
  const prefix = multi.digest.replace(":", "-");
  await push(staging, "staging/app", [
    { content: multi, tag: "v1" },
    { content: builderSig, tag: `${prefix}.sig` },
    { content: attestation, tag: `${prefix}.att` },
    { content: sbom, tag: `${prefix}.sbom` },
    { content: referrer },
  ]);
  await push(staging, "staging/tool", [{ content: tool, tag: "v2" }]);
  // The second destination already holds a signature by someone else.
  await push(destinations[1]!, "prod/app", [{ content: strangerSig, tag: `${prefix}.sig` }]);
}, 120_000);

afterAll(async () => {
  await Promise.all([staging, ...destinations].map((registry) => registry.stop()));
  await rm(work, { recursive: true, force: true });
});

describe("signatures across real registries", () => {
  it("signs once, keeps every other signature, carries staging's attachments, and mirrors byte-identical .sig manifests", async () => {
    await writeFile(
      path.join(work, "app.yaml"),
      manifestYaml(`- name: app\n  dmap:\n    "${multi.digest}": ["v1"]\n`),
    );
    const run = await promoteAppSigned("first.json");
    expect(run.status, run.err + run.out).toBe(0);

    const prefix = multi.digest.replace(":", "-");
    for (const subject of [multi.digest, amd64.digest, arm64.digest]) {
      const manifests = new Set<string | undefined>();
      for (const registry of destinations) {
        const ours = await verifyCosignSignature(at(registry, "app"), subject, {
          publicKeyPem: releasePublic,
          identity: `${IDENTITY}/app`,
        });
        expect(ours.ok, `${registry.host} ${subject}: ${ours.reason ?? ""}`).toBe(true);
        manifests.add(ours.manifestDigest);
        // A signature from another key, or for another identity, does not pass.
        expect(
          (
            await verifyCosignSignature(at(registry, "app"), subject, {
              publicKeyPem: releasePublic,
              identity: `${IDENTITY}/other`,
            })
          ).ok,
        ).toBe(false);
      }
      expect(manifests.size, subject).toBe(1);
    }
    for (const registry of destinations) {
      const location = at(registry, "app");
      // The builder's signature from staging and the one the second mirror had are both kept.
      expect(
        (
          await verifyCosignSignature(location, multi.digest, {
            publicKeyPem: builderPublic,
            identity: "staging.example/app",
          })
        ).ok,
      ).toBe(true);
      expect(
        (
          await verifyCosignSignature(location, multi.digest, {
            publicKeyPem: strangerPublic,
            identity: "elsewhere.example/app",
          })
        ).ok,
      ).toBe(true);
      // Staging's attestations and SBOM arrive unchanged.
      for (const [suffix, content] of [
        ["att", attestation],
        ["sbom", sbom],
      ] as const) {
        const bytes = await readTaggedManifest(location, `${prefix}.${suffix}`);
        expect(bytes && sha256Digest(bytes), `${registry.host} .${suffix}`).toBe(content.digest);
      }
      // The referrer arrives, and the tag-schema index lists it (no referrers API here).
      const fallback = await readTaggedManifest(location, prefix);
      const index = JSON.parse(fallback?.toString() ?? "{}") as {
        manifests?: { digest: string; artifactType?: string }[];
      };
      expect(index.manifests?.map((entry) => entry.digest)).toContain(referrer.digest);
      expect(index.manifests?.find((entry) => entry.digest === referrer.digest)?.artifactType).toBe(
        "application/spdx+json",
      );
      // skopeo sees the promoted index unchanged.
      const raw = await skopeoInspectRaw(`docker://${registry.host}/prod/app@${multi.digest}`);
      expect(raw.bytes.equals(multi.bytes)).toBe(true);
    }

    // A second run finds everything in place: no writes, nothing asked of staging.
    const again = await promoteAppSigned("second.json");
    expect(again.status, again.err + again.out).toBe(0);
    const report = JSON.parse(await readFile(path.join(work, "second.json"), "utf8")) as {
      requests: Record<string, { total: number; byMethod: Record<string, number> }>;
      signatures: { summary: { outcomes: Record<string, number> } };
    };
    expect(Object.values(report.signatures.summary.outcomes).every((count) => count === 0)).toBe(true);
    for (const [host, count] of Object.entries(report.requests)) {
      for (const method of ["PUT", "POST", "PATCH", "DELETE"])
        expect(count.byMethod[method] ?? 0, `${method} ${host}`).toBe(0);
    }
    expect(report.requests[staging.host]?.total ?? 0).toBe(0);
    // Per destination: the tag HEAD, one HEAD per signed manifest's .sig (3), the index and
    // .sig GETs from one mirror only, plus the ping; for the attestations, the referrers API
    // probe, the referrers of each signed manifest (3), and, from one mirror only, the referrer
    // manifest and bundle of the promotion record and the VSA of each (3 x 2 x 2) to verify them.
    const totals = destinations.map((registry) => report.requests[registry.host]?.total ?? 0);
    expect(Math.max(...totals)).toBeLessThanOrEqual(1 + 1 + 3 + 1 + 3 + 1 + 3 + 12);
    console.log(`second run requests per destination: ${totals.join(", ")}`);

    const verify = await promoter(
      "verify",
      "--manifest",
      "app.yaml",
      "--public-key",
      "release.pub",
      "--sign-identity",
      IDENTITY,
    );
    expect(verify.status, verify.out).toBe(0);
    expect(verify.out).toMatch(/9 signatures checked: 9 valid/);
  });

  it("repairs on the next run a signing step that failed after the copy", async () => {
    await writeFile(
      path.join(work, "tool.yaml"),
      manifestYaml(`- name: tool\n  dmap:\n    "${tool.digest}": ["v2"]\n`),
    );
    const closed = await findFreePort();
    // Nothing is trusted: no keyless signature could count as ours, and none is made anyway.
    await writeFile(
      path.join(work, "empty_trusted_root.json"),
      JSON.stringify({ tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] }),
    );
    const failed = await promoter(
      "promote",
      "--manifest",
      "tool.yaml",
      "--confirm",
      "--quiet",
      "--keyless",
      "--fulcio-url",
      `http://127.0.0.1:${closed}`,
      "--rekor-url",
      `http://127.0.0.1:${closed}`,
      "--trusted-root",
      "empty_trusted_root.json",
      "--certificate-identity",
      "release@example.com",
      "--certificate-oidc-issuer",
      "https://issuer.example",
      "--report",
      "failed.json",
    );
    expect(failed.status).toBe(1);
    const report = JSON.parse(await readFile(path.join(work, "failed.json"), "utf8")) as {
      edges: { outcome: string; error?: { code: string; message: string } }[];
    };
    expect(report.edges).toHaveLength(3);
    for (const edge of report.edges) {
      expect(edge.outcome).toBe("failed");
      expect(edge.error?.code).toBe("signature-failed");
      expect(edge.error?.message).toMatch(/the image is copied, but the signature/);
      expect(edge.error?.message).not.toContain(unsignedJwt());
    }
    for (const registry of destinations) {
      expect((await skopeoInspectRaw(`docker://${registry.host}/prod/tool:v2`)).digest).toBe(tool.digest);
      expect(
        (
          await verifyCosignSignature(at(registry, "tool"), tool.digest, {
            publicKeyPem: releasePublic,
            identity: `${destinations[0]!.host}/prod/tool`,
          })
        ).ok,
      ).toBe(false);
    }

    const repaired = await promoter(
      "promote",
      "--manifest",
      "tool.yaml",
      "--confirm",
      "--quiet",
      "--sign-key",
      "release.key",
    );
    expect(repaired.status, repaired.err + repaired.out).toBe(0);
    const digests = new Set<string | undefined>();
    for (const registry of destinations) {
      const check = await verifyCosignSignature(at(registry, "tool"), tool.digest, {
        publicKeyPem: releasePublic,
        identity: `${destinations[0]!.host}/prod/tool`,
      });
      expect(check.ok, check.reason).toBe(true);
      digests.add(check.manifestDigest);
    }
    expect(digests.size).toBe(1);
  });
});
