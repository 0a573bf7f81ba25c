import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { bundleFromJSON } from "@sigstore/bundle";
import type { TrustMaterial } from "@sigstore/verify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  readStoredCosignLayer,
  readThirdParty,
  readThirdPartyJson,
  readThirdPartyText,
  thirdPartyPath,
  type StoredCosignLayer,
} from "../../test/support/third-party-artifacts.js";
import { bundleReferrer } from "../../test/support/hostile-signing.js";
import { writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { parseManifest } from "../oci/index.js";
import { digestOf, type Digest, type RepositoryPath } from "../reference/index.js";
import { createStoreProvider } from "../registry/index.js";
import { judgeSourceSignatures, keylessSourcePolicy, type SourcePolicy } from "./source-policy.js";
import { BUNDLE_MEDIA_TYPE } from "./bundle-format.js";
import {
  buildLayerSet,
  CosignAnnotation,
  CosignMediaType,
  parseLayerSet,
  parseSimpleSigningPayload,
  signatureLayer,
  simpleSigningPayload,
} from "./cosign-format.js";
import {
  bundleOfCosignLayer,
  createKeylessPolicy,
  trustMaterialFromTrustedRoot,
  type KeylessIdentity,
} from "./keyless-policy.js";
import { parseSigningKey, parseVerificationKey, type VerificationKey } from "./keys.js";
import { cosignAnnotationsFromBundle, createKeySigner, IN_TOTO_PAYLOAD_TYPE } from "./signer.js";
import { verifySimpleSigningLayer } from "./verify-layer.js";

/**
 * cosign compatibility judged by what cosign itself made, not by our own signer: signatures in
 * cosign's tag layout that containers/image keeps as test data (key-signed, key-signed with a
 * Rekor entry, keyless with Fulcio certificate and Rekor inclusion promise), cosign's own
 * attestation bundle (a `.sigstore.json` in the new bundle format), and sigstore's conformance
 * bundles with altered copies. Where they come from: test/fixtures/third-party/SOURCES.md.
 * Our parsers must read them, our verifiers accept the valid ones with the key or trusted root
 * of the same test data and refuse altered copies, `openssl` agrees independently, and what we
 * write has exactly their shape.
 */

const execFileAsync = promisify(execFile);
const TAG_LAYOUT = "cosign/tag-layout";
const KEY_SIGNED = `${TAG_LAYOUT}/dir-img-cosign-valid`;
const KEY_REKOR = `${TAG_LAYOUT}/dir-img-cosign-key-rekor-valid`;
const KEYLESS = `${TAG_LAYOUT}/dir-img-cosign-fulcio-rekor-valid`;
const PUBLIC_GOOD_ROOT = "cosign/bundle/trusted_root_pgi.json";

interface RealSignature {
  readonly layer: StoredCosignLayer;
  /** The signed image's manifest, as containers/image stored it beside the signature. */
  readonly manifest: Buffer;
  readonly digest: Digest;
}

async function realSignature(folder: string): Promise<RealSignature> {
  const manifest = await readThirdParty(`${folder}/manifest.json`);
  return {
    layer: await readStoredCosignLayer(`${folder}/signature-1`),
    manifest,
    digest: digestOf(manifest),
  };
}

/** The layer descriptor cosign pushed, rebuilt from what containers/image stored. */
function descriptorOf(layer: StoredCosignLayer) {
  return {
    mediaType: layer.mediaType,
    digest: digestOf(layer.payload),
    size: layer.payload.length,
    annotations: layer.annotations,
  };
}

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "third-party-cosign-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** `openssl dgst -sha256 -verify`: an ECDSA check that shares no code with ours. */
async function opensslVerifies(
  publicKeyFile: string,
  payload: Buffer,
  signatureBase64: string,
): Promise<boolean> {
  const folder = await mkdtemp(path.join(work, "openssl-"));
  const payloadFile = path.join(folder, "payload");
  const signatureFile = path.join(folder, "signature.der");
  await writeFile(payloadFile, payload);
  await writeFile(signatureFile, Buffer.from(signatureBase64, "base64"));
  try {
    const { stdout } = await execFileAsync("openssl", [
      "dgst",
      "-sha256",
      "-verify",
      publicKeyFile,
      "-signature",
      signatureFile,
      payloadFile,
    ]);
    return stdout.trim() === "Verified OK";
  } catch {
    return false;
  }
}

describe("cosign tag layout, key-signed by cosign (containers/image test data)", () => {
  let key: VerificationKey;
  let otherKey: VerificationKey;
  beforeAll(async () => {
    key = parseVerificationKey(await readThirdPartyText(`${TAG_LAYOUT}/cosign.pub`), "cosign.pub");
    otherKey = parseVerificationKey(await readThirdPartyText(`${TAG_LAYOUT}/cosign2.pub`), "cosign2.pub");
  });

  it("reads the signed image's Docker manifest and cosign's simple-signing payload", async () => {
    const { layer, manifest, digest } = await realSignature(KEY_SIGNED);
    expect(parseManifest(manifest, undefined, "manifest.json").kind).toBe("manifest");
    expect(layer.mediaType).toBe(CosignMediaType.simpleSigning);
    expect(parseSimpleSigningPayload(layer.payload)).toEqual({
      ok: true,
      claims: {
        dockerReference: "192.168.64.2:5000/cosign-signed-single-sample",
        manifestDigest: digest,
        optional: null,
      },
    });
  });

  it("writes cosign's payload byte for byte from the identity and the digest", async () => {
    for (const folder of [KEY_SIGNED, KEY_REKOR, KEYLESS]) {
      const { layer } = await realSignature(folder);
      const parsed = parseSimpleSigningPayload(layer.payload);
      if (!parsed.ok) throw new Error(parsed.reason);
      const ours = simpleSigningPayload(parsed.claims.dockerReference, parsed.claims.manifestDigest);
      expect(Buffer.from(ours).toString("utf8")).toBe(layer.payload.toString("utf8"));
    }
  });

  it("accepts cosign's signatures with the public key that made each, and openssl agrees", async () => {
    // dir-img-cosign-valid was signed with cosign.pub's key, dir-img-cosign-key-rekor-valid
    // with cosign2.pub's.
    for (const [folder, publicKey, file] of [
      [KEY_SIGNED, key, "cosign.pub"],
      [KEY_REKOR, otherKey, "cosign2.pub"],
    ] as const) {
      const { layer, digest } = await realSignature(folder);
      const verdict = verifySimpleSigningLayer(descriptorOf(layer), layer.payload, [key, otherKey], {
        digest,
      });
      expect(verdict).toMatchObject({ ok: true, keyId: publicKey.keyId });
      const signature = layer.annotations[CosignAnnotation.signature] ?? "";
      expect(await opensslVerifies(thirdPartyPath(`${TAG_LAYOUT}/${file}`), layer.payload, signature)).toBe(
        true,
      );
      const wrongFile = file === "cosign.pub" ? "cosign2.pub" : "cosign.pub";
      expect(
        await opensslVerifies(thirdPartyPath(`${TAG_LAYOUT}/${wrongFile}`), layer.payload, signature),
      ).toBe(false);
    }
  });

  it("refuses altered copies: payload, signature, key, digest, identity; openssl refuses them too", async () => {
    const { layer, digest } = await realSignature(KEY_SIGNED);
    const signature = layer.annotations[CosignAnnotation.signature] ?? "";
    const payloadAt = layer.payload.indexOf("sha256:") + 10;
    const altered = flipped(layer.payload, payloadAt);
    expect(
      verifySimpleSigningLayer(descriptorOf({ ...layer, payload: altered }), altered, [key], { digest }),
    ).toMatchObject({ ok: false, reason: "the signature does not verify with the public key" });
    expect(await opensslVerifies(thirdPartyPath(`${TAG_LAYOUT}/cosign.pub`), altered, signature)).toBe(false);
    // The stored payload under a descriptor that claims other bytes.
    expect(verifySimpleSigningLayer(descriptorOf(layer), altered, [key], { digest })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/does not match the layer digest/) as unknown,
    });
    const der = Buffer.from(signature, "base64");
    const badSignature = flipped(der, der.length - 2).toString("base64");
    const withBadSignature = {
      ...layer,
      annotations: { ...layer.annotations, [CosignAnnotation.signature]: badSignature },
    };
    expect(
      verifySimpleSigningLayer(descriptorOf(withBadSignature), layer.payload, [key], { digest }),
    ).toMatchObject({ ok: false });
    expect(
      await opensslVerifies(thirdPartyPath(`${TAG_LAYOUT}/cosign.pub`), layer.payload, badSignature),
    ).toBe(false);
    expect(
      verifySimpleSigningLayer(descriptorOf(layer), layer.payload, [otherKey], { digest }),
    ).toMatchObject({
      ok: false,
      reason: "the signature does not verify with the public key",
    });
    expect(
      verifySimpleSigningLayer(descriptorOf(layer), layer.payload, [key], {
        digest: digestOf("another image"),
      }),
    ).toMatchObject({ ok: false, reason: expect.stringMatching(/^the payload signs sha256:/) as unknown });
    expect(
      verifySimpleSigningLayer(descriptorOf(layer), layer.payload, [key], {
        digest,
        identity: "registry.example/other",
      }),
    ).toMatchObject({ ok: false, reason: expect.stringMatching(/^the payload names/) as unknown });
  });

  it("refuses cosign's signature by another key (unknown-cosign-key.signature)", async () => {
    const layer = await readStoredCosignLayer(`${TAG_LAYOUT}/unknown-cosign-key.signature`);
    const parsed = parseSimpleSigningPayload(layer.payload);
    if (!parsed.ok) throw new Error(parsed.reason);
    const verdict = verifySimpleSigningLayer(descriptorOf(layer), layer.payload, [key], {
      digest: parsed.claims.manifestDigest,
    });
    expect(verdict).toMatchObject({
      ok: false,
      reason: "the signature does not verify with the public key",
    });
  });

  it("writes the layer cosign writes: media type, digest, size and annotation keys", async () => {
    const { layer } = await realSignature(KEY_SIGNED);
    const ours = signatureLayer(layer.payload, layer.annotations).descriptor;
    expect(ours).toEqual(descriptorOf(layer));
    // Our key signer over the same payload: the same annotation keys, an ECDSA P-256 DER
    // signature that openssl verifies.
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const signingKey = parseSigningKey(
      pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      "test.key",
    );
    const annotations = await createKeySigner(signingKey).signPayload(layer.payload);
    expect(Object.keys(annotations).sort()).toEqual(Object.keys(layer.annotations).sort());
    const publicKeyFile = path.join(work, "ours.pub");
    await writeFile(publicKeyFile, signingKey.publicKeyPem);
    expect(
      await opensslVerifies(publicKeyFile, layer.payload, annotations[CosignAnnotation.signature] ?? ""),
    ).toBe(true);
    // The `.sig` manifest over cosign's layer parses back to that layer.
    const built = buildLayerSet([ours]);
    expect(parseLayerSet(built.manifest, "sig").layers).toEqual([ours]);
  });

  it("reads a key-signed layer with a Rekor entry: the keys cosign writes for it", async () => {
    const { layer } = await realSignature(KEY_REKOR);
    expect(Object.keys(layer.annotations).sort()).toEqual(
      [CosignAnnotation.bundle, CosignAnnotation.signature].sort(),
    );
    const rekor = JSON.parse(layer.annotations[CosignAnnotation.bundle] ?? "") as Record<string, unknown>;
    expect(Object.keys(rekor)).toEqual(["SignedEntryTimestamp", "Payload"]);
    expect(Object.keys(rekor.Payload as object)).toEqual(["body", "integratedTime", "logIndex", "logID"]);
  });
});

