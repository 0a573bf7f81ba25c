import {
  compressedImageSize,
  isIndexMediaType,
  MAX_INDEX_DEPTH,
  parseManifest,
  type Descriptor,
  type Platform,
} from "../oci/index.js";
import type { Digest } from "../reference/index.js";
import type { CallOptions, RepositoryStore } from "../registry/index.js";

/**
 * What `promoter check` needs to know about an image: whether it is an index (multi-platform) or
 * a single manifest, and the download size of each platform image. Read from one repository
 * store; only manifests are fetched, never blobs (layer sizes are in the manifests).
 */

/** Platform images read per index (real multi-arch images have up to ~10). */
export const MAX_PLATFORM_IMAGES = 256;

export type ImageKind = "index" | "manifest";

export interface PlatformImage {
  readonly digest: Digest;
  readonly platform?: Platform;
  /** Compressed layers plus the config blob: what a pull of this platform downloads. */
  readonly size: number;
}

export interface ImageFacts {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly kind: ImageKind;
  /** The platform images (one for a single manifest); attestation manifests are left out. */
  readonly platforms: readonly PlatformImage[];
}

/** Docker buildx stores provenance as an `unknown/unknown` manifest marked with this annotation. */
const REFERENCE_TYPE_ANNOTATION = "vnd.docker.reference.type";

function isAttestation(descriptor: Descriptor): boolean {
  return (
    descriptor.annotations?.[REFERENCE_TYPE_ANNOTATION] === "attestation-manifest" ||
    (descriptor.platform?.os === "unknown" && descriptor.platform.architecture === "unknown")
  );
}

/** Just the kind, from a HEAD request: undefined when the store does not have the digest. */
export async function readImageKind(
  store: RepositoryStore,
  digest: Digest,
  options: CallOptions = {},
): Promise<{ kind: ImageKind; mediaType: string } | undefined> {
  const descriptor = await store.resolve(digest, options);
  if (!descriptor) return undefined;
  return {
    kind: isIndexMediaType(descriptor.mediaType) ? "index" : "manifest",
    mediaType: descriptor.mediaType,
  };
}

/** Kind and platform sizes of a digest, or undefined when the store does not have it. */
export async function readImageFacts(
  store: RepositoryStore,
  digest: Digest,
  options: CallOptions = {},
): Promise<ImageFacts | undefined> {
  const content = await store.getManifest(digest, options);
  if (!content) return undefined;
  const where = `${store.name}@${digest}`;
  const top = parseManifest(content.bytes, content.mediaType, where);
  if (top.kind === "manifest") {
    return {
      digest,
      mediaType: top.mediaType,
      kind: "manifest",
      platforms: [{ digest, size: compressedImageSize(top) }],
    };
  }
  const platforms: PlatformImage[] = [];
  const visit = async (descriptors: readonly Descriptor[], depth: number): Promise<void> => {
    for (const descriptor of descriptors) {
      if (isAttestation(descriptor)) continue;
      if (platforms.length >= MAX_PLATFORM_IMAGES) return;
      const child = await store.getManifest(descriptor.digest, options);
      if (!child) continue;
      const parsed = parseManifest(child.bytes, child.mediaType, `${store.name}@${descriptor.digest}`);
      if (parsed.kind === "index") {
        if (depth < MAX_INDEX_DEPTH) await visit(parsed.manifests, depth + 1);
        continue;
      }
      platforms.push({
        digest: descriptor.digest,
        ...(descriptor.platform ? { platform: descriptor.platform } : {}),
        size: compressedImageSize(parsed),
      });
    }
  };
  await visit(top.manifests, 1);
  return { digest, mediaType: top.mediaType, kind: "index", platforms };
}

export function platformText(platform: Platform | undefined): string {
  if (!platform) return "image";
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}
