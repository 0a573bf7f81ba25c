import { execFileSync, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { ALLOW_LOOPBACK_REGISTRIES } from "../support/local-registries.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { readTaggedManifest } from "../support/cosign-verifier.js";
import { skopeoInspectRaw } from "../support/skopeo.js";
import {
  makeImage,
  makeIndex,
  pushTagsWithSkopeo,
  sha256Digest,
  type TestContent,
} from "../support/test-images.js";
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

/** The signature layouts (`--signature-format`) the new-mirror flow is proved with. */
type SignatureFormat = "cosign" | "bundle";

/**
 * A copy of the example repository for one guide, its registries pointing at the test ones;
 * `name` (default: the guide's) names its production paths, `format` the layout of the
 * signatures of the earlier merge.
 */
async function sandbox(
  guide: string,
  { name = guide.replace(/\.md$/, ""), format = "cosign" }: { name?: string; format?: SignatureFormat } = {},
): Promise<Sandbox> {
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
      ...(format === "cosign" ? [] : ["--signature-format", format]),
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
  return { box, outputs: await runBlocks(blocks, box) };
}

async function runBlocks(blocks: readonly TestedBlock[], box: Sandbox): Promise<string[]> {
  const outputs: string[] = [];
  for (const block of blocks) {
    const result = await runBlock(block, box);
    expect(
      result.status,
      `docs/${block.guide}:${block.line} exited ${result.status}, expected ${block.exit}:\n${block.script}\n--- output ---\n${result.output}`,
    ).toBe(block.exit);
    outputs.push(result.output);
    // DOCS_TEST_VERBOSE=1 shows what each block printed, for writing the guides.
    if (process.env.DOCS_TEST_VERBOSE)
      console.log(`--- docs/${block.guide}:${block.line}\n${block.script}\n${result.output}`);
  }
  return outputs;
}

/** The tested blocks of one section (`## heading`) of a guide. */
async function sectionBlocks(guide: string, heading: string): Promise<TestedBlock[]> {
  const markdown = await readFile(path.join(repoRoot, "docs", guide), "utf8");
  const lines = markdown.split("\n");
  const start = lines.indexOf(`## ${heading}`) + 1;
  expect(start, `docs/${guide} has no section "${heading}"`).toBeGreaterThan(0);
  const next = lines.findIndex((line, i) => i >= start && line.startsWith("## "));
  const end = next < 0 ? lines.length : next + 1;
  return testedBlocks(guide, markdown).filter((block) => block.line > start && block.line < end);
}

/** The manifests a promoted index brings, each of which carries a signature. */
function signedSubjects(content: TestContent): string[] {
  return content.kind === "index"
    ? [content.digest, ...content.manifests.flatMap(signedSubjects)]
    : [content.digest];
}

const BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/**
 * What holds the signatures of `subject` at one mirror: the digest of its `.sig` manifest
 * (cosign), or the signing bundle referrers its tag-schema index lists (bundle; distribution
 * 2.8 has no referrers API).
 */
async function signaturesAt(repository: string, subject: string, format: SignatureFormat): Promise<string> {
  const location = { kind: "registry", baseUrl: `http://${prod.host}`, repository } as const;
  const tag = subject.replace(":", "-");
  if (format === "cosign") {
    const bytes = await readTaggedManifest(location, `${tag}.sig`);
    return bytes ? sha256Digest(bytes) : "none";
  }
  const bytes = await readTaggedManifest(location, tag);
  const index = JSON.parse(bytes?.toString("utf8") ?? "{}") as {
    manifests?: { digest: string; artifactType?: string }[];
  };
  const bundles = (index.manifests ?? []).filter((entry) => entry.artifactType === BUNDLE_ARTIFACT_TYPE);
  return bundles.length > 0 ? bundles.map((entry) => entry.digest).join(",") : "none";
}

/**
 * A full promotion with the release key (what the nightly backstop runs), in `box`; its JSON
 * report.
 */
async function fullPromotion(
  box: Sandbox,
  format: SignatureFormat,
): Promise<{
  signatures: { summary: { actions: Record<string, number>; outcomes: Record<string, number> } };
}> {
  const capture = captureIO({ cwd: box.repo, env: box.env });
  const status = await runCli(
    [
      "promote",
      "--thin-manifest-dir",
      ".",
      "--confirm",
      "--quiet",
      "--output",
      "json",
      "--sign-key",
      "env://PROMOTER_SIGN_KEY",
      "--sign-identity",
      SIGN_IDENTITY,
      ...(format === "cosign" ? [] : ["--signature-format", format]),
      ...ALLOW_LOOPBACK_REGISTRIES,
    ],
    capture.io,
  );
  expect(status, capture.out() + capture.err()).toBe(0);
  return JSON.parse(capture.out()) as Awaited<ReturnType<typeof fullPromotion>>;
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

  // issue 16 item 5: the new mirror used to get a signature of its own (ECDSA signatures differ
  // each time), and the next full run then wrote both signatures to every mirror.
  it.each(["cosign", "bundle"] as const)(
    "docs/owners.md, rolling out a new mirror: the new mirror gets the signature the others hold (%s layout)",
    async (format) => {
      const box = await sandbox("owners.md", { name: `new-mirror-${format}`, format });
      const blocks = (await sectionBlocks("owners.md", "Rolling out a new mirror")).map((block) => {
        if (format === "cosign") return block;
        const script = block.script.replaceAll(
          "--sign-key env://PROMOTER_SIGN_KEY",
          `--signature-format ${format} --sign-key env://PROMOTER_SIGN_KEY`,
        );
        return { ...block, script };
      });
      const signing = blocks.filter((block) => block.script.includes("--sign-key"));
      expect(signing.length, "the section's promote command").toBe(1);
      if (format !== "cosign") expect(signing[0]?.script).toContain(`--signature-format ${format}`);
      await runBlocks(blocks, box);

      const repository = (mirror: string) => `new-mirror-${format}/${mirror}/hello`;
      for (const subject of signedSubjects(HELLO_1_0_0)) {
        const us = await signaturesAt(repository("us"), subject, format);
        expect(us, `${subject} at us`).not.toBe("none");
        expect(await signaturesAt(repository("eu"), subject, format), `${subject} at eu`).toBe(us);
        expect(await signaturesAt(repository("asia"), subject, format), `${subject} at asia`).toBe(us);
      }
      // The nightly full run finds every mirror converged: nothing signed, nothing written.
      const report = await fullPromotion(box, format);
      expect(report.signatures.summary.actions).toMatchObject({ sign: 0, write: 0 });
      expect(report.signatures.summary.outcomes).toMatchObject({ signed: 0, written: 0, failed: 0 });
    },
  );

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
