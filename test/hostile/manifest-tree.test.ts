import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryAuthVariable } from "../../src/registry/index.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { requireBuiltCli, runPromoter, STACK_LINE, type PromoterRun } from "../support/promoter-process.js";
import { makeImage, writeOciLayoutDirectly } from "../support/test-images.js";

/**
 * Manifest trees on disk written by an attacker (a pull request's files): links out of the tree,
 * FIFOs, devices, folders where files belong, huge files, and values built to flood or forge the
 * output. Every run is `promoter` as CI runs it (a child process of bin/promoter.js) with real
 * credentials in its environment; what it prints must name the refused path and carry nothing of
 * what lies behind it. The write side: `promoter manifest add` writes only inside the tree.
 */

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
/** Registries in the manifests: nothing listens there, and no test needs them to. */
const UNUSED_REGISTRY = "127.0.0.1:9";

let work: string;

type Run = PromoterRun;

function promoter(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  return runPromoter(args, {
    cwd: options.cwd ?? work,
    env: {
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
    timeoutMs: options.timeoutMs ?? 30_000,
    // A run that blocks (on a FIFO, say) is a failure of its own, reported as such.
    onTimeout: "resolve",
  });
}

/** Exit status, the refusal line, and nothing else of what was behind the path. */
function expectRefused(run: Run, status: number, line: RegExp): void {
  const all = `${run.stdout}\n${run.stderr}`;
  expect(run.status, all).toBe(status);
  expect(all).toMatch(line);
  expectNothingLeaked(all);
}

function expectNothingLeaked(all: string): void {
  for (const secret of SECRETS) expect(all).not.toContain(secret);
  for (const marker of DUMP_MARKERS) expect(all).not.toContain(marker);
  expect(all).not.toMatch(/\bHOME=|\bPATH=/);
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: work },
  });
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
  requireBuiltCli();
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

