import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltCli, runPromoter, STACK_LINE, type PromoterRun } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoListTags } from "../support/skopeo.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * A full `cip` run (kpromo's backstop) reports old manifest errors as warnings that "do not fail
 * the run". A tag claimed for two digests is different: both claims are refused in the plan, and
 * a refused edge fails the run (kpromo stops on "overlapping edges detected" too). The run must
 * then not print that the conflict does not fail it, and --parse-only must say what the run does.
 */

const first = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "cip-findings-a" });
const second = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "cip-findings-b" });

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;

function cip(args: readonly string[]): Promise<PromoterRun> {
  return runPromoter(["cip", "--thin-manifest-dir=tree", ...args], {
    cwd: work,
    env: { PROMOTER_CIP_OPTIONS: "--allow-registry 127.0.0.1 --quiet" },
    allowLoopbackRegistries: false,
  });
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "cip-findings-"));
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  await pushTagsWithSkopeo(work, staging.host, "staging/tool", [
    { content: first, tag: "a" },
    { content: second, tag: "b" },
  ]);
  await mkdir(path.join(work, "tree", "manifests", "tool"), { recursive: true });
  await mkdir(path.join(work, "tree", "images", "tool"), { recursive: true });
  await writeFile(
    path.join(work, "tree", "manifests", "tool", "promoter-manifest.yaml"),
    `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prod.host}/prod\n`,
  );
  await writeFile(
    path.join(work, "tree", "images", "tool", "images.yaml"),
    `- name: tool\n  dmap:\n    "${first.digest}": ["v1"]\n    "${second.digest}": ["v1"]\n`,
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("a full cip run with an old tag conflict", () => {
  it("says the conflict fails the run, and it does; neither digest gets the tag", async () => {
    const run = await cip(["--confirm", "--sign=false"]);
    expect(`${run.stdout}\n${run.stderr}`).not.toMatch(STACK_LINE);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/error\[tag-conflict\]/);
    expect(run.stderr).not.toMatch(/tag-conflict.*the run does not fail/);
    expect(await skopeoListTags(`docker://${prod.host}/prod/tool`).catch(() => [])).not.toContain("v1");
  });

  it("--parse-only judges it as the run does (exit 1)", async () => {
    const run = await cip(["--parse-only"]);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/error\[tag-conflict\]/);
  });
});
