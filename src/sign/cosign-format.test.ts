import { describe, expect, it } from "vitest";
import { digestOf } from "../reference/index.js";
import {
  attachmentTag,
  buildLayerSet,
  mergeLayers,
  parseSimpleSigningPayload,
  signatureLayer,
  signatureTag,
  simpleSigningPayload,
} from "./cosign-format.js";

const DIGEST = digestOf("an image manifest");

describe("cosign tag layout", () => {
  it("names attachments sha256-<hex>.<kind>", () => {
    expect(signatureTag(DIGEST)).toBe(`sha256-${DIGEST.slice(7)}.sig`);
    expect(attachmentTag(DIGEST, "att")).toBe(`sha256-${DIGEST.slice(7)}.att`);
    expect(attachmentTag(DIGEST, "sbom")).toBe(`sha256-${DIGEST.slice(7)}.sbom`);
  });

  // Hand-written from the spec so it runs anywhere; third-party-cosign.test.ts compares the same
  // payload byte for byte with ones cosign wrote.
  it("writes the simple-signing payload as cosign marshals it, and reads it back", () => {
    const payload = simpleSigningPayload("registry.example.io/app", DIGEST);
    expect(new TextDecoder().decode(payload)).toBe(
      `{"critical":{"identity":{"docker-reference":"registry.example.io/app"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
    );
    expect(parseSimpleSigningPayload(payload)).toEqual({
      ok: true,
      claims: { dockerReference: "registry.example.io/app", manifestDigest: DIGEST, optional: null },
    });
    const capitalised = new TextEncoder().encode(
      JSON.stringify({
        critical: {
          identity: { "docker-reference": "x" },
          image: { "Docker-manifest-digest": DIGEST },
          type: "cosign container image signature",
        },
      }),
    );
    expect(parseSimpleSigningPayload(capitalised).ok).toBe(true);
    expect(
      parseSimpleSigningPayload(new TextEncoder().encode('{"critical":{"type":"other"}}')),
    ).toMatchObject({ ok: false });
  });

  it("builds the OCI manifest and config cosign builds (go-containerregistry's empty image plus static layers)", () => {
    const payload = simpleSigningPayload("registry.example.io/app", DIGEST);
    const layer = signatureLayer(payload, { "dev.cosignproject.cosign/signature": "MEUC" });
    const built = buildLayerSet([layer.descriptor]);
    expect(new TextDecoder().decode(built.config.bytes)).toBe(
      `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${layer.descriptor.digest}"]},"config":{}}`,
    );
    const manifest = JSON.parse(new TextDecoder().decode(built.manifest.bytes)) as Record<string, unknown>;
    expect(Object.keys(manifest)).toEqual(["schemaVersion", "mediaType", "config", "layers"]);
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.config).toEqual({
      mediaType: "application/vnd.oci.image.config.v1+json",
      size: built.config.bytes.length,
      digest: built.config.descriptor.digest,
    });
    expect(manifest.layers).toEqual([
      {
        mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
        size: payload.length,
        digest: digestOf(payload),
        annotations: { "dev.cosignproject.cosign/signature": "MEUC" },
      },
    ]);
    expect(buildLayerSet([layer.descriptor]).manifest.digest).toBe(built.manifest.digest);
  });

  it("merges signatures once each, in order of first appearance", () => {
    const a = signatureLayer(new TextEncoder().encode("a"), {
      "dev.cosignproject.cosign/signature": "A",
    }).descriptor;
    const b = signatureLayer(new TextEncoder().encode("b"), {
      "dev.cosignproject.cosign/signature": "B",
    }).descriptor;
    const resigned = { ...a, annotations: { "dev.cosignproject.cosign/signature": "A2" } };
    expect(
      mergeLayers([
        [a, b],
        [b, a, resigned],
      ]),
    ).toEqual([a, b, resigned]);
  });
});