describe("a thin tree's files are read only when they are regular files inside the tree", () => {
  it("an images.yaml linked to /proc/self/environ: validate, promote and check name the path and print nothing of the environment", async () => {
    const root = await thinTree("environ", ["evil"]);
    git(root, "init", "-q");
    git(root, "add", "-A");
    git(root, "commit", "-q", "-m", "base");
    // The pull request: the images file becomes a link to the promoter's own environment.
    await rm(path.join(root, "images", "evil", "images.yaml"));
    await symlink("/proc/self/environ", path.join(root, "images", "evil", "images.yaml"));
    git(root, "add", "-A");
    git(root, "commit", "-q", "-m", "head: a link");

    const refusal = /images\/evil\/images\.yaml:1:1: error\[refused-file\]: .*outside the manifest tree/;
    const runs: [string[], RegExp][] = [
      [["validate", "--thin-manifest-dir", "."], refusal],
      [["validate", "--thin-manifest-dir", ".", "--output", "json"], /"rule": "refused-file"/],
      [["promote", "--thin-manifest-dir", "."], refusal],
      [["promote", "--thin-manifest-dir", ".", "--output", "json"], /refused-file/],
      [["check", "--base", "HEAD~1", "--thin-manifest-dir", "."], /refused-file/],
      [["check", "--base", "HEAD~1", "--thin-manifest-dir", ".", "--output", "markdown"], /refused-file/],
      [["check", "--base", "HEAD~1", "--thin-manifest-dir", ".", "--output", "json"], /refused-file/],
    ];
    for (const [args, line] of runs) {
      const run = await promoter(args, { cwd: root });
      expectRefused(run, 1, line);
    }
  });

  it("a promoter-manifest.yaml linked to a docker config.json outside the tree", async () => {
    const root = await thinTree("docker-config", ["evil", "good"]);
    const manifest = path.join(root, "manifests", "evil", "promoter-manifest.yaml");
    await rm(manifest);
    await symlink(path.relative(path.dirname(manifest), path.join(work, "docker", "config.json")), manifest);
    const run = await promoter(["validate", "--thin-manifest-dir", "docker-config"]);
    expectRefused(
      run,
      1,
      /docker-config\/manifests\/evil\/promoter-manifest\.yaml:1:1: error\[refused-file\]: .*outside the manifest tree/,
    );
    // The other project is read as usual.
    expect(run.stdout).toMatch(/^1 project, /m);
  });

  it("an images/<project> folder linked outside the tree", async () => {
    const root = await thinTree("linked-project", ["evil"]);
    const outside = path.join(work, "outside-project");
    await mkdir(outside);
    await writeFile(path.join(outside, "images.yaml"), `https://x-access-token:${GIT_TOKEN}@github.com\n`);
    await rm(path.join(root, "images", "evil"), { recursive: true });
    await symlink(outside, path.join(root, "images", "evil"));
    const run = await promoter(["validate", "--thin-manifest-dir", "linked-project"]);
    expectRefused(run, 1, /linked-project\/images\/evil\/images\.yaml:1:1: error\[refused-file\]/);
  });

  it("a manifests/ folder linked outside the tree", async () => {
    const root = path.join(work, "linked-manifests");
    await mkdir(path.join(root, "images", "evil"), { recursive: true });
    await writeFile(path.join(root, "images", "evil", "images.yaml"), "");
    const outside = path.join(work, "outside-manifests");
    await mkdir(path.join(outside, "evil"), { recursive: true });
    await writeFile(
      path.join(outside, "evil", "promoter-manifest.yaml"),
      `https://x-access-token:${GIT_TOKEN}@github.com\n`,
    );
    await symlink(outside, path.join(root, "manifests"));
    const run = await promoter(["validate", "--thin-manifest-dir", "linked-manifests"]);
    expectRefused(
      run,
      1,
      /linked-manifests\/manifests:1:1: error\[refused-file\]: .*outside the manifest tree/,
    );
  });

  it("a project folder below manifests/ linked outside the tree", async () => {
    const root = await thinTree("linked-manifest-project", ["good"]);
    const outside = path.join(work, "outside-manifest-project");
    await mkdir(outside);
    await writeFile(
      path.join(outside, "promoter-manifest.yaml"),
      `https://x-access-token:${GIT_TOKEN}@github.com\n`,
    );
    await symlink(outside, path.join(root, "manifests", "evil"));
    const run = await promoter(["validate", "--thin-manifest-dir", "linked-manifest-project"]);
    expectRefused(run, 1, /linked-manifest-project\/manifests\/evil:1:1: error\[refused-file\]/);
    expect(run.stdout).toMatch(/^1 project, /m);
  });

  it("a plain --manifest file linked outside its folder", async () => {
    const folder = path.join(work, "plain-link");
    await mkdir(folder);
    await symlink(path.join(work, ".git-credentials"), path.join(folder, "manifest.yaml"));
    for (const command of ["validate", "promote"]) {
      const run = await promoter([command, "--manifest", "plain-link/manifest.yaml"]);
      expectRefused(run, 1, /plain-link\/manifest\.yaml:1:1: error\[refused-file\]: .*outside the folder/);
    }
  });

  it("a FIFO where images.yaml belongs is refused at once instead of blocking", async () => {
    const root = await thinTree("fifo", ["evil", "good"]);
    await rm(path.join(root, "images", "evil", "images.yaml"));
    execFileSync("mkfifo", [path.join(root, "images", "evil", "images.yaml")]);
    const run = await promoter(["validate", "--thin-manifest-dir", "fifo"], { timeoutMs: 15_000 });
    expectRefused(run, 1, /fifo\/images\/evil\/images\.yaml:1:1: error\[refused-file\]: .*FIFO/);
    expect(run.stdout).toMatch(/^2 projects, /m);
  });

  it("a FIFO named by --manifest is an input error, not a hang", async () => {
    execFileSync("mkfifo", [path.join(work, "plain-fifo.yaml")]);
    const run = await promoter(["validate", "--manifest", "plain-fifo.yaml"], { timeoutMs: 15_000 });
    expectRefused(run, 2, /cannot read manifest file plain-fifo\.yaml: not a regular file \(a FIFO\)/);
  });

  it("a folder where images.yaml belongs is a finding; the other projects load", async () => {
    const root = await thinTree("folder-for-file", ["evil", "good"]);
    await rm(path.join(root, "images", "evil", "images.yaml"));
    await mkdir(path.join(root, "images", "evil", "images.yaml"));
    const run = await promoter(["validate", "--thin-manifest-dir", "folder-for-file"]);
    expectRefused(run, 1, /images\/evil\/images\.yaml:1:1: error\[refused-file\]: .*a directory/);
    expect(run.stdout).toMatch(/^2 projects, /m);
  });

  it("a folder named promoter-manifest.yaml is a finding", async () => {
    const root = await thinTree("folder-for-manifest", ["good"]);
    await mkdir(path.join(root, "manifests", "evil", "promoter-manifest.yaml"), { recursive: true });
    const run = await promoter(["validate", "--thin-manifest-dir", "folder-for-manifest"]);
    expectRefused(
      run,
      1,
      /manifests\/evil\/promoter-manifest\.yaml:1:1: error\[refused-file\]: .*a directory/,
    );
  });

  it("an images.yaml linked to a device is refused without being opened", async () => {
    const root = await thinTree("device", ["evil"]);
    await rm(path.join(root, "images", "evil", "images.yaml"));
    await symlink("/dev/zero", path.join(root, "images", "evil", "images.yaml"));
    const run = await promoter(["validate", "--thin-manifest-dir", "device"], { timeoutMs: 15_000 });
    expectRefused(run, 1, /images\/evil\/images\.yaml:1:1: error\[refused-file\]/);
  });

  it("a huge images.yaml is refused without being read", async () => {
    const root = await thinTree("huge", ["evil"]);
    await truncate(path.join(root, "images", "evil", "images.yaml"), 64 * 1024 * 1024);
    const run = await promoter(["validate", "--thin-manifest-dir", "huge"]);
    expectRefused(run, 1, /images\/evil\/images\.yaml:1:1: error\[yaml-limit\]: .*not read/);
    expect(run.ms).toBeLessThan(10_000);
  });

  it("links that stay inside the tree are followed, as before", async () => {
    const root = await thinTree("inside-links", ["shared"]);
    await mkdir(path.join(root, "manifests", "alias"));
    await symlink(
      "../shared/promoter-manifest.yaml",
      path.join(root, "manifests", "alias", "promoter-manifest.yaml"),
    );
    await symlink("shared", path.join(root, "images", "alias"));
    const run = await promoter(["validate", "--thin-manifest-dir", "inside-links"]);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^2 projects, /m);
  });
});

