import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeImage, makeReferrer, pushToStore } from "../../test/support/test-images.js";
import { PROMOTION_PREDICATE_TYPE } from "../provenance/index.js";
import { attachmentTag, type RepositoryPath } from "../reference/index.js";
import { countingStore } from "../registry/counting-store.js";
import { openOciLayoutRepository } from "../registry/oci-layout/index.js";
import { RequestCounter } from "../registry/transport/request-counter.js";
import { attestationLayer } from "./attestation-format.js";
import {
  boundedCandidates,
  BUNDLE_MEDIA_TYPE,
  BundleAnnotation,
  MAX_BUNDLE_CANDIDATES,
} from "./bundle-format.js";
import { buildLayerSet } from "./cosign-format.js";
import { checkPromotionAttestation } from "./verify-attestations.js";

/**
 * A repository's referrers list and `.att` manifest are the registry's answer: a compromised
 * mirror can name thousands of lookalikes of our predicate type. Verification reads at most
 * MAX_BUNDLE_CANDIDATES of each (the planner's bound) and says that the list was cut.
 */

describe("boundedCandidates", () => {
  it("keeps a short list whole and says nothing", () => {
    const listed = Array.from({ length: MAX_BUNDLE_CANDIDATES }, (_, i) => i);
    expect(boundedCandidates(listed, "the list")).toEqual({ read: listed });
  });

  it("keeps the first MAX_BUNDLE_CANDIDATES of a longer list and says how many were left", () => {
    const listed = Array.from({ length: 3000 }, (_, i) => i);
    const { read, cut } = boundedCandidates(listed, "the list");
    expect(read).toEqual(listed.slice(0, MAX_BUNDLE_CANDIDATES));
    expect(cut).toBe(
      `the list names 3000; read the first ${MAX_BUNDLE_CANDIDATES}, the other ${3000 - MAX_BUNDLE_CANDIDATES} unread`,
    );
  });
});

describe("checkPromotionAttestation against a flood of lookalike referrers", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "verify-attestations-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

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
        makeReferrer({
          subject: image.descriptor,
          artifactType: BUNDLE_MEDIA_TYPE,
          seed: `lookalike-${i}`,
          annotations: { [BundleAnnotation.predicateType]: PROMOTION_PREDICATE_TYPE },
        }),
      );
    }
    const counter = new RequestCounter();
    const store = countingStore(layout, counter, "layout");
    const check = await checkPromotionAttestation(store, image.digest, "promotion", { keys: [] });
    expect(check.status).toBe("invalid");
    // One referrers listing, one `.att` tag lookup, and a manifest GET per candidate read.
    expect(counter.snapshot().get("layout")?.byMethod.GET).toBe(2 + MAX_BUNDLE_CANDIDATES);
    expect(check.reasons[0]).toBe(
      `the referrers list of ${PROMOTION_PREDICATE_TYPE} bundles names ${LISTED}; read the first ${MAX_BUNDLE_CANDIDATES}, the other ${LISTED - MAX_BUNDLE_CANDIDATES} unread`,
    );
    expect(check.reasons).toHaveLength(1 + MAX_BUNDLE_CANDIDATES);
  });

  it("reads MAX_BUNDLE_CANDIDATES layers of a flooded .att manifest, and says so", async () => {
    const layout = openOciLayoutRepository({
      kind: "oci-layout",
      directory: root,
      repository: "team/app" as RepositoryPath,
    });
    const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "flooded-att" });
    await pushToStore(layout, image, ["v1"]);
    const LISTED = 3 * MAX_BUNDLE_CANDIDATES;
    const layers = Array.from({ length: LISTED }, (_, i) =>
      attestationLayer(new TextEncoder().encode(`{"lookalike":${i}}`), PROMOTION_PREDICATE_TYPE),
    );
    const set = buildLayerSet(layers.map((layer) => layer.descriptor));
    for (const blob of [set.config, ...layers]) {
      await layout.putBlob(blob.descriptor, Readable.from([Buffer.from(blob.bytes)]));
    }
    const tag = attachmentTag(image.digest, "att");
    await layout.putManifest(set.manifest, tag);
    const counter = new RequestCounter();
    const store = countingStore(layout, counter, "layout");
    const check = await checkPromotionAttestation(store, image.digest, "promotion", { keys: [] });
    expect(check.status).toBe("invalid");
    // The referrers listing, the `.att` manifest, and one envelope GET per layer read.
    expect(counter.snapshot().get("layout")?.byMethod.GET).toBe(2 + MAX_BUNDLE_CANDIDATES);
    expect(check.reasons[0]).toBe(
      `${tag} (${PROMOTION_PREDICATE_TYPE} layers) names ${LISTED}; read the first ${MAX_BUNDLE_CANDIDATES}, the other ${LISTED - MAX_BUNDLE_CANDIDATES} unread`,
    );
    expect(check.reasons).toHaveLength(1 + MAX_BUNDLE_CANDIDATES);
  });
});
