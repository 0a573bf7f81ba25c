/**
 * The quickstart: a promotion between local OCI image layout directories, no server needed.
 *
 *   npm run quickstart
 *
 * 1. builds a "staging" layout tree with two images, three digests (a multi-arch index of amd64
 *    + arm64, an image with a tag and one promoted by digest only), written through the
 *    library's own OCI layout store (scripts/quickstart-setup.ts);
 * 2. writes a promotion manifest that promotes them to two "mirror" layout trees;
 * 3. runs the real CLI: validate, a dry-run plan, the promotion (--confirm), and a second run that
 *    finds nothing to do.
 *
 * Everything lands in ./quickstart/ (or the folder given as the first argument).
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { QUICKSTART_STEPS, writeQuickstart } from "./quickstart-setup.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const target = path.resolve(process.argv[2] ?? "quickstart");

function promoter(...args: string[]): number {
  console.log(`\n$ promoter ${args.join(" ")}`);
  const result = spawnSync(process.execPath, [path.join(repoRoot, "bin", "promoter.js"), ...args], {
    cwd: target,
    stdio: "inherit",
  });
  return result.status ?? 1;
}

async function main(): Promise<void> {
  await writeQuickstart(target);
  console.log(`Staging layouts and promoter-manifest.yaml written to ${target}`);
  for (const [args, expected] of QUICKSTART_STEPS) {
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
