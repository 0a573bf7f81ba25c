import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy } from "../../test/support/fault-proxy.js";
import { startRegistry, type TestRegistry } from "../../test/support/registry-harness.js";
import { makeImage, makeReferrer, pushToStore, type TestImage } from "../../test/support/test-images.js";
import { digestHex, parseRepositoryPath, parseTag, type RegistryHost } from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import { copyGraphs } from "./index.js";

/**
 * A root the run writes goes up by its first tag, one PUT that stores and tags it. What the
 * outcome says of that tag must be what the registry holds, whatever the PUT's answer: "no tag
 * was written unless listed in `tagsWritten`" (task.ts). Against distribution, directly and
 * through a proxy that loses or refuses the answers to the tagged PUT.
 */

let registry: TestRegistry;
const providers: RegistryStoreProvider[] = [];
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  registry = await startRegistry();
}, 60_000);

afterAll(async () => {
  await Promise.all(providers.map((provider) => provider.close()));
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  await registry.stop();
});

function storeAt(host: string, repository: string) {
  // One attempt per request: the engine's own attempts are what these tests look at.
  const provider = createStoreProvider({ credentialSources: [], env: {}, retry: { maxAttempts: 1 } });
  providers.push(provider);
  return provider.repository({
    kind: "remote",
    host: host as RegistryHost,
    repository: parseRepositoryPath(repository),
  });
}

async function stagedImage(name: string): Promise<TestImage> {
  const image = makeImage({ seed: name, layers: 1, layerSize: 256, mediaTypes: "oci" });
  await pushToStore(storeAt(registry.host, `staging/${name}`), image);
  return image;
}

async function copyOne(name: string, image: TestImage, destinationHost: string) {
  const [outcome] = await copyGraphs(
    [
      {
        id: name,
        source: storeAt(registry.host, `staging/${name}`),
        digest: image.digest,
        destinations: [{ store: storeAt(destinationHost, `prod/${name}`), tags: [parseTag("v1")] }],
      },
    ],
    { writeAttempts: 1 },
  );
  const direct = storeAt(registry.host, `prod/${name}`);
  return { outcome, tag: await direct.resolve(parseTag("v1")), byDigest: await direct.resolve(image.digest) };
}

/**
 * Copies a staged image to `prod/<name>` through a proxy that answers every PUT of the tag `v1`
 * with `status`, before the registry sees it or after it stored it.
 */
async function copyAnsweringTag(name: string, status: number, when: "before" | "after") {
  const image = await stagedImage(name);
  const proxy = await FaultProxy.start({
    upstream: registry.url,
    rules: [{ method: "PUT", path: /\/manifests\/v1$/, fault: { kind: "status", status, when } }],
  });
  proxies.push(proxy);
  const copied = await copyOne(name, image, proxy.host);
  const putsByDigest = proxy.events.filter(
    (event) => event.method === "PUT" && event.path.includes("/manifests/sha256:"),
  );
  return { ...copied, image, putsByDigest };
}

describe("a root written by its tag", () => {
  it("is done when its answer was lost but the registry stored it: the tag is asked, and reported", async () => {
    const { outcome, tag, image, putsByDigest } = await copyAnsweringTag("lost-answer", 500, "after");
    expect(outcome).toMatchObject({ status: "copied", tagsWritten: ["v1"] });
    expect(tag?.digest).toBe(image.digest);
    // Not written a second time by digest: the tag's answer settled it.
    expect(putsByDigest).toEqual([]);
  });

  it("fails as the root's failure when the registry did not store it, without a second write by digest", async () => {
    const { outcome, tag, byDigest, putsByDigest } = await copyAnsweringTag("server-error", 503, "before");
    expect(outcome).toMatchObject({ status: "failed", tagsWritten: [] });
    expect(outcome?.error?.message).toMatch(/503/);
    expect(tag).toBeUndefined();
    expect(byDigest).toBeUndefined();
    expect(putsByDigest).toEqual([]);
  });

  it("falls back to the digest when the registry refuses the tag (4xx), and the tag fails alone", async () => {
    const { outcome, tag, byDigest, image } = await copyAnsweringTag("refused-tag", 409, "before");
    expect(outcome).toMatchObject({ status: "failed", tagsWritten: [] });
    expect(outcome?.error?.message).toMatch(/tag v1 of manifest/);
    expect(tag).toBeUndefined();
    expect(byDigest?.digest).toBe(image.digest);
  });

  it("is not used for a manifest with a subject, whose write also records the referrer and may fail after storing it", async () => {
    const subject = makeImage({ seed: "subject", layers: 1, layerSize: 256, mediaTypes: "oci" });
    const referrer = makeReferrer({
      subject: subject.descriptor,
      artifactType: "application/x-test",
      seed: "ref",
    });
    await pushToStore(storeAt(registry.host, "staging/referrer"), referrer);
    // distribution 2.8 has no referrers API: a PUT of a manifest with a subject also updates the
    // `sha256-<subject>` fallback tag, which here names an image, not an index, so it fails.
    await pushToStore(
      storeAt(registry.host, "prod/referrer"),
      makeImage({ seed: "junk", layers: 1, layerSize: 64, mediaTypes: "oci" }),
      [`sha256-${digestHex(subject.digest)}`],
    );
    const { outcome, tag } = await copyOne("referrer", referrer, registry.host);
    expect(outcome).toMatchObject({ status: "failed", tagsWritten: [] });
    expect(tag).toBeUndefined();
  });
});
