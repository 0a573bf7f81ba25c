import { isDigest } from "../reference/index.js";
import { PromoterError } from "../errors.js";
/** Content that does not parse as the manifest, index or descriptor it claims to be. */
export class InvalidContentError extends PromoterError {
    constructor(message) {
        super("invalid-content", message);
    }
}
function isRecord(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}
function stringRecord(value, where) {
    if (value === undefined)
        return undefined;
    if (!isRecord(value))
        throw new InvalidContentError(`${where}: annotations must be an object of strings`);
    for (const [key, entry] of Object.entries(value)) {
        if (typeof entry !== "string")
            throw new InvalidContentError(`${where}: annotation ${key} is not a string`);
    }
    return value;
}
function parsePlatform(value, where) {
    if (value === undefined)
        return undefined;
    if (!isRecord(value) || typeof value.architecture !== "string" || typeof value.os !== "string") {
        throw new InvalidContentError(`${where}: platform needs architecture and os strings`);
    }
    return value;
}
/** Validates a descriptor read from JSON (a manifest, an index, a referrers response). */
export function parseDescriptor(value, where) {
    if (!isRecord(value))
        throw new InvalidContentError(`${where}: a descriptor must be an object`);
    const { mediaType, digest, size } = value;
    if (typeof mediaType !== "string" || mediaType.length === 0) {
        throw new InvalidContentError(`${where}: descriptor has no mediaType`);
    }
    if (typeof digest !== "string" || !isDigest(digest)) {
        throw new InvalidContentError(`${where}: descriptor digest ${JSON.stringify(digest)} is not a valid digest`);
    }
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
        throw new InvalidContentError(`${where}: descriptor size must be a non-negative integer`);
    }
    const annotations = stringRecord(value.annotations, where);
    const platform = parsePlatform(value.platform, where);
    const descriptor = {
        mediaType,
        digest,
        size,
        ...(Array.isArray(value.urls)
            ? { urls: value.urls.filter((u) => typeof u === "string") }
            : {}),
        ...(annotations ? { annotations } : {}),
        ...(platform ? { platform } : {}),
        ...(typeof value.artifactType === "string" ? { artifactType: value.artifactType } : {}),
    };
    return descriptor;
}
//# sourceMappingURL=descriptor.js.map