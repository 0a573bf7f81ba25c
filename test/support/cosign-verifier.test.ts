import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cosignSignatureTag, verifyCosignSignature } from "./cosign-verifier.js";
import { sha256Digest } from "./test-images.js";

/**
 * The independent verifier must be able to fail: signatures built here by hand (no project code)
 * pass, and each kind of damage fails.
 */

const IMAGE_DIGEST = sha256Digest("the image");
const OTHER_DIGEST = sha256Digest("another image");
const IDENTITY = "registry.example.io/project/app";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "cosign-verifier-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function keyPair(): { privateKey: KeyObject; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString() };
}

function payloadFor(digest: string, identity: string, type = "cosign container image signature"): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": identity },
        image: { "docker-manifest-digest": digest },
        type,
      },
      optional: null,
    }),
  );
}

interface Layer {
  payload: Buffer;
  signature: string;
  /** Store these bytes as the blob instead of the payload (a changed payload). */
  storedPayload?: Buffer;
}

async function writeSignatureLayout(subject: string, layers: Layer[]): Promise<string> {
  const layout = path.join(dir, "repo");
  await mkdir(path.join(layout, "blobs", "sha256"), { recursive: true });
  const put = async (bytes: Buffer): Promise<string> => {
    const digest = sha256Digest(bytes);
    await writeFile(path.join(layout, "blobs", "sha256", digest.slice(7)), bytes);
    return digest;
  };
  const config = Buffer.from("{}");
  const configDigest = await put(config);
  const descriptors = [];
  for (const layer of layers) {
    const digest = sha256Digest(layer.payload);
    await writeFile(
      path.join(layout, "blobs", "sha256", digest.slice(7)),
      layer.storedPayload ?? layer.payload,
    );
    descriptors.push({
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      size: layer.payload.length,
      digest,
      annotations: { "dev.cosignproject.cosign/signature": layer.signature },
    });
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        size: config.length,
        digest: configDigest,
      },
      layers: descriptors,
    }),
  );
  const manifestDigest = await put(manifest);
  await writeFile(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    path.join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: manifestDigest,
          size: manifest.length,
          annotations: { "org.opencontainers.image.ref.name": cosignSignatureTag(subject) },
        },
      ],
    }),
  );
  return layout;
}

function signed(privateKey: KeyObject, payload: Buffer): Layer {
  return { payload, signature: sign("sha256", payload, privateKey).toString("base64") };
}

describe("independent cosign verifier", () => {
  it("accepts a valid signature and names the .sig manifest digest", async () => {
    const key = keyPair();
    const layout = await writeSignatureLayout(IMAGE_DIGEST, [
      signed(key.privateKey, payloadFor(IMAGE_DIGEST, IDENTITY)),
    ]);
    const check = await verifyCosignSignature({ kind: "layout", directory: layout }, IMAGE_DIGEST, {
      publicKeyPem: key.publicKeyPem,
      identity: IDENTITY,
    });
    expect(check.ok).toBe(true);
    expect(check.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("fails without a .sig, with a changed payload, another key, another digest, another identity or type", async () => {
    const key = keyPair();
    const other = keyPair();
    const location = { kind: "layout" as const, directory: path.join(dir, "repo") };
    const expectation = { publicKeyPem: key.publicKeyPem, identity: IDENTITY };

    expect((await verifyCosignSignature(location, IMAGE_DIGEST, expectation)).reason).toMatch(
      /no sha256-.*\.sig/,
    );

    const good = signed(key.privateKey, payloadFor(IMAGE_DIGEST, IDENTITY));
    const cases: [Layer, RegExp][] = [
      [
        { ...good, storedPayload: payloadFor(IMAGE_DIGEST, "evil.example/app") },
        /does not match the layer digest/,
      ],
      [signed(other.privateKey, payloadFor(IMAGE_DIGEST, IDENTITY)), /does not verify/],
      [signed(key.privateKey, payloadFor(OTHER_DIGEST, IDENTITY)), /names digest/],
      [signed(key.privateKey, payloadFor(IMAGE_DIGEST, "registry.example.io/other")), /names identity/],
      [signed(key.privateKey, payloadFor(IMAGE_DIGEST, IDENTITY, "something else")), /payload type/],
      [{ payload: good.payload, signature: good.signature.slice(0, -8) + "AAAAAAA=" }, /does not verify/],
    ];
    for (const [layer, reason] of cases) {
      await rm(location.directory, { recursive: true, force: true });
      await writeSignatureLayout(IMAGE_DIGEST, [layer]);
      const check = await verifyCosignSignature(location, IMAGE_DIGEST, expectation);
      expect(check.ok).toBe(false);
      expect(check.reason).toMatch(reason);
    }
  });

  it("passes when one of several layers is valid", async () => {
    const key = keyPair();
    const other = keyPair();
    const layout = await writeSignatureLayout(IMAGE_DIGEST, [
      signed(other.privateKey, payloadFor(IMAGE_DIGEST, IDENTITY)),
      signed(key.privateKey, payloadFor(IMAGE_DIGEST, IDENTITY)),
    ]);
    const check = await verifyCosignSignature({ kind: "layout", directory: layout }, IMAGE_DIGEST, {
      publicKeyPem: key.publicKeyPem,
      identity: IDENTITY,
    });
    expect(check.ok).toBe(true);
    expect(check.layers.map((layer) => layer.ok)).toEqual([false, true]);
  });
});
