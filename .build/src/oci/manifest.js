import { parseDescriptor, InvalidContentError } from "./descriptor.js";
import { INDEX_MEDIA_TYPES, IMAGE_MANIFEST_MEDIA_TYPES, isManifestMediaType } from "./media-type.js";
function isRecord(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}
/**
 * Parses manifest bytes. `mediaType` is the type the registry announced (Content-Type) or the
 * descriptor carried; when the document has its own `mediaType` field it must agree.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidance-for-an-empty-descriptor
 */
export function parseManifest(bytes, mediaType, where) {
    let document;
    try {
        document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    }
    catch (error) {
        throw new InvalidContentError(`${where}: manifest is not valid UTF-8 JSON (${error.message})`);
    }
    if (!isRecord(document))
        throw new InvalidContentError(`${where}: manifest must be a JSON object`);
    const declared = typeof document.mediaType === "string" ? document.mediaType : undefined;
    const type = declared ?? mediaType ?? guessMediaType(document);
    if (declared !== undefined &&
        mediaType !== undefined &&
        isManifestMediaType(mediaType) &&
        declared !== mediaType) {
        throw new InvalidContentError(`${where}: manifest says mediaType ${declared} but was served or described as ${mediaType}`);
    }
    if (!isManifestMediaType(type)) {
        throw new InvalidContentError(`${where}: unsupported manifest media type ${JSON.stringify(type)}`);
    }
    const subject = document.subject === undefined ? undefined : parseDescriptor(document.subject, `${where} subject`);
    const annotations = isRecord(document.annotations)
        ? document.annotations
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
        const manifests = document.manifests.map((entry, i) => parseDescriptor(entry, `${where} manifests[${i}]`));
        return { kind: "index", manifests, ...common };
    }
    if (!IMAGE_MANIFEST_MEDIA_TYPES.has(type)) {
        throw new InvalidContentError(`${where}: unsupported manifest media type ${type}`);
    }
    const config = parseDescriptor(document.config, `${where} config`);
    if (!Array.isArray(document.layers))
        throw new InvalidContentError(`${where}: manifest has no layers list`);
    const layers = document.layers.map((entry, i) => parseDescriptor(entry, `${where} layers[${i}]`));
    return { kind: "manifest", config, layers, ...common };
}
/** Old documents may omit `mediaType`; the shape tells which kind they are. */
function guessMediaType(document) {
    if (Array.isArray(document.manifests))
        return "application/vnd.oci.image.index.v1+json";
    return "application/vnd.oci.image.manifest.v1+json";
}
/**
 * The nodes a manifest points at, in the order a copy must write them before the manifest
 * itself: for an index its child manifests, for a manifest its config and layers. The `subject`
 * is not a successor: it is the thing a referrer describes, not part of it.
 */
export function successors(manifest) {
    if (manifest.kind === "index")
        return manifest.manifests;
    return [manifest.config, ...manifest.layers];
}
/** Sum of compressed layer sizes: what a pull downloads for one platform image. */
export function compressedImageSize(manifest) {
    return manifest.layers.reduce((sum, layer) => sum + layer.size, manifest.config.size);
}
/** Digest set of the blobs a manifest references (config and layers). */
export function blobDigests(manifest) {
    return [manifest.config.digest, ...manifest.layers.map((layer) => layer.digest)];
}
//# sourceMappingURL=manifest.js.map