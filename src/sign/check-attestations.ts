import { describeError, truncateForMessage } from "../errors.js";
import { isJsonObject } from "../json-shape.js";
import type { Descriptor } from "../oci/index.js";
import { attachmentTag, digestOf, type Digest } from "../reference/index.js";
import type { BlobReader, CallOptions, ManifestReader, ReferrerLister } from "../registry/index.js";
import { readSmallBlob } from "./blob-io.js";
import {
  BundleAnnotation,
  bundleLayerOf,
  bundleStatement,
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
import { dsseSigner, parseDsseEnvelope, type DsseEnvelope } from "./dsse.js";
import type { SignatureCheck, SignatureExpectation, SignatureStatus } from "./check-signatures.js";
import type { VerifiedStatement } from "./build-provenance.js";

/**
 * Whether a digest's attestations verify: the DSSE layers of its cosign `.att` manifest and its
 * attestation bundle referrers (cosign's `attest`, in either layout). One that is signed by a
 * key or keyless identity of the expectation and whose in-toto statement names the digest makes
 * the digest's attestations `valid`; any predicate type counts. `missing` when there is neither
 * an `.att` tag nor an attestation bundle; `invalid` when there is one and none verifies. The
 * source policy uses it: an attestation staging carries must be by a trusted signer, and the
 * statements that verified (`statements`) are read for staging's build provenance.
 */
export interface AttestationCheck extends SignatureCheck {
  /** Each attestation that verified: its statement, where it is and who signed it. */
  readonly statements: readonly VerifiedStatement[];
  /**
   * The attestations that did not verify, by the predicate type they claim (unverified: the
   * envelope's statement or the referrer's annotation), and why.
   */
  readonly rejected: readonly { readonly predicateType: string | undefined; readonly reason: string }[];
}

export async function checkAttestations(
  store: ManifestReader & ReferrerLister & BlobReader,
  digest: Digest,
  expectation: Omit<SignatureExpectation, "identity">,
  options: CallOptions = {},
): Promise<AttestationCheck> {
  const reasons: string[] = [];
  const signers: string[] = [];
  const statements: VerifiedStatement[] = [];
  const rejected: { predicateType: string | undefined; reason: string }[] = [];
  const verifiedIn = new Set<Digest>();
  const reject = (predicateType: string | undefined, reason: string) => {
    reasons.push(reason);
    rejected.push({ predicateType, reason });
  };
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
      if (verdict.ok) {
        signers.push(verdict.signer);
        verifiedIn.add(content.digest);
        statements.push({
          statement: verdict.envelope.payload,
          predicateType: verdict.predicateType,
          envelope: layer.digest,
          signer: verdict.signer,
        });
      } else reject(verdict.predicateType, `${tag} layer ${layer.digest}: ${verdict.reason}`);
    }
  }
  let bundles = 0;
  if (expectation.bundles !== false) {
    const referrers = (await store.referrers(digest, options)).filter(isAttestationBundleReferrer);
    bundles = referrers.length;
    for (const referrer of referrers) {
      const claimed = referrer.annotations?.[BundleAnnotation.predicateType];
      try {
        const manifest = await store.getManifest(referrer.digest, options);
        if (!manifest) {
          reject(claimed, `attestation bundle ${referrer.digest}: listed but absent`);
          continue;
        }
        const layer = bundleLayerOf(manifest, `${store.name}@${referrer.digest}`);
        const bytes = await readSmallBlob(store, layer, MAX_BUNDLE_BYTES, options);
        const byKey =
          expectation.keys.length > 0
            ? await verifySigningBundle(bytes, expectation.keys, expected, "attestation")
            : undefined;
        const keyless =
          byKey?.ok || !expectation.keyless
            ? undefined
            : await expectation.keyless.verifyBundle(bytes, expected, "attestation");
        const signer = byKey?.ok ? byKey.keyId : keyless?.ok ? keyless.signer : undefined;
        const statement = signer === undefined ? undefined : bundleStatement(bytes);
        if (signer !== undefined && statement !== undefined) {
          signers.push(signer);
          verifiedIn.add(referrer.digest);
          statements.push({
            statement,
            predicateType: predicateTypeOf(statement) ?? "",
            envelope: layer.digest,
            signer,
          });
          continue;
        }
        const why = [byKey, keyless].flatMap((entry) => (entry && !entry.ok ? [entry.reason] : []));
        reject(
          claimed,
          `attestation bundle ${referrer.digest}: ${why.join("; ") || "no key or identity to verify it"}`,
        );
      } catch (error) {
        if (options.signal?.aborted) throw error;
        reject(claimed, `attestation bundle ${referrer.digest}: ${describeError(error)}`);
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
    verifiedIn: [...verifiedIn],
    statements,
    rejected,
  };
}

/** The predicate type a statement claims, unverified (it says which attestation failed). */
function predicateTypeOf(statement: Uint8Array): string | undefined {
  try {
    const document: unknown = JSON.parse(new TextDecoder().decode(statement));
    if (isJsonObject(document) && typeof document.predicateType === "string") {
      return truncateForMessage(document.predicateType);
    }
  } catch {
    // Not JSON: no claim.
  }
  return undefined;
}

type AttestationVerdict =
  | {
      readonly ok: true;
      readonly signer: string;
      readonly envelope: DsseEnvelope;
      readonly predicateType: string;
    }
  | { readonly ok: false; readonly reason: string; readonly predicateType?: string };

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
  const claimed = predicateTypeOf(envelope.payload);
  const failed = (reason: string): AttestationVerdict => ({
    ok: false,
    reason,
    ...(claimed === undefined ? {} : { predicateType: claimed }),
  });
  if (layer.annotations?.[CosignAnnotation.certificate] !== undefined) {
    if (!expectation.keyless) return failed("signed with a certificate; no keyless identity is trusted");
    const verdict = await expectation.keyless.verifyAttestationLayer(layer, envelope, expected);
    return verdict.ok
      ? { ok: true, signer: verdict.signer, envelope, predicateType: claimed ?? "" }
      : failed(verdict.reason);
  }
  const key = dsseSigner(envelope, expectation.keys);
  if (!key) {
    return failed(
      expectation.keys.length === 0
        ? "signed with a key; no key is trusted"
        : "the envelope verifies with none of the public keys",
    );
  }
  const statement = checkSigningStatement(envelope.payload, expected, "attestation");
  return statement.ok
    ? { ok: true, signer: key.keyId, envelope, predicateType: claimed ?? "" }
    : failed(statement.reason);
}
