import { execFileSync, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { ALLOW_LOOPBACK_REGISTRIES } from "../support/local-registries.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoInspectRaw } from "../support/skopeo.js";
import { makeImage, makeIndex, pushTagsWithSkopeo, type TestContent } from "../support/test-images.js";
import { startCliShim, type CliShim } from "./gitops-cli-shim.js";

/**
 * The user guides cannot rot: every fenced block marked ```sh tested (optionally `exit=N`) in
 * docs/maintainers.md, owners.md, access.md and manifest-format.md is run with bash, in order,
 * in a copy of examples/gitops-repo whose registries are local test registries (distribution
 * 2.8.2): $STAGING, $PROD_US, $PROD_EU and $PROD_ASIA name them, as the guides explain. Each
 * block starts in the repository's top folder with `set -euo pipefail`; its exit status must be
 * the one it is marked with (0 by default).
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");
const GUIDES = ["maintainers.md", "owners.md", "access.md", "manifest-format.md"] as const;
const TESTED_FENCE = /^( *)```sh tested(?:\s+exit=(\d+))?\s*$/;

interface TestedBlock {
  readonly guide: string;
  readonly line: number;
  readonly script: string;
  readonly exit: number;
}

export function testedBlocks(guide: string, markdown: string): TestedBlock[] {
  const blocks: TestedBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = TESTED_FENCE.exec(lines[i] ?? "");
    if (!open) continue;
    // A block inside a list item is indented; its lines lose that indentation.
    const indent = open[1] ?? "";
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && (lines[j] ?? "").trim() !== "```") {
      const line = lines[j++] ?? "";
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line);
    }
    blocks.push({ guide, line: i + 1, script: body.join("\n"), exit: Number(open[2] ?? 0) });
    i = j;
  }
  return blocks;
}

/** The example's hello v1.0.0: its digest is written in examples/gitops-repo/images/hello/images.yaml. */
const helloImage = (version: string, arch: string): TestContent =>
  makeImage({
    layers: 2,
    layerSize: 4096,
    mediaTypes: "oci",
    seed: `hello-${version}-${arch}`,
    platform: { architecture: arch, os: "linux" },
  });
const hello = (version: string) =>
  makeIndex([helloImage(version, "amd64"), helloImage(version, "arm64")], { mediaType: "oci" });
const HELLO_1_0_0 = hello("1.0.0");
/** The canonical name the example's signatures carry (`--sign-identity`), as the guides use it. */
const SIGN_IDENTITY = "registry.example.com/prod";
const HELLO_1_1_0 = hello("1.1.0");
const HELLO_1_1_1 = hello("1.1.1");
const HELLO_1_2_0_AMD64 = helloImage("1.2.0", "amd64");

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let shim: CliShim;
let signingKey: string;
let publicKey: string;

async function push(
  registry: TestRegistry,
  repository: string,
  entries: { content: TestContent; tag: string }[],
): Promise<void> {
  await pushTagsWithSkopeo(work, registry.host, repository, entries);
}

interface Sandbox {
  readonly repo: string;
  readonly env: Record<string, string>;
}

/** A copy of the example repository for one guide, its registries pointing at the test ones. */
async function sandbox(guide: string): Promise<Sandbox> {
  const name = guide.replace(/\.md$/, "");
  const root = path.join(work, name);
  const repo = path.join(root, "repo");
  await cp(path.join(repoRoot, "examples", "gitops-repo"), repo, { recursive: true });
  const manifest = path.join(repo, "manifests", "hello", "promoter-manifest.yaml");
  const text = (await readFile(manifest, "utf8"))
    .replace("registry.example.com/staging", `${staging.host}/staging`)
    .replace("us-registry.example.com/prod", `${prod.host}/${name}/us`)
    .replace("eu-registry.example.com/prod", `${prod.host}/${name}/eu`);
  await writeFile(manifest, text);
  await writeFile(path.join(repo, "keys", "release.pub"), publicKey);
  const home = path.join(root, "home");
  await mkdir(home, { recursive: true });
  const env: Record<string, string> = {
    PATH: `${shim.binDirectory}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: home,
    LANG: "C.UTF-8",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_AUTHOR_NAME: "Maintainer",
    GIT_AUTHOR_EMAIL: "maintainer@example.com",
    GIT_COMMITTER_NAME: "Maintainer",
    GIT_COMMITTER_EMAIL: "maintainer@example.com",
    STAGING: `${staging.host}/staging`,
    PROD_US: `${prod.host}/${name}/us`,
    PROD_EU: `${prod.host}/${name}/eu`,
    PROD_ASIA: `${prod.host}/${name}/asia`,
    PROMOTER_SIGN_KEY: signingKey,
    ...shim.env,
  };
  const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "Start from the example repository");
  // The state the guides start from: hello v1.0.0 promoted and signed by an earlier merge.
  const capture = captureIO({ cwd: repo, env });
  const status = await runCli(
    [
      "promote",
      "--thin-manifest-dir",
      ".",
      "--confirm",
      "--quiet",
      "--sign-key",
      "env://PROMOTER_SIGN_KEY",
      "--sign-identity",
      SIGN_IDENTITY,
      ...ALLOW_LOOPBACK_REGISTRIES,
    ],
    capture.io,
  );
  expect(status, capture.out() + capture.err()).toBe(0);
  return { repo, env };
}

function runBlock(block: TestedBlock, box: Sandbox): Promise<{ status: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", `set -euo pipefail\n${block.script}`], {
      cwd: box.repo,
      env: box.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, output });
    });
  });
}

async function runGuide(guide: string): Promise<{ box: Sandbox; outputs: string[] }> {
  const markdown = await readFile(path.join(repoRoot, "docs", guide), "utf8");
  const blocks = testedBlocks(guide, markdown);
  expect(blocks.length, `${guide} has no tested blocks`).toBeGreaterThan(0);
  const box = await sandbox(guide);
  const outputs: string[] = [];
  for (const block of blocks) {
    const result = await runBlock(block, box);
    expect(
      result.status,
      `docs/${guide}:${block.line} exited ${result.status}, expected ${block.exit}:\n${block.script}\n--- output ---\n${result.output}`,
    ).toBe(block.exit);
    outputs.push(result.output);
    // DOCS_TEST_VERBOSE=1 shows what each block printed, for writing the guides.
    if (process.env.DOCS_TEST_VERBOSE)
      console.log(`--- docs/${guide}:${block.line}\n${block.script}\n${result.output}`);
  }
  return { box, outputs };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "docs-commands-"));
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  shim = await startCliShim(work);
  // The release signing key, as keys/README.md of the example creates it.
  signingKey = execFileSync(
    "sh",
    ["-c", "openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt"],
    { encoding: "utf8" },
  );
  publicKey = execFileSync("openssl", ["ec", "-pubout"], {
    input: signingKey,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "ignore"],
  });
  // What the hello project's CI has pushed to staging.
  await push(staging, "staging/hello", [
    { content: HELLO_1_0_0, tag: "v1.0.0" },
    { content: HELLO_1_1_0, tag: "v1.1.0" },
    { content: HELLO_1_1_1, tag: "v1.1.1" },
    { content: HELLO_1_2_0_AMD64, tag: "v1.2.0" },
  ]);
}, 180_000);

afterAll(async () => {
  await shim.close();
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("the guides' commands", () => {
  it("finds tested blocks with their expected exit status", () => {
    const blocks = testedBlocks(
      "x.md",
      "text\n```sh tested\necho a\n```\n```sh\nnot tested\n```\n```sh tested exit=1\nfalse\n```\n",
    );
    expect(blocks).toEqual([
      { guide: "x.md", line: 2, script: "echo a", exit: 0 },
      { guide: "x.md", line: 8, script: "false", exit: 1 },
    ]);
  });

  it("the example repository's hello v1.0.0 is the image the tests push", async () => {
    const images = await readFile(
      path.join(repoRoot, "examples/gitops-repo/images/hello/images.yaml"),
      "utf8",
    );
    expect(images).toContain(`"${HELLO_1_0_0.digest}": ["v1.0.0"]`);
  });

  it("docs/maintainers.md: push, add, check, merge, promote, verify", async () => {
    await runGuide("maintainers.md");
    expect((await skopeoInspectRaw(`docker://${prod.host}/maintainers/us/hello:v1.1.0`)).digest).toBe(
      HELLO_1_1_0.digest,
    );
    expect((await skopeoInspectRaw(`docker://${prod.host}/maintainers/eu/hello:v1.1.0`)).digest).toBe(
      HELLO_1_1_0.digest,
    );
  });

  it("docs/owners.md: review, emergency push and its audit, a new mirror", async () => {
    await runGuide("owners.md");
    expect((await skopeoInspectRaw(`docker://${prod.host}/owners/asia/hello:v1.1.1`)).digest).toBe(
      HELLO_1_1_1.digest,
    );
  });

  it("docs/access.md", async () => {
    await runGuide("access.md");
  });

  it("docs/manifest-format.md", async () => {
    await runGuide("manifest-format.md");
  });

  it("no other page has tested blocks that nobody runs", async () => {
    const pages = (await readdir(path.join(repoRoot, "docs"))).filter((name) => name.endsWith(".md"));
    for (const page of pages) {
      if ((GUIDES as readonly string[]).includes(page)) continue;
      const markdown = await readFile(path.join(repoRoot, "docs", page), "utf8");
      expect(testedBlocks(page, markdown), page).toEqual([]);
    }
  });
});
