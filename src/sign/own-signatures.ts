import type { Descriptor } from "../oci/index.js";
import type { Digest } from "../reference/index.js";
import { verifySigningBundle } from "./bundle-format.js";
import { CosignAnnotation, simpleSigningPayload } from "./cosign-format.js";
import type { VerificationKey } from "./keys.js";
import type { KeylessPolicy } from "./keyless-policy.js";
import { ownLayerProblem, verifySimpleSigningLayer } from "./verify-layer.js";

/**
 * Recognising the promoter's own earlier signatures among what it finds next to an image:
 * staging's `.sig` (which a staging pusher writes), the destinations' `.sig` (which earlier runs
 * filled with whatever staging carried) and bundle referrers (carried the same way). A run signs
 * unless its own signature is already there, so whatever counts as "ours" must be exactly what
 * this signer makes, fully verified; anything else is someone else's signature: kept, never
 * trusted.
 * - Key: a layer over our rebuilt payload (digest and size), with only the annotations we write,
 *   whose signature verifies with our public key; a bundle that verifies with our key.
 * - Keyless: the same layer shape, and the certificate chains to the configured trusted root,
 *   names the configured identity and issuer, the Rekor entry verifies with a trusted log key,
 *   and the signature verifies with the certificate's key (keyless-policy.ts). Without a
 *   configured identity nothing is ours (every run would sign), which the CLI does not allow.
 */

export type OwnVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface OwnSignatures {
  /** Whether a `.sig` layer is this signer's signature of `subject` as `identity`. */
  layer(layer: Descriptor, subject: Digest, identity: string): Promise<OwnVerdict>;
  /** Whether a sigstore bundle (its bytes) is this signer's signature of `subject` as `identity`. */
  bundle(bundleBytes: Uint8Array, subject: Digest, identity: string): Promise<OwnVerdict>;
}

/** Annotations a key signature of ours carries. */
const KEY_ANNOTATIONS: ReadonlySet<string> = new Set([CosignAnnotation.signature]);
/**
 * ... and when the signer also logs to Rekor. That Rekor bundle is not verified (no Rekor key is
 * configured with a signing key), so there a copy of our signature with a junk bundle would pass.
 */
const KEY_WITH_REKOR_ANNOTATIONS: ReadonlySet<string> = new Set([
  CosignAnnotation.signature,
  CosignAnnotation.bundle,
]);
const KEYLESS_ANNOTATIONS: ReadonlySet<string> = new Set([
  CosignAnnotation.signature,
  CosignAnnotation.certificate,
  CosignAnnotation.chain,
  CosignAnnotation.bundle,
]);

export function keyOwnSignatures(
  key: VerificationKey,
  options: { readonly logsToRekor: boolean },
): OwnSignatures {
  const allowed = options.logsToRekor ? KEY_WITH_REKOR_ANNOTATIONS : KEY_ANNOTATIONS;
  return {
    layer(layer, subject, identity) {
      const payload = simpleSigningPayload(identity, subject);
      const problem = ownLayerProblem(layer, payload, allowed);
      if (problem !== undefined) return Promise.resolve({ ok: false, reason: problem });
      const verdict = verifySimpleSigningLayer(layer, payload, [key], { digest: subject, identity });
      return Promise.resolve(verdict.ok ? { ok: true } : verdict);
    },
    async bundle(bundleBytes, subject, identity) {
      const verdict = await verifySigningBundle(bundleBytes, [key], { digest: subject, identity });
      return verdict.ok ? { ok: true } : verdict;
    },
  };
}

/** Keyless: what `policy` (the configured trusted root, identity and issuer) accepts. */
export function keylessOwnSignatures(policy: KeylessPolicy | undefined): OwnSignatures {
  const unconfigured: OwnVerdict = {
    ok: false,
    reason: "no trusted root and certificate identity are configured to recognise keyless signatures",
  };
  return {
    async layer(layer, subject, identity) {
      if (!policy) return unconfigured;
      const payload = simpleSigningPayload(identity, subject);
      const problem = ownLayerProblem(layer, payload, KEYLESS_ANNOTATIONS);
      if (problem !== undefined) return { ok: false, reason: problem };
      const verdict = await policy.verifyLayer(layer, payload, { digest: subject, identity });
      return verdict.ok ? { ok: true } : verdict;
    },
    async bundle(bundleBytes, subject, identity) {
      if (!policy) return unconfigured;
      const verdict = await policy.verifyBundle(bundleBytes, { digest: subject, identity });
      return verdict.ok ? { ok: true } : verdict;
    },
  };
}
