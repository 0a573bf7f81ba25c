import { quoteExcerpt } from "../excerpt.js";
import { isJsonObject } from "../json-shape.js";
import { isDigest, type Digest } from "../reference/index.js";
import { PromoterError } from "../errors.js";
import { describeJsonValue } from "./json-value.js";

/**
 * A content descriptor.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md
 */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly artifactType?: string;
}

/** https://github.com/opencontainers/image-spec/blob/v1.1.0/image-index.md#image-index-property-descriptions */
export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly "os.version"?: string;
  readonly "os.features"?: readonly string[];
  readonly variant?: string;
}

/** Content that does not parse as the manifest, index or descriptor it claims to be. */
export class InvalidContentError extends PromoterError {
  constructor(message: string) {
    super("invalid-content", message);
  }
}

/**
 * `annotations` of a descriptor, manifest or index: absent, or a map of strings to strings.
 * Anything else (a list, null, a value that is a number or an object) is refused rather than
 * dropped or cast: the map is copied into what we write (referrers lists) and read as strings.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/annotations.md#rules
 */
export function parseAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isJsonObject(value)) {
    throw new InvalidContentError(
      `${where}: annotations must be a map of strings to strings, not ${describeJsonValue(value)}`,
    );
  }
  const entries = Object.entries(value);
  for (const [key, entry] of entries) {
    if (typeof entry !== "string") {
      throw new InvalidContentError(
        `${where}: annotation ${quoteExcerpt(key)} is ${describeJsonValue(entry)}, not a string`,
      );
    }
  }
  // A copy (fromEntries defines data properties, so a "__proto__" key stays a key).
  return Object.fromEntries(entries) as Record<string, string>;
}

/** An optional string property: absent, or a string. */
function optionalString(value: unknown, name: string, where: string): string | undefined {
  if (value === undefined || typeof value === "string") return value;
  throw new InvalidContentError(`${where}: ${name} must be a string, not ${describeJsonValue(value)}`);
}

/** An optional list of strings: absent, or a list whose every entry is a string. */
function optionalStrings(value: unknown, name: string, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((entry): entry is string => typeof entry === "string")) {
    throw new InvalidContentError(`${where}: ${name} must be a list of strings`);
  }
  return [...value];
}

function parsePlatform(value: unknown, where: string): Platform | undefined {
  if (value === undefined) return undefined;
  if (!isJsonObject(value) || typeof value.architecture !== "string" || typeof value.os !== "string") {
    throw new InvalidContentError(`${where}: platform needs architecture and os strings`);
  }
  const osVersion = optionalString(value["os.version"], "platform os.version", where);
  const osFeatures = optionalStrings(value["os.features"], "platform os.features", where);
  const variant = optionalString(value.variant, "platform variant", where);
  return {
    architecture: value.architecture,
    os: value.os,
    ...(osVersion === undefined ? {} : { "os.version": osVersion }),
    ...(osFeatures === undefined ? {} : { "os.features": osFeatures }),
    ...(variant === undefined ? {} : { variant }),
  };
}

/**
 * `artifactType` of a descriptor or manifest: absent, or a string (a media type).
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#image-manifest-property-descriptions
 */
export function parseArtifactType(value: unknown, where: string): string | undefined {
  return optionalString(value, "artifactType", where);
}

/**
 * Validates a descriptor read from JSON (a manifest, an index, a referrers response): a non-empty
 * `mediaType`, a digest we support, a size that is a non-negative safe integer, and optional
 * properties of the types the spec gives them. Returns a fresh object with only the known
 * properties.
 */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isJsonObject(value)) {
    throw new InvalidContentError(
      `${where}: a descriptor must be an object, not ${describeJsonValue(value)}`,
    );
  }
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== "string" || mediaType.length === 0) {
    throw new InvalidContentError(`${where}: descriptor has no mediaType`);
  }
  if (typeof digest !== "string" || !isDigest(digest)) {
    throw new InvalidContentError(
      `${where}: descriptor digest ${describeJsonValue(digest)} is not a valid digest`,
    );
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidContentError(`${where}: descriptor size must be a non-negative integer`);
  }
  const urls = optionalStrings(value.urls, "urls", where);
  const annotations = parseAnnotations(value.annotations, where);
  const platform = parsePlatform(value.platform, where);
  const artifactType = parseArtifactType(value.artifactType, where);
  return {
    mediaType,
    digest,
    size,
    ...(urls === undefined ? {} : { urls }),
    ...(annotations ? { annotations } : {}),
    ...(platform ? { platform } : {}),
    ...(artifactType === undefined ? {} : { artifactType }),
  };
}
