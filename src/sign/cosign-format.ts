import { isJsonObject } from "../json-shape.js";
import { MediaType, parseManifest, type Descriptor } from "../oci/index.js";
import { digestOf, isDigest, type AttachmentKind, type Digest } from "../reference/index.js";
import type { ManifestContent } from "../registry/index.js";
import { SignError } from "./errors.js";

/**
 * cosign's tag layout, written from its published specification:
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 *
 * The signatures of `repo@sha256:<hex>` live at `repo:sha256-<hex>.sig`: an OCI image manifest
 * whose layers are "simple signing" payloads (media type
 * `application/vnd.dev.cosign.simplesigning.v1+json`), each with its base64 signature in the
 * layer annotation `dev.cosignproject.cosign/signature` and, for keyless signatures, the
 * certificate, chain and Rekor bundle in `dev.sigstore.cosign/*` annotations. Attestations
 * (`.att`, DSSE envelopes) use the same shape; SBOMs (`.sbom`) are attached as one artifact.
 * Pure: bytes in, bytes out.
 */

export const CosignMediaType = {
  simpleSigning: "application/vnd.dev.cosign.simplesigning.v1+json",
  dsseEnvelope: "application/vnd.dsse.envelope.v1+json",
} as const;

/** Layer annotation keys, as cosign's `pkg/oci/static` writes them. */
export const CosignAnnotation = {
  signature: "dev.cosignproject.cosign/signature",
  certificate: "dev.sigstore.cosign/certificate",
  chain: "dev.sigstore.cosign/chain",
  bundle: "dev.sigstore.cosign/bundle",
  rfc3161Timestamp: "dev.sigstore.cosign/rfc3161timestamp",
} as const;

/** `critical.type` of a cosign image signature payload. */
export const SIMPLE_SIGNING_TYPE = "cosign container image signature";

/** A simple-signing payload (or DSSE envelope) larger than this is not one. */
export const MAX_SIGNATURE_LAYER_BYTES = 4 * 1024 * 1024;
/** Layers per signature manifest we accept (cosign caps appends at 1,000). */
export const MAX_SIGNATURE_LAYERS = 1000;

/**
 * `.sig` and `.att` manifests are sets of layers that several signers append to; an `.sbom` is
 * one document that is replaced, not merged.
 */
export function isMergeableAttachment(kind: AttachmentKind): boolean {
  return kind !== "sbom";
}

/** What a simple-signing payload says. */
export interface SimpleSigningClaims {
  readonly dockerReference: string;
  readonly manifestDigest: Digest;
  readonly optional: Readonly<Record<string, unknown>> | null;
}

/**
 * The payload cosign signs for an image, byte for byte as cosign marshals it (Go struct field
 * order; `optional` is `null` when there are no annotations). Deterministic, so a verifier (or a
 * later run) can rebuild it from the identity and the digest.
 * https://github.com/containers/image/blob/main/docs/containers-signature.5.md#json-data-format
 */
export function simpleSigningPayload(
  dockerReference: string,
  manifestDigest: Digest,
  optional: Readonly<Record<string, string>> | null = null,
): Uint8Array {
  const document = {
    critical: {
      identity: { "docker-reference": dockerReference },
      image: { "docker-manifest-digest": manifestDigest },
      type: SIMPLE_SIGNING_TYPE,
    },
    optional: optional === null ? null : sortedRecord(optional),
  };
  return new TextEncoder().encode(JSON.stringify(document));
}

/**
 * Reads a simple-signing payload. The field names follow the containers-signature format;
 * the capitalised `Docker-manifest-digest` of cosign's own examples is accepted too (cosign's Go
 * decoder matches names case-insensitively).
 */
