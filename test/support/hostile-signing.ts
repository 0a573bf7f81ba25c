/**
 * What a staging pusher can put next to an image to pass for the promoter's own signature, and an
 * independent judge of keyless signatures at a registry (plain HTTP and `@sigstore/verify`, not
 * the project's signature checking). For test/hostile/keyless.test.ts.
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 * https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import { Readable } from "node:stream";
import { bundleFromJSON, type SerializedBundle } from "@sigstore/bundle";
import { toSignedEntity, Verifier } from "@sigstore/verify";
import {
  parseRegistryLocation,
  parseRepositoryPath,
  repositoryIn,
  type Tag,
} from "../../src/reference/index.js";
import { createStoreProvider } from "../../src/registry/index.js";
import { trustMaterialFromTrustedRoot } from "../../src/sign/index.js";
import {
  allBlobs,
  allManifests,
  EMPTY_JSON_BLOB,
  makeLayerSetImage,
  sha256Digest,
  TestMediaType,
  type LayerSetLayer,
  type TestContent,
  type TestImage,
} from "./test-images.js";

export const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";
const Annotation = {
  signature: "dev.cosignproject.cosign/signature",
  certificate: "dev.sigstore.cosign/certificate",
  chain: "dev.sigstore.cosign/chain",
  bundle: "dev.sigstore.cosign/bundle",
} as const;

/** The simple-signing payload cosign (and the promoter) signs for `identity` and `digest`. */
export function cosignPayload(identity: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": identity },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
}

/** A certificate-shaped PEM block that is no certificate. */
const JUNK_CERTIFICATE = `-----BEGIN CERTIFICATE-----\n${Buffer.from("not a certificate, just bytes").toString("base64")}\n-----END CERTIFICATE-----\n`;

/** A layer over our exact payload with a junk signature and a junk certificate (finding 2). */
export function junkKeylessLayer(identity: string, digest: string): LayerSetLayer {
  return {
    mediaType: SIMPLE_SIGNING,
    bytes: cosignPayload(identity, digest),
    annotations: {
      [Annotation.signature]: Buffer.from("junk signature").toString("base64"),
      [Annotation.certificate]: JUNK_CERTIFICATE,
    },
  };
}

/** A layer over our exact payload with the annotations a (real, but someone else's) keyless signer made. */
export function keylessLayerWith(
  identity: string,
  digest: string,
  annotations: Record<string, string>,
): LayerSetLayer {
  return { mediaType: SIMPLE_SIGNING, bytes: cosignPayload(identity, digest), annotations };
}

/** A `.sig` manifest of these layers. */
export function signatureManifest(layers: readonly LayerSetLayer[]): TestImage {
  return makeLayerSetImage(layers, '{"architecture":"","os":"","config":{}}');
}

/** The in-toto statement the bundle layout signs (cosign's signing predicate). */
export function signingStatementBytes(identity: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: identity, digest: { sha256: digest.slice("sha256:".length) } }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  );
}

/** A sigstore bundle stored as an OCI referrer of `subject`, as cosign's new bundle format does. */
export function bundleReferrer(
  bundle: SerializedBundle | Record<string, unknown>,
  subject: { mediaType: string; digest: string; size: number },
  predicateType = COSIGN_SIGN_PREDICATE,
): TestImage {
  const bytes = Buffer.from(JSON.stringify(bundle));
  const layer = {
    descriptor: { mediaType: BUNDLE_MEDIA_TYPE, digest: sha256Digest(bytes), size: bytes.length },
    bytes,
  };
  const mediaType = TestMediaType.ociManifest;
  const annotations = {
    "dev.sigstore.bundle.content": "dsse-envelope",
    "dev.sigstore.bundle.predicateType": predicateType,
    "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
  };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      artifactType: BUNDLE_MEDIA_TYPE,
      config: EMPTY_JSON_BLOB.descriptor,
      layers: [layer.descriptor],
      subject,
      annotations,
    }),
  );
  const digest = sha256Digest(manifest);
  return {
    kind: "image",
    mediaType,
    bytes: manifest,
    digest,
    descriptor: { mediaType, digest, size: manifest.length, artifactType: BUNDLE_MEDIA_TYPE, annotations },
    config: EMPTY_JSON_BLOB,
    layers: [layer],
    platform: { architecture: "unknown", os: "unknown" },
  };
}

