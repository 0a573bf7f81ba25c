import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy } from "../../../test/support/fault-proxy.js";
import { startRegistry, type TestRegistry } from "../../../test/support/registry-harness.js";
import { makeImage, pushToStore } from "../../../test/support/test-images.js";
import { parseRegistryLocation, parseRepositoryPath, repositoryIn } from "../../reference/index.js";
import { createStoreProvider } from "../index.js";

/**
 * Whether a registry has the referrers API is asked once per run, even when many referrer
 * lookups start at once (a pipelined promotion reads many digests' attachments together):
 * the others wait for the first answer. distribution 2.8 has no referrers API.
 */

let registry: TestRegistry;
let proxy: FaultProxy;
const images = Array.from({ length: 12 }, (_, i) =>
  makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: `probe-${i}` }),
);

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await FaultProxy.start({ upstream: registry.url, latencyMs: 20 });
  const seed = createStoreProvider();
  const store = seed.repository(
    repositoryIn(parseRegistryLocation(registry.host), parseRepositoryPath("app")),
  );
  for (const [i, image] of images.entries()) await pushToStore(store, image, [`v${i}`]);
  await seed.close();
}, 60_000);

afterAll(async () => {
  await proxy.stop();
  await registry.stop();
});

describe("referrers API probe", () => {
  it("asks a registry without the API once, however many lookups start together", async () => {
    const provider = createStoreProvider();
    try {
      const store = provider.repository(
        repositoryIn(parseRegistryLocation(proxy.host), parseRepositoryPath("app")),
      );
      const found = await Promise.all(images.map((image) => store.referrers(image.digest)));
      expect(found.every((list) => list.length === 0)).toBe(true);
      const referrersRequests = proxy.spans.filter((span) => span.path.includes("/referrers/"));
      expect(referrersRequests).toHaveLength(1);
      // Every lookup still got its answer from the fallback tag, one request each.
      const fallback = proxy.spans.filter((span) => /\/manifests\/sha256-[0-9a-f]{64}$/.test(span.path));
      expect(fallback).toHaveLength(images.length);
    } finally {
      await provider.close();
    }
  });

  it("skips the fallback tag a listing of the repository did not show, and reads one it did", async () => {
    const provider = createStoreProvider();
    try {
      const store = provider.repository(
        repositoryIn(parseRegistryLocation(proxy.host), parseRepositoryPath("app")),
      );
      const [first, second] = images as [(typeof images)[0], (typeof images)[0]];
      const fallbackAsked = () =>
        proxy.spans.filter((span) => /\/manifests\/sha256-[0-9a-f]{64}$/.test(span.path)).length;
      // The first lookup learns that the registry has no API; the listing is not used for that.
      await store.referrers(first.digest, { listedTags: new Set() });
      const before = fallbackAsked();
      const listed = new Set(await store.listTags());
      expect(await store.referrers(first.digest, { listedTags: listed })).toEqual([]);
      expect(fallbackAsked()).toBe(before);
      // A listing that shows the tag: it is read as always.
      const withTag = new Set([...listed, `sha256-${second.digest.slice("sha256:".length)}`]);
      expect(await store.referrers(second.digest, { listedTags: withTag })).toEqual([]);
      expect(fallbackAsked()).toBe(before + 1);
    } finally {
      await provider.close();
    }
  });
});
