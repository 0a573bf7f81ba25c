import { isJsonObject } from "../json-shape.js";
import { isDigest, type Digest } from "../reference/index.js";
import { PromoterError } from "../errors.js";

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

function stringRecord(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isJsonObject(value))
    throw new InvalidContentError(`${where}: annotations must be an object of strings`);
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string")
      throw new InvalidContentError(`${where}: annotation ${key} is not a string`);
  }
  return value as Record<string, string>;
}

function parsePlatform(value: unknown, where: string): Platform | undefined {
  if (value === undefined) return undefined;
  if (!isJsonObject(value) || typeof value.architecture !== "string" || typeof value.os !== "string") {
    throw new InvalidContentError(`${where}: platform needs architecture and os strings`);
  }
  return value as unknown as Platform;
}

/** Validates a descriptor read from JSON (a manifest, an index, a referrers response). */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isJsonObject(value)) throw new InvalidContentError(`${where}: a descriptor must be an object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== "string" || mediaType.length === 0) {
    throw new InvalidContentError(`${where}: descriptor has no mediaType`);
  }
  if (typeof digest !== "string" || !isDigest(digest)) {
    throw new InvalidContentError(
      `${where}: descriptor digest ${JSON.stringify(digest)} is not a valid digest`,
    );
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidContentError(`${where}: descriptor size must be a non-negative integer`);
  }
  const annotations = stringRecord(value.annotations, where);
  const platform = parsePlatform(value.platform, where);
  const descriptor: Descriptor = {
    mediaType,
    digest,
    size,
    ...(Array.isArray(value.urls)
      ? { urls: value.urls.filter((u): u is string => typeof u === "string") }
      : {}),
    ...(annotations ? { annotations } : {}),
    ...(platform ? { platform } : {}),
    ...(typeof value.artifactType === "string" ? { artifactType: value.artifactType } : {}),
  };
  return descriptor;
}