/** Pushes content (and a tag) to a registry with the project's client: seeding only. */
export async function pushToRegistry(
  host: string,
  repository: string,
  entries: readonly { content: TestContent; tag?: string }[],
  home: string,
): Promise<void> {
  const provider = createStoreProvider({ homeDirectory: home, env: {} });
  const store = provider.repository(
    repositoryIn(parseRegistryLocation(host), parseRepositoryPath(repository)),
  );
  try {
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
  } finally {
    await provider.close();
  }
}

async function fetchJson<T>(url: string, accept?: string): Promise<T | undefined> {
  const response = await fetch(url, accept ? { headers: { accept } } : {});
  if (response.status === 404) {
    await response.arrayBuffer();
    return undefined;
  }
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

async function fetchBytes(url: string): Promise<Buffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

export interface KeylessExpectation {
  /** A sigstore trusted_root.json document. */
  readonly trustedRoot: unknown;
  readonly subject: string;
  readonly issuer: string;
}

const MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/**
 * The bundle referrers of `digest` at a registry (the tag-schema index `sha256-<hex>`: the test
 * registries have no referrers API) whose bundle verifies with `@sigstore/verify` against the
 * trusted root, for the expected certificate identity and issuer, and whose statement names
 * `digest` and `identity`.
 */
export async function verifiedKeylessBundles(
  registryUrl: string,
  repository: string,
  digest: string,
  identity: string,
  expected: KeylessExpectation,
): Promise<string[]> {
  const base = `${registryUrl}/v2/${repository}`;
  const index = await fetchJson<{ manifests?: { digest: string; artifactType?: string }[] }>(
    `${base}/manifests/${digest.replace(":", "-")}`,
    MANIFEST_ACCEPT,
  );
  const trust = await trustMaterialFromTrustedRoot(expected.trustedRoot, "judge trusted root");
  const verifier = new Verifier(trust, { ctlogThreshold: 0, tlogThreshold: 1, timestampThreshold: 1 });
  const verified: string[] = [];
  for (const entry of index?.manifests ?? []) {
    if (entry.artifactType !== BUNDLE_MEDIA_TYPE) continue;
    const manifest = await fetchJson<{ layers?: { mediaType: string; digest: string }[] }>(
      `${base}/manifests/${entry.digest}`,
      MANIFEST_ACCEPT,
    );
    const layer = manifest?.layers?.find((candidate) => candidate.mediaType === BUNDLE_MEDIA_TYPE);
    if (!layer) continue;
    const bytes = await fetchBytes(`${base}/blobs/${layer.digest}`);
    if (`sha256:${createHash("sha256").update(bytes).digest("hex")}` !== layer.digest) continue;
    try {
      const bundle = bundleFromJSON(JSON.parse(bytes.toString("utf8")));
      verifier.verify(toSignedEntity(bundle), {
        subjectAlternativeName: expected.subject,
        extensions: { issuer: expected.issuer },
      });
      if (bundle.content.$case !== "dsseEnvelope") continue;
      const statement = JSON.parse(bundle.content.dsseEnvelope.payload.toString("utf8")) as {
        predicateType?: string;
        subject?: { name?: string; digest?: { sha256?: string } }[];
      };
      const named = statement.subject?.some(
        (subject) => subject.name === identity && `sha256:${subject.digest?.sha256}` === digest,
      );
      if (statement.predicateType === COSIGN_SIGN_PREDICATE && named) verified.push(entry.digest);
    } catch {
      // Not a valid signature by the expected identity: does not count.
    }
  }
  return verified;
}

// --- Key-signed signatures and attestations, as `cosign sign --key` and `cosign attest --key` make them.

export const DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json";
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const SLSA_PROVENANCE = "https://slsa.dev/provenance/v1";

/** cosign's key id: sha256 of the DER public key (the bundle's `publicKey.hint`). */
export function keyHint(publicKey: KeyObject): string {
  return `sha256:${createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")}`;
}

/** A `.sig` layer: `payload` signed (ECDSA-SHA256, DER, base64 in the annotation) with `key`. */
export function keySignedLayer(privateKey: KeyObject, payload: Buffer): LayerSetLayer {
  return {
    mediaType: SIMPLE_SIGNING,
    bytes: payload,
    annotations: { [Annotation.signature]: sign("sha256", payload, privateKey).toString("base64") },
  };
}

/** The builder of {@link attestationStatement}'s provenance. */
export const TEST_BUILDER_ID = "https://example.com/builder";

/**
 * An in-toto statement about `digest`: by default a SLSA v1 provenance by
 * {@link TEST_BUILDER_ID}, or `predicate` under `predicateType`.
 */
export function attestationStatement(
  digest: string,
  predicateType = SLSA_PROVENANCE,
  predicate: Record<string, unknown> = {
    buildDefinition: { buildType: "https://example.com/build" },
    runDetails: { builder: { id: TEST_BUILDER_ID } },
  },
): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: "staging/app", digest: { sha256: digest.slice("sha256:".length) } }],
      predicateType,
      predicate,
    }),
  );
}

