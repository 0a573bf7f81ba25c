import { describe, expect, it } from "vitest";
import {
  attachmentTag,
  digestOf,
  isDigestInTag,
  parseAttachmentTag,
  signatureTag,
  type Digest,
} from "../reference/index.js";
import { referrersFallbackTag } from "../oci/index.js";
import {
  buildLayerSet,
  checkSimpleSigningClaims,
  mergeLayers,
  parseSimpleSigningPayload,
  signatureLayer,
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

  it("reads back what it writes, and the referrers fallback tag, in one vocabulary", () => {
    for (const kind of ["sig", "att", "sbom"] as const) {
      expect(parseAttachmentTag(attachmentTag(DIGEST, kind))).toEqual({
        subject: { algorithm: "sha256", hex: DIGEST.slice(7), digest: DIGEST },
        kind,
      });
    }
    expect(parseAttachmentTag(referrersFallbackTag(DIGEST))?.kind).toBe("referrers");
  });

  it("names a sha512 subject by its first 64 hex digits, as the referrers tag schema does", () => {
    const sha512 = digestOf("an image manifest", "sha512");
    const tag = attachmentTag(sha512, "sig");
    expect(tag).toBe(`sha512-${sha512.slice(7, 7 + 64)}.sig`);
    expect(referrersFallbackTag(sha512)).toBe(tag.slice(0, -".sig".length));
    for (const written of [tag, referrersFallbackTag(sha512)]) {
      const parsed = parseAttachmentTag(written);
      expect(parsed?.subject.digest).toBeUndefined();
      expect(parsed && isDigestInTag(parsed.subject, sha512)).toBe(true);
      expect(parsed && isDigestInTag(parsed.subject, digestOf("another", "sha512"))).toBe(false);
    }
  });

  it.each([
    "v1.0",
    "sha256-abc.sig",
    `sha256-${"A".repeat(64)}.sig`,
    `sha256-${"a".repeat(64)}.sigx`,
    `sha256-${"a".repeat(64)}.sig.sig`,
    `sha512-${"a".repeat(128)}`,
    `sha384-${"a".repeat(64)}.sig`,
    `x-${"a".repeat(64)}.sig`,
  ])("%s is no attachment tag", (tag) => {
    expect(parseAttachmentTag(tag)).toBeUndefined();
  });

  it("keeps the subject's digest exactly", () => {
    expect(parseAttachmentTag(`sha256-${"a".repeat(64)}.att`)?.subject.digest).toBe(
      `sha256:${"a".repeat(64)}` as Digest,
    );
  });

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

  it("checks a payload's claims against the expected digest and identity, quoting the signer's text", () => {
    const payload = simpleSigningPayload("registry.example.io/app", DIGEST);
    expect(
      checkSimpleSigningClaims(payload, { digest: DIGEST, identity: "registry.example.io/app" }),
    ).toMatchObject({
      ok: true,
      claims: { dockerReference: "registry.example.io/app", manifestDigest: DIGEST },
    });
    expect(checkSimpleSigningClaims(payload, { digest: DIGEST })).toMatchObject({ ok: true });
    const other = digestOf("another image manifest");
    expect(checkSimpleSigningClaims(payload, { digest: other })).toEqual({
      ok: false,
      reason: `the payload signs ${DIGEST}, not ${other}`,
    });
    expect(
      checkSimpleSigningClaims(payload, { digest: DIGEST, identity: "registry.example.io/other" }),
    ).toEqual({
      ok: false,
      reason: 'the payload names "registry.example.io/app", not "registry.example.io/other"',
    });
    expect(checkSimpleSigningClaims(new TextEncoder().encode("[]"), { digest: DIGEST })).toMatchObject({
      ok: false,
    });
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
