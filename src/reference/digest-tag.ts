import { digestAlgorithm, digestHex, isDigest, type Digest, type DigestAlgorithm } from "./digest.js";

/**
 * A digest written into a tag, where something attached to it is found by name: `<alg>-<hex>`,
 * the hex cut to its first 64 characters. The rule of the OCI referrers tag schema
 * (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#referrers-tag-schema),
 * which cosign's attachment tags (`<alg>-<hex>.sig`, attachment-tag.ts) follow here too: a
 * tag has at most 128 characters, so `sha512-<128 hex>.sig` (139) is no tag. A sha256 digest
 * fits whole; a sha512 digest is named by its first 256 bits. Pure.
 */

/** Hex digits of a digest kept in a tag. */
export const MAX_TAG_DIGEST_HEX = 64;

/** `<alg>-<hex, at most 64 digits>`. */
export function digestInTag(digest: Digest): string {
  return `${digestAlgorithm(digest)}-${digestHex(digest).slice(0, MAX_TAG_DIGEST_HEX)}`;
}

/** What the digest part of a tag names: a whole digest, or the first 64 hex digits of a sha512 one. */
export interface DigestInTag {
  readonly algorithm: DigestAlgorithm;
  /** The hex digits the tag holds. */
  readonly hex: string;
  /** The digest, when the tag holds all of it (sha256). */
  readonly digest?: Digest;
}

const DIGEST_IN_TAG = new RegExp(`^(sha256|sha512)-([0-9a-f]{${MAX_TAG_DIGEST_HEX}})$`);

/** `digestInTag` read back; undefined for any other text. */
export function parseDigestInTag(text: string): DigestInTag | undefined {
  const match = DIGEST_IN_TAG.exec(text);
  if (!match) return undefined;
  const algorithm = match[1] as DigestAlgorithm;
  const hex = match[2] ?? "";
  const whole = `${algorithm}:${hex}`;
  return isDigest(whole) ? { algorithm, hex, digest: whole } : { algorithm, hex };
}

/** Whether `digest` is the one a tag names: the same digest, or its algorithm and first 64 hex digits. */
export function isDigestInTag(named: DigestInTag, digest: Digest): boolean {
  if (named.digest !== undefined) return named.digest === digest;
  return digestAlgorithm(digest) === named.algorithm && digestHex(digest).startsWith(named.hex);
}

/** For messages: the digest, or `sha512:<64 hex>…` when the tag holds only its start. */
export function formatDigestInTag(named: DigestInTag): string {
  return named.digest ?? `${named.algorithm}:${named.hex}…`;
}
