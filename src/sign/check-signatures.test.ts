import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeImage, makeReferrer, pushToStore } from "../../test/support/test-images.js";
import type { RepositoryPath } from "../reference/index.js";
import { countingStore } from "../registry/counting-store.js";
import { openOciLayoutRepository } from "../registry/oci-layout/index.js";
import { RequestCounter } from "../registry/transport/request-counter.js";
import { BUNDLE_MEDIA_TYPE, MAX_BUNDLE_CANDIDATES } from "./bundle-format.js";
import { checkSignatures } from "./check-signatures.js";
import { parseVerificationKey } from "./keys.js";

/**
 * `promoter verify` and the source policy read signing bundle referrers from the referrers list,
 * the registry's answer: a flood of lookalikes costs at most MAX_BUNDLE_CANDIDATES manifest
 * reads, and the reasons say that the list was cut.
 */

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "check-signatures-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("checkSignatures against a flood of lookalike signing bundles", () => {
  it("reads MAX_BUNDLE_CANDIDATES of them, and the result says the list was cut", async () => {
    const layout = openOciLayoutRepository({
      kind: "oci-layout",
      directory: root,
      repository: "team/app" as RepositoryPath,
    });
    const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "flooded" });
    await pushToStore(layout, image, ["v1"]);
    const LISTED = 3 * MAX_BUNDLE_CANDIDATES;
    for (let i = 0; i < LISTED; i++) {
      await pushToStore(
        layout,
        makeReferrer({ subject: image.descriptor, artifactType: BUNDLE_MEDIA_TYPE, seed: `lookalike-${i}` }),
      );
    }
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const key = parseVerificationKey(
      pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
      "release.pub",
    );
    const counter = new RequestCounter();
    const store = countingStore(layout, counter, "layout");
    const check = await checkSignatures(store, image.digest, { keys: [key] });
    expect(check.status).toBe("invalid");
    // The `.sig` tag lookup, one referrers listing, and a manifest GET per candidate read.
    expect(counter.snapshot().get("layout")?.byMethod.GET).toBe(2 + MAX_BUNDLE_CANDIDATES);
    expect(check.reasons[0]).toBe(
      `the referrers list of signing bundles names ${LISTED}; read the first ${MAX_BUNDLE_CANDIDATES}, the other ${LISTED - MAX_BUNDLE_CANDIDATES} unread`,
    );
  });
});