describe("the auditor's git checkout is the tree", () => {
  it("a --path that the repository makes a link out of the checkout is refused", async () => {
    // A thin tree outside the repository, that the link would make the auditor's desired state.
    const elsewhere = await thinTree("audit-elsewhere", ["evil"]);
    const origin = path.join(work, "audit-origin");
    await mkdir(origin);
    git(origin, "init", "-q");
    await symlink(elsewhere, path.join(origin, "registry"));
    git(origin, "add", "-A");
    git(origin, "commit", "-q", "-m", "registry is a link");
    await writeFile(path.join(work, "audit-token"), `${"t".repeat(40)}\n`, { mode: 0o600 });
    const run = await promoter(
      [
        "audit",
        "serve",
        "--git-url",
        `file://${origin}`,
        "--path",
        "registry",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        "audit-token",
        "--db",
        path.join(work, "audit.db"),
      ],
      { timeoutMs: 20_000 },
    );
    expectRefused(run, 2, /--path registry leaves the repository/);
  });
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

describe("manifest add writes only inside the tree", () => {
  let registry: TestRegistry;
  const content = makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "manifest-tree-add" });

  beforeAll(async () => {
    registry = await startRegistry();
    await seedRegistry(registry.url, "staging/app", [{ content, tags: ["v1"] }]);
  });
  afterAll(async () => {
    await registry.stop();
  });

  async function addTree(name: string): Promise<string> {
    const root = path.join(work, name);
    await mkdir(path.join(root, "manifests", "p"), { recursive: true });
    await mkdir(path.join(root, "images"), { recursive: true });
    await writeFile(
      path.join(root, "manifests", "p", "promoter-manifest.yaml"),
      `registries:\n- name: ${registry.host}/staging\n  src: true\n- name: ${registry.host}/prod\n`,
    );
    return root;
  }

  const add = (tree: string) =>
    promoter([
      "manifest",
      "add",
      "--thin-manifest-dir",
      tree,
      "--project",
      "p",
      "--image",
      "app",
      "--tag",
      "v1",
    ]);

  it("through an images.yaml linked to a file outside the tree: refused, and that file is unchanged", async () => {
    const root = await addTree("add-link-out");
    const victim = path.join(work, "victim.yaml");
    const before = '- name: other\n  dmap:\n    "sha256:' + "0".repeat(64) + '": ["keep"]\n';
    await writeFile(victim, before);
    await mkdir(path.join(root, "images", "p"));
    await symlink(victim, path.join(root, "images", "p", "images.yaml"));
    const run = await add("add-link-out");
    expectRefused(run, 1, /images\/p\/images\.yaml.*outside the manifest tree/);
    expect(await readFile(victim, "utf8")).toBe(before);
  });

  it("through an images/<project> folder linked outside the tree with no images.yaml yet: nothing is created there", async () => {
    const root = await addTree("add-folder-out");
    const outside = path.join(work, "add-folder-out-target");
    await mkdir(outside);
    await symlink(outside, path.join(root, "images", "p"));
    const run = await add("add-folder-out");
    expectRefused(run, 1, /images\/p\/images\.yaml.*outside the manifest tree/);
    expect(await readdir(outside)).toEqual([]);
  });

  it("through an images.yaml linked to a missing file outside the tree: nothing is created there", async () => {
    const root = await addTree("add-dangling-out");
    const outside = path.join(work, "add-dangling-out-target");
    await mkdir(outside);
    await mkdir(path.join(root, "images", "p"));
    await symlink(path.join(outside, "created.yaml"), path.join(root, "images", "p", "images.yaml"));
    const run = await add("add-dangling-out");
    expect(run.status, run.stdout + run.stderr).toBe(1);
    expectNothingLeaked(run.stdout + run.stderr);
    expect(await readdir(outside)).toEqual([]);
  });

  it("an images.yaml linked inside the tree is edited at its target, as before", async () => {
    const root = await addTree("add-link-in");
    await mkdir(path.join(root, "shared"));
    await writeFile(path.join(root, "shared", "images.yaml"), "# Images of p.\n");
    await mkdir(path.join(root, "images", "p"));
    await symlink("../../shared/images.yaml", path.join(root, "images", "p", "images.yaml"));
    const run = await add("add-link-in");
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(await readFile(path.join(root, "shared", "images.yaml"), "utf8")).toContain(content.digest);
    expect(await readdir(path.join(root, "shared"))).toEqual(["images.yaml"]);
  });
});

