/**
 * Artifacts that the real third-party tools made (cosign signatures and bundles, sigstore
 * bundles, Trivy and Grype reports), copied byte for byte from those tools' public repositories
 * into `test/fixtures/third-party` (each file's repository, commit, path and license are in its
 * `SOURCES.md`). `IMAGE_PROMOTER_THIRD_PARTY` names another folder, to try newer artifacts. They
 * are always there: a missing file fails the test that reads it.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, "../..");

/** The folder holding the third-party artifacts. */
export const THIRD_PARTY_ROOT =
  process.env.IMAGE_PROMOTER_THIRD_PARTY ?? path.join(REPOSITORY_ROOT, "test/fixtures/third-party");

/** Absolute path of an artifact, `relative` to {@link THIRD_PARTY_ROOT}. */
export function thirdPartyPath(relative: string): string {
  return path.join(THIRD_PARTY_ROOT, relative);
}

export function readThirdParty(relative: string): Promise<Buffer> {
  return readFile(thirdPartyPath(relative));
}

export async function readThirdPartyText(relative: string): Promise<string> {
  return (await readThirdParty(relative)).toString("utf8");
}

export async function readThirdPartyJson(relative: string): Promise<unknown> {
  return JSON.parse(await readThirdPartyText(relative)) as unknown;
}

/**
 * One layer of a cosign `.sig` manifest as containers/image stores it in a `dir:` image
 * (`signature-N`): the bytes `\0sigstore-json\n`, then JSON `{mimeType, payload, annotations}`
 * where `mimeType` is the layer's media type, `payload` the layer blob (base64) and
 * `annotations` the layer's annotations, exactly as cosign wrote them to the registry.
 * https://github.com/containers/image/blob/main/docs/containers-signature.5.md
 */
export interface StoredCosignLayer {
  readonly mediaType: string;
  readonly payload: Buffer;
  readonly annotations: Readonly<Record<string, string>>;
}

const SIGSTORE_SIGNATURE_PREFIX = Buffer.from("\u0000sigstore-json\n", "latin1");

export async function readStoredCosignLayer(relative: string): Promise<StoredCosignLayer> {
  const bytes = await readThirdParty(relative);
  if (!bytes.subarray(0, SIGSTORE_SIGNATURE_PREFIX.length).equals(SIGSTORE_SIGNATURE_PREFIX)) {
    throw new Error(`${relative}: not a containers/image sigstore signature`);
  }
  const document = JSON.parse(bytes.subarray(SIGSTORE_SIGNATURE_PREFIX.length).toString("utf8")) as {
    mimeType: string;
    payload: string;
    annotations: Record<string, string>;
  };
  return {
    mediaType: document.mimeType,
    payload: Buffer.from(document.payload, "base64"),
    annotations: document.annotations,
  };
}
