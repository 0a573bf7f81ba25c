import { referrersFallbackSubject } from "../oci/index.js";
import type { Digest } from "../reference/index.js";
import { parseAttachmentTag, type AttachmentKind } from "./cosign-format.js";

/**
 * The names of attached-artifact tags: cosign's `sha256-<hex>.sig|.att|.sbom` (cosign-format.ts
 * writes them) and the bare `sha256-<hex>` of the referrers tag-schema fallback (oci/referrers.ts).
 * They belong to images and are not images: the snapshot leaves them out, the auditor checks what
 * they hold. The name is only a claim: whether the manifest under it is an attachment is
 * `recogniseAttachment`'s question.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#referrers-tag-schema
 */
export type AttachedArtifactKind = "signature" | "attestation" | "sbom" | "referrers-index";

const COSIGN_TAG_KINDS: Readonly<Record<AttachmentKind, AttachedArtifactKind>> = {
  sig: "signature",
  att: "attestation",
  sbom: "sbom",
};

export function parseAttachedArtifactTag(
  tag: string,
): { readonly subject: Digest; readonly kind: AttachedArtifactKind } | undefined {
  const cosign = parseAttachmentTag(tag);
  if (cosign) return { subject: cosign.subject, kind: COSIGN_TAG_KINDS[cosign.kind] };
  const subject = referrersFallbackSubject(tag);
  return subject === undefined ? undefined : { subject, kind: "referrers-index" };
}
