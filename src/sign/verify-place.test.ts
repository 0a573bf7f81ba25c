import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { promotionRecord, signedReferrer } from "../../test/support/attestations.js";
import { cosignPayload, keySignedLayer, signatureManifest } from "../../test/support/hostile-signing.js";
import { makeImage, pushToStore } from "../../test/support/test-images.js";
import { PROMOTION_PREDICATE_TYPE } from "../provenance/index.js";
import { signatureTag, type RepositoryPath } from "../reference/index.js";
import type { RepositoryStore } from "../registry/index.js";
import { openOciLayoutRepository } from "../registry/oci-layout/index.js";
import { parseVerificationKey } from "./keys.js";
import { verifiedReview, verifyPlace } from "./verify-place.js";

/**
 * `verifyPlace`: one digest in one repository (an OCI layout here, the registry client's own
 * store), its signature and promotion attestation as `promoter verify` judges them.
 */

const IDENTITY = "prod.example/team/app";
const release = generateKeyPairSync("ec", { namedCurve: "P-256" });
const other = generateKeyPairSync("ec", { namedCurve: "P-256" });
const releaseKey = parseVerificationKey(
  release.publicKey.export({ type: "spki", format: "pem" }).toString(),
  "release.pub",
);
const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "verify-place" });
const descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length };

let root: string;
let store: RepositoryStore;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "verify-place-"));
  store = openOciLayoutRepository({
    kind: "oci-layout",
    directory: root,
    repository: "team/app" as RepositoryPath,
  });
  await pushToStore(store, image, ["1.0"]);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function sign(privateKey: typeof release.privateKey, identity = IDENTITY): Promise<void> {
  await pushToStore(
    store,
    signatureManifest([keySignedLayer(privateKey, cosignPayload(identity, image.digest))]),
    [signatureTag(image.digest)],
  );
}

async function attest(approvers: string[]): Promise<void> {
  const referrer = await signedReferrer(
    release.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    promotionRecord({
      identity: IDENTITY,
      digest: image.digest,
      review: {
        manifest: { path: "manifests/team/images.yaml", line: 12 },
        pullRequest: { number: 7, approvers: approvers.map((name) => ({ name })) },
      },
    }),
    descriptor,
    PROMOTION_PREDICATE_TYPE,
  );
  for (const blob of referrer.blobs)
    await store.putBlob(blob.descriptor, Readable.from([Buffer.from(blob.bytes)]));
  await store.putManifest(referrer.manifest, referrer.manifest.digest);
}

describe("verifyPlace", () => {
  it("says missing for both when nothing is attached", async () => {
    const place = await verifyPlace(store, image.digest, { keys: [releaseKey], identity: IDENTITY });
    expect(place.signature).toMatchObject({ status: "missing", signers: [] });
    expect(place.attestation).toMatchObject({ status: "missing", signers: [], reviews: [] });
  });

  it("names the key of a valid signature, and the approvers, change and line of a verified record", async () => {
    await sign(release.privateKey);
    await attest(["carol", "<b>erin</b>"]);
    const place = await verifyPlace(store, image.digest, { keys: [releaseKey], identity: IDENTITY });
    expect(place.signature).toEqual({ status: "valid", signers: [releaseKey.keyId], reasons: [] });
    expect(place.attestation).toMatchObject({
      status: "valid",
      signers: [releaseKey.keyId],
      reviews: [
        {
          approvers: ["carol", "<b>erin</b>"],
          change: "#7",
          manifest: { path: "manifests/team/images.yaml", line: 12 },
        },
      ],
    });
  });

  it("says invalid, and why, for another key's signature or one naming another image", async () => {
    await sign(other.privateKey);
    const byOther = await verifyPlace(store, image.digest, { keys: [releaseKey], identity: IDENTITY });
    expect(byOther.signature.status).toBe("invalid");
    expect(byOther.signature.reasons.join()).toMatch(/does not verify with the public key/);
    await sign(release.privateKey, "prod.example/team/other");
    const renamed = await verifyPlace(store, image.digest, { keys: [releaseKey], identity: IDENTITY });
    expect(renamed.signature.status).toBe("invalid");
    expect(renamed.signature.reasons.join()).toContain('"prod.example/team/other"');
  });

  it("judges the approvals by verify's policy: a record short of it is unapproved, its approvers still shown", async () => {
    await attest(["carol"]);
    const place = await verifyPlace(store, image.digest, {
      keys: [releaseKey],
      identity: IDENTITY,
      approvers: { minApprovers: 2 },
    });
    expect(place.attestation.status).toBe("unapproved");
    expect(place.attestation.reviews.map((review) => review.approvers)).toEqual([["carol"]]);
  });

  it("trusts no record signed by a key it was not given", async () => {
    await attest(["carol"]);
    const otherKey = parseVerificationKey(
      other.publicKey.export({ type: "spki", format: "pem" }).toString(),
      "other.pub",
    );
    const place = await verifyPlace(store, image.digest, { keys: [otherKey], identity: IDENTITY });
    expect(place.attestation).toMatchObject({ status: "invalid", reviews: [] });
  });
});

describe("verifiedReview", () => {
  it("reads the pull request's URL (else its number) and the manifest line; ignores malformed fields", () => {
    expect(
      verifiedReview({
        review: {
          manifest: { path: "m.yaml", line: 3, uri: "git+https://git.example/m@abc#m.yaml" },
          pullRequest: { number: 9, url: "https://git.example/pull/9" },
          humanReview: { reviewers: [{ name: "carol" }, { name: "" }, { nope: 1 }] },
        },
      }),
    ).toEqual({
      approvers: ["carol"],
      change: "https://git.example/pull/9",
      manifest: { path: "m.yaml", line: 3, uri: "git+https://git.example/m@abc#m.yaml" },
    });
    expect(verifiedReview({ review: { manifest: { path: 3 }, pullRequest: "x" } })).toEqual({
      approvers: [],
    });
    expect(verifiedReview({})).toEqual({ approvers: [] });
  });
});
