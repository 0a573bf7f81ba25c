import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  gitIn,
  plantCommandRepository,
  plantGitFilePointer,
  plantReplacedBase,
  writeGitSpy,
} from "../support/hostile-git.js";
import {
  REPOSITORY_ROOT,
  requireBuiltCli,
  runPromoter,
  STACK_LINE,
  type PromoterRun,
} from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { makeImage } from "../support/test-images.js";

/**
 * The pull request's tree against the `git` that `promoter check --base` and `promote
 * --changed-since` run (the pull-request job and the merge job, which holds the write credentials
 * and the signing key): the author commits a git repository into the manifest folder, and git
 * must never take its configuration, hooks, replace refs or objects. Then what git and the
 * Action's install step are given of the environment. Real CLI (bin/promoter.js), real git, a real
 * registry (distribution) on 127.0.0.1.
 */

const SIGN_KEY = "Sign-key-4d1f0a9e7c3b52aa";
const WRITE_AUTH = "Write-auth-93be02c4d7a1f655";
/** The merge job's environment: write credentials and the signing key. */
const SECRETS = {
  PROMOTER_SIGN_KEY: SIGN_KEY,
  PROMOTER_REGISTRY_AUTH: JSON.stringify({ "127.0.0.1": { username: "robot", password: WRITE_AUTH } }),
};

let work: string;
let registry: TestRegistry;
const app = makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "hostile-git-app" });

/** One checkout: the repository, its thin tree (`registry/` or deeper) and the base commit. */
interface Checkout {
  readonly root: string;
  readonly tree: string;
  readonly base: string;
  readonly marker: string;
  git(...args: string[]): string;
}

let counter = 0;

/** A repository whose base commit has project `app` with tag v1; the "PR" adds `latest`. */
async function checkout(treeFolder = "registry"): Promise<Checkout> {
  counter += 1;
  const root = path.join(work, `checkout-${counter}`);
  const tree = path.join(root, treeFolder);
  const git = (...args: string[]): string => gitIn(root, work, ...args);
  await mkdir(path.join(tree, "manifests", "app"), { recursive: true });
  await mkdir(path.join(tree, "images", "app"), { recursive: true });
  await writeFile(
    path.join(tree, "manifests", "app", "promoter-manifest.yaml"),
    `registries:\n- name: ${registry.host}/staging\n  src: true\n- name: ${registry.host}/prod\n`,
  );
  await writeFile(path.join(tree, "images", "app", "images.yaml"), imagesYaml(["v1"]));
  await mkdir(root, { recursive: true });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "base");
  const base = git("rev-parse", "HEAD");
  await writeFile(path.join(tree, "images", "app", "images.yaml"), imagesYaml(["v1", "latest"]));
  git("commit", "-q", "-am", "add latest");
  return { root, tree, base, marker: path.join(work, `marker-${counter}`), git };
}

function imagesYaml(tags: readonly string[]): string {
  return `- name: app\n  dmap:\n    "${app.digest}": [${tags.map((tag) => `"${tag}"`).join(", ")}]\n`;
}

/** The run ended with `status`, one clear line matching `message`, no trace, no secret. */
function expectRefused(run: PromoterRun, status: number, message: RegExp): void {
  const all = `${run.stdout}\n${run.stderr}`;
  expect(run.status, all).toBe(status);
  expect(all).toMatch(message);
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
  expect(all).not.toContain(SIGN_KEY);
  expect(all).not.toContain(WRITE_AUTH);
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-git-"));
  registry = await startRegistry();
  await seedRegistry(registry.url, "staging/app", [{ content: app, tags: ["v1", "latest"] }]);
}, 120_000);

