import { createPublicKey } from "node:crypto";
import type { SerializedBundle } from "@sigstore/bundle";
import type { TrustMaterial } from "@sigstore/verify";
import { describeError } from "../errors.js";
import { isJsonObject } from "../json-shape.js";
import { MediaType, parseManifest, type Descriptor } from "../oci/index.js";
import { digestAlgorithm, digestHex, digestOf, type Digest } from "../reference/index.js";
import type { ManifestContent } from "../registry/index.js";
import type { BlobContent, ClaimsExpectation } from "./cosign-format.js";
import { SignError } from "./errors.js";
import type { VerificationKey } from "./keys.js";

/**
 * The newer layout: a sigstore bundle attached to the image as an OCI referrer, as cosign's
 * `--new-bundle-format` writes it.
 * https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md
 *
 * The bundle holds a DSSE envelope over an in-toto statement whose subject is the image digest
 * and whose predicate type is cosign's signing predicate. The referrer manifest has
 * `artifactType` = the bundle media type, the empty config, one layer (the bundle) and
 * `subject` = the image. We also name the signed identity in the statement subject's `name`.
 */

export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";
export const IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const BundleAnnotation = {
  content: "dev.sigstore.bundle.content",
  predicateType: "dev.sigstore.bundle.predicateType",
  created: "org.opencontainers.image.created",
} as const;

/** The empty JSON blob `{}` of the empty descriptor. */
const EMPTY_CONFIG_BYTES = new TextEncoder().encode("{}");
export const EMPTY_CONFIG: BlobContent = {
  descriptor: { mediaType: MediaType.ociEmpty, digest: digestOf(EMPTY_CONFIG_BYTES), size: 2 },
  bytes: EMPTY_CONFIG_BYTES,
};

/** A bundle larger than this is not one of ours (they are a few KiB). */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/**
 * Candidates of one kind (bundle referrers, or `.att` layers, of one predicate type) read per
 * subject when looking for ours. The referrers list and the `.att` manifest are the registry's
 * answer: a compromised mirror can name thousands of lookalikes, each costing GETs, while ours is
 * one per identity. The planner, `verify` (signatures and `--attestations`) and `explain` share
 * this bound.
 */
export const MAX_BUNDLE_CANDIDATES = 16;

/**
 * The first `MAX_BUNDLE_CANDIDATES` of `listed` (the registry's order), and a reason naming
 * what was left unread when the list is longer, so that a flood of lookalikes shows in the
 * result instead of costing a GET each.
 */
export function boundedCandidates<T>(
  listed: readonly T[],
  what: string,
): { readonly read: readonly T[]; readonly cut?: string } {
  if (listed.length <= MAX_BUNDLE_CANDIDATES) return { read: listed };
  return {
    read: listed.slice(0, MAX_BUNDLE_CANDIDATES),
    cut: `${what} names ${listed.length}; read the first ${MAX_BUNDLE_CANDIDATES}, the other ${listed.length - MAX_BUNDLE_CANDIDATES} unread`,
  };
}

/** The statement the bundle layout signs for `subject` as `identity`. */
export function signingStatement(subject: Digest, identity: string): Uint8Array {
  const statement = {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: identity, digest: { [digestAlgorithm(subject)]: digestHex(subject) } }],
    predicateType: COSIGN_SIGN_PREDICATE,
    predicate: {},
  };
  return new TextEncoder().encode(JSON.stringify(statement));
}

export interface BuiltBundleReferrer {
  readonly manifest: ManifestContent;
  readonly blobs: readonly BlobContent[];
}

/**
 * The referrer manifest for a bundle. `created` is an RFC 3339 time: the manifest is built once
 * and the same bytes go to every destination. `predicateType` is the signed statement's (cosign's
 * signing predicate for a signature; an attestation's own type), annotated as cosign does so
 * readers can pick referrers from the referrers list without fetching them.
 */