export function parseSimpleSigningPayload(
  bytes: Uint8Array,
): { ok: true; claims: SimpleSigningClaims } | { ok: false; reason: string } {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return { ok: false, reason: "the payload is not UTF-8 JSON" };
  }
  if (!isJsonObject(document) || !isJsonObject(document.critical)) {
    return { ok: false, reason: "the payload has no critical section" };
  }
  const critical = document.critical;
  if (critical.type !== SIMPLE_SIGNING_TYPE) {
    return {
      ok: false,
      reason: `critical.type is ${JSON.stringify(critical.type)}, not "${SIMPLE_SIGNING_TYPE}"`,
    };
  }
  const image = isJsonObject(critical.image) ? critical.image : {};
  const digest = image["docker-manifest-digest"] ?? image["Docker-manifest-digest"];
  if (typeof digest !== "string" || !isDigest(digest)) {
    return { ok: false, reason: "critical.image.docker-manifest-digest is missing or not a digest" };
  }
  const identity = isJsonObject(critical.identity) ? critical.identity["docker-reference"] : undefined;
  if (typeof identity !== "string") {
    return { ok: false, reason: "critical.identity.docker-reference is missing" };
  }
  const optional = isJsonObject(document.optional) ? document.optional : null;
  return { ok: true, claims: { dockerReference: identity, manifestDigest: digest, optional } };
}

/** What a signature must say: the digest it signs and, when given, the identity it names. */
export interface ClaimsExpectation {
  readonly digest: Digest;
  /** The docker-reference the payload must carry; any when absent. */
  readonly identity?: string;
}

/**
 * The claims of a simple-signing payload when they are what `expectation` asks, or why not. The
 * one check of a payload's claims: verifiers with keys and keyless verifiers refuse alike, and
 * quote the payload's own text (which the signer chose) in their reasons.
 */
export function checkSimpleSigningClaims(
  payload: Uint8Array,
  expectation: ClaimsExpectation,
): { ok: true; claims: SimpleSigningClaims } | { ok: false; reason: string } {
  const parsed = parseSimpleSigningPayload(payload);
  if (!parsed.ok) return parsed;
  const { claims } = parsed;
  if (claims.manifestDigest !== expectation.digest) {
    return { ok: false, reason: `the payload signs ${claims.manifestDigest}, not ${expectation.digest}` };
  }
  if (expectation.identity !== undefined && claims.dockerReference !== expectation.identity) {
    return {
      ok: false,
      reason: `the payload names ${JSON.stringify(claims.dockerReference)}, not ${JSON.stringify(expectation.identity)}`,
    };
  }
  return parsed;
}

function sortedRecord<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  const sorted: Record<string, T> = {};
  for (const key of Object.keys(record).sort()) sorted[key] = record[key] as T;
  return sorted;
}

/**
 * A descriptor as go-containerregistry serialises it (mediaType, size, digest, urls,
 * annotations with sorted keys), so manifests we build look like cosign's.
 */
function descriptorJson(descriptor: Descriptor): Record<string, unknown> {
  return {
    mediaType: descriptor.mediaType,
    size: descriptor.size,
    digest: descriptor.digest,
    ...(descriptor.urls && descriptor.urls.length > 0 ? { urls: descriptor.urls } : {}),
    ...(descriptor.annotations && Object.keys(descriptor.annotations).length > 0
      ? { annotations: sortedRecord(descriptor.annotations) }
      : {}),
  };
}

/** A blob held in memory: a payload, a config, an SBOM. */
export interface BlobContent {
  readonly descriptor: Descriptor;
  readonly bytes: Uint8Array;
}

/** A manifest we built, with the config blob it needs (layers come from elsewhere). */
export interface BuiltLayerSet {
  readonly manifest: ManifestContent;
  readonly config: BlobContent;
  readonly layers: readonly Descriptor[];
}

/**
 * go-containerregistry's config for an image made by appending static layers to `empty.Image`,
 * which is how cosign builds `.sig` and `.att` images: no platform, the zero time, one history
 * entry per layer, and each layer's digest as its diff ID (the layers are not compressed).
 * cosign may set `created` to the signing time; we keep the zero time so the same layers always
 * give the same bytes.
 */
