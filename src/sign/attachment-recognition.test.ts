import { describe, expect, it } from "vitest";
import { MediaType, parseManifest } from "../oci/index.js";
import { digestOf } from "../reference/index.js";
import { manifestShape, recogniseAttachment, type ManifestShape } from "./attachment-recognition.js";
import { BUNDLE_MEDIA_TYPE, buildBundleReferrer } from "./bundle-format.js";
import { buildLayerSet, CosignMediaType, signatureLayer, simpleSigningPayload } from "./cosign-format.js";

const SUBJECT = digestOf("subject");
const image = (layers: readonly string[], config: string = MediaType.ociImageConfig): ManifestShape => ({
  mediaType: MediaType.ociImageManifest,
  configMediaType: config,
  layerMediaTypes: layers,
});

describe("recogniseAttachment", () => {
  it("accepts what this project writes: cosign layer sets and sigstore bundle referrers", () => {
    const signature = signatureLayer(simpleSigningPayload("registry.example/app", SUBJECT), {
      "dev.cosignproject.cosign/signature": "MEUC",
    });
    const layerSet = buildLayerSet([signature.descriptor]).manifest;
    expect(
      recogniseAttachment(manifestShape(parseManifest(layerSet.bytes, layerSet.mediaType, "sig"))),
    ).toEqual({
      attachment: true,
      kind: "signature",
    });
    const bundle = buildBundleReferrer(
      new TextEncoder().encode("{}"),
      { mediaType: MediaType.ociImageManifest, digest: SUBJECT, size: 10 },
      "2026-01-31T12:00:00Z",
    ).manifest;
    expect(
      recogniseAttachment(manifestShape(parseManifest(bundle.bytes, bundle.mediaType, "bundle"))),
    ).toEqual({
      attachment: true,
      kind: "bundle",
    });
  });

  it.each([
    [image([CosignMediaType.dsseEnvelope]), "attestation"],
    [image(["application/vnd.in-toto+json"]), "attestation"],
    [image(["text/spdx+json"], MediaType.ociEmpty), "sbom"],
    [image(["application/vnd.cyclonedx+json; charset=utf-8"]), "sbom"],
    [image(["application/vnd.dev.sigstore.bundle+json;version=0.2"], MediaType.ociEmpty), "bundle"],
    // oras attach: the files as tar layers, but an artifact config and a known artifactType.
    [
      { ...image([MediaType.ociLayerTarGzip], MediaType.ociEmpty), artifactType: "application/spdx+json" },
      "sbom",
    ],
    [
      {
        ...image(["application/jose+json"], "application/vnd.cncf.notary.signature"),
        artifactType: "application/vnd.cncf.notary.signature",
      },
      "signature",
    ],
  ] as const)("accepts %j as a %s", (shape, kind) => {
    expect(recogniseAttachment(shape)).toEqual({ attachment: true, kind });
  });

  it.each([
    [image([MediaType.ociLayerTarGzip]), /^a runnable image \(image config .*, 1 filesystem layer\)$/],
    [
      {
        ...image([CosignMediaType.simpleSigning, MediaType.dockerLayerTarGzip], MediaType.dockerImageConfig),
      },
      /^a runnable image/,
    ],
    // A known artifactType does not make an image config and a filesystem layer anything else.
    [{ ...image([MediaType.ociLayerTarGzip]), artifactType: BUNDLE_MEDIA_TYPE }, /^a runnable image/],
    [image(["application/octet-stream"]), /no known attachment type .*layer application\/octet-stream/],
    [
      { ...image(["application/octet-stream"], MediaType.ociEmpty), artifactType: "application/x-anything" },
      /artifactType application\/x-anything/,
    ],
    [image([]), /without layers/],
    [{ mediaType: MediaType.ociImageIndex, layerMediaTypes: [] }, /^an index/],
  ] as const)("refuses %j", (shape, looksLike) => {
    const result = recogniseAttachment(shape);
    expect(result.attachment).toBe(false);
    expect(!result.attachment && result.looksLike).toMatch(looksLike);
  });
});
