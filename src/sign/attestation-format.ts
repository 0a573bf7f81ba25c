import type { SerializedBundle } from "@sigstore/bundle";
import type { Descriptor } from "../oci/index.js";
import { digestOf } from "../reference/index.js";
import { CosignAnnotation, CosignMediaType, type BlobContent } from "./cosign-format.js";
import { SignError } from "./errors.js";

/**
 * The promoter's own attestations (the promotion record and the VSA, src/provenance/) in the two
 * places readers look for them:
 * - a sigstore bundle referrer (bundle-format.ts, `buildBundleReferrer` with the statement's
 *   predicate type), as kpromo and cosign's `attest --new-bundle-format` store them;
 * - optionally a layer of cosign's `.att` manifest, as `cosign attest` writes it: the DSSE
 *   envelope itself as the blob (`application/vnd.dsse.envelope.v1+json`), the annotation
 *   `predicateType`, an empty signature annotation (the signature is inside the envelope) and,
 *   when keyless, the certificate, chain and Rekor entry annotations of a signature.
 * Both hold the same envelope: it is taken from the bundle the signer made.
 * https://github.com/sigstore/cosign/blob/main/specs/ATTESTATION_SPEC.md
 */

/** The payload type of in-toto statements in DSSE envelopes. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

/** The layer annotation naming an `.att` layer's predicate type, as cosign writes it. */
export const ATTESTATION_PREDICATE_ANNOTATION = "predicateType";

/** Where attestations go: bundle referrers (default), cosign's `.att` manifest, or both. */
export type AttestationLayout = "referrer" | "cosign" | "both";
export const ATTESTATION_LAYOUTS: readonly AttestationLayout[] = ["referrer", "cosign", "both"];

export function writesReferrers(layout: AttestationLayout): boolean {
  return layout !== "cosign";
}

export function writesAttLayers(layout: AttestationLayout): boolean {
  return layout !== "referrer";
}

/**
 * The DSSE envelope of a DSSE sigstore bundle, serialised as cosign's `.att` layer blob holds it
 * (payloadType, payload, signatures with keyid and sig; base64 as in the bundle).
 */
export function envelopeBytesOfBundle(bundle: SerializedBundle): Uint8Array {
  if (!bundle.dsseEnvelope)
    throw new SignError("sign-failed", "the attestation bundle holds no DSSE envelope");
  const envelope = bundle.dsseEnvelope;
  return new TextEncoder().encode(
    JSON.stringify({
      payloadType: envelope.payloadType,
      payload: envelope.payload,
      signatures: envelope.signatures.map((signature) => ({ keyid: signature.keyid, sig: signature.sig })),
    }),
  );
}

/**
 * An `.att` layer: the envelope bytes, the predicate type, cosign's empty signature annotation,
 * and `material` (keyless: certificate, chain, Rekor entry; see `cosignAnnotationsOfMaterial`).
 */
export function attestationLayer(
  envelope: Uint8Array,
  predicateType: string,
  material: Readonly<Record<string, string>> = {},
): BlobContent {
  const annotations: Record<string, string> = {
    ...material,
    [CosignAnnotation.signature]: "",
    [ATTESTATION_PREDICATE_ANNOTATION]: predicateType,
  };
  const sorted = Object.fromEntries(
    Object.keys(annotations)
      .sort()
      .map((key) => [key, annotations[key] ?? ""]),
  );
  return {
    descriptor: {
      mediaType: CosignMediaType.dsseEnvelope,
      digest: digestOf(envelope),
      size: envelope.length,
      annotations: sorted,
    },
    bytes: envelope,
  };
}

/** The predicate type an `.att` layer says it holds (before anything is verified). */
export function layerPredicateType(layer: Descriptor): string | undefined {
  return layer.mediaType === CosignMediaType.dsseEnvelope
    ? layer.annotations?.[ATTESTATION_PREDICATE_ANNOTATION]
    : undefined;
}

/** Annotations an `.att` layer of ours may carry, key-signed. */
export const KEY_ATTESTATION_ANNOTATIONS: ReadonlySet<string> = new Set([
  CosignAnnotation.signature,
  ATTESTATION_PREDICATE_ANNOTATION,
]);
/** ... key-signed and logged to Rekor, or keyless. */
export const LOGGED_ATTESTATION_ANNOTATIONS: ReadonlySet<string> = new Set([
  CosignAnnotation.signature,
  ATTESTATION_PREDICATE_ANNOTATION,
  CosignAnnotation.bundle,
]);
export const KEYLESS_ATTESTATION_ANNOTATIONS: ReadonlySet<string> = new Set([
  CosignAnnotation.signature,
  ATTESTATION_PREDICATE_ANNOTATION,
  CosignAnnotation.certificate,
  CosignAnnotation.chain,
  CosignAnnotation.bundle,
]);

/**
 * Why an `.att` layer is not shaped as one we write for `predicateType` over `envelope`, or
 * undefined when it is. A genuine envelope of ours under other annotations is not ours: cosign
 * reads the certificate and Rekor entry from them.
 */
export function ownAttestationLayerProblem(
  layer: Descriptor,
  envelope: Uint8Array,
  predicateType: string,
  allowed: ReadonlySet<string>,
): string | undefined {
  if (layer.mediaType !== CosignMediaType.dsseEnvelope) {
    return `layer media type ${layer.mediaType} is not a DSSE envelope`;
  }
  if (layer.digest !== digestOf(envelope) || layer.size !== envelope.length) {
    return "the envelope blob does not match the layer digest";
  }
  if (layer.urls !== undefined || layer.platform !== undefined || layer.artifactType !== undefined) {
    return "the layer descriptor carries urls, platform or artifactType";
  }
  if (layerPredicateType(layer) !== predicateType) return `the layer is not annotated as ${predicateType}`;
  if (layer.annotations?.[CosignAnnotation.signature] !== "") {
    return "the layer carries a signature annotation (the signature is in the envelope)";
  }
  const extra = Object.keys(layer.annotations ?? {}).filter((name) => !allowed.has(name));
  if (extra.length > 0) return `the layer carries annotations we do not write: ${extra.join(", ")}`;
  return undefined;
}
