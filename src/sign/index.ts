/**
 * Signatures: cosign's tag layout and the sigstore bundle layout, key-based and keyless signing,
 * carrying what staging has attached, and checking signatures.
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 * https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md
 */
export { SignError, type SignErrorCode } from "./errors.js";
export {
  ENV_KEY_PREFIX,
  keyIdOf,
  loadSigningKey,
  loadVerificationKey,
  MAX_KEY_FILE_BYTES,
  parseSigningKey,
  parseVerificationKey,
  SIGN_KEY_PASSWORD_VARIABLE,
  SIGN_KEY_VARIABLE,
  verificationKeyOf,
  type KeySourceOptions,
  type SigningKey,
  type VerificationKey,
} from "./keys.js";
export {
  buildLayerSet,
  CosignAnnotation,
  CosignMediaType,
  isMergeableAttachment,
  layerKey,
  MAX_SIGNATURE_LAYER_BYTES,
  MAX_SIGNATURE_LAYERS,
  mergeLayers,
  parseLayerSet,
  parseSimpleSigningPayload,
  signatureLayer,
  SIMPLE_SIGNING_TYPE,
  simpleSigningPayload,
  type BlobContent,
  type BuiltLayerSet,
  type ClaimsExpectation,
  type ParsedLayerSet,
  type SimpleSigningClaims,
} from "./cosign-format.js";
// cosign's tag layout lives in reference/ (the manifest rules need it too); the signer's vocabulary.
export {
  ATTACHMENT_KINDS,
  ATTACHMENT_TAG_NAMES,
  attachmentTag,
  parseAttachmentTag,
  signatureTag,
  type AttachmentKind,
  type AttachmentTagKind,
} from "../reference/index.js";
export {
  BUNDLE_MEDIA_TYPE,
  BundleAnnotation,
  buildBundleReferrer,
  COSIGN_SIGN_PREDICATE,
  EMPTY_CONFIG,
  isAttestationBundleReferrer,
  isSigningBundleReferrer,
  signingStatement,
  verifySigningBundle,
  type BundleVerdict,
  type StatementKind,
} from "./bundle-format.js";
export {
  createKeylessSigner,
  createKeySigner,
  DEFAULT_SIGSTORE_TIMEOUT_MS,
  IDENTITY_TOKEN_VARIABLE,
  readIdentityToken,
  type CosignRekorBundle,
  type IdentityTokenProvider,
  type ImageSigner,
  type KeylessSignerOptions,
  type KeySignerOptions,
} from "./signer.js";
export { ownLayerProblem, verifySimpleSigningLayer, type LayerVerdict } from "./verify-layer.js";
export {
  keylessOwnSignatures,
  keyOwnSignatures,
  type OwnSignatures,
  type OwnVerdict,
} from "./own-signatures.js";
export { notAnImageReason, platformText, signatureSubjects, type SignatureSubject } from "./subjects.js";
export {
  ATTACHMENT_MODES,
  itemHasWork,
  SIGNATURE_FORMATS,
  type AttachmentMode,
  type AttachmentPlan,
  type AttachmentWork,
  type KeptLayer,
  type PlannedContent,
  type SignatureFormat,
  type SignatureTarget,
  type SubjectWork,
  type TargetDestination,
  type WorkAction,
  type WorkItem,
  type WorkItemKind,
} from "./attachment-plan.js";
export { decideLayerSet, decideSingleDocument } from "./decide-attachments.js";
export type { PlannedBlob } from "./blob-io.js";
export {
  manifestShape,
  recogniseAttachment,
  type AttachmentClass,
  type AttachmentRecognition,
  type ManifestShape,
} from "./attachment-recognition.js";
export { planAttachments, type PlanAttachmentsOptions } from "./plan-attachments.js";
export {
  subjectStatements,
  type AttestationFacts,
  type AttestationFactsOf,
  type AttestOptions,
  type PlannedStatement,
} from "./promotion-attestations.js";
export {
  ATTESTATION_LAYOUTS,
  ATTESTATION_PREDICATE_ANNOTATION,
  attestationLayer,
  envelopeBytesOfBundle,
  type AttestationLayout,
} from "./attestation-format.js";
export {
  DEFAULT_SIGNATURE_OPS,
  executeAttachments,
  type AttachmentOutcome,
  type AttachmentStatus,
  type ExecuteAttachmentsOptions,
} from "./execute-attachments.js";
export {
  canonicalRegistries,
  checkIdentity,
  identityFor,
  signatureTargets,
  type TargetOptions,
} from "./targets.js";
export {
  checkSignatures,
  type SignatureCheck,
  type SignatureExpectation,
  type SignatureStatus,
} from "./check-signatures.js";
export {
  checkKeylessIdentity,
  checkRe2Pattern,
  createKeylessPolicy,
  identityMatches,
  loadTrustedRoot,
  re2Problem,
  re2ToJavaScript,
  MAX_TRUSTED_ROOT_BYTES,
  trustMaterialFromTrustedRoot,
  type KeylessIdentity,
  type KeylessPolicy,
  type KeylessVerdict,
} from "./keyless-policy.js";
export {
  checkSourceSignatures,
  judgeSourceSignatures,
  keylessSourcePolicy,
  loadSourcePolicy,
  MAX_POLICY_FILE_BYTES,
  ruleFor,
  provenancePolicyOf,
  SOURCE_SIGNATURE_MODES,
  withDefaultKeys,
  withDefaultProvenance,
  type KeylessSourcePolicyOptions,
  type ProvenanceSettings,
  type SourceCheckOptions,
  type SourceCheckRequest,
  type SourcePolicy,
  type SourceRule,
  type SourceSignatureMode,
  type SourceProvenanceStatus,
  type SourceVerdict,
  type SourceVerdictStatus,
} from "./source-policy.js";
export {
  isSlsaProvenanceType,
  judgeProvenance,
  parseSlsaProvenance,
  PROVENANCE_MODES,
  provenanceMismatch,
  repositoryOfGitUri,
  SLSA_BUILD_LEVELS,
  SLSA_PROVENANCE_TYPES,
  SLSA_PROVENANCE_V02,
  SLSA_PROVENANCE_V1,
  type ProvenanceClaims,
  type ProvenanceJudgement,
  type ProvenanceMode,
  type ProvenanceParse,
  type ProvenancePolicy,
  type VerifiedStatement,
} from "./build-provenance.js";
export { checkAttestations, type AttestationCheck } from "./check-attestations.js";
export {
  dsseSigner,
  parseDsseEnvelope,
  preAuthenticationEncoding,
  type DsseEnvelope,
  type DsseSignature,
} from "./dsse.js";
export {
  verifyTargets,
  type VerifyResult,
  type VerifyStatus,
  type VerifyTargetsOptions,
} from "./verify-targets.js";
export {
  repairSignatures,
  repairTargets,
  type RepairSignaturesOptions,
  type SignatureRepair,
} from "./repair-signatures.js";
export {
  verifyDocument,
  verifyProblems,
  VERIFY_DOCUMENT_SCHEMA,
  VERIFY_DOCUMENT_VERSION,
  type VerifyDocumentOptions,
} from "./verify-document.js";
export { outcomesByTarget, signaturesDocument } from "./signatures-document.js";
export {
  approvalProblem,
  ATTESTATION_KINDS,
  ATTESTATION_PREDICATE_TYPES,
  attestationProblems,
  checkPromotionAttestation,
  promotedSubjects,
  verifyAttestationTargets,
  type ApproverPolicy,
  type PromotionAttestationCheck,
  type PromotionAttestationCheckStatus,
  type AttestationExpectation,
  type AttestationKind,
  type AttestationResult,
  type AttestationStatus,
  type FoundAttestation,
  type VerifyAttestationsOptions,
} from "./verify-attestations.js";
export {
  verifiedReview,
  verifyPlace,
  type PlaceAttestation,
  type PlaceExpectation,
  type PlaceSignature,
  type PlaceVerification,
  type VerifiedReview,
} from "./verify-place.js";
