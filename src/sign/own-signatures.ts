import type { Descriptor } from "../oci/index.js";
import { parseStatement } from "../provenance/index.js";
import type { Digest } from "../reference/index.js";
import {
  IN_TOTO_PAYLOAD_TYPE,
  KEY_ATTESTATION_ANNOTATIONS,
  KEYLESS_ATTESTATION_ANNOTATIONS,
  LOGGED_ATTESTATION_ANNOTATIONS,
  ownAttestationLayerProblem,
} from "./attestation-format.js";
import { verifySigningBundle } from "./bundle-format.js";
import { CosignAnnotation, simpleSigningPayload } from "./cosign-format.js";
import { dsseSigner, parseDsseEnvelope, type DsseEnvelope } from "./dsse.js";
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
 * Attestations (the promotion record and the VSA) the same way: a bundle or `.att` envelope
 * counts as ours when it verifies as above and its payload is an in-toto statement of that
 * predicate type about the digest. One by another key or identity (kpromo's) is not ours.
 */

export type OwnVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface OwnSignatures {
  /** Whether a `.sig` layer is this signer's signature of `subject` as `identity`. */
  layer(layer: Descriptor, subject: Digest, identity: string): Promise<OwnVerdict>;
  /** Whether a sigstore bundle (its bytes) is this signer's signature of `subject` as `identity`. */
  bundle(bundleBytes: Uint8Array, subject: Digest, identity: string): Promise<OwnVerdict>;
  /**
   * Whether a sigstore bundle is this signer's attestation of `predicateType` about `subject`
   * published as `identity`: the DSSE envelope verifies, and its payload is an in-toto statement
   * of that type naming the digest under that name (the subject's name, and the predicate's
   * `dstRef` or `resourceUri` `<identity>@<digest>`). Our genuine statement about the same
   * digest under another name is not this image's.
   */
  attestation(
    bundleBytes: Uint8Array,
    subject: Digest,
    predicateType: string,
    identity: string,
  ): Promise<OwnVerdict>;
  /** The same for a layer of cosign's `.att` manifest and its envelope blob (already read). */
  attestationLayer(
    layer: Descriptor,
    envelope: Uint8Array,
    subject: Digest,
    predicateType: string,
    identity: string,
  ): Promise<OwnVerdict>;
}

/** The payload of a DSSE bundle (verified by the caller). */
function bundlePayload(bundleBytes: Uint8Array): Uint8Array | undefined {
  try {
    const bundle: unknown = JSON.parse(new TextDecoder().decode(bundleBytes));
    const payload = (bundle as { dsseEnvelope?: { payload?: unknown } }).dsseEnvelope?.payload;
    return typeof payload === "string" ? Buffer.from(payload, "base64") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a verified payload is an in-toto statement of `predicateType` about `subject` as
 * `identity`: the subject's name is the identity, and each reference the predicate gives
 * (`dstRef` of the promotion record, `resourceUri` of the VSA; at least one) is
 * `<identity>@<subject>`.
 */
function statementVerdict(
  payload: Uint8Array | undefined,
  predicateType: string,
  subject: Digest,
  identity: string,
): OwnVerdict {
  if (payload === undefined) return { ok: false, reason: "the bundle holds no DSSE payload" };
  const statement = parseStatement(payload, predicateType, subject);
  if (!statement.ok) return { ok: false, reason: statement.reason };
  const { subjectName, predicate } = statement.value;
  if (subjectName !== identity) {
    return { ok: false, reason: `the statement is about ${subjectName}, not ${identity}` };
  }
  const expected = `${identity}@${subject}`;
  const references = [predicate.dstRef, predicate.resourceUri].filter((value) => value !== undefined);
  if (references.length === 0 || references.some((reference) => reference !== expected)) {
    return { ok: false, reason: `the statement does not name ${expected}` };
  }
  return { ok: true };
}

/** An `.att` layer's envelope, when it is shaped as one of ours and carries an in-toto payload. */
function ownEnvelope(
  layer: Descriptor,
  bytes: Uint8Array,
  predicateType: string,
  allowed: ReadonlySet<string>,
): DsseEnvelope | string {
  const problem = ownAttestationLayerProblem(layer, bytes, predicateType, allowed);
  if (problem !== undefined) return problem;
  const envelope = parseDsseEnvelope(bytes);
  if (typeof envelope === "string") return envelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return `the envelope's payload type is ${envelope.payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}`;
  }
  return envelope;
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
    async attestation(bundleBytes, subject, predicateType, identity) {
      const verdict = await verifySigningBundle(bundleBytes, [key], { digest: subject }, "attestation");
      if (!verdict.ok) return verdict;
      return statementVerdict(bundlePayload(bundleBytes), predicateType, subject, identity);
    },
    attestationLayer(layer, bytes, subject, predicateType, identity) {
      const allowed = options.logsToRekor ? LOGGED_ATTESTATION_ANNOTATIONS : KEY_ATTESTATION_ANNOTATIONS;
      const envelope = ownEnvelope(layer, bytes, predicateType, allowed);
      if (typeof envelope === "string") return Promise.resolve({ ok: false, reason: envelope });
      if (!dsseSigner(envelope, [key])) {
        return Promise.resolve({ ok: false, reason: "the envelope does not verify with our key" });
      }
      return Promise.resolve(statementVerdict(envelope.payload, predicateType, subject, identity));
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
    async attestation(bundleBytes, subject, predicateType, identity) {
      if (!policy) return unconfigured;
      const verdict = await policy.verifyBundle(bundleBytes, { digest: subject }, "attestation");
      if (!verdict.ok) return verdict;
      return statementVerdict(bundlePayload(bundleBytes), predicateType, subject, identity);
    },
    async attestationLayer(layer, bytes, subject, predicateType, identity) {
      if (!policy) return unconfigured;
      const envelope = ownEnvelope(layer, bytes, predicateType, KEYLESS_ATTESTATION_ANNOTATIONS);
      if (typeof envelope === "string") return { ok: false, reason: envelope };
      const verdict = await policy.verifyAttestationLayer(layer, envelope, { digest: subject });
      if (!verdict.ok) return verdict;
      return statementVerdict(envelope.payload, predicateType, subject, identity);
    },
  };
}
