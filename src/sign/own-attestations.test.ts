import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  PROMOTION_PREDICATE_TYPE,
  promotionStatement,
  statementBytes,
  VSA_PREDICATE_TYPE,
} from "../provenance/index.js";
import { digestOf } from "../reference/index.js";
import { attestationLayer, envelopeBytesOfBundle } from "./attestation-format.js";
import { signingStatement } from "./bundle-format.js";
import { CosignAnnotation } from "./cosign-format.js";
import { parseSigningKey } from "./keys.js";
import { createKeySigner } from "./signer.js";

/**
 * Which attestations a key signer takes for its own (a re-run copies those instead of attesting
 * again): the bundle or `.att` envelope must verify with its key and hold an in-toto statement
 * of the asked predicate type about the digest; an `.att` layer must carry only our annotations.
 * Keyless recognition runs against the stand-ins in keyless.test.ts.
 */

const DIGEST = digestOf("image");
const IDENTITY = "registry.example.io/project/app";

function signerOf() {
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return createKeySigner(
    parseSigningKey(pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), "test.key"),
  );
}

const ours = signerOf();
const theirs = signerOf();

function record(digest = DIGEST): Uint8Array {
  return statementBytes(
    promotionStatement({
      digest,
      srcRef: `staging.example/app@${digest}`,
      dstRef: `${IDENTITY}@${digest}`,
      timestamp: "2026-12-05T19:00:00.000Z",
      promoterVersion: "0.1.0",
      review: { manifest: { path: "images.yaml", line: 4 } },
    }),
  );
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe("our own attestations (key)", () => {
  it("takes a bundle for ours only when our key signed a statement of that type about the digest", async () => {
    const own = ours.ownSignatures;
    const bundle = encode(await ours.signStatement(record()));
    expect(await own.attestation(bundle, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).toEqual({ ok: true });
    // The same statement type by another key (kpromo's signer, anyone's) is not ours.
    const foreign = encode(await theirs.signStatement(record()));
    expect(await own.attestation(foreign, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).toMatchObject({
      ok: false,
      reason: /another key/,
    });
    // Ours, but not what is asked: another predicate type, another digest, a signature.
    expect(await own.attestation(bundle, DIGEST, VSA_PREDICATE_TYPE, IDENTITY)).toMatchObject({
      ok: false,
      reason: /predicate type/,
    });
    expect((await own.attestation(bundle, digestOf("other"), PROMOTION_PREDICATE_TYPE, IDENTITY)).ok).toBe(
      false,
    );
    const signature = encode(await ours.signStatement(signingStatement(DIGEST, IDENTITY)));
    expect((await own.attestation(signature, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).ok).toBe(false);
    // An altered payload under our signature does not verify.
    const altered = JSON.parse(new TextDecoder().decode(bundle)) as { dsseEnvelope: { payload: string } };
    altered.dsseEnvelope.payload = Buffer.from(record(digestOf("other"))).toString("base64");
    expect(
      (await own.attestation(encode(altered), digestOf("other"), PROMOTION_PREDICATE_TYPE, IDENTITY)).ok,
    ).toBe(false);
  });

  it("takes ours only when it names this image: the same digest under another name is another image's", async () => {
    const own = ours.ownSignatures;
    const elsewhere = statementBytes(
      promotionStatement({
        digest: DIGEST,
        srcRef: `staging.example/app@${DIGEST}`,
        dstRef: `old.example.io/project/app@${DIGEST}`,
        timestamp: "2026-12-05T19:00:00.000Z",
        promoterVersion: "0.1.0",
      }),
    );
    const bundle = encode(await ours.signStatement(elsewhere));
    expect(
      await own.attestation(bundle, DIGEST, PROMOTION_PREDICATE_TYPE, "old.example.io/project/app"),
    ).toEqual({
      ok: true,
    });
    expect(await own.attestation(bundle, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).toMatchObject({
      ok: false,
      reason: /is about old\.example\.io\/project\/app, not/,
    });
    const envelope = envelopeBytesOfBundle(await ours.signStatement(elsewhere));
    const layer = attestationLayer(envelope, PROMOTION_PREDICATE_TYPE);
    expect(
      (await own.attestationLayer(layer.descriptor, envelope, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).ok,
    ).toBe(false);
    // The subject's name right but the reference inside another: not ours either.
    const mixed = JSON.parse(new TextDecoder().decode(record())) as { predicate: Record<string, unknown> };
    mixed.predicate.dstRef = `old.example.io/project/app@${DIGEST}`;
    const mixedBundle = encode(await ours.signStatement(encode(mixed)));
    expect(await own.attestation(mixedBundle, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).toMatchObject({
      ok: false,
      reason: /does not name/,
    });
  });

  it("takes an .att layer for ours only with our envelope and exactly the annotations we write", async () => {
    const own = ours.ownSignatures;
    const envelope = envelopeBytesOfBundle(await ours.signStatement(record()));
    const layer = attestationLayer(envelope, PROMOTION_PREDICATE_TYPE);
    expect(layer.descriptor.annotations).toEqual({
      [CosignAnnotation.signature]: "",
      predicateType: PROMOTION_PREDICATE_TYPE,
    });
    expect(
      await own.attestationLayer(layer.descriptor, envelope, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY),
    ).toEqual({
      ok: true,
    });

    const foreign = envelopeBytesOfBundle(await theirs.signStatement(record()));
    const theirLayer = attestationLayer(foreign, PROMOTION_PREDICATE_TYPE);
    expect(
      await own.attestationLayer(theirLayer.descriptor, foreign, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY),
    ).toMatchObject({ ok: false, reason: /does not verify with our key/ });

    const decorated = { ...layer.descriptor, annotations: { ...layer.descriptor.annotations, extra: "x" } };
    expect(
      await own.attestationLayer(decorated, envelope, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY),
    ).toMatchObject({
      ok: false,
      reason: /annotations we do not write: extra/,
    });
    const mislabelled = attestationLayer(envelope, VSA_PREDICATE_TYPE);
    expect(
      (await own.attestationLayer(mislabelled.descriptor, envelope, DIGEST, VSA_PREDICATE_TYPE, IDENTITY)).ok,
    ).toBe(false);
    const signed = {
      ...layer.descriptor,
      annotations: { ...layer.descriptor.annotations, [CosignAnnotation.signature]: "MEUC" },
    };
    expect(
      (await own.attestationLayer(signed, envelope, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).ok,
    ).toBe(false);
    // The blob must be the layer's: another envelope under our descriptor is refused.
    expect(
      (await own.attestationLayer(layer.descriptor, foreign, DIGEST, PROMOTION_PREDICATE_TYPE, IDENTITY)).ok,
    ).toBe(false);
    expect(
      (
        await own.attestationLayer(
          layer.descriptor,
          envelope,
          digestOf("other"),
          PROMOTION_PREDICATE_TYPE,
          IDENTITY,
        )
      ).ok,
    ).toBe(false);
  });
});
