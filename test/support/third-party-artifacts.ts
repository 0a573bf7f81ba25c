/**
 * Artifacts that the real third-party tools made (cosign signatures and bundles, sigstore
 * bundles, Trivy and Grype reports), taken from those tools' public repositories. They are not
 * part of this repository: they live in the steering repository's shared folder, seen from here
 * as `../shared/third-party` (each file's repository, commit, path and license are in its
 * `SOURCES.md`). `IMAGE_PROMOTER_THIRD_PARTY` names another folder. Tests that need them skip,
 * saying so, when the folder is absent.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as path from "node:path";

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, "../..");

/** The folder holding the third-party artifacts. */
export const THIRD_PARTY_ROOT =
  process.env.IMAGE_PROMOTER_THIRD_PARTY ?? path.resolve(REPOSITORY_ROOT, "../shared/third-party");

/** Absolute path of an artifact, `relative` to {@link THIRD_PARTY_ROOT}. */
export function thirdPartyPath(relative: string): string {
  return path.join(THIRD_PARTY_ROOT, relative);
}

/** Whether every named artifact is there (describe.skipIf(!hasThirdParty(...))). */
export function hasThirdParty(...relative: string[]): boolean {
  return relative.every((file) => existsSync(thirdPartyPath(file)));
}

/** The title suffix of a suite that skips without the artifacts. */
export function thirdPartyTitle(what: string): string {
  return hasThirdParty()
    ? what
    : `${what} (skipped: no third-party artifacts at ${THIRD_PARTY_ROOT}; set IMAGE_PROMOTER_THIRD_PARTY)`;
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
