import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUICKSTART_STEPS, writeQuickstart } from "../../scripts/quickstart-setup.js";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { skopeoInspectRaw } from "../support/skopeo.js";

/**
 * `npm run quickstart`, step by step through the real CLI (in-process: the script itself runs the
 * built bin/promoter.js), and the README's account of it held to what the tool says (issue 17
 * item 11: the README said "three images" where validate reports 2 images, 3 digests).
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");
let dir: string;
const outputs: { args: readonly string[]; status: number; out: string; err: string }[] = [];

async function run(...args: string[]) {
  const capture = captureIO({ cwd: dir });
  const status = await runCli(args, capture.io);
  return { args, status, out: capture.out(), err: capture.err() };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "quickstart-"));
  await writeQuickstart(dir);
  for (const [args] of QUICKSTART_STEPS) outputs.push(await run(...args));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The README paragraph that describes the quickstart. */
async function readmeQuickstart(): Promise<string> {
  const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf("`npm run quickstart` builds");
  expect(start).toBeGreaterThanOrEqual(0);
  return readme.slice(start, readme.indexOf("\n\n", start)).replace(/\s+/g, " ");
}

const NUMBER_WORDS = ["no", "one", "two", "three", "four", "five"];

describe("the quickstart", () => {
  it("runs every step with the status the script expects", () => {
    expect(outputs.map((output) => output.status)).toEqual(QUICKSTART_STEPS.map(([, status]) => status));
    expect(outputs[2]?.out).toContain("Result: 8 edges: 8 copied");
    expect(outputs[3]?.out).toContain("Result: 8 edges: 8 unchanged");
  });

  it("is described in the README with the counts validate reports", async () => {
    const summary = /^1 project, (\d+) images, (\d+) digests, .*$/m.exec(outputs[0]?.out ?? "");
    expect(summary, outputs[0]?.out).not.toBeNull();
    const [line, images, digests] = summary!;
    const paragraph = await readmeQuickstart();
    expect(paragraph).toContain(`\`${line}\``);
    expect(paragraph).toContain(
      `${NUMBER_WORDS[Number(images)]} images with ${NUMBER_WORDS[Number(digests)]} digests`,
    );
  });

  it("leaves mirrors that snapshot and skopeo read, the digest-only manifest included", async () => {
    // --minimal: without the children of web's index, which promoting the index brings.
    const snapshot = await run("snapshot", "oci:mirror-eu", "--minimal");
    expect(snapshot.status).toBe(0);
    expect(snapshot.err).toContain("promoter snapshot: 2 images, 3 digests from 2 repositories");
    const manifest = await readFile(path.join(dir, "promoter-manifest.yaml"), "utf8");
    for (const digest of manifest.match(/sha256:[0-9a-f]{64}/g) ?? []) expect(snapshot.out).toContain(digest);
    const web = /"(sha256:[0-9a-f]{64})": \["1\.0\.0", "1\.0"\]/.exec(manifest)?.[1];
    // The command the script's last line suggests.
    expect((await skopeoInspectRaw(`oci:${path.join(dir, "mirror-eu", "web")}:1.0.0`)).digest).toBe(web);
  });
});
