import { parseDigestInTag, digestInTag, type DigestInTag } from "./digest-tag.js";
import type { Digest } from "./digest.js";
import { parseTag, type Tag } from "./tag.js";

/**
 * cosign's attachment tags, both ways, in one place: `attachmentTag` writes them and
 * `parseAttachmentTag` reads them back, for the signer (sign/cosign-format.ts), the referrers
 * fallback (oci/referrers.ts), the manifest rules (a manifest never names such a tag) and the
 * auditor. From cosign's published specification:
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 * Pure.
 */

/**
 * The manifests cosign attaches to a digest by tag: signatures (`.sig`), attestations (`.att`)
 * and SBOMs (`.sbom`).
 */
export type AttachmentKind = "sig" | "att" | "sbom";
export const ATTACHMENT_KINDS: readonly AttachmentKind[] = ["sig", "att", "sbom"];

/**
 * What a tag of the attachment layouts names beside its subject: one of cosign's kinds, or
 * `referrers`, the image index of the OCI referrers tag schema (`<alg>-<hex>`, no suffix), which
 * registry/remote/referrers.ts writes where a registry has no referrers API.
 */
export type AttachmentTagKind = AttachmentKind | "referrers";

/** The words messages use for each kind of attachment tag. */
export const ATTACHMENT_TAG_NAMES: Readonly<Record<AttachmentTagKind, string>> = {
  sig: "signature",
  att: "attestation",
  sbom: "sbom",
  referrers: "referrers-index",
};

/**
 * `<alg>-<hex>.<kind>`: where cosign looks for what is attached to `subject`. The digest part is
 * `digestInTag`'s, the referrers tag schema's rule (a sha512 subject is named by its first 64 hex
 * digits: cosign's whole 128 would make a 139-character tag, which no registry accepts).
 */
export function attachmentTag(subject: Digest, kind: AttachmentKind): Tag {
  return parseTag(`${digestInTag(subject)}.${kind}`);
}

/** `<alg>-<hex>` and an optional `.sig`, `.att` or `.sbom`. */
const ATTACHMENT_TAG = /^([^.]+)(?:\.(sig|att|sbom))?$/;

/**
 * What a tag in the attachment layouts names, `attachmentTag` (and the referrers fallback tag)
 * read back: the subject and the kind. Undefined for any other tag. The name is only a claim:
 * whether the manifest under it is an attachment is `recogniseAttachment`'s question.
 */
export function parseAttachmentTag(
  tag: string,
): { readonly subject: DigestInTag; readonly kind: AttachmentTagKind } | undefined {
  const match = ATTACHMENT_TAG.exec(tag);
  const subject = parseDigestInTag(match?.[1] ?? "");
  if (!match || !subject) return undefined;
  return { subject, kind: (match[2] as AttachmentKind | undefined) ?? "referrers" };
}

export function signatureTag(subject: Digest): Tag {
  return attachmentTag(subject, "sig");
}