function layerSetConfig(layers: readonly Descriptor[]): Uint8Array {
  const zeroTime = "0001-01-01T00:00:00Z";
  const config = {
    architecture: "",
    created: zeroTime,
    history: layers.map(() => ({ created: zeroTime })),
    os: "",
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) },
    config: {},
  };
  return new TextEncoder().encode(JSON.stringify(config));
}

/**
 * The OCI image manifest cosign would write for these layers: config
 * `application/vnd.oci.image.config.v1+json`, layers in the given order. Deterministic.
 */
export function buildLayerSet(layers: readonly Descriptor[]): BuiltLayerSet {
  if (layers.length === 0)
    throw new SignError("sign-format", "a signature manifest needs at least one layer");
  if (layers.length > MAX_SIGNATURE_LAYERS) {
    throw new SignError("sign-format", `a signature manifest holds at most ${MAX_SIGNATURE_LAYERS} layers`);
  }
  const configBytes = layerSetConfig(layers);
  const config: BlobContent = {
    descriptor: {
      mediaType: MediaType.ociImageConfig,
      digest: digestOf(configBytes),
      size: configBytes.length,
    },
    bytes: configBytes,
  };
  const document = {
    schemaVersion: 2,
    mediaType: MediaType.ociImageManifest,
    config: descriptorJson(config.descriptor),
    layers: layers.map(descriptorJson),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(document));
  return {
    manifest: { digest: digestOf(bytes), mediaType: MediaType.ociImageManifest, bytes },
    config,
    layers,
  };
}

/** The layers of a `.sig` or `.att` manifest read from a registry. */
export interface ParsedLayerSet {
  readonly manifest: ManifestContent;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export function parseLayerSet(content: ManifestContent, where: string): ParsedLayerSet {
  const parsed = parseManifest(content.bytes, content.mediaType, where);
  if (parsed.kind !== "manifest") {
    throw new SignError(
      "sign-format",
      `${where}: an attached signature must be an image manifest, not an index`,
    );
  }
  if (parsed.layers.length > MAX_SIGNATURE_LAYERS) {
    throw new SignError("sign-format", `${where}: more than ${MAX_SIGNATURE_LAYERS} layers`);
  }
  return { manifest: content, config: parsed.config, layers: parsed.layers };
}

/**
 * Two layers are the same signature when they have the same payload and the same annotations
 * (signature, certificate, bundle): the same payload signed twice is two signatures.
 */
export function layerKey(layer: Descriptor): string {
  return `${layer.mediaType}\u0000${layer.digest}\u0000${JSON.stringify(sortedRecord(layer.annotations ?? {}))}`;
}

/** The union of layer lists, in order of first appearance, each signature once. */
export function mergeLayers(lists: readonly (readonly Descriptor[])[]): Descriptor[] {
  const seen = new Set<string>();
  const merged: Descriptor[] = [];
  for (const list of lists) {
    for (const layer of list) {
      const key = layerKey(layer);
      if (seen.has(key)) continue;
      seen.add(key);
      merged.push(layer);
    }
  }
  return merged;
}

/** Whether `container` holds every layer of `wanted`. */
export function containsLayers(container: readonly Descriptor[], wanted: readonly Descriptor[]): boolean {
  const keys = new Set(container.map(layerKey));
  return wanted.every((layer) => keys.has(layerKey(layer)));
}

/** A simple-signing layer descriptor for a payload and its signature annotations. */
export function signatureLayer(
  payload: Uint8Array,
  annotations: Readonly<Record<string, string>>,
): BlobContent {
  return {
    descriptor: {
      mediaType: CosignMediaType.simpleSigning,
      digest: digestOf(payload),
      size: payload.length,
      annotations: sortedRecord(annotations),
    },
    bytes: payload,
  };
}