afterAll(async () => {
  const started = registry as TestRegistry | undefined;
  await started?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("a git repository hidden in the pull request's manifest folder", () => {
  it("never runs its commands in `check --base` (uploadpack of a partial clone, hooks, fsmonitor)", async () => {
    const repo = await checkout();
    await plantCommandRepository(repo.tree, repo.marker);
    repo.git("add", "-A");
    repo.git("commit", "-q", "-m", "a git repository in the manifest folder");

    const run = await runPromoter(
      ["check", "--base", repo.base, "--thin-manifest-dir", "registry", "--quiet"],
      { cwd: repo.root, env: { HOME: work, ...SECRETS } },
    );
    expect(existsSync(repo.marker), "the planted command ran").toBe(false);
    expectRefused(run, 1, /refused: registry is a git repository inside the manifest tree/);
  });

  it("never runs its commands in `promote --changed-since --confirm` (the merge job)", async () => {
    const repo = await checkout();
    await plantCommandRepository(repo.tree, repo.marker);
    repo.git("add", "-A");
    repo.git("commit", "-q", "-m", "a git repository in the manifest folder");

    const run = await runPromoter(
      ["promote", "--thin-manifest-dir", "registry", "--changed-since", repo.base, "--confirm", "--quiet"],
      { cwd: repo.root, env: { HOME: work, ...SECRETS } },
    );
    expect(existsSync(repo.marker), "the planted command ran").toBe(false);
    expectRefused(run, 1, /refused: registry is a git repository inside the manifest tree/);
    const tags = await fetch(`${registry.url}/v2/prod/app/tags/list`);
    expect(tags.status === 404 || !(await tags.text()).includes("latest")).toBe(true);
  });

  it("cannot forge the base revision with its replace refs: the added `latest` tag is not hidden", async () => {
    const repo = await checkout();
    await plantReplacedBase(repo.root, work, repo.tree, repo.base);
    repo.git("add", "-A");
    repo.git("commit", "-q", "-m", "a git repository in the manifest folder");

    const run = await runPromoter(
      ["check", "--base", repo.base, "--thin-manifest-dir", "registry", "--quiet"],
      { cwd: repo.root, env: { HOME: work } },
    );
    expect(run.stdout).not.toMatch(/0 changed files|Result: PASS/);
    expectRefused(run, 1, /refused: registry is a git repository inside the manifest tree/);
  });

  it("is refused between the checkout root and the manifest folder too (git searched upward from it)", async () => {
    const repo = await checkout("deploy/registry");
    await plantCommandRepository(path.join(repo.root, "deploy"), repo.marker);
    repo.git("add", "-A");
    repo.git("commit", "-q", "-m", "a git repository above the manifest folder");

    const run = await runPromoter(
      ["check", "--base", repo.base, "--thin-manifest-dir", "deploy/registry", "--quiet"],
      { cwd: repo.root, env: { HOME: work, ...SECRETS } },
    );
    expect(existsSync(repo.marker), "the planted command ran").toBe(false);
    expectRefused(run, 1, /refused: deploy is a git repository inside the manifest tree/);
  });

  it("is refused deeper in the tree, and a `.git` file (gitdir: pointer) is refused like a repository", async () => {
    const repo = await checkout();
    // A tree that does not come from a git checkout (an archive, a copy) can hold a `.git` file.
    await plantGitFilePointer(repo.tree, path.join(work, `pointed-${counter}`), repo.marker);
    const run = await runPromoter(
      ["check", "--base", repo.base, "--thin-manifest-dir", "registry", "--quiet"],
      { cwd: repo.root, env: { HOME: work, ...SECRETS } },
    );
    expect(existsSync(repo.marker), "the planted command ran").toBe(false);
    expectRefused(run, 1, /refused: registry[/]\.git is a git repository inside the manifest tree/);

    const deeper = await checkout();
    await plantCommandRepository(path.join(deeper.tree, "images", "app", "cache"), deeper.marker);
    const nested = await runPromoter(
      ["promote", "--thin-manifest-dir", "registry", "--changed-since", deeper.base],
      { cwd: deeper.root, env: { HOME: work, ...SECRETS } },
    );
    expectRefused(
      nested,
      1,
      /refused: registry[/]images[/]app[/]cache is a git repository inside the manifest tree/,
    );
  });

  it("cannot be reached by running the promoter from inside the manifest folder either", async () => {
    const repo = await checkout();
    await plantCommandRepository(repo.tree, repo.marker);
    const run = await runPromoter(["check", "--base", repo.base, "--thin-manifest-dir", ".", "--quiet"], {
      cwd: repo.tree,
      env: { HOME: work, ...SECRETS },
    });
    expect(existsSync(repo.marker), "the planted command ran").toBe(false);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/refused: .* is a git repository inside the manifest tree/);
  });
});

describe("what git is given", () => {
  let log: string;
  let bin: string;
  beforeEach(async () => {
    bin = await mkdtemp(path.join(work, "spy-"));
    log = path.join(bin, "calls.jsonl");
    await writeGitSpy(bin, log);
  });

  async function calls(): Promise<{ args: string[]; env: Record<string, string> }[]> {
    const text = await readFile(log, "utf8");
    return text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { args: string[]; env: Record<string, string> });
  }

  it("no secret and no GIT_* override of the environment reaches git, and the repository is named", async () => {
    const repo = await checkout();
    const run = await runPromoter(
      ["check", "--base", repo.base, "--thin-manifest-dir", "registry", "--quiet", "--output", "json"],
      {
        cwd: repo.root,
        env: {
          PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
          HOME: work,
          ...SECRETS,
          AWS_SECRET_ACCESS_KEY: "aws-secret-not-for-git",
          // Overrides a hostile job step could have exported: git must not take them.
          GIT_DIR: path.join(work, "elsewhere"),
          GIT_CONFIG_COUNT: "1",
          GIT_CONFIG_KEY_0: "core.fsmonitor",
          GIT_CONFIG_VALUE_0: `sh -c 'touch ${repo.marker}'`,
          GIT_CONFIG_PARAMETERS: "'core.hookspath'='/tmp'",
          GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(work, "elsewhere", "objects"),
        },
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const seen = await calls();
    expect(seen.length).toBeGreaterThan(0);
    for (const call of seen) {
      const text = JSON.stringify(call.env);
      expect(text).not.toContain(SIGN_KEY);
      expect(text).not.toContain(WRITE_AUTH);
      expect(text).not.toContain("aws-secret-not-for-git");
      expect(Object.keys(call.env).filter((name) => /^(PROMOTER_|AWS_)/.test(name))).toEqual([]);
      expect(call.env.GIT_DIR).toBeUndefined();
      expect(call.env.GIT_CONFIG_COUNT).toBeUndefined();
      expect(call.env.GIT_CONFIG_PARAMETERS).toBeUndefined();
      expect(call.env.GIT_ALTERNATE_OBJECT_DIRECTORIES).toBeUndefined();
      expect(call.env.GIT_NO_REPLACE_OBJECTS).toBe("1");
      expect(call.args).toContain("safe.bareRepository=explicit");
      expect(call.args).toContain("protocol.allow=never");
    }
    // Everything but locating the repository (from the working directory) names it explicitly.
    const unnamed = seen.filter((call) => !call.args.some((arg) => arg.startsWith("--git-dir=")));
    expect(unnamed.length).toBeGreaterThan(0);
    for (const call of unnamed) {
      expect(call.args.slice(-3)).toEqual(["rev-parse", "--absolute-git-dir", "--show-toplevel"]);
    }
    expect(existsSync(repo.marker)).toBe(false);
  });

  it("a revision that looks like an option is never an option", async () => {
    const repo = await checkout();
    for (const base of ["--output=/tmp/x", "-h"]) {
      const run = await runPromoter(
        ["check", `--base=${base}`, "--thin-manifest-dir", "registry", "--quiet"],
        { cwd: repo.root, env: { HOME: work, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` } },
      );
      expectRefused(run, 2, /is not a revision/);
    }
    // A ref whose name starts with a dash is reached by its full name, after --end-of-options.
    repo.git("update-ref", "refs/heads/-dash", repo.base);
    const run = await runPromoter(
      ["check", "--base", "refs/heads/-dash", "--thin-manifest-dir", "registry", "--quiet"],
      { cwd: repo.root, env: { HOME: work, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` } },
    );
    expect(run.status, run.stderr).toBe(0);
    for (const call of await calls()) {
      const revisions = call.args.filter((arg) => arg.includes("-dash"));
      for (const revision of revisions) {
        expect(call.args.indexOf("--end-of-options")).toBeGreaterThanOrEqual(0);
        expect(call.args.indexOf("--end-of-options")).toBeLessThan(call.args.indexOf(revision));
      }
    }
  });
});

describe("the GitHub Action and the example workflows", () => {
  interface Step {
    readonly name?: string;
    readonly id?: string;
    readonly run?: string;
    readonly uses?: string;
    readonly with?: Record<string, unknown>;
    readonly env?: Record<string, string>;
  }

  it("installs with no secret in its environment and without running install scripts", async () => {
    const action = parse(await readFile(path.join(REPOSITORY_ROOT, "action.yml"), "utf8")) as {
      runs: { steps: Step[] };
    };
    const install = action.runs.steps.find((step) => step.name === "Install image-promoter");
    expect(install?.run).toBeDefined();
    // A hostile dependency's install script sees what npm sees: a fake npm records it.
    const fake = await mkdtemp(path.join(work, "action-"));
    const bin = path.join(fake, "bin");
    const actionPath = path.join(fake, "action");
    const npmLog = path.join(fake, "npm.jsonl");
    await mkdir(bin);
    await mkdir(path.join(actionPath, "bin"), { recursive: true });
    await writeFile(path.join(actionPath, "bin", "promoter.js"), 'console.log("0.0.0-test");\n');
    await writeFile(
      path.join(bin, "npm"),
      [
        `#!${process.execPath}`,
        `require("node:fs").appendFileSync(${JSON.stringify(npmLog)}, JSON.stringify({ args: process.argv.slice(2), env: process.env }) + "\\n");`,
        "",
      ].join("\n"),
    );
    await chmod(path.join(bin, "npm"), 0o755);
    await writeFile(path.join(fake, "github-path"), "");
    const runnerTemp = path.join(fake, "runner");
    await mkdir(runnerTemp);
    const status = await new Promise<number>((resolve, reject) => {
      const child = spawn("bash", ["-e", "-c", install?.run ?? ""], {
        cwd: fake,
        env: {
          PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`,
          HOME: fake,
          RUNNER_TEMP: runnerTemp,
          GITHUB_PATH: path.join(fake, "github-path"),
          GITHUB_ACTION_PATH: actionPath,
          VERSION: "",
          // What the example workflows used to pass to the action's steps through `env:`.
          ...SECRETS,
          GITHUB_TOKEN: "ghs_token_not_for_npm",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.on("error", reject);
      child.on("close", (code) => {
        if (code !== 0) process.stderr.write(output);
        resolve(code ?? -1);
      });
    });
    expect(status).toBe(0);
    const npmCalls = (await readFile(npmLog, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { args: string[]; env: Record<string, string> });
    expect(npmCalls.length).toBeGreaterThan(0);
    for (const call of npmCalls) {
      const text = JSON.stringify(call.env);
      expect(text).not.toContain(SIGN_KEY);
      expect(text).not.toContain(WRITE_AUTH);
      expect(text).not.toContain("ghs_token_not_for_npm");
    }
    const installs = npmCalls.filter((call) => call.args[0] === "ci" || call.args[0] === "install");
    expect(installs.length).toBeGreaterThan(0);
    for (const call of installs) expect(call.args).toContain("--ignore-scripts");
  });

  it("hands the registry-auth and sign-key inputs to the promoter's step only", async () => {
    const action = parse(await readFile(path.join(REPOSITORY_ROOT, "action.yml"), "utf8")) as {
      runs: { steps: Step[] };
    };
    const step = action.runs.steps.find((candidate) => candidate.id === "run");
    const fake = await mkdtemp(path.join(work, "action-run-"));
    const seen = path.join(fake, "promoter-env.json");
    await writeFile(
      path.join(fake, "promoter"),
      `#!${process.execPath}\nrequire("node:fs").writeFileSync(${JSON.stringify(seen)}, JSON.stringify(process.env));\n`,
    );
    await chmod(path.join(fake, "promoter"), 0o755);
    await writeFile(path.join(fake, "output"), "");
    const status = await new Promise<number>((resolve, reject) => {
      const child = spawn("bash", ["-e", "-c", step?.run ?? ""], {
        cwd: fake,
        env: {
          PATH: `${fake}:/usr/bin:/bin`,
          RUNNER_TEMP: fake,
          GITHUB_OUTPUT: path.join(fake, "output"),
          COMMAND: "validate",
          THIN_MANIFEST_DIR: ".",
          MANIFEST: "",
          BASE: "",
          ALL: "false",
          ARGS: "",
          SUMMARY: "false",
          PR_BASE: "",
          PUSH_BEFORE: "",
          INPUT_REGISTRY_AUTH: SECRETS.PROMOTER_REGISTRY_AUTH,
          INPUT_SIGN_KEY: SIGN_KEY,
        },
        stdio: "ignore",
      });
      child.on("error", reject);
      child.on("close", (code) => {
        resolve(code ?? -1);
      });
    });
    expect(status).toBe(0);
    const env = JSON.parse(await readFile(seen, "utf8")) as Record<string, string>;
    expect(env.PROMOTER_SIGN_KEY).toBe(SIGN_KEY);
    expect(env.PROMOTER_REGISTRY_AUTH).toBe(SECRETS.PROMOTER_REGISTRY_AUTH);
    expect(env.INPUT_SIGN_KEY).toBeUndefined();
    expect(env.INPUT_REGISTRY_AUTH).toBeUndefined();
  });

  it("the example workflows hand secrets to the action as inputs, never through env of the action's steps", async () => {
    const folder = path.join(REPOSITORY_ROOT, "examples", "gitops-repo", ".github", "workflows");
    for (const name of ["promote.yml", "promote-backstop.yml", "promotion-check.yml"]) {
      const workflow = parse(await readFile(path.join(folder, name), "utf8")) as {
        env?: Record<string, string>;
        jobs: Record<string, { env?: Record<string, string>; steps: Step[] }>;
      };
      expect(JSON.stringify(workflow.env ?? {}), name).not.toContain("secrets.");
      for (const [job, body] of Object.entries(workflow.jobs)) {
        expect(JSON.stringify(body.env ?? {}), `${name} job ${job}`).not.toContain("secrets.");
        for (const step of body.steps) {
          if (!step.uses?.includes("image-promoter")) continue;
          expect(JSON.stringify(step.env ?? {}), `${name}: ${step.name ?? step.uses}`).not.toContain(
            "secrets.",
          );
        }
      }
    }
  });
  /**
   * The pull request writes every path of its checkout, symbolic links included. A workflow step
   * that writes a scratch file at a predictable path there (`plan.json`, `trivy-1.json`,
   * `comment.md`) writes through the link the pull request committed at that name: into any
   * file the runner's user can write (here a stand-in for `~/.gitconfig`). Every `run:` step of
   * the example workflows is run with bash in a checkout whose every file the PR planted as such
   * a link; nothing may be written through them, nor anything else inside the checkout.
   */
  it("the example workflows keep their scratch files out of the pull request's checkout", async () => {
    const folder = path.join(REPOSITORY_ROOT, "examples", "gitops-repo", ".github", "workflows");
    const root = await mkdtemp(path.join(work, "workflow-scratch-"));
    const victim = path.join(root, "victim-gitconfig");
    const stubs = path.join(root, "bin");
    const runnerTemp = path.join(root, "runner-temp");
    await mkdir(stubs);
    await mkdir(runnerTemp);
    const planDocument = JSON.stringify({
      edges: [{ source: "staging.example.com/app", digest: app.digest }],
    });
    const stub = (body: string) => `#!/bin/sh\n${body}\n`;
    const programs: Record<string, string> = {
      promoter: stub(`case "$1" in promote) echo '${planDocument}' ;; *) echo '### report' ;; esac`),
      docker: stub("echo '{}'"),
      gh: stub("exit 0"),
    };
    for (const [name, text] of Object.entries(programs)) {
      await writeFile(path.join(stubs, name), text);
      await chmod(path.join(stubs, name), 0o755);
    }
    const reports = path.join(runnerTemp, "promoter-check.md");
    await writeFile(reports, "### check\n");
    const planted = ["plan.json", "new-images.txt", "trivy-1.json", "comment.md", "report.md", "summary.md"];

    const action = parse(await readFile(path.join(REPOSITORY_ROOT, "action.yml"), "utf8")) as {
      runs: { steps: Step[] };
    };
    const actionRun = action.runs.steps.find((candidate) => candidate.id === "run");
    const runs: { label: string; step: Step; env?: Record<string, string> }[] = [];
    for (const command of ["check", "plan", "promote", "validate"]) {
      if (actionRun)
        runs.push({ label: `action.yml ${command}`, step: actionRun, env: { COMMAND: command } });
    }
    for (const name of ["promote.yml", "promote-backstop.yml", "promotion-check.yml"]) {
      const workflow = parse(await readFile(path.join(folder, name), "utf8")) as {
        jobs: Record<string, { steps: Step[] }>;
      };
      for (const step of Object.values(workflow.jobs).flatMap((job) => job.steps)) {
        // The last promoted commit is looked up with gh and git: no file is written.
        if (step.run === undefined || step.run.includes("gh run list")) continue;
        runs.push({ label: `${name}: ${step.name ?? "run step"}`, step });
      }
    }
    expect(runs.length).toBeGreaterThanOrEqual(7);
    for (const { label, step, env } of runs) {
      const checkout = await mkdtemp(path.join(root, "checkout-"));
      await writeFile(victim, "[user]\n\tname = victim\n");
      for (const file of planted) await symlink(victim, path.join(checkout, file));
      const before = (await readdir(checkout)).sort();
      const output = path.join(runnerTemp, "output");
      await writeFile(output, "");
      const status = await new Promise<number>((resolve, reject) => {
        const child = spawn("bash", ["-e", "-c", step.run ?? ""], {
          cwd: checkout,
          env: {
            PATH: `${stubs}:/usr/bin:/bin`,
            HOME: root,
            RUNNER_TEMP: runnerTemp,
            GITHUB_OUTPUT: output,
            GITHUB_STEP_SUMMARY: path.join(runnerTemp, "step-summary.md"),
            BASE: "main",
            PR: "1",
            CHECK_REPORT: reports,
            PLAN_REPORT: reports,
            THIN_MANIFEST_DIR: ".",
            MANIFEST: "",
            ALL: "false",
            ARGS: "",
            SUMMARY: "true",
            PR_BASE: "main",
            PUSH_BEFORE: "",
            INPUT_REGISTRY_AUTH: "",
            INPUT_SIGN_KEY: "",
            ...env,
          },
          stdio: "ignore",
        });
        child.on("error", reject);
        child.on("close", (code) => {
          resolve(code ?? -1);
        });
      });
      expect(status, label).toBe(0);
      expect(await readFile(victim, "utf8"), label).toBe("[user]\n\tname = victim\n");
      expect((await readdir(checkout)).sort(), label).toEqual(before);
    }
  });
});
