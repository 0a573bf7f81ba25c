import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyCosignSignature } from "../../test/support/cosign-verifier.js";
import { makeImage, makeIndex, writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { loadManifests } from "../manifest-files/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import { createKeySigner, parseSigningKey, SignError, type ImageSigner } from "../sign/index.js";
import { promote } from "./promote.js";

/**
 * Signing as part of promotion (library level): a signing step that fails after the copy leaves
 * the edges failed, and the next run signs what is missing.
 */

const amd64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "pr-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "pr-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
const publicKeyPem = key.publicKey.export({ type: "spki", format: "pem" }).toString();

let dir: string;
let provider: RegistryStoreProvider;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "promote-sign-lib-"));
  provider = createStoreProvider();
});
afterEach(async () => {
  await provider.close();
  await rm(dir, { recursive: true, force: true });
});

/** The real key signer, failing its first `failures` signatures (Fulcio or an HSM being down). */
function flakySigner(failures: number): ImageSigner & { calls: number } {
  const real = createKeySigner(
    parseSigningKey(key.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), "k"),
  );
  const signer = {
    mode: real.mode,
    description: real.description,
    verificationKey: real.verificationKey,
    ownSignatures: real.ownSignatures,
    calls: 0,
    signPayload(payload: Uint8Array) {
      signer.calls += 1;
      if (signer.calls <= failures)
        return Promise.reject(new SignError("sign-failed", "the signing service is down"));
      return real.signPayload(payload);
    },
    signStatement(statement: Uint8Array) {
      return real.signStatement(statement);
    },
  };
  return signer;
}

describe("promote with signing", () => {
  it("marks edges failed when signing fails after the copy, and the next run repairs them", async () => {
    await writeOciLayoutDirectly(path.join(dir, "staging", "app"), [{ content: multi, tag: "v1" }]);
    await writeFile(
      path.join(dir, "promoter.yaml"),
      `registries:\n- name: oci:staging\n  src: true\n- name: oci:mirror-a\n- name: oci:mirror-b\nimages:\n- name: app\n  dmap:\n    "${multi.digest}": ["v1"]\n`,
    );
    const set = await loadManifests({ manifest: path.join(dir, "promoter.yaml") }, { cwd: dir });
    const flaky = flakySigner(1);
    const first = await promote(set, {
      provider,
      confirm: true,
      signatures: { signer: flaky, attachments: "copied" },
    });
    const outcomes = first.execution?.outcomes ?? [];
    expect(outcomes).toHaveLength(2);
    for (const outcome of outcomes) {
      expect(outcome.outcome).toBe("failed");
      expect(outcome.error?.code).toBe("signature-failed");
      expect(outcome.error?.message).toMatch(
        /the image is copied, but the signature of sha256:.* could not be written: .*signing service is down/,
      );
    }
    // The copy itself completed; the children were signed (only the first signature failed).
    const mirror = (name: string) => ({ kind: "layout" as const, directory: path.join(dir, name, "app") });
    expect(
      (
        await verifyCosignSignature(mirror("mirror-a"), multi.digest, {
          publicKeyPem,
          identity: "oci:mirror-a/app",
        })
      ).ok,
    ).toBe(false);
    expect(
      (
        await verifyCosignSignature(mirror("mirror-b"), amd64.digest, {
          publicKeyPem,
          identity: "oci:mirror-a/app",
        })
      ).ok,
    ).toBe(true);

    const second = await promote(set, {
      provider,
      confirm: true,
      signatures: { signer: flaky, attachments: "copied" },
    });
    expect(second.execution?.outcomes.map((outcome) => outcome.outcome)).toEqual(["unchanged", "unchanged"]);
    expect(second.execution?.attachments?.map((outcome) => outcome.status)).toEqual(["signed", "signed"]);
    for (const name of ["mirror-a", "mirror-b"]) {
      for (const digest of [multi.digest, amd64.digest, arm64.digest]) {
        const check = await verifyCosignSignature(mirror(name), digest, {
          publicKeyPem,
          identity: "oci:mirror-a/app",
        });
        expect(check.ok, `${name} ${digest}: ${check.reason ?? ""}`).toBe(true);
      }
    }
    const third = await promote(set, {
      provider,
      confirm: true,
      signatures: { signer: flaky, attachments: "copied" },
    });
    expect(third.execution?.attachments).toEqual([]);
    expect(flaky.calls).toBe(4);
  });
});
