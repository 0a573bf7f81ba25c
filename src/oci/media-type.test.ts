import { describe, expect, it } from "vitest";
import {
  IMAGE_MANIFEST_MEDIA_TYPES,
  INDEX_MEDIA_TYPES,
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_ACCEPT,
  MANIFEST_MEDIA_TYPES,
  MediaType,
} from "./media-type.js";

describe("media types", () => {
  it("are the strings of the OCI image spec and Docker's schema 2", () => {
    expect(MediaType).toEqual({
      ociImageManifest: "application/vnd.oci.image.manifest.v1+json",
      ociImageIndex: "application/vnd.oci.image.index.v1+json",
      ociImageConfig: "application/vnd.oci.image.config.v1+json",
      ociLayerTarGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
      ociEmpty: "application/vnd.oci.empty.v1+json",
      dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
      dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
      dockerImageConfig: "application/vnd.docker.container.image.v1+json",
      dockerLayerTarGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    });
  });

  it("tell indexes from manifests, and nothing else is either", () => {
    expect([...INDEX_MEDIA_TYPES]).toEqual([MediaType.ociImageIndex, MediaType.dockerManifestList]);
    expect([...IMAGE_MANIFEST_MEDIA_TYPES]).toEqual([MediaType.ociImageManifest, MediaType.dockerManifest]);
    for (const type of MANIFEST_MEDIA_TYPES) expect(isManifestMediaType(type)).toBe(true);
    expect(isIndexMediaType(MediaType.ociImageIndex)).toBe(true);
    expect(isIndexMediaType(MediaType.dockerManifestList)).toBe(true);
    expect(isIndexMediaType(MediaType.ociImageManifest)).toBe(false);
    for (const other of [
      "",
      MediaType.ociImageConfig,
      MediaType.ociEmpty,
      "application/vnd.docker.distribution.manifest.v1+json",
      "application/vnd.docker.distribution.manifest.v1+prettyjws",
      "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
      "APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON",
      "application/json",
    ]) {
      expect(isManifestMediaType(other)).toBe(false);
      expect(isIndexMediaType(other)).toBe(false);
    }
  });

  it("accept every manifest type in one header", () => {
    expect(MANIFEST_ACCEPT.split(", ").sort()).toEqual([...MANIFEST_MEDIA_TYPES].sort());
  });
});
