/**
 * What the quickstart builds (scripts/quickstart.ts runs it): a "staging" tree of OCI image
 * layouts written through the library's own layout store, and a promotion manifest that promotes
 * it to two "mirror" trees, with the promoter commands the quickstart runs and the status each
 * must end with. test/e2e/quickstart.test.ts runs the same steps and holds the README to what the
 * tool says about them.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { parseRepositoryPath, parseTag, type Tag } from "../src/reference/index.js";
import { createStoreProvider } from "../src/registry/index.js";
import { makeImage, makeIndex, pushToStore, type TestContent } from "../test/support/test-images.js";

export const QUICKSTART_MANIFEST = "promoter-manifest.yaml";

/** The promoter command lines of the quickstart (run in its folder), each with its exit status. */
export const QUICKSTART_STEPS: readonly (readonly [readonly string[], number])[] = [
  [["validate", "--manifest", QUICKSTART_MANIFEST], 0],
  [["promote", "--manifest", QUICKSTART_MANIFEST], 0],
  [["promote", "--manifest", QUICKSTART_MANIFEST, "--confirm"], 0],
  [["promote", "--manifest", QUICKSTART_MANIFEST, "--confirm"], 0],
];

async function writeImage(
  directory: string,
  image: string,
  content: TestContent,
  tags: Tag[],
): Promise<void> {
  const provider = createStoreProvider();
  const store = provider.repository({
    kind: "oci-layout",
    directory,
    repository: parseRepositoryPath(image),
  });
  await pushToStore(store, content, tags);
  await provider.close();
}

/**
 * Writes `target/staging` and `target/promoter-manifest.yaml` (removing whatever `target` held):
 * two images, `web` (a multi-arch index of amd64 and arm64, tagged 1.0.0 and 1.0) and `worker`
 * (one tagged manifest and one promoted by digest only), so three digests.
 */
export async function writeQuickstart(target: string): Promise<void> {
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  const staging = path.join(target, "staging");

  const amd64 = makeImage({
    layers: 2,
    layerSize: 64 * 1024,
    mediaTypes: "oci",
    seed: "web-amd64",
    platform: { architecture: "amd64", os: "linux" },
  });
  const arm64 = makeImage({
    layers: 2,
    layerSize: 64 * 1024,
    mediaTypes: "oci",
    seed: "web-arm64",
    platform: { architecture: "arm64", os: "linux", variant: "v8" },
  });
  const web = makeIndex([amd64, arm64], { mediaType: "oci" });
  const worker = makeImage({ layers: 1, layerSize: 32 * 1024, mediaTypes: "oci", seed: "worker" });
  const debug = makeImage({ layers: 1, layerSize: 16 * 1024, mediaTypes: "oci", seed: "worker-debug" });

  await writeImage(staging, "web", web, [parseTag("build-41")]);
  await writeImage(staging, "worker", worker, [parseTag("build-41")]);
  await writeImage(staging, "worker", debug, []);

  const manifest = `# A promotion manifest: the staging registry and its production mirrors, then the images.
# Registries named oci:DIR are local OCI image layout trees (one layout per image under DIR).
registries:
- name: oci:staging
  src: true
- name: oci:mirror-eu
- name: oci:mirror-us

images:
- name: web          # a multi-arch index (amd64 + arm64)
  dmap:
    "${web.digest}": ["1.0.0", "1.0"]
- name: worker
  dmap:
    "${worker.digest}": ["1.0.0"]
    "${debug.digest}": []   # promoted by digest only, without a tag
`;
  await writeFile(path.join(target, QUICKSTART_MANIFEST), manifest);
}