const PUBLIC_GOOD_GITHUB: KeylessIdentity = {
  subject: "mitr@redhat.com",
  issuer: "https://github.com/login/oauth",
};

describe("cosign tag layout, keyless (Fulcio and Rekor of the public-good instance)", () => {
  let trust: TrustMaterial;
  beforeAll(async () => {
    trust = await trustMaterialFromTrustedRoot(
      await readThirdPartyJson(PUBLIC_GOOD_ROOT),
      "trusted_root_pgi.json",
    );
  });

  it("accepts cosign's keyless signature: certificate chain, Rekor promise, signature, identity", async () => {
    const { layer, digest } = await realSignature(KEYLESS);
    expect(Object.keys(layer.annotations).sort()).toEqual(
      [
        CosignAnnotation.bundle,
        CosignAnnotation.certificate,
        CosignAnnotation.chain,
        CosignAnnotation.signature,
      ].sort(),
    );
    const verdict = await createKeylessPolicy([PUBLIC_GOOD_GITHUB], trust).verifyLayer(
      descriptorOf(layer),
      layer.payload,
      { digest, identity: "192.168.64.2:5000/cosign-signed/fulcio-rekor-1" },
    );
    expect(verdict).toEqual({ ok: true, signer: "mitr@redhat.com (https://github.com/login/oauth)" });
  });

  it("refuses it for another identity or issuer, another digest, an altered payload, Rekor promise or certificate", async () => {
    const { layer, digest } = await realSignature(KEYLESS);
    const policy = createKeylessPolicy([PUBLIC_GOOD_GITHUB], trust);
    const verify = (candidate: StoredCosignLayer, expected = digest) =>
      createKeylessPolicy([PUBLIC_GOOD_GITHUB], trust).verifyLayer(
        descriptorOf(candidate),
        candidate.payload,
        {
          digest: expected,
        },
      );
    for (const identity of [
      { ...PUBLIC_GOOD_GITHUB, subject: "someone@example.com" },
      { ...PUBLIC_GOOD_GITHUB, issuer: "https://accounts.google.com" },
    ]) {
      expect(
        await createKeylessPolicy([identity], trust).verifyLayer(descriptorOf(layer), layer.payload, {
          digest,
        }),
      ).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/which the policy does not accept$/) as unknown,
      });
    }
    expect(
      await policy.verifyLayer(descriptorOf(layer), layer.payload, { digest: digestOf("x") }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^the payload signs/) as unknown,
    });
    const payload = flipped(layer.payload, layer.payload.indexOf("sha256:") + 10);
    expect(await verify({ ...layer, payload })).toMatchObject({ ok: false });
    const rekor = JSON.parse(layer.annotations[CosignAnnotation.bundle] ?? "") as {
      SignedEntryTimestamp: string;
      Payload: { integratedTime: number };
    };
    const laterEntry = {
      ...rekor,
      Payload: { ...rekor.Payload, integratedTime: rekor.Payload.integratedTime + 3600 },
    };
    expect(
      await verify({
        ...layer,
        annotations: { ...layer.annotations, [CosignAnnotation.bundle]: JSON.stringify(laterEntry) },
      }),
    ).toMatchObject({ ok: false, reason: expect.stringMatching(/does not verify/) as unknown });
    const { [CosignAnnotation.bundle]: _rekor, ...withoutRekor } = layer.annotations;
    expect(await verify({ ...layer, annotations: withoutRekor })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no Rekor bundle annotation/) as unknown,
    });
    const otherCertificate = (await readStoredCosignLayer(`${KEY_REKOR}/signature-1`)).annotations;
    const { [CosignAnnotation.chain]: _chain, ...withoutChain } = layer.annotations;
    expect(
      await verify({
        ...layer,
        annotations: {
          ...withoutChain,
          [CosignAnnotation.certificate]: await readThirdPartyText(`${TAG_LAYOUT}/fulcio_v1.crt.pem`),
        },
      }),
    ).toMatchObject({ ok: false });
    expect(otherCertificate[CosignAnnotation.certificate]).toBeUndefined();
  });

  it("writes back exactly cosign's annotations from the equivalent bundle (certificate, chain, Rekor JSON)", async () => {
    const { layer } = await realSignature(KEYLESS);
    const bundle = bundleOfCosignLayer(descriptorOf(layer), layer.payload);
    if (typeof bundle === "string") throw new Error(bundle);
    expect(cosignAnnotationsFromBundle(bundle)).toEqual(layer.annotations);
  });
});

