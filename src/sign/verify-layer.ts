import { verify as cryptoVerify } from "node:crypto";
import type { Descriptor } from "../oci/index.js";
import { digestOf, type Digest } from "../reference/index.js";
import {
  CosignAnnotation,
  CosignMediaType,
  parseSimpleSigningPayload,
  simpleSigningPayload,
} from "./cosign-format.js";
import type { VerificationKey } from "./keys.js";

/**
 * Checking one simple-signing layer of a `.sig` manifest against public keys: the payload
 * bytes hash to the layer digest, the ECDSA-SHA256 signature in the layer annotation verifies
 * over them with one of the keys, and the payload names the expected digest (and identity).
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md#signature
 * Pure: the payload bytes are given.
 */

export type LayerVerdict =
  | { readonly ok: true; readonly keyId: string; readonly identity: string }
  | { readonly ok: false; readonly reason: string };

export interface LayerExpectation {
  readonly digest: Digest;
  /** The docker-reference the payload must carry; any when absent. */
  readonly identity?: string;
}

function decodeSignature(layer: Descriptor): Buffer | undefined {
  const text = layer.annotations?.[CosignAnnotation.signature];
  if (text === undefined || text.length === 0) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, "base64");
}

export function verifySimpleSigningLayer(
  layer: Descriptor,
  payload: Uint8Array,
  keys: readonly VerificationKey[],
  expectation: LayerExpectation,
): LayerVerdict {
  if (layer.mediaType !== CosignMediaType.simpleSigning) {
    return { ok: false, reason: `layer media type ${layer.mediaType} is not a simple-signing payload` };
  }
  if (payload.length !== layer.size || digestOf(payload) !== layer.digest) {
    return { ok: false, reason: `the payload blob does not match the layer digest ${layer.digest}` };
  }
  const signature = decodeSignature(layer);
  if (!signature) return { ok: false, reason: "the layer has no base64 signature annotation" };
  const key = keys.find((candidate) => verifiesWith(payload, signature, candidate));
  if (!key) {
    return {
      ok: false,
      reason:
        keys.length === 1
          ? "the signature does not verify with the public key"
          : "the signature verifies with none of the public keys",
    };
  }
  const parsed = parseSimpleSigningPayload(payload);
  if (!parsed.ok) return { ok: false, reason: parsed.reason };
  if (parsed.claims.manifestDigest !== expectation.digest) {
    return {
      ok: false,
      reason: `the payload signs ${parsed.claims.manifestDigest}, not ${expectation.digest}`,
    };
  }
  if (expectation.identity !== undefined && parsed.claims.dockerReference !== expectation.identity) {
    return {
      ok: false,
      reason: `the payload names ${JSON.stringify(parsed.claims.dockerReference)}, not ${JSON.stringify(expectation.identity)}`,
    };
  }
  return { ok: true, keyId: key.keyId, identity: parsed.claims.dockerReference };
}

function verifiesWith(payload: Uint8Array, signature: Buffer, key: VerificationKey): boolean {
  try {
    return cryptoVerify("sha256", payload, key.publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * Whether `layers` hold our signature of `digest` as `identity`, without fetching payloads:
 * our payload is deterministic, so it is rebuilt, matched by digest and checked against the key.
 * (The registry's content addressing ties the layer digest to the stored payload.)
 */
export function hasOwnSignature(
  layers: readonly Descriptor[],
  digest: Digest,
  identity: string,
  key: VerificationKey,
): boolean {
  const payload = simpleSigningPayload(identity, digest);
  const payloadDigest = digestOf(payload);
  return layers.some((layer) => {
    if (layer.mediaType !== CosignMediaType.simpleSigning || layer.digest !== payloadDigest) return false;
    const signature = decodeSignature(layer);
    return signature !== undefined && verifiesWith(payload, signature, key);
  });
}

/**
 * Keyless signatures use a fresh key each time, so "ours" is recognised by the payload alone: a
 * layer over our exact payload that carries a certificate. The certificate chain is not checked
 * here (that needs the Fulcio root); `promoter verify` with a policy does.
 */
export function hasKeylessSignatureOf(
  layers: readonly Descriptor[],
  digest: Digest,
  identity: string,
): boolean {
  const payloadDigest = digestOf(simpleSigningPayload(identity, digest));
  return layers.some(
    (layer) =>
      layer.mediaType === CosignMediaType.simpleSigning &&
      layer.digest === payloadDigest &&
      layer.annotations?.[CosignAnnotation.certificate] !== undefined,
  );
}
