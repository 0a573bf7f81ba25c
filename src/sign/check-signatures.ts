import { describeError } from "../errors.js";
import type { Descriptor } from "../oci/index.js";
import { signatureTag, type Digest } from "../reference/index.js";
import type { BlobReader, CallOptions, ManifestReader, ReferrerLister } from "../registry/index.js";
import { readSmallBlob } from "./blob-io.js";
import {
  boundedCandidates,
  bundleLayerOf,
  isSigningBundleReferrer,
  MAX_BUNDLE_BYTES,
  verifySigningBundle,
} from "./bundle-format.js";
import {
  CosignAnnotation,
  CosignMediaType,
  MAX_SIGNATURE_LAYER_BYTES,
  parseLayerSet,
} from "./cosign-format.js";
import type { VerificationKey } from "./keys.js";
import type { KeylessPolicy } from "./keyless-policy.js";
import { verifySimpleSigningLayer } from "./verify-layer.js";

/**
 * Whether a digest in one repository carries a valid signature: any layer of its `.sig`
 * manifest (payload fetched and hashed, ECDSA-SHA256 checked with one of the keys, or a keyless
 * certificate accepted by the policy), or a sigstore bundle referrer (verified with one of the
 * keys, or a certificate the policy accepts), that names the digest (and the identity, when one
 * is expected). Used by the source policy and by `promoter verify`.
 */

export interface SignatureExpectation {
  readonly keys: readonly VerificationKey[];
  /** Keyless signers accepted (certificate identity and issuer). */
  readonly keyless?: KeylessPolicy;
  /** The docker-reference the payload must name; any when absent. */
  readonly identity?: string;
  /** Also accept sigstore bundle referrers (default true). */
  readonly bundles?: boolean;
}

export type SignatureStatus = "valid" | "missing" | "invalid";

export interface SignatureCheck {
  readonly status: SignatureStatus;
  /** For `missing` and `invalid`: what was found and why it does not count. */
  readonly reasons: readonly string[];
  /** The `.sig` manifest digest, when there is one. */
  readonly manifestDigest?: Digest;
  /** Who signed, for valid signatures: key ids, or keyless subjects. */
  readonly signers: readonly string[];
  /**
   * The manifests that hold a signature that verified: the `.sig` (or `.att`) manifest, bundle
   * referrers. What a verification summary lists as the inputs it checked.
   */
  readonly verifiedIn: readonly Digest[];
}

export async function checkSignatures(
  store: ManifestReader & ReferrerLister & BlobReader,
  digest: Digest,
  expectation: SignatureExpectation,
  options: CallOptions = {},
): Promise<SignatureCheck> {
  const reasons: string[] = [];
  const signers: string[] = [];
  const verifiedIn = new Set<Digest>();
  const tag = signatureTag(digest);
  const expected = {
    digest,
    ...(expectation.identity === undefined ? {} : { identity: expectation.identity }),
  };
  const content = await store.getManifest(tag, options);
  let manifestDigest: Digest | undefined;
  if (content) {
    manifestDigest = content.digest;
    let layers: readonly Descriptor[];
    try {
      layers = parseLayerSet(content, `${store.name}:${tag}`).layers;
    } catch (error) {
      layers = [];
      reasons.push(describeError(error));
    }
    for (const layer of layers) {
      if (layer.mediaType !== CosignMediaType.simpleSigning) continue;
      let payload: Uint8Array;
      try {
        payload = await readSmallBlob(store, layer, MAX_SIGNATURE_LAYER_BYTES, options);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        reasons.push(`layer ${layer.digest}: payload unreadable (${describeError(error)})`);
        continue;
      }
      if (layer.annotations?.[CosignAnnotation.certificate] !== undefined && expectation.keyless) {
        const verdict = await expectation.keyless.verifyLayer(layer, payload, expected);
        if (verdict.ok) {
          signers.push(verdict.signer);
          verifiedIn.add(content.digest);
        } else reasons.push(`layer ${layer.digest}: ${verdict.reason}`);
        continue;
      }
      const verdict = verifySimpleSigningLayer(layer, payload, expectation.keys, expected);
      if (verdict.ok) {
        signers.push(verdict.keyId);
        verifiedIn.add(content.digest);
      } else reasons.push(`layer ${layer.digest}: ${verdict.reason}`);
    }
    const signing = layers.filter((layer) => layer.mediaType === CosignMediaType.simpleSigning);
    if (signing.length === 0 && reasons.length === 0) reasons.push(`${tag} has no signature layer`);
  }
  const keyless = expectation.keyless;
  if (
    signers.length === 0 &&
    expectation.bundles !== false &&
    (expectation.keys.length > 0 || keyless !== undefined)
  ) {
    // The referrers list is the registry's answer: a flood of lookalikes costs no more than
    // MAX_BUNDLE_CANDIDATES reads, and the reasons say the list was cut.
    const referrers = boundedCandidates(
      (await store.referrers(digest, options)).filter(isSigningBundleReferrer),
      "the referrers list of signing bundles",
    );
    if (referrers.cut !== undefined) reasons.push(referrers.cut);
    for (const referrer of referrers.read) {
      try {
        const manifest = await store.getManifest(referrer.digest, options);
        if (!manifest) continue;
        const layer = bundleLayerOf(manifest, `${store.name}@${referrer.digest}`);
        const bytes = await readSmallBlob(store, layer, MAX_BUNDLE_BYTES, options);
        const verdict =
          expectation.keys.length > 0
            ? await verifySigningBundle(bytes, expectation.keys, expected)
            : undefined;
        if (verdict?.ok) {
          signers.push(verdict.keyId);
          verifiedIn.add(referrer.digest);
          continue;
        }
        // A certificate-signed bundle: the keyless identities of the policy.
        const keylessVerdict = keyless ? await keyless.verifyBundle(bytes, expected) : undefined;
        if (keylessVerdict?.ok) {
          signers.push(keylessVerdict.signer);
          verifiedIn.add(referrer.digest);
          continue;
        }
        const why = [verdict, keylessVerdict].flatMap((entry) => (entry ? [entry.reason] : []));
        reasons.push(`bundle ${referrer.digest}: ${why.join("; ")}`);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        reasons.push(`bundle ${referrer.digest}: ${describeError(error)}`);
      }
    }
  }
  const status: SignatureStatus =
    signers.length > 0 ? "valid" : content || reasons.length > 0 ? "invalid" : "missing";
  return {
    status,
    reasons: status === "missing" ? [`no signature (${tag} is absent)`] : status === "valid" ? [] : reasons,
    ...(manifestDigest === undefined ? {} : { manifestDigest }),
    signers,
    verifiedIn: [...verifiedIn],
  };
}
