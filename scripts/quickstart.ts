/**
 * The quickstart: a promotion between local OCI image layout directories, no server needed.
 *
 *   npm run quickstart
 *
 * 1. builds a "staging" layout tree with three images (one multi-arch index of amd64 + arm64),
 *    written through the library's own OCI layout store;
 * 2. writes a promotion manifest that promotes them to two "mirror" layout trees;
 * 3. runs the real CLI: validate, a dry-run plan, the promotion (--confirm), and a second run that
 *    finds nothing to do.
 *
 * Everything lands in ./quickstart/ (or the folder given as the first argument).
 */
import { spawnSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseRepositoryPath, parseTag, type Tag } from "../src/reference/index.js";
import { createStoreProvider } from "../src/registry/index.js";
import { makeImage, makeIndex, pushToStore, type TestContent } from "../test/support/test-images.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const target = path.resolve(process.argv[2] ?? "quickstart");

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

function promoter(...args: string[]): number {
  console.log(`\n$ promoter ${args.join(" ")}`);
  const result = spawnSync(process.execPath, [path.join(repoRoot, "bin", "promoter.js"), ...args], {
    cwd: target,
    stdio: "inherit",
  });
  return result.status ?? 1;
}

async function main(): Promise<void> {
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
  await writeFile(path.join(target, "promoter-manifest.yaml"), manifest);
  console.log(`Staging layouts and promoter-manifest.yaml written to ${target}`);

  const steps: [string[], number][] = [
    [["validate", "--manifest", "promoter-manifest.yaml"], 0],
    [["promote", "--manifest", "promoter-manifest.yaml"], 0],
    [["promote", "--manifest", "promoter-manifest.yaml", "--confirm"], 0],
    [["promote", "--manifest", "promoter-manifest.yaml", "--confirm"], 0],
  ];
  for (const [args, expected] of steps) {
    const status = promoter(...args);
    if (status !== expected) {
      console.error(`\nquickstart: "promoter ${args.join(" ")}" exited ${status}, expected ${expected}`);
      process.exit(1);
    }
  }
  console.log(`\nDone. The mirrors are OCI layouts, readable by other tools, e.g.:
  skopeo inspect --raw oci:${path.join(target, "mirror-eu", "web")}:1.0.0`);
}

await main();
