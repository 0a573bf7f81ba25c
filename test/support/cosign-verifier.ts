/**
 * An independent check of cosign signatures, written from cosign's published layout and NOT
 * using the project's signing code (src/sign) or its registry client: plain HTTP for registries,
 * plain `fs` for OCI layouts, `node:crypto` for ECDSA.
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 *
 * For `repo@sha256:<hex>` it fetches `repo:sha256-<hex>.sig`, and for each layer of type
 * `application/vnd.dev.cosign.simplesigning.v1+json`: fetches the payload blob and checks that it
 * hashes to the layer digest, verifies the ECDSA-SHA256 signature (base64 DER in the annotation
 * `dev.cosignproject.cosign/signature`) over the payload bytes with the public key, and checks the
 * payload's `critical.type`, `critical.image.docker-manifest-digest` and
 * `critical.identity.docker-reference`.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as path from "node:path";

const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const PAYLOAD_TYPE = "cosign container image signature";
const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");

/** Where a repository is: a registry reached over plain HTTP, or an OCI layout directory. */
export type VerifierLocation =
  | { readonly kind: "registry"; readonly baseUrl: string; readonly repository: string }
  | { readonly kind: "layout"; readonly directory: string };

export interface LayerResult {
  readonly layerDigest: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly identity?: string;
}

export interface CosignCheck {
  /** Whether at least one layer is a valid signature of the digest with the expected identity. */
  readonly ok: boolean;
  /** Why not, when not ok (no `.sig`, or each layer's reason). */
  readonly reason?: string;
  /** The digest of the `.sig` manifest (sha256 of its bytes), when there is one. */
  readonly manifestDigest?: string;
  readonly layers: readonly LayerResult[];
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function fetchBytes(url: string, accept?: string): Promise<Buffer | undefined> {
  const response = await fetch(url, accept ? { headers: { accept } } : {});
  if (response.status === 404) {
    await response.arrayBuffer();
    return undefined;
  }
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Manifest bytes by tag, or undefined. */
export async function readTaggedManifest(
  location: VerifierLocation,
  tag: string,
): Promise<Buffer | undefined> {
  if (location.kind === "registry") {
    return fetchBytes(`${location.baseUrl}/v2/${location.repository}/manifests/${tag}`, ACCEPT);
  }
  let index: { manifests?: { digest: string; annotations?: Record<string, string> }[] };
  try {
    index = JSON.parse(await readFile(path.join(location.directory, "index.json"), "utf8")) as typeof index;
  } catch {
    return undefined;
  }
  const entry = index.manifests?.find(
    (candidate) => candidate.annotations?.["org.opencontainers.image.ref.name"] === tag,
  );
  if (!entry) return undefined;
  return readLayoutBlob(location.directory, entry.digest);
}

async function readLayoutBlob(directory: string, digest: string): Promise<Buffer | undefined> {
  const [algorithm, hex] = digest.split(":");
  if (algorithm !== "sha256" || !hex || !/^[0-9a-f]{64}$/.test(hex)) return undefined;
  try {
    return await readFile(path.join(directory, "blobs", "sha256", hex));
  } catch {
    return undefined;
  }
}

export async function readBlob(location: VerifierLocation, digest: string): Promise<Buffer | undefined> {
  if (location.kind === "registry")
    return fetchBytes(`${location.baseUrl}/v2/${location.repository}/blobs/${digest}`);
  return readLayoutBlob(location.directory, digest);
}

/** `sha256-<hex>.sig`, per the spec's tag-based discovery. */
export function cosignSignatureTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}

interface ManifestLayer {
  mediaType?: string;
  digest?: string;
  size?: number;
  annotations?: Record<string, string>;
}

export async function verifyCosignSignature(
  location: VerifierLocation,
  digest: string,
  expectation: { readonly publicKeyPem: string; readonly identity: string },
): Promise<CosignCheck> {
  const manifestBytes = await readTaggedManifest(location, cosignSignatureTag(digest));
  if (!manifestBytes) return { ok: false, reason: `no ${cosignSignatureTag(digest)}`, layers: [] };
  const manifestDigest = sha256(manifestBytes);
  const manifest = JSON.parse(manifestBytes.toString("utf8")) as { layers?: ManifestLayer[] };
  const publicKey = createPublicKey(expectation.publicKeyPem);
  const layers: LayerResult[] = [];
  for (const layer of manifest.layers ?? []) {
    if (layer.mediaType !== SIMPLE_SIGNING || typeof layer.digest !== "string") continue;
    const fail = (reason: string): LayerResult => ({ layerDigest: layer.digest ?? "", ok: false, reason });
    const payload = await readBlob(location, layer.digest);
    if (!payload) {
      layers.push(fail("payload blob missing"));
      continue;
    }
    if (sha256(payload) !== layer.digest || payload.length !== layer.size) {
      layers.push(fail("payload does not match the layer digest"));
      continue;
    }
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (!signature) {
      layers.push(fail("no signature annotation"));
      continue;
    }
    let verified = false;
    try {
      verified = verify("sha256", payload, publicKey, Buffer.from(signature, "base64"));
    } catch {
      verified = false;
    }
    if (!verified) {
      layers.push(fail("signature does not verify with the public key"));
      continue;
    }
    let document: {
      critical?: { type?: unknown; image?: Record<string, unknown>; identity?: Record<string, unknown> };
    };
    try {
      document = JSON.parse(payload.toString("utf8")) as typeof document;
    } catch {
      layers.push(fail("payload is not JSON"));
      continue;
    }
    const critical = document.critical ?? {};
    if (critical.type !== PAYLOAD_TYPE) {
      layers.push(fail(`payload type ${String(critical.type)}`));
      continue;
    }
    const signedDigest = critical.image?.["docker-manifest-digest"];
    if (signedDigest !== digest) {
      layers.push(fail(`payload names digest ${String(signedDigest)}`));
      continue;
    }
    const identity = critical.identity?.["docker-reference"];
    if (identity !== expectation.identity) {
      layers.push(fail(`payload names identity ${String(identity)}`));
      continue;
    }
    layers.push({ layerDigest: layer.digest, ok: true, identity });
  }
  const ok = layers.some((layer) => layer.ok);
  return {
    ok,
    manifestDigest,
    layers,
    ...(ok
      ? {}
      : {
          reason:
            layers.length === 0
              ? "no simple-signing layer"
              : layers.map((layer) => layer.reason ?? "").join("; "),
        }),
  };
}
