import { digestInTag, parseTag, type Digest, type Tag } from "../reference/index.js";
import type { Descriptor } from "./descriptor.js";
import type { ParsedManifest } from "./manifest.js";

/**
 * The referrers formats every repository backend shares: a registry without the referrers API
 * keeps the referrers of a subject in an image index under the fallback tag, and an OCI layout
 * copied from such a registry holds that tag too; both list referrers with the same descriptor.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#referrers-tag-schema
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
 */

/** `<alg>-<ref>`, the encoded digest limited to 64 characters (`digestInTag`, as cosign's tags). */
export function referrersFallbackTag(subject: Digest): Tag {
  return parseTag(digestInTag(subject));
}

/**
 * The descriptor a referrers list holds for a stored manifest that has a subject: its
 * `artifactType` (for an image manifest without one, its config's media type) and annotations.
 */
export function referrerDescriptor(
  stored: { readonly mediaType: string; readonly digest: Digest; readonly bytes: Uint8Array },
  manifest: ParsedManifest,
): Descriptor {
  const artifactType =
    manifest.artifactType ?? (manifest.kind === "manifest" ? manifest.config.mediaType : undefined);
  return {
    mediaType: stored.mediaType,
    digest: stored.digest,
    size: stored.bytes.byteLength,
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(manifest.annotations === undefined ? {} : { annotations: manifest.annotations }),
  };
}
