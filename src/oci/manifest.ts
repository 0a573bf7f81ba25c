import { isJsonObject } from "../json-shape.js";
import { escapeExcerpt, MAX_EXCERPT_CHARS, quoteExcerpt } from "../excerpt.js";
import {
  InvalidContentError,
  parseAnnotations,
  parseArtifactType,
  parseDescriptor,
  type Descriptor,
} from "./descriptor.js";
import { describeJsonValue } from "./json-value.js";
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

/** The only `schemaVersion` of OCI manifests and indexes and of Docker schema 2. */
const SCHEMA_VERSION = 2;

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
    // The parser's message quotes the input: escaped and cut like any excerpt of it.
    throw new InvalidContentError(
      `${where}: manifest is not valid UTF-8 JSON (${escapeExcerpt((error as Error).message, MAX_EXCERPT_CHARS * 2)})`,
    );
  }
  if (!isJsonObject(document)) throw new InvalidContentError(`${where}: manifest must be a JSON object`);
  // Docker schema 1 (signed manifests) is version 1; every type we read is version 2. Old
  // documents may leave it out.
  if (document.schemaVersion !== undefined && document.schemaVersion !== SCHEMA_VERSION) {
    throw new InvalidContentError(
      `${where}: schemaVersion ${describeJsonValue(document.schemaVersion)} is not ${SCHEMA_VERSION}`,
    );
  }
  if (document.mediaType !== undefined && typeof document.mediaType !== "string") {
    throw new InvalidContentError(
      `${where}: manifest mediaType must be a string, not ${describeJsonValue(document.mediaType)}`,
    );
  }
  const declared = document.mediaType;
  const type = declared ?? mediaType ?? guessMediaType(document);
  if (
    declared !== undefined &&
    mediaType !== undefined &&
    isManifestMediaType(mediaType) &&
    declared !== mediaType
  ) {
    throw new InvalidContentError(
      `${where}: manifest says mediaType ${quoteExcerpt(declared)} but was served or described as ${quoteExcerpt(mediaType)}`,
    );
  }
  if (!isManifestMediaType(type)) {
    throw new InvalidContentError(`${where}: unsupported manifest media type ${quoteExcerpt(type)}`);
  }
  const subject =
    document.subject === undefined ? undefined : parseDescriptor(document.subject, `${where} subject`);
  const annotations = parseAnnotations(document.annotations, where);
  const artifactType = parseArtifactType(document.artifactType, where);
  const common = {
    mediaType: type,
    ...(artifactType === undefined ? {} : { artifactType }),
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
    throw new InvalidContentError(`${where}: unsupported manifest media type ${quoteExcerpt(type)}`);
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