export function buildBundleReferrer(
  bundle: Uint8Array,
  subject: Descriptor,
  created: string,
  predicateType: string = COSIGN_SIGN_PREDICATE,
): BuiltBundleReferrer {
  const layer: BlobContent = {
    descriptor: { mediaType: BUNDLE_MEDIA_TYPE, digest: digestOf(bundle), size: bundle.length },
    bytes: bundle,
  };
  const document = {
    schemaVersion: 2,
    mediaType: MediaType.ociImageManifest,
    artifactType: BUNDLE_MEDIA_TYPE,
    config: {
      mediaType: EMPTY_CONFIG.descriptor.mediaType,
      size: EMPTY_CONFIG.descriptor.size,
      digest: EMPTY_CONFIG.descriptor.digest,
    },
    layers: [
      { mediaType: layer.descriptor.mediaType, size: layer.descriptor.size, digest: layer.descriptor.digest },
    ],
    subject: { mediaType: subject.mediaType, size: subject.size, digest: subject.digest },
    annotations: {
      [BundleAnnotation.content]: "dsse-envelope",
      [BundleAnnotation.predicateType]: predicateType,
      [BundleAnnotation.created]: created,
    },
  };
  const bytes = new TextEncoder().encode(JSON.stringify(document));
  return {
    manifest: { digest: digestOf(bytes), mediaType: MediaType.ociImageManifest, bytes },
    blobs: [EMPTY_CONFIG, layer],
  };
}

/**
 * Whether a referrers-list entry is a sigstore bundle of an attestation (cosign's
 * `attest --new-bundle-format`): a bundle whose predicate type is not cosign's signing predicate.
 */
export function isAttestationBundleReferrer(descriptor: Descriptor): boolean {
  return descriptor.artifactType === BUNDLE_MEDIA_TYPE && !isSigningBundleReferrer(descriptor);
}

/** Whether a referrers-list entry looks like a cosign signing bundle. */
export function isSigningBundleReferrer(descriptor: Descriptor): boolean {
  return (
    descriptor.artifactType === BUNDLE_MEDIA_TYPE &&
    (descriptor.annotations?.[BundleAnnotation.predicateType] ?? COSIGN_SIGN_PREDICATE) ===
      COSIGN_SIGN_PREDICATE
  );
}

