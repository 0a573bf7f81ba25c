import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryAuthVariable } from "../../src/registry/index.js";

/**
 * Manifest trees on disk written by an attacker (a pull request's files): links out of the tree,
 * FIFOs, devices, folders where files belong, huge files, and values built to flood or forge the
 * output. Every run is `promoter` as CI runs it (a child process of bin/promoter.js) with real
 * credentials in its environment; what it prints must name the refused path and carry nothing of
 * what lies behind it. The write side: `promoter manifest add` writes only inside the tree.
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");
const cli = path.join(repoRoot, "bin", "promoter.js");

// Secrets with a recognisable shape, in the places CI keeps them.
const SIGN_KEY = "SIGN-KEY-SECRET-5d1f0e9a7c3b";
const AUTH_PASSWORD = "AUTH-PW-SECRET-b6e2a4c8d0f1";
const REGISTRY_AUTH_PASSWORD = "REGISTRY-AUTH-SECRET-0c7d9e1b3a5f";
const DOCKER_PASSWORD = "DOCKER-CONFIG-SECRET-8a2c4e6f1b3d";
const GIT_TOKEN = "ghs_GITCREDSECRET4f6a8c0e2b4d";
/** Nothing here may ever appear in an output. */
const SECRETS = [SIGN_KEY, AUTH_PASSWORD, REGISTRY_AUTH_PASSWORD, DOCKER_PASSWORD, GIT_TOKEN];
/** Names that only a dump of the environment or of an auth file would print. */
const DUMP_MARKERS = ["PROMOTER_SIGN_KEY", "PROMOTER_REGISTRY_AUTH", "PROMOTER_AUTH_", '"auths"', "auths"];

/** What no output may carry raw: controls other than tab and newline, bidi controls, separators. */
/* eslint-disable no-control-regex -- raw control characters are what is looked for */
const RAW_UNSAFE_CHARACTER =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/* eslint-enable no-control-regex */
/** A line of a JavaScript stack trace (not a position such as "at images.yaml:3:5"). */
const STACK_LINE = /^\s+at .*(?:\.[cm]?[jt]s|node:[\w/]+):\d+:\d+\)?$/m;
/** Registries in the manifests: nothing listens there, and no test needs them to. */
const UNUSED_REGISTRY = "127.0.0.1:9";

let work: string;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function promoter(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: options.cwd ?? work,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: work,
        DOCKER_CONFIG: path.join(work, "docker"),
        PROMOTER_SIGN_KEY: SIGN_KEY,
        PROMOTER_REGISTRY_AUTH: JSON.stringify({
          auths: { "ghcr.io": { auth: Buffer.from(`ci:${REGISTRY_AUTH_PASSWORD}`).toString("base64") } },
        }),
        [registryAuthVariable("registry.example.com")]: `robot:${AUTH_PASSWORD}`,
        GIT_CONFIG_NOSYSTEM: "1",
        ...options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    // A run that blocks (on a FIFO, say) is a failure of its own, reported as such.
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (status) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      resolve({
        status,
        stdout,
        stderr: ms >= timeoutMs ? `${stderr}\n(killed after ${ms} ms)` : stderr,
        ms,
      });
    });
  });
}

function expectNothingLeaked(all: string): void {
  for (const secret of SECRETS) expect(all).not.toContain(secret);
  for (const marker of DUMP_MARKERS) expect(all).not.toContain(marker);
  expect(all).not.toMatch(/\bHOME=|\bPATH=/);
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
}

const REGISTRIES = `registries:\n- name: ${UNUSED_REGISTRY}/staging\n  src: true\n- name: ${UNUSED_REGISTRY}/prod\n`;

/** A thin tree with `projects`, each with a registries file and an images file with no images. */
async function thinTree(name: string, projects: readonly string[]): Promise<string> {
  const root = path.join(work, name);
  for (const project of projects) {
    await mkdir(path.join(root, "manifests", project), { recursive: true });
    await mkdir(path.join(root, "images", project), { recursive: true });
    await writeFile(path.join(root, "manifests", project, "promoter-manifest.yaml"), REGISTRIES);
    await writeFile(path.join(root, "images", project, "images.yaml"), "# No images yet.\n");
  }
  return root;
}

beforeAll(async () => {
  if (!existsSync(path.join(repoRoot, "dist", "cli", "entry.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before the hostile tests");
  }
  work = await mkdtemp(path.join(tmpdir(), "hostile-tree-"));
  // Secret files outside every tree, where a runner keeps them.
  await mkdir(path.join(work, "docker"));
  await writeFile(
    path.join(work, "docker", "config.json"),
    JSON.stringify({
      auths: { "ghcr.io": { auth: Buffer.from(`ci:${DOCKER_PASSWORD}`).toString("base64") } },
      [`https://ci:${DOCKER_PASSWORD}@ghcr.io`]: {},
    }),
  );
  await writeFile(path.join(work, ".git-credentials"), `https://x-access-token:${GIT_TOKEN}@github.com\n`);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("a finding quotes at most a short, escaped excerpt of a value", () => {
  it("a long value with terminal escapes, bidi overrides and line separators", async () => {
    const root = await thinTree("flood", ["evil"]);
    // Short enough for an implicit YAML key (1024 characters), far longer than an excerpt.
    const payload = `\u001b]8;;https://evil.example/\u0007click\u001b[2J\u202egnp.exe\u2028::error::forged${"A".repeat(900)}${SIGN_KEY}`;
    await writeFile(
      path.join(root, "images", "evil", "images.yaml"),
      [
        `- name: ${JSON.stringify(payload)}`,
        `  dmap: {${JSON.stringify(payload)}: [${JSON.stringify(payload)}]}`,
        `  ${JSON.stringify(payload)}: 1`,
        "",
      ].join("\n"),
    );
    await writeFile(
      path.join(root, "manifests", "evil", "promoter-manifest.yaml"),
      `registries:\n- name: ${JSON.stringify(payload)}\n  src: true\n- name: ${UNUSED_REGISTRY}/prod\n`,
    );
    for (const output of ["text", "json"]) {
      const run = await promoter(["validate", "--thin-manifest-dir", "flood", "--output", output]);
      const all = `${run.stdout}\n${run.stderr}`;
      expect(run.status, all).toBe(1);
      expectNothingLeaked(all);
      expect(all).not.toMatch(RAW_UNSAFE_CHARACTER);
      expect(all).not.toContain("A".repeat(100));
      expect(all).toMatch(/invalid-image-name/);
      expect(all).toMatch(/invalid-registry-name/);
    }
  });

  it("a file that is one long string shows only its start", async () => {
    const file = path.join(work, "one-string.yaml");
    await writeFile(file, `${"B".repeat(100)}${SIGN_KEY}\n`);
    const run = await promoter(["validate", "--manifest", "one-string.yaml"]);
    expect(run.status).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/must be a mapping, found the string "B{20,80}…"/);
    expectNothingLeaked(run.stdout + run.stderr);
  });
});
