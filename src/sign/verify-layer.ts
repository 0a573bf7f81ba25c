import { verify as cryptoVerify } from "node:crypto";
import type { Descriptor } from "../oci/index.js";
import { digestOf } from "../reference/index.js";
import {
  checkSimpleSigningClaims,
  CosignAnnotation,
  CosignMediaType,
  type ClaimsExpectation,
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
  expectation: ClaimsExpectation,
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
  const checked = checkSimpleSigningClaims(payload, expectation);
  if (!checked.ok) return checked;
  return { ok: true, keyId: key.keyId, identity: checked.claims.dockerReference };
}

function verifiesWith(payload: Uint8Array, signature: Buffer, key: VerificationKey): boolean {
  try {
    return cryptoVerify("sha256", payload, key.publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * Why `layer` is not exactly a layer we write over `payload` (our rebuilt simple-signing
 * payload), or undefined when it is: the simple-signing media type, the payload's digest and
 * size, no `urls`, `platform` or `artifactType`, and no annotation beyond `allowed`. The payload
 * is rebuilt, never read, so content addressing ties the layer to these bytes; the signature is
 * checked by the caller. A layer that also says something else (a junk Rekor bundle, a timestamp,
 * a wrong size) is someone else's layer, whatever its signature: verifiers that read those
 * annotations reject it.
 */
export function ownLayerProblem(
  layer: Descriptor,
  payload: Uint8Array,
  allowed: ReadonlySet<string>,
): string | undefined {
  if (layer.mediaType !== CosignMediaType.simpleSigning) {
    return `layer media type ${layer.mediaType} is not a simple-signing payload`;
  }
  if (layer.digest !== digestOf(payload) || layer.size !== payload.length) {
    return "the layer is not over our payload (digest or size differ)";
  }
  if (layer.urls !== undefined || layer.platform !== undefined || layer.artifactType !== undefined) {
    return "the layer descriptor carries urls, platform or artifactType";
  }
  const extra = Object.keys(layer.annotations ?? {}).filter((name) => !allowed.has(name));
  if (extra.length > 0) return `the layer carries annotations we do not write: ${extra.join(", ")}`;
  return undefined;
}