function preAuthenticationEncoding(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `),
    payload,
  ]);
}

/** A DSSE envelope over `statement` signed with `key` (DSSE's PAE, ECDSA-SHA256). */
export function dsseEnvelope(
  privateKey: KeyObject,
  statement: Buffer,
): { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] } {
  const sig = sign("sha256", preAuthenticationEncoding(IN_TOTO_PAYLOAD_TYPE, statement), privateKey);
  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: statement.toString("base64"),
    signatures: [{ keyid: "", sig: sig.toString("base64") }],
  };
}

/** An `.att` layer as `cosign attest --key` writes it: the envelope, an empty signature annotation. */
export function keySignedAttestationLayer(privateKey: KeyObject, statement: Buffer): LayerSetLayer {
  return {
    mediaType: DSSE_ENVELOPE,
    bytes: Buffer.from(JSON.stringify(dsseEnvelope(privateKey, statement))),
    annotations: { [Annotation.signature]: "", predicateType: "https://slsa.dev/provenance/v1" },
  };
}

/** A key-signed sigstore bundle v0.3 over `statement` (cosign `--new-bundle-format` with a key). */
export function keySignedBundle(
  privateKey: KeyObject,
  publicKey: KeyObject,
  statement: Buffer,
): Record<string, unknown> {
  return {
    mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    verificationMaterial: {
      publicKey: { hint: keyHint(publicKey) },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: dsseEnvelope(privateKey, statement),
  };
}

/**
 * A keyless `.att` layer as `cosign attest` writes it, from a sigstore bundle a keyless signer
 * made over an attestation statement: the DSSE envelope as the blob, the certificate, chain and
 * Rekor entry (with its inclusion promise) in cosign's annotations.
 */
export function keylessAttestationLayer(bundle: SerializedBundle): LayerSetLayer {
  const serialized = bundle as unknown as {
    dsseEnvelope?: unknown;
    verificationMaterial?: {
      certificate?: { rawBytes: string };
      x509CertificateChain?: { certificates: { rawBytes: string }[] };
      tlogEntries?: {
        logIndex: string;
        logId: { keyId: string };
        integratedTime: string;
        inclusionPromise?: { signedEntryTimestamp: string };
        canonicalizedBody: string;
      }[];
    };
  };
  const material = serialized.verificationMaterial;
  const certificates = material?.certificate
    ? [material.certificate]
    : (material?.x509CertificateChain?.certificates ?? []);
  const pem = (rawBytes: string) =>
    `-----BEGIN CERTIFICATE-----\n${(rawBytes.match(/.{1,64}/g) ?? []).join("\n")}\n-----END CERTIFICATE-----\n`;
  const entry = material?.tlogEntries?.[0];
  const [leaf, ...chain] = certificates;
  return {
    mediaType: DSSE_ENVELOPE,
    bytes: Buffer.from(JSON.stringify(serialized.dsseEnvelope)),
    annotations: {
      [Annotation.signature]: "",
      ...(leaf ? { [Annotation.certificate]: pem(leaf.rawBytes) } : {}),
      ...(chain.length > 0 ? { [Annotation.chain]: chain.map((cert) => pem(cert.rawBytes)).join("") } : {}),
      ...(entry
        ? {
            [Annotation.bundle]: JSON.stringify({
              SignedEntryTimestamp: entry.inclusionPromise?.signedEntryTimestamp,
              Payload: {
                body: entry.canonicalizedBody,
                integratedTime: Number(entry.integratedTime),
                logIndex: Number(entry.logIndex),
                logID: Buffer.from(entry.logId.keyId, "base64").toString("hex"),
              },
            }),
          }
        : {}),
    },
  };
}
