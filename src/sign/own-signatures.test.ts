import { generateKeyPairSync, sign as cryptoSign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { digestOf } from "../reference/index.js";
import { CosignAnnotation, CosignMediaType, simpleSigningPayload } from "./cosign-format.js";
import { parseVerificationKey } from "./keys.js";
import { keyOwnSignatures } from "./own-signatures.js";

/** Key-based recognition of our own layers; keyless is covered in keyless.test.ts (stand-ins). */

const IDENTITY = "registry.example.io/project/app";
const DIGEST = digestOf("image");
const ours = generateKeyPairSync("ec", { namedCurve: "P-256" });
const theirs = generateKeyPairSync("ec", { namedCurve: "P-256" });
const key = parseVerificationKey(
  ours.publicKey.export({ type: "spki", format: "pem" }).toString(),
  "release.pub",
);
const payload = simpleSigningPayload(IDENTITY, DIGEST);

function layer(signer = ours.privateKey, extra: Record<string, string> = {}) {
  return {
    mediaType: CosignMediaType.simpleSigning,
    digest: digestOf(payload),
    size: payload.length,
    annotations: {
      [CosignAnnotation.signature]: cryptoSign("sha256", payload, signer).toString("base64"),
      ...extra,
    },
  };
}

describe("key-based own signatures", () => {
  const own = keyOwnSignatures(key, { logsToRekor: false });

  it("accepts exactly the layer we write", async () => {
    expect(await own.layer(layer(), DIGEST, IDENTITY)).toEqual({ ok: true });
  });

  it("refuses another key, another identity or digest, a wrong size, and decorations", async () => {
    expect((await own.layer(layer(theirs.privateKey), DIGEST, IDENTITY)).ok).toBe(false);
    expect((await own.layer(layer(), DIGEST, "registry.example.io/project/other")).ok).toBe(false);
    expect((await own.layer(layer(), digestOf("other"), IDENTITY)).ok).toBe(false);
    expect(await own.layer({ ...layer(), size: payload.length + 1 }, DIGEST, IDENTITY)).toMatchObject({
      ok: false,
      reason: /digest or size/,
    });
    expect(await own.layer({ ...layer(), urls: ["https://x"] }, DIGEST, IDENTITY)).toMatchObject({
      ok: false,
    });
    for (const annotation of [
      CosignAnnotation.bundle,
      CosignAnnotation.certificate,
      CosignAnnotation.chain,
      CosignAnnotation.rfc3161Timestamp,
    ]) {
      expect(
        await own.layer(layer(ours.privateKey, { [annotation]: "junk" }), DIGEST, IDENTITY),
      ).toMatchObject({
        ok: false,
        reason: new RegExp(`annotations we do not write: ${annotation}`),
      });
    }
  });

  it("accepts a Rekor bundle annotation only when the signer logs to Rekor", async () => {
    const withRekor = keyOwnSignatures(key, { logsToRekor: true });
    const logged = layer(ours.privateKey, { [CosignAnnotation.bundle]: "{}" });
    expect(await withRekor.layer(logged, DIGEST, IDENTITY)).toEqual({ ok: true });
    expect((await withRekor.layer(layer(ours.privateKey, { other: "x" }), DIGEST, IDENTITY)).ok).toBe(false);
  });
});
