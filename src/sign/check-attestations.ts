import { describeError } from "../errors.js";
import type { Descriptor } from "../oci/index.js";
import { attachmentTag, digestOf, type Digest } from "../reference/index.js";
import type { BlobReader, CallOptions, ManifestReader, ReferrerLister } from "../registry/index.js";
import { readSmallBlob } from "./blob-io.js";
import {
  bundleLayerOf,
  checkSigningStatement,
  isAttestationBundleReferrer,
  MAX_BUNDLE_BYTES,
  verifySigningBundle,
} from "./bundle-format.js";
import {
  CosignAnnotation,
  CosignMediaType,
  MAX_SIGNATURE_LAYER_BYTES,
  parseLayerSet,
} from "./cosign-format.js";
import { dsseSigner, parseDsseEnvelope } from "./dsse.js";
import type { SignatureCheck, SignatureExpectation, SignatureStatus } from "./check-signatures.js";

/**
 * Whether a digest's attestations verify: the DSSE layers of its cosign `.att` manifest and its
 * attestation bundle referrers (cosign's `attest`, in either layout). One that is signed by a
 * key or keyless identity of the expectation and whose in-toto statement names the digest makes
 * the digest's attestations `valid`; any predicate type counts. `missing` when there is neither
 * an `.att` tag nor an attestation bundle; `invalid` when there is one and none verifies. The
 * source policy uses it: an attestation staging carries must be by a trusted signer.
 */
export async function checkAttestations(
  store: ManifestReader & ReferrerLister & BlobReader,
  digest: Digest,
  expectation: Omit<SignatureExpectation, "identity">,
  options: CallOptions = {},
): Promise<SignatureCheck> {
  const reasons: string[] = [];
  const signers: string[] = [];
  const tag = attachmentTag(digest, "att");
  const expected = { digest };
  const content = await store.getManifest(tag, options);
  if (content) {
    let layers: readonly Descriptor[] = [];
    try {
      layers = parseLayerSet(content, `${store.name}:${tag}`).layers;
    } catch (error) {
      reasons.push(describeError(error));
    }
    const envelopes = layers.filter((layer) => layer.mediaType === CosignMediaType.dsseEnvelope);
    if (envelopes.length === 0 && reasons.length === 0) reasons.push(`${tag} has no DSSE attestation layer`);
    for (const layer of envelopes) {
      const verdict = await verifyAttestationLayer(store, layer, expectation, expected, options);
      if (verdict.ok) signers.push(verdict.signer);
      else reasons.push(`${tag} layer ${layer.digest}: ${verdict.reason}`);
    }
  }
  let bundles = 0;
  if (expectation.bundles !== false) {
    const referrers = (await store.referrers(digest, options)).filter(isAttestationBundleReferrer);
    bundles = referrers.length;
    for (const referrer of referrers) {
      try {
        const manifest = await store.getManifest(referrer.digest, options);
        if (!manifest) {
          reasons.push(`attestation bundle ${referrer.digest}: listed but absent`);
          continue;
        }
        const layer = bundleLayerOf(manifest, `${store.name}@${referrer.digest}`);
        const bytes = await readSmallBlob(store, layer, MAX_BUNDLE_BYTES, options);
        const byKey =
          expectation.keys.length > 0
            ? await verifySigningBundle(bytes, expectation.keys, expected, "attestation")
            : undefined;
        if (byKey?.ok) {
          signers.push(byKey.keyId);
          continue;
        }
        const keyless = expectation.keyless
          ? await expectation.keyless.verifyBundle(bytes, expected, "attestation")
          : undefined;
        if (keyless?.ok) {
          signers.push(keyless.signer);
          continue;
        }
        const why = [byKey, keyless].flatMap((entry) => (entry ? [entry.reason] : []));
        reasons.push(
          `attestation bundle ${referrer.digest}: ${why.join("; ") || "no key or identity to verify it"}`,
        );
      } catch (error) {
        if (options.signal?.aborted) throw error;
        reasons.push(`attestation bundle ${referrer.digest}: ${describeError(error)}`);
      }
    }
  }
  const present = content !== undefined || bundles > 0;
  const status: SignatureStatus = signers.length > 0 ? "valid" : present ? "invalid" : "missing";
  return {
    status,
    reasons: status === "missing" ? [`no attestation (${tag} is absent)`] : status === "valid" ? [] : reasons,
    ...(content ? { manifestDigest: content.digest } : {}),
    signers,
  };
}

type AttestationVerdict =
  { readonly ok: true; readonly signer: string } | { readonly ok: false; readonly reason: string };

async function verifyAttestationLayer(
  store: BlobReader,
  layer: Descriptor,
  expectation: Omit<SignatureExpectation, "identity">,
  expected: { readonly digest: Digest },
  options: CallOptions,
): Promise<AttestationVerdict> {
  let bytes: Uint8Array;
  try {
    bytes = await readSmallBlob(store, layer, MAX_SIGNATURE_LAYER_BYTES, options);
  } catch (error) {
    if (options.signal?.aborted) throw error;
    return { ok: false, reason: `envelope unreadable (${describeError(error)})` };
  }
  if (bytes.length !== layer.size || digestOf(bytes) !== layer.digest) {
    return { ok: false, reason: "the envelope does not match the layer digest" };
  }
  const envelope = parseDsseEnvelope(bytes);
  if (typeof envelope === "string") return { ok: false, reason: envelope };
  if (layer.annotations?.[CosignAnnotation.certificate] !== undefined) {
    if (!expectation.keyless)
      return { ok: false, reason: "signed with a certificate; no keyless identity is trusted" };
    return expectation.keyless.verifyAttestationLayer(layer, envelope, expected);
  }
  const key = dsseSigner(envelope, expectation.keys);
  if (!key) {
    return {
      ok: false,
      reason:
        expectation.keys.length === 0
          ? "signed with a key; no key is trusted"
          : "the envelope verifies with none of the public keys",
    };
  }
  const statement = checkSigningStatement(envelope.payload, expected, "attestation");
  return statement.ok ? { ok: true, signer: key.keyId } : statement;
}