const ATTESTATION = "cosign/bundle/oci-attestation.sigstore.json";
const CONFORMANCE = "sigstore-conformance";
const CONFORMANCE_IDENTITY: KeylessIdentity = {
  subject:
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
  issuer: "https://token.actions.githubusercontent.com",
};

describe("sigstore bundles with DSSE envelopes (cosign's attestation, sigstore conformance)", () => {
  let publicGood: TrustMaterial;
  beforeAll(async () => {
    publicGood = await trustMaterialFromTrustedRoot(
      await readThirdPartyJson(PUBLIC_GOOD_ROOT),
      "trusted_root_pgi.json",
    );
  });

  async function bundleBytes(file: string): Promise<Buffer> {
    return readThirdParty(file);
  }

  it("reads cosign's attestation bundle: bundle media type, DSSE in-toto envelope, statement", async () => {
    const json = (await readThirdPartyJson(ATTESTATION)) as { mediaType: string };
    expect(json.mediaType).toBe(BUNDLE_MEDIA_TYPE);
    const bundle = bundleFromJSON(json);
    if (bundle.content.$case !== "dsseEnvelope") throw new Error("no DSSE envelope");
    expect(bundle.content.dsseEnvelope.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    const statement = JSON.parse(bundle.content.dsseEnvelope.payload.toString("utf8")) as Record<
      string,
      unknown
    >;
    expect(statement).toMatchObject({
      _type: "https://in-toto.io/Statement/v0.1",
      predicateType: "https://cosign.sigstore.dev/attestation/v1",
      subject: [
        {
          name: "127.0.0.1:60943/repo",
          digest: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown },
        },
      ],
    });
  });

  it("verifies cosign's attestation bundle (keyless, public-good): the signature passes, the predicate is not a signing one", async () => {
    const policy = createKeylessPolicy(
      [{ subject: "cody@soyland.com", issuer: "https://github.com/login/oauth" }],
      publicGood,
    );
    const digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4" as Digest;
    // Certificate, Rekor entry and DSSE signature verify; the statement then is an attestation,
    // not cosign's signing statement, so it is not taken as a signature of the image.
    expect(await policy.verifyBundle(await bundleBytes(ATTESTATION), { digest })).toEqual({
      ok: false,
      reason:
        'predicate type "https://cosign.sigstore.dev/attestation/v1" is not https://sigstore.dev/cosign/sign/v1',
    });
    const wrongSigner = createKeylessPolicy([PUBLIC_GOOD_GITHUB], publicGood);
    expect(await wrongSigner.verifyBundle(await bundleBytes(ATTESTATION), { digest })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^signed by cody@soyland.com/) as unknown,
    });
  });

  it("takes cosign's attestation bundle, as a staging referrer, for an attestation of its subject by its signer", async () => {
    const digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4" as Digest;
    const bytes = await bundleBytes(ATTESTATION);
    const byExpression = createKeylessPolicy(
      [{ subjectRegExp: "cody@soyland\\.com", issuerRegExp: "https://github\\.com/login/oauth" }],
      publicGood,
    );
    expect(await byExpression.verifyBundle(bytes, { digest }, "attestation")).toEqual({
      ok: true,
      signer: "cody@soyland.com (https://github.com/login/oauth)",
    });
    expect(await byExpression.verifyBundle(bytes, { digest: digestOf("x") }, "attestation")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^the statement does not name sha256:/) as unknown,
    });

    // Through the source policy, as an OCI referrer of the digest in a staging layout.
    const dir = await mkdtemp(path.join(tmpdir(), "third-party-attestation-"));
    const provider = createStoreProvider();
    try {
      const subject = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: 512 };
      const referrer = bundleReferrer(
        JSON.parse(bytes.toString("utf8")) as Record<string, unknown>,
        subject,
        "https://cosign.sigstore.dev/attestation/v1",
      );
      await writeOciLayoutDirectly(path.join(dir, "staging", "repo"), [{ content: referrer }]);
      const location = {
        kind: "oci-layout" as const,
        directory: path.join(dir, "staging"),
        repository: "repo" as RepositoryPath,
      };
      const judge = async (policy: SourcePolicy) => {
        const rule = policy.default;
        if (!rule) throw new Error("no default rule");
        const [verdict] = await judgeSourceSignatures([{ location, key: "repo", digest, rule }], {
          provider,
          mode: policy.mode ?? "required",
        });
        return verdict;
      };
      const ours = keylessSourcePolicy({
        certificateIdentity: "cody@soyland.com",
        certificateOidcIssuerRegExp: "https://github\\.com/login/oauth",
        trust: publicGood,
        mode: "if-present",
      });
      expect(await judge(ours)).toMatchObject({
        status: "verified",
        signers: ["cody@soyland.com (https://github.com/login/oauth)"],
      });
      const someoneElse = keylessSourcePolicy({
        certificateIdentity: PUBLIC_GOOD_GITHUB.subject ?? "",
        certificateOidcIssuer: PUBLIC_GOOD_GITHUB.issuer ?? "",
        trust: publicGood,
        mode: "if-present",
      });
      expect(await judge(someoneElse)).toMatchObject({
        status: "refused",
        reason: expect.stringMatching(
          /^an attestation is present but none verifies: attestation bundle sha256:[0-9a-f]{64}: signed by cody@soyland\.com/,
        ) as unknown,
      });
    } finally {
      await provider.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses an altered copy of cosign's attestation bundle (payload or signature)", async () => {
    const policy = createKeylessPolicy(
      [{ subject: "cody@soyland.com", issuer: "https://github.com/login/oauth" }],
      publicGood,
    );
    const json = (await readThirdPartyJson(ATTESTATION)) as {
      dsseEnvelope: { payload: string; signatures: { sig: string }[] };
    };
    const payload = Buffer.from(json.dsseEnvelope.payload, "base64");
    const alteredPayload = structuredClone(json);
    alteredPayload.dsseEnvelope.payload = flipped(payload, payload.indexOf("sha256") + 12).toString("base64");
    const alteredSignature = structuredClone(json);
    const signature = Buffer.from(json.dsseEnvelope.signatures[0]?.sig ?? "", "base64");
    (alteredSignature.dsseEnvelope.signatures[0] as { sig: string }).sig = flipped(
      signature,
      signature.length - 3,
    ).toString("base64");
    for (const altered of [alteredPayload, alteredSignature]) {
      expect(
        await policy.verifyBundle(Buffer.from(JSON.stringify(altered)), { digest: digestOf("x") }),
      ).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/^keyless signature does not verify/) as unknown,
      });
    }
  });

  it("verifies sigstore's conformance DSSE bundles and refuses their altered copies", async () => {
    const policy = createKeylessPolicy([CONFORMANCE_IDENTITY], publicGood);
    const digest = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf" as Digest;
    expect(
      await policy.verifyBundle(
        await bundleBytes(`${CONFORMANCE}/happy-path-intoto-in-dsse-v3/bundle.sigstore.json`),
        {
          digest,
        },
      ),
    ).toEqual({
      ok: false,
      reason: 'predicate type "https://slsa.dev/provenance/v1" is not https://sigstore.dev/cosign/sign/v1',
    });
    for (const failing of [
      "dsse-invalid-sig_fail",
      "dsse-mismatch-sig_fail",
      "dsse-mismatch-envelope_fail",
    ]) {
      expect(
        await policy.verifyBundle(await bundleBytes(`${CONFORMANCE}/${failing}/bundle.sigstore.json`), {
          digest,
        }),
        failing,
      ).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/^keyless signature does not verify/) as unknown,
      });
    }
  });

  it("verifies a conformance DSSE bundle against its own trusted root, and not against public-good's", async () => {
    const folder = `${CONFORMANCE}/intoto-with-custom-trust-root`;
    const custom = await trustMaterialFromTrustedRoot(
      await readThirdPartyJson(`${folder}/trusted_root.json`),
      "trusted_root.json",
    );
    const digest = "sha256:330a043220fa13e01d68a7db39c89e12b0c4c3b6a0346fe624b0903f1303b5b2" as Digest;
    const bytes = await bundleBytes(`${folder}/bundle.sigstore.json`);
    expect(
      await createKeylessPolicy([CONFORMANCE_IDENTITY], custom).verifyBundle(bytes, { digest }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^predicate type "https:\/\/slsa.dev\/provenance\/v1"/) as unknown,
    });
    expect(
      await createKeylessPolicy([CONFORMANCE_IDENTITY], publicGood).verifyBundle(bytes, { digest }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^keyless signature does not verify/) as unknown,
    });
  });
});
