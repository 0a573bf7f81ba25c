import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeImage, writeOciLayoutDirectly } from "../support/test-images.js";
import { startCliShim, type CliShim } from "./gitops-cli-shim.js";

/**
 * The composite GitHub Action (action.yml) and the example workflows: the workflows only use
 * inputs the action has, and the action's run script, executed with bash as a runner would, picks
 * the right base revision, runs the right promoter command and writes its outputs and summary.
 * The promoter behind it is the real CLI (through the test shim); registries are OCI layouts.
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");

interface ActionStep {
  readonly name?: string;
  readonly id?: string;
  readonly run?: string;
  readonly uses?: string;
  readonly with?: Record<string, unknown>;
  readonly env?: Record<string, string>;
}
interface ActionFile {
  readonly inputs: Record<string, { default?: string; required?: boolean }>;
  readonly outputs: Record<string, unknown>;
  readonly runs: { using: string; steps: ActionStep[] };
}
interface Workflow {
  readonly on: unknown;
  readonly concurrency?: { group: string; "cancel-in-progress"?: boolean } | string;
  readonly jobs: Record<string, { steps: ActionStep[] }>;
}

let action: ActionFile;
let work: string;
let repo: string;
let shim: CliShim;
let baseCommit: string;

const v1 = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "action-v1" });
const v2 = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "action-v2" });

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: work },
  }).trim();
}

/** Runs the action's "run" step with bash, the inputs and event data as the runner passes them. */
async function runActionStep(env: Record<string, string>) {
  const step = action.runs.steps.find((candidate) => candidate.id === "run");
  if (!step?.run) throw new Error("action.yml has no run step");
  const runnerTemp = await mkdtemp(path.join(work, "runner-"));
  const outputFile = path.join(runnerTemp, "output");
  const summaryFile = path.join(runnerTemp, "summary.md");
  await writeFile(outputFile, "");
  await writeFile(summaryFile, "");
  const defaults = Object.fromEntries(
    Object.entries(action.inputs).map(([name, input]) => [inputVariable(name), input.default ?? ""]),
  );
  const fullEnv: Record<string, string> = {
    PATH: `${shim.binDirectory}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: work,
    RUNNER_TEMP: runnerTemp,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    PR_BASE: "",
    PUSH_BEFORE: "",
    ...defaults,
    ...shim.env,
    ...env,
  };
  const status = await new Promise<number>((resolve, reject) => {
    const child = spawn("bash", ["-e", "-c", step.run ?? ""], {
      cwd: repo,
      env: fullEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => {
      resolve(code ?? -1);
    });
  });
  const outputs = Object.fromEntries(
    (await readFile(outputFile, "utf8"))
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split("=", 2) as [string, string]),
  );
  const report = outputs.report ? await readFile(outputs.report, "utf8").catch(() => "") : "";
  return { status, outputs, summary: await readFile(summaryFile, "utf8"), report };
}

/** The environment variable the run step reads an input from (see its `env:`). */
function inputVariable(input: string): string {
  const step = action.runs.steps.find((candidate) => candidate.id === "run");
  for (const [name, value] of Object.entries(step?.env ?? {})) {
    if (value === `\${{ inputs.${input} }}`) return name;
  }
  return `UNUSED_${input.toUpperCase().replace(/-/g, "_")}`;
}

beforeAll(async () => {
  action = parse(await readFile(path.join(repoRoot, "action.yml"), "utf8")) as ActionFile;
  work = await mkdtemp(path.join(tmpdir(), "gitops-action-"));
  repo = path.join(work, "repo");
  shim = await startCliShim(work);
  await writeOciLayoutDirectly(path.join(repo, "registries", "staging", "app"), [
    { content: v1, tag: "v1" },
    { content: v2, tag: "v2" },
  ]);
  await mkdir(path.join(repo, "manifests", "app"), { recursive: true });
  await mkdir(path.join(repo, "images", "app"), { recursive: true });
  await writeFile(
    path.join(repo, "manifests", "app", "promoter-manifest.yaml"),
    "registries:\n- name: oci:../../registries/staging\n  src: true\n- name: oci:../../registries/prod\n",
  );
  await writeFile(
    path.join(repo, "images", "app", "images.yaml"),
    `- name: app\n  dmap:\n    "${v1.digest}": ["v1"]\n`,
  );
  await writeFile(path.join(repo, ".gitignore"), "registries/\n");
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "base");
  baseCommit = git("rev-parse", "HEAD");
  await writeFile(
    path.join(repo, "images", "app", "images.yaml"),
    `- name: app\n  dmap:\n    "${v1.digest}": ["v1"]\n    "${v2.digest}": ["v2"]\n`,
  );
  git("commit", "-q", "-am", "add v2");
}, 60_000);

afterAll(async () => {
  await shim.close();
  await rm(work, { recursive: true, force: true });
});

describe("action.yml", () => {
  it("is a composite action whose run step takes every input through env", () => {
    expect(action.runs.using).toBe("composite");
    for (const name of Object.keys(action.inputs)) {
      if (name === "version" || name === "node-version") continue;
      expect(inputVariable(name), name).not.toMatch(/^UNUSED_/);
    }
    expect(Object.keys(action.outputs).sort()).toEqual(["exit-code", "json-report", "report"]);
  });

  it("check: judges the change against the pull request's base, with the report for a comment", async () => {
    const result = await runActionStep({ COMMAND: "check", PR_BASE: baseCommit, THIN_MANIFEST_DIR: "." });
    expect(result.status).toBe(0);
    expect(result.outputs["exit-code"]).toBe("0");
    expect(result.report).toContain("### promoter check: :white_check_mark: passed");
    expect(result.summary).toContain("### promoter check");
    expect(shim.calls.at(-1)).toEqual([
      "check",
      "--base",
      baseCommit,
      "--thin-manifest-dir",
      ".",
      "--output",
      "markdown",
    ]);
  });

  it("check: a failing check fails the step and still writes the report", async () => {
    const result = await runActionStep({
      COMMAND: "check",
      PR_BASE: baseCommit,
      ARGS: "--max-image-size 10",
    });
    expect(result.status).toBe(1);
    expect(result.outputs["exit-code"]).toBe("1");
    expect(result.report).toContain("| Image size | :x: fail |");
  });

  it("plan: a dry run of the change, as markdown in the summary", async () => {
    const result = await runActionStep({ COMMAND: "plan", PR_BASE: baseCommit });
    expect(result.status).toBe(0);
    expect(result.summary).toContain("### Promotion plan (dry run)");
    expect(result.summary).toContain("`v2`");
    expect(result.summary).not.toContain("`v1`");
    expect(shim.calls.at(-1)).toEqual([
      "promote",
      "--thin-manifest-dir",
      ".",
      "--changed-since",
      baseCommit,
      "--output",
      "markdown",
    ]);
  });

  it("promote: the change since the commit before the push, or everything with all", async () => {
    const changed = await runActionStep({ COMMAND: "promote", PUSH_BEFORE: baseCommit });
    expect(changed.status).toBe(0);
    expect(shim.calls.at(-1)?.slice(0, 6)).toEqual([
      "promote",
      "--thin-manifest-dir",
      ".",
      "--changed-since",
      baseCommit,
      "--confirm",
    ]);
    expect(changed.summary).toContain("| copied | 1 |");
    // Issue 17 item 10: the report output of promote pointed at an empty file.
    expect(changed.outputs.report).toMatch(/promoter-promote\.md$/);
    expect(changed.report).toContain("### Promotion result");
    expect(changed.report).toContain("`v2`");
    expect(changed.summary).toContain(changed.report);
    const json = JSON.parse(await readFile(changed.outputs["json-report"]!, "utf8")) as {
      kind: string;
      edges: { outcome: string }[];
    };
    expect(json.kind).toBe("report");
    expect(json.edges.map((edge) => edge.outcome)).toEqual(["copied"]);
    const all = await runActionStep({ COMMAND: "promote", ALL: "true", PUSH_BEFORE: baseCommit });
    expect(all.status).toBe(0);
    expect(shim.calls.at(-1)?.slice(0, 4)).toEqual(["promote", "--thin-manifest-dir", ".", "--confirm"]);
    expect(all.summary).toContain("| unchanged | 1 |");
    expect(all.summary).toContain("| copied | 1 |");
  });

  it("falls back to HEAD^ for a new branch, and refuses unknown commands", async () => {
    await runActionStep({ COMMAND: "plan", PUSH_BEFORE: "0000000000000000000000000000000000000000" });
    expect(shim.calls.at(-1)).toContain("HEAD^");
    const unknown = await runActionStep({ COMMAND: "deploy" });
    expect(unknown.status).toBe(2);
    expect(unknown.outputs["exit-code"]).toBe("2");
  });
});

describe("the example workflows", () => {
  it("use only inputs the action has, commands it knows, and one concurrency group for promotions", async () => {
    const directory = path.join(repoRoot, "examples", "gitops-repo", ".github", "workflows");
    const files = (await readdir(directory)).filter((name) => name.endsWith(".yml")).sort();
    expect(files).toEqual(["promote-backstop.yml", "promote.yml", "promotion-check.yml"]);
    const commands = new Set<string>();
    for (const file of files) {
      const workflow = parse(await readFile(path.join(directory, file), "utf8")) as Workflow;
      for (const job of Object.values(workflow.jobs)) {
        for (const step of job.steps) {
          if (!step.uses?.includes("/image-promoter@")) continue;
          for (const input of Object.keys(step.with ?? {}))
            expect(Object.keys(action.inputs), `${file}: ${input}`).toContain(input);
          commands.add(String(step.with?.command));
        }
      }
      if (file.startsWith("promote")) {
        expect(workflow.concurrency, file).toEqual({ group: "image-promotion", "cancel-in-progress": false });
      }
    }
    expect([...commands].sort()).toEqual(["check", "plan", "promote", "validate"]);
  });
});