/** The bundle layer of a referrer manifest. */
export function bundleLayerOf(content: ManifestContent, where: string): Descriptor {
  const parsed = parseManifest(content.bytes, content.mediaType, where);
  if (parsed.kind !== "manifest" || parsed.artifactType !== BUNDLE_MEDIA_TYPE) {
    throw new SignError("sign-format", `${where}: not a sigstore bundle referrer`);
  }
  const layer = parsed.layers.find((candidate) => candidate.mediaType === BUNDLE_MEDIA_TYPE);
  if (!layer) throw new SignError("sign-format", `${where}: no bundle layer`);
  if (layer.size > MAX_BUNDLE_BYTES)
    throw new SignError("sign-format", `${where}: bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
  return layer;
}

export type BundleVerdict =
  | { readonly ok: true; readonly keyId: string; readonly identity: string | undefined }
  | { readonly ok: false; readonly reason: string };

/** Trust material holding only public keys (no CA, no log): for key-signed bundles. */
export function publicKeyTrustMaterial(keys: readonly VerificationKey[]): TrustMaterial {
  return {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: (hint: string) => {
      const key = keys.find((candidate) => candidate.keyId === hint);
      if (!key) throw new SignError("sign-failed", `no public key with id ${hint}`);
      return { publicKey: createPublicKey(key.publicKeyPem), validFor: () => true };
    },
  };
}

/**
 * Verifies a key-signed bundle with `@sigstore/verify` (signature over the DSSE envelope with the
 * key its hint names), then checks the statement: cosign's signing predicate, the subject digest
 * and, when given, the identity. sigstore-js is loaded on the first call (see signer.ts).
 */
export async function verifySigningBundle(
  bundleBytes: Uint8Array,
  keys: readonly VerificationKey[],
  expectation: ClaimsExpectation,
  kind: StatementKind = "signing",
): Promise<BundleVerdict> {
  let serialized: SerializedBundle;
  try {
    serialized = JSON.parse(new TextDecoder().decode(bundleBytes)) as SerializedBundle;
  } catch {
    return { ok: false, reason: "the bundle is not JSON" };
  }
  const [{ bundleFromJSON }, { toSignedEntity, Verifier }] = await Promise.all([
    import("@sigstore/bundle"),
    import("@sigstore/verify"),
  ]);
  let keyId: string;
  let payload: Buffer;
  try {
    const bundle = bundleFromJSON(serialized);
    if (bundle.content.$case !== "dsseEnvelope")
      return { ok: false, reason: "the bundle holds no DSSE envelope" };
    if (bundle.verificationMaterial.content.$case !== "publicKey") {
      return { ok: false, reason: "the bundle is not signed with a public key" };
    }
    keyId = bundle.verificationMaterial.content.publicKey.hint;
    if (!keys.some((key) => key.keyId === keyId)) return { ok: false, reason: "signed with another key" };
    const verifier = new Verifier(publicKeyTrustMaterial(keys), {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      timestampThreshold: 0,
    });
    verifier.verify(toSignedEntity(bundle));
    payload = bundle.content.dsseEnvelope.payload;
  } catch (error) {
    return { ok: false, reason: `the bundle does not verify: ${describeError(error)}` };
  }
  const verdict = checkSigningStatement(payload, expectation, kind);
  return verdict.ok ? { ok: true, keyId, identity: verdict.identity } : verdict;
}

/**
 * The in-toto statement a bundle's DSSE envelope carries (base64-decoded), read after the bundle
 * verified: the same bytes parse to the same envelope. Undefined when there is none.
 */
export function bundleStatement(bundleBytes: Uint8Array): Buffer | undefined {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder().decode(bundleBytes));
  } catch {
    return undefined;
  }
  const envelope = isJsonObject(document) ? document.dsseEnvelope : undefined;
  const payload = isJsonObject(envelope) ? envelope.payload : undefined;
  return typeof payload === "string" ? Buffer.from(payload, "base64") : undefined;
}

export type StatementVerdict =
  | { readonly ok: true; readonly identity: string | undefined }
  | { readonly ok: false; readonly reason: string };

/**
 * What a verified DSSE statement must be: cosign's signing statement (`signing`), or any in-toto
 * attestation (`attestation`: any predicate type) about the digest.
 */
export type StatementKind = "signing" | "attestation";

/**
 * Checks a verified bundle's in-toto statement: cosign's signing predicate (for `signing`), a
 * subject with the expected digest and, when given, the expected identity as its name.
 */
export function checkSigningStatement(
  payload: Buffer,
  expectation: ClaimsExpectation,
  kind: StatementKind = "signing",
): StatementVerdict {
  let statement: unknown;
  try {
    statement = JSON.parse(payload.toString("utf8"));
  } catch {
    return { ok: false, reason: "the statement is not JSON" };
  }
  if (!isJsonObject(statement)) return { ok: false, reason: "the statement is not a JSON object" };
  if (kind === "signing" && statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    return {
      ok: false,
      reason: `predicate type ${JSON.stringify(statement.predicateType)} is not ${COSIGN_SIGN_PREDICATE}`,
    };
  }
  if (kind === "attestation" && typeof statement.predicateType !== "string") {
    return { ok: false, reason: "the statement has no predicate type" };
  }
  const subjects = Array.isArray(statement.subject) ? statement.subject.filter(isJsonObject) : [];
  const algorithm = digestAlgorithm(expectation.digest);
  const match = subjects.find(
    (subject) => isJsonObject(subject.digest) && subject.digest[algorithm] === digestHex(expectation.digest),
  );
  if (!match) return { ok: false, reason: `the statement does not name ${expectation.digest}` };
  const identity = typeof match.name === "string" ? match.name : undefined;
  if (expectation.identity !== undefined && identity !== expectation.identity) {
    return {
      ok: false,
      reason: `the statement names ${JSON.stringify(identity)}, not ${JSON.stringify(expectation.identity)}`,
    };
  }
  return { ok: true, identity };
}