describe("output files are written only where their names say", () => {
  /**
   * CI runs `promote --report report.json` (as the README shows) in the checkout of a change,
   * whose author wrote every path there. A `report.json` or `plan.json` committed as a symbolic
   * link made the promoter write its report through it into any file the job can write (here a
   * stand-in for `~/.docker/config.json`). The promoter opens output files with `O_NOFOLLOW`: a
   * link is refused, one line naming it, exit 2, and the file it names is untouched. A report
   * that cannot be written was an internal error (exit 3); it is a usage error too.
   */
  it("promote --report and --plan-file refuse a symbolic link at the output path", async () => {
    const tree = await mkdtemp(path.join(work, "output-links-"));
    const content = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "output-links" });
    await writeOciLayoutDirectly(path.join(tree, "staging", "app"), [{ content, tag: "v1" }]);
    await writeFile(
      path.join(tree, "images.yaml"),
      `registries:\n- name: oci:staging\n  src: true\n- name: oci:prod\nimages:\n- name: app\n  dmap:\n    "${content.digest}": ["v1"]\n`,
    );
    const victim = path.join(work, "output-links-victim.json");
    const original = '{"auths": {}}\n';
    await writeFile(victim, original);
    await symlink(victim, path.join(tree, "report.json"));
    await symlink(victim, path.join(tree, "plan.json"));

    for (const [option, file] of [
      ["--report", "report.json"],
      ["--plan-file", "plan.json"],
    ] as const) {
      const run = await runPromoter(["promote", "--manifest", "images.yaml", option, file, "--quiet"], {
        cwd: tree,
      });
      expect(run.stderr).not.toMatch(STACK_LINE);
      expect(run.stderr).toContain(`cannot write ${path.join(tree, file)}: it is a symbolic link`);
      expect(run.status).toBe(2);
      expect(await readFile(victim, "utf8")).toBe(original);
    }

    const missing = await runPromoter(
      ["promote", "--manifest", "images.yaml", "--report", "no-such-folder/report.json", "--quiet"],
      { cwd: tree },
    );
    expect(missing.stderr).not.toMatch(STACK_LINE);
    expect(missing.stderr).toContain(`cannot write ${path.join(tree, "no-such-folder", "report.json")}`);
    expect(missing.status).toBe(2);
  });
});
