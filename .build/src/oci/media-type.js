/**
 * Media types of the manifests and indexes a promoter moves.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/media-types.md
 * https://github.com/distribution/distribution/blob/main/docs/content/spec/manifest-v2-2.md
 */
export const MediaType = {
    ociImageManifest: "application/vnd.oci.image.manifest.v1+json",
    ociImageIndex: "application/vnd.oci.image.index.v1+json",
    ociImageConfig: "application/vnd.oci.image.config.v1+json",
    ociLayerTarGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
    ociEmpty: "application/vnd.oci.empty.v1+json",
    dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
    dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
    dockerImageConfig: "application/vnd.docker.container.image.v1+json",
    dockerLayerTarGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
};
/** Media types that are indexes: their children are manifests. */
export const INDEX_MEDIA_TYPES = new Set([
    MediaType.ociImageIndex,
    MediaType.dockerManifestList,
]);
/** Media types that are single manifests: their children are a config and layers (blobs). */
export const IMAGE_MANIFEST_MEDIA_TYPES = new Set([
    MediaType.ociImageManifest,
    MediaType.dockerManifest,
]);
/** Every manifest media type we read and write. */
export const MANIFEST_MEDIA_TYPES = [
    MediaType.ociImageIndex,
    MediaType.dockerManifestList,
    MediaType.ociImageManifest,
    MediaType.dockerManifest,
];
/** The Accept header value for manifest requests (some registries answer 404 without it). */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(", ");
export function isIndexMediaType(mediaType) {
    return INDEX_MEDIA_TYPES.has(mediaType);
}
export function isManifestMediaType(mediaType) {
    return INDEX_MEDIA_TYPES.has(mediaType) || IMAGE_MANIFEST_MEDIA_TYPES.has(mediaType);
}
//# sourceMappingURL=media-type.js.map