import { isJsonObject } from "../json-shape.js";
import { parseDescriptor, InvalidContentError, type Descriptor } from "./descriptor.js";
import {
  INDEX_MEDIA_TYPES,
  IMAGE_MANIFEST_MEDIA_TYPES,
  isManifestMediaType,
  MediaType,
} from "./media-type.js";

/**
 * An image manifest (OCI or Docker v2 schema 2): a config blob and layers.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md
 */
export interface ImageManifest {
  readonly kind: "manifest";
  readonly mediaType: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * An image index (OCI) or manifest list (Docker): a list of manifests.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-index.md
 */
export interface ImageIndex {
  readonly kind: "index";
  readonly mediaType: string;
  readonly artifactType?: string;
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

export type ParsedManifest = ImageManifest | ImageIndex;

/**
 * Parses manifest bytes. `mediaType` is the type the registry announced (Content-Type) or the
 * descriptor carried; when the document has its own `mediaType` field it must agree.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidance-for-an-empty-descriptor
 */
export function parseManifest(
  bytes: Uint8Array,
  mediaType: string | undefined,
  where: string,
): ParsedManifest {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new InvalidContentError(`${where}: manifest is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (!isJsonObject(document)) throw new InvalidContentError(`${where}: manifest must be a JSON object`);
  const declared = typeof document.mediaType === "string" ? document.mediaType : undefined;
  const type = declared ?? mediaType ?? guessMediaType(document);
  if (
    declared !== undefined &&
    mediaType !== undefined &&
    isManifestMediaType(mediaType) &&
    declared !== mediaType
  ) {
    throw new InvalidContentError(
      `${where}: manifest says mediaType ${declared} but was served or described as ${mediaType}`,
    );
  }
  if (!isManifestMediaType(type)) {
    throw new InvalidContentError(`${where}: unsupported manifest media type ${JSON.stringify(type)}`);
  }
  const subject =
    document.subject === undefined ? undefined : parseDescriptor(document.subject, `${where} subject`);
  const annotations = isJsonObject(document.annotations)
    ? (document.annotations as Record<string, string>)
    : undefined;
  const common = {
    mediaType: type,
    ...(typeof document.artifactType === "string" ? { artifactType: document.artifactType } : {}),
    ...(subject ? { subject } : {}),
    ...(annotations ? { annotations } : {}),
  };
  if (INDEX_MEDIA_TYPES.has(type)) {
    if (!Array.isArray(document.manifests))
      throw new InvalidContentError(`${where}: index has no manifests list`);
    const manifests = document.manifests.map((entry, i) =>
      parseDescriptor(entry, `${where} manifests[${i}]`),
    );
    return { kind: "index", manifests, ...common };
  }
  if (!IMAGE_MANIFEST_MEDIA_TYPES.has(type)) {
    throw new InvalidContentError(`${where}: unsupported manifest media type ${type}`);
  }
  const config = parseDescriptor(document.config, `${where} config`);
  if (!Array.isArray(document.layers)) throw new InvalidContentError(`${where}: manifest has no layers list`);
  const layers = document.layers.map((entry, i) => parseDescriptor(entry, `${where} layers[${i}]`));
  return { kind: "manifest", config, layers, ...common };
}

/** Old documents may omit `mediaType`; the shape tells which kind they are. */
function guessMediaType(document: Record<string, unknown>): string {
  if (Array.isArray(document.manifests)) return MediaType.ociImageIndex;
  return MediaType.ociImageManifest;
}

/**
 * How deep indexes may nest below a root manifest: an index of indexes of image manifests holds
 * its image manifests at depth 2. One limit for every walk over an index: copy refuses an index
 * at this depth (so nothing deeper is ever promoted), and the auditor, snapshot and check follow
 * children exactly this deep, so whatever a promotion copies is explained as a child of what it
 * promoted. Content addressing rules out cycles; the cap bounds how far hostile content drags a
 * reader.
 */
export const MAX_INDEX_DEPTH = 8;

/**
 * The nodes a manifest points at, in the order a copy must write them before the manifest
 * itself: for an index its child manifests, for a manifest its config and layers. The `subject`
 * is not a successor: it is the thing a referrer describes, not part of it.
 */
export function successors(manifest: ParsedManifest): readonly Descriptor[] {
  if (manifest.kind === "index") return manifest.manifests;
  return [manifest.config, ...manifest.layers];
}

/** Sum of compressed layer sizes: what a pull downloads for one platform image. */
export function compressedImageSize(manifest: ImageManifest): number {
  return manifest.layers.reduce((sum, layer) => sum + layer.size, manifest.config.size);
}
