import {
  compressedImageSize,
  isIndexMediaType,
  MAX_INDEX_DEPTH,
  parseManifest,
  type Descriptor,
  type Platform,
} from "../oci/index.js";
import { PromoterError } from "../errors.js";
import type { Digest } from "../reference/index.js";
import type { CallOptions, ManifestReader, ManifestResolver } from "../registry/index.js";

/**
 * What `promoter check` needs to know about an image: whether it is an index (multi-platform) or
 * a single manifest, and the download size of each platform image. Read from one repository
 * store; only manifests are fetched, never blobs (layer sizes are in the manifests).
 */

/**
 * Manifests an index may list, nested ones included (real multi-arch images have up to ~10,
 * ~20 with their attestations); an index listing more cannot be judged.
 */
export const MAX_PLATFORM_IMAGES = 256;

export type ImageKind = "index" | "manifest";

/** An image whose facts cannot be known in full (the check that needs them fails). */
export class ImageFactsError extends PromoterError {
  constructor(message: string) {
    super("image-facts", message);
  }
}

export interface PlatformImage {
  readonly digest: Digest;
  readonly platform?: Platform;
  /** Compressed layers plus the config blob: what a pull of this platform downloads. */
  readonly size: number;
  /**
   * The index marks it as an attestation (buildx provenance, SBOM). It is measured all the same:
   * the mark is only the pusher's word, and promotion copies it like any image.
   */
  readonly attestation: boolean;
}

export interface ImageFacts {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly kind: ImageKind;
  /** Every image manifest the index reaches (one for a single manifest), attestations included. */
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
  store: ManifestResolver,
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

/**
 * Kind and sizes of every image a digest reaches, or undefined when the store does not have the
 * digest. Throws ImageFactsError when part of it cannot be read: a child the registry does not
 * have, more than MAX_PLATFORM_IMAGES children, indexes nested deeper than MAX_INDEX_DEPTH.
 */
export async function readImageFacts(
  store: ManifestReader,
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
      platforms: [{ digest, size: compressedImageSize(top), attestation: false }],
    };
  }
  const platforms: PlatformImage[] = [];
  // An index may list one child many times: each is counted, read once.
  const parsedChildren = new Map<Digest, ReturnType<typeof parseManifest>>();
  let listed = 0;
  const visit = async (descriptors: readonly Descriptor[], depth: number): Promise<void> => {
    for (const descriptor of descriptors) {
      listed += 1;
      if (listed > MAX_PLATFORM_IMAGES) {
        throw new ImageFactsError(
          `${where} lists more than ${MAX_PLATFORM_IMAGES} manifests; they were not all read`,
        );
      }
      let parsed = parsedChildren.get(descriptor.digest);
      if (!parsed) {
        const child = await store.getManifest(descriptor.digest, options);
        if (!child) {
          throw new ImageFactsError(
            `${store.name}@${descriptor.digest}, listed in ${where}, is not in the registry`,
          );
        }
        parsed = parseManifest(child.bytes, child.mediaType, `${store.name}@${descriptor.digest}`);
        parsedChildren.set(descriptor.digest, parsed);
      }
      if (parsed.kind === "index") {
        if (depth >= MAX_INDEX_DEPTH) {
          throw new ImageFactsError(
            `${where} nests indexes more than ${MAX_INDEX_DEPTH} deep (${descriptor.digest}); the images below were not read`,
          );
        }
        await visit(parsed.manifests, depth + 1);
        continue;
      }
      platforms.push({
        digest: descriptor.digest,
        ...(descriptor.platform ? { platform: descriptor.platform } : {}),
        size: compressedImageSize(parsed),
        attestation: isAttestation(descriptor),
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
