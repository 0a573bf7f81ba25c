import { plural } from "../output/quantities.js";
import { INDEX_MEDIA_TYPES, MediaType, type ParsedManifest } from "../oci/index.js";
import { BUNDLE_MEDIA_TYPE } from "./bundle-format.js";
import { CosignMediaType } from "./cosign-format.js";

/**
 * Whether a manifest is an attachment of an image — a signature, an attestation, an SBOM or a
 * sigstore bundle — and not something a container runtime would run. Anyone who may push a
 * signature may push anything under a signature tag, or set `subject` on any manifest: what the
 * name or the `subject` claims is only believed when the content is an attachment too. Pure: the
 * shape of a manifest in, a verdict out.
 *
 * Runnable: an image config (OCI or Docker) and a filesystem layer (a tar, compressed or not).
 * An attachment is one image manifest, not runnable, whose layers are all of a known attachment
 * type (cosign's `.sig`, `.att` and `.sbom` layouts), or, for OCI 1.1 artifacts such as `oras
 * attach` writes, whose `artifactType` is a known attachment type and whose config is not an
 * image config (so no runtime reads its layers as a filesystem).
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 * https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidelines-for-artifact-usage
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md
 */

export type AttachmentClass = "signature" | "attestation" | "sbom" | "bundle";

/** What recognition needs of a manifest: its media types, never its blobs. */
export interface ManifestShape {
  readonly mediaType: string;
  readonly artifactType?: string;
  /** The config's media type; absent for an index. */
  readonly configMediaType?: string;
  /** Each layer's media type, in order; empty for an index. */
  readonly layerMediaTypes: readonly string[];
}

export type AttachmentRecognition =
  | { readonly attachment: true; readonly kind: AttachmentClass }
  /** `looksLike` completes "the manifest is ...", e.g. "a runnable image (image config, 1 tar layer)". */
  | { readonly attachment: false; readonly looksLike: string };

/** Media types of attachment layers (and artifact types), by what they hold. */
const LAYER_CLASSES: ReadonlyMap<string, AttachmentClass> = new Map([
  [CosignMediaType.simpleSigning, "signature"],
  [CosignMediaType.dsseEnvelope, "attestation"],
  ["application/vnd.in-toto+json", "attestation"],
  ["text/spdx", "sbom"],
  ["text/spdx+json", "sbom"],
  ["text/spdx+xml", "sbom"],
  ["application/spdx+json", "sbom"],
  ["application/vnd.cyclonedx", "sbom"],
  ["application/vnd.cyclonedx+json", "sbom"],
  ["application/vnd.cyclonedx+xml", "sbom"],
  ["application/vnd.syft+json", "sbom"],
  [BUNDLE_MEDIA_TYPE, "bundle"],
]);

/** `artifactType` values of attachments whose layers have other media types. */
const ARTIFACT_CLASSES: ReadonlyMap<string, AttachmentClass> = new Map([
  ...LAYER_CLASSES,
  ["application/vnd.dev.cosign.artifact.sig.v1+json", "signature"],
  ["application/vnd.dev.cosign.artifact.sbom.v1+json", "sbom"],
  ["application/vnd.cncf.notary.signature", "signature"],
]);

/** Every sigstore bundle version: `application/vnd.dev.sigstore.bundle.v0.3+json`, `...bundle+json;version=0.2`. */
const SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle";

/** Configs a runtime reads as an image: their layers are the root filesystem. */
const IMAGE_CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.ociImageConfig,
  MediaType.dockerImageConfig,
]);

/** Filesystem layers: OCI `layer.v1.tar[+gzip|+zstd]` (and non-distributable), Docker `rootfs.diff.tar*`. */
const TAR_LAYER_PREFIXES: readonly string[] = [
  "application/vnd.oci.image.layer.",
  "application/vnd.docker.image.rootfs.",
];

/** The media type without parameters, lower-case (RFC 6838 names are case-insensitive). */
function essence(mediaType: string): string {
  return (mediaType.split(";", 1)[0] ?? "").trim().toLowerCase();
}

function classOf(
  mediaType: string,
  known: ReadonlyMap<string, AttachmentClass>,
): AttachmentClass | undefined {
  const bare = essence(mediaType);
  const found = known.get(bare);
  if (found) return found;
  return bare.startsWith(SIGSTORE_BUNDLE_PREFIX) && bare.endsWith("+json") ? "bundle" : undefined;
}

function isTarLayer(mediaType: string): boolean {
  const bare = essence(mediaType);
  return TAR_LAYER_PREFIXES.some((prefix) => bare.startsWith(prefix));
}

/** The shape of a parsed manifest. */
export function manifestShape(manifest: ParsedManifest): ManifestShape {
  return {
    mediaType: manifest.mediaType,
    ...(manifest.artifactType === undefined ? {} : { artifactType: manifest.artifactType }),
    ...(manifest.kind === "manifest"
      ? {
          configMediaType: manifest.config.mediaType,
          layerMediaTypes: manifest.layers.map((layer) => layer.mediaType),
        }
      : { layerMediaTypes: [] }),
  };
}

/** Whether the manifest of `shape` is a signature, attestation, SBOM or bundle; see the module comment. */
export function recogniseAttachment(shape: ManifestShape): AttachmentRecognition {
  if (INDEX_MEDIA_TYPES.has(shape.mediaType) || shape.configMediaType === undefined) {
    return {
      attachment: false,
      looksLike: `an index (${shape.mediaType}), not a single attachment manifest`,
    };
  }
  const layers = shape.layerMediaTypes;
  const imageConfig = IMAGE_CONFIG_MEDIA_TYPES.has(essence(shape.configMediaType));
  const tarLayers = layers.filter(isTarLayer).length;
  if (imageConfig && tarLayers > 0) {
    return {
      attachment: false,
      looksLike: `a runnable image (image config ${shape.configMediaType}, ${plural(tarLayers, "filesystem layer")})`,
    };
  }
  if (layers.length === 0) return { attachment: false, looksLike: "a manifest without layers" };
  const classes = layers.map((layer) => classOf(layer, LAYER_CLASSES));
  const byArtifactType =
    shape.artifactType === undefined ? undefined : classOf(shape.artifactType, ARTIFACT_CLASSES);
  const [firstClass] = classes;
  if (firstClass !== undefined && classes.every((layerClass) => layerClass !== undefined)) {
    return { attachment: true, kind: byArtifactType ?? firstClass };
  }
  if (byArtifactType !== undefined && !imageConfig) return { attachment: true, kind: byArtifactType };
  const unknownLayer = layers.find((_, index) => classes[index] === undefined) ?? "";
  const artifact = shape.artifactType === undefined ? "" : `artifactType ${shape.artifactType}, `;
  return {
    attachment: false,
    looksLike: `an artifact of no known attachment type (${artifact}config ${shape.configMediaType}, layer ${unknownLayer})`,
  };
}
