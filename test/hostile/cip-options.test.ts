import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltCli, runPromoter, STACK_LINE, type PromoterRun } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoListTags } from "../support/skopeo.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * `promoter cip` reads extra `promoter promote` flags from PROMOTER_CIP_OPTIONS, an environment
 * variable a Prow preset or a careless job owner sets for many jobs at once. The job's command
 * line is what reviewers read ("kpromo cip ... --confirm=false" is a dry run); the variable must
 * not change what that line says (write or not, sign or not, which manifests, which scope), must
 * not have its first word eaten by a flag at the end of the line, and a mistake in it must not
 * be echoed into the job's public log (the variable is where keys and tokens are named).
 */

const web = makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "cip-options-web" });

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;

function cip(
  args: readonly string[],
  options: string,
  env: Readonly<Record<string, string>> = {},
): Promise<PromoterRun> {
  return runPromoter(["cip", "--thin-manifest-dir=tree", ...args], {
    cwd: work,
    env: { PROMOTER_CIP_OPTIONS: options, ...env },
    allowLoopbackRegistries: false,
  });
}

function expectRefused(run: PromoterRun, message: RegExp): void {
  expect(run.status, run.stderr).toBe(2);
  expect(run.stderr).toMatch(message);
  expect(`${run.stdout}\n${run.stderr}`).not.toMatch(STACK_LINE);
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "cip-options-"));
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  await pushTagsWithSkopeo(work, staging.host, "staging/web", [{ content: web, tag: "v1" }]);
  await mkdir(path.join(work, "tree", "manifests", "web"), { recursive: true });
  await mkdir(path.join(work, "tree", "images", "web"), { recursive: true });
  await writeFile(
    path.join(work, "tree", "manifests", "web", "promoter-manifest.yaml"),
    `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prod.host}/prod\n`,
  );
  await writeFile(
    path.join(work, "tree", "images", "web", "images.yaml"),
    `- name: web\n  dmap:\n    "${web.digest}": ["v1"]\n`,
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

const ALLOW = "--allow-registry 127.0.0.1 --quiet";

describe("PROMOTER_CIP_OPTIONS cannot change what the job line says", () => {
  it("--confirm in the variable does not turn the line's dry run (--confirm=false) into a write", async () => {
    const run = await cip(["--confirm=false"], `${ALLOW} --confirm --sign=false`);
    expectRefused(run, /--confirm in PROMOTER_CIP_OPTIONS.*command line only/);
    expect(await skopeoListTags(`docker://${prod.host}/prod/web`).catch(() => [])).toEqual([]);
  });

  it("--sign=false in the variable does not make a signing --confirm run write unsigned", async () => {
    const run = await cip(["--confirm"], `${ALLOW} --sign=false`);
    expectRefused(run, /--sign in PROMOTER_CIP_OPTIONS.*command line only/);
    expect(await skopeoListTags(`docker://${prod.host}/prod/web`).catch(() => [])).toEqual([]);
  });

  it("kpromo's scope and input flags stay on the command line", async () => {
    for (const flag of ["--manifest-diff-since=100y", "--thin-manifest-dir=elsewhere", "--parse-only"]) {
      const run = await cip([], `${ALLOW} ${flag}`);
      expectRefused(run, new RegExp(`${flag.replace(/=.*/, "")} in PROMOTER_CIP_OPTIONS`));
    }
  });

  it("a flag ending the command line does not take the variable's first word as its value", async () => {
    const run = await cip(["--manifest-diff-since"], ALLOW);
    expectRefused(run, /flag needs an argument: --manifest-diff-since/);
  });

  it("a promote flag given in both places is refused, not silently overridden", async () => {
    const run = await cip(["--concurrency=1", "--parse-only"], `${ALLOW} --concurrency=64`);
    expectRefused(run, /--concurrency.*both on the command line and in PROMOTER_CIP_OPTIONS/);
  });
});

describe("a careless job owner", () => {
  it("--confirm in a Prow presubmit or batch job (unreviewed code) is refused before anything is written", async () => {
    for (const jobType of ["presubmit", "batch"]) {
      const run = await cip(["--confirm", "--sign=false"], ALLOW, { JOB_TYPE: jobType });
      expectRefused(run, new RegExp(`--confirm in a Prow ${jobType} job`));
    }
    expect(await skopeoListTags(`docker://${prod.host}/prod/web`).catch(() => [])).toEqual([]);
  });
});

describe("a mistake in PROMOTER_CIP_OPTIONS is not echoed into the log", () => {
  // Not shaped like a JWT or a key, so no redactor recognises it: only not printing it helps.
  const TOKEN = "s3cret-Regi5try-Passw0rd";

  it("a stray word (a token pasted after the wrong flag) is named by position, not printed", async () => {
    const run = await cip(["--parse-only"], `${ALLOW} --keyless ${TOKEN}`);
    expectRefused(run, /word 5 of PROMOTER_CIP_OPTIONS/);
    expect(run.stderr).not.toContain(TOKEN);
    expect(run.stderr).not.toContain("Passw0rd");
  });

  it("a bad boolean value is not printed either", async () => {
    const run = await cip(["--parse-only"], `${ALLOW} --keyless=${TOKEN}`);
    expectRefused(run, /PROMOTER_CIP_OPTIONS, not shown\) for --keyless: write true or false/);
    expect(run.stderr).not.toContain("Passw0rd");
  });

  it("the variable still works for promote flags: a dry run with --allow-registry and --report", async () => {
    const run = await cip(["--max-signature-ops=5"], `${ALLOW} --report "${path.join(work, "report.json")}"`);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Plan: 1 edge/);
    expect(run.stderr).not.toMatch(/--max-signature-ops/);
  });
});
