import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectClear, requireBuiltCli, runPromoter, type PromoterRun } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { listTags, seedRegistry } from "../support/registry-judge.js";
import { makeImage, writeOciLayoutDirectly, type TestContent } from "../support/test-images.js";

/**
 * A tampered `promote --from-plan` file (issue "Trust under attack", finding 5). The plan is an
 * artifact that travels between a review and a privileged run; whoever can edit it on the way
 * (a pull-request job that made it, a shared artifact store) must not be able to make the
 * promoter write anything the reviewed manifests do not declare, nor show one thing and do
 * another. Every attack edits plan.json the way an attacker would and runs the promoter as the
 * operator does, against real registries.
 */

let work: string;
let staging: TestRegistry;
let prod: TestRegistry; // the manifests' destination
let mirror: TestRegistry; // a production registry the promoter can write, that no manifest here names

const app = makeImage({ layers: 1, layerSize: 2048, mediaTypes: "oci", seed: "plan-file-app" });
const other = makeImage({ layers: 1, layerSize: 2048, mediaTypes: "oci", seed: "plan-file-other" });
const payload = makeImage({ layers: 1, layerSize: 2048, mediaTypes: "oci", seed: "plan-file-payload" });

interface PlanEdge {
  project: string;
  image: string;
  digest: string;
  tag: string | null;
  source: string;
  destination: string;
  sourceLocation: Record<string, string>;
  destinationLocation: Record<string, string>;
  sourceRegistry: string;
  destinationRegistry: string;
  decision: string;
  reason?: string;
}

interface Plan {
  edges: PlanEdge[];
  [field: string]: unknown;
}

function promoter(args: readonly string[]): Promise<PromoterRun> {
  return runPromoter(args, { cwd: work });
}

function manifestYaml(images: { name: string; content: TestContent; tags: string[] }[]): string {
  return [
    "registries:",
    `- name: ${staging.host}/staging`,
    "  src: true",
    `- name: ${prod.host}/prod`,
    "images:",
    ...images.flatMap((image) => [
      `- name: ${image.name}`,
      "  dmap:",
      `    "${image.content.digest}": [${image.tags.map((tag) => `"${tag}"`).join(", ")}]`,
    ]),
    "",
  ].join("\n");
}

/** Makes a plan of `manifestArgs` (a reviewed dry run) and returns it. */
async function makePlan(manifestArgs: readonly string[], file: string): Promise<Plan> {
  const run = await promoter(["promote", ...manifestArgs, "--plan-file", file, "--quiet"]);
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(await readFile(path.join(work, file), "utf8")) as Plan;
}

/** Writes a copy of `plan` with `change` applied to it. */
async function tampered(plan: Plan, file: string, change: (plan: Plan) => void): Promise<string> {
  const copy = structuredClone(plan);
  change(copy);
  await writeFile(path.join(work, file), JSON.stringify(copy, null, 2));
  return file;
}

async function catalog(registry: TestRegistry): Promise<string[]> {
  const response = await fetch(`${registry.url}/v2/_catalog`);
  const body = (await response.json()) as { repositories?: string[] | null };
  return body.repositories ?? [];
}

/** What an honest plan of app:v1 looks like, made once. */
let appPlan: Plan;
const APP_MANIFEST = ["--manifest", "promoter.yaml"];

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-plan-file-"));
  [staging, prod, mirror] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
  // Staging holds the reviewed image and what a staging pusher added next to it.
  await seedRegistry(staging.url, "staging/app", [
    { content: app, tags: ["v1"] },
    { content: other, tags: ["other"] },
  ]);
  await seedRegistry(staging.url, "staging/payload", [{ content: payload, tags: ["x"] }]);
  await writeFile(
    path.join(work, "promoter.yaml"),
    manifestYaml([{ name: "app", content: app, tags: ["v1"] }]),
  );
  appPlan = await makePlan(APP_MANIFEST, "plan.json");
  expect(appPlan.edges).toHaveLength(1);
  expect(appPlan.edges[0]?.decision).toBe("copy");
}, 120_000);

afterAll(async () => {
  const registries: (TestRegistry | undefined)[] = [staging, prod, mirror];
  await Promise.all(registries.flatMap((registry) => (registry ? [registry.stop()] : [])));
  if (work) await rm(work, { recursive: true, force: true });
});

/** The run wrote nothing: no repository appeared in prod or in the other mirror. */
async function expectNothingWritten(): Promise<void> {
  expect(await catalog(prod)).toEqual([]);
  expect(await catalog(mirror)).toEqual([]);
}

/** Runs a tampered plan as the operator runs a reviewed one. */
function runPlan(file: string, ...extra: string[]): Promise<PromoterRun> {
  return promoter(["promote", "--from-plan", file, ...APP_MANIFEST, "--confirm", "--quiet", ...extra]);
}

describe("a tampered plan file", () => {
  it("cannot add a destination repository and tag the manifests do not declare, behind the declared name", async () => {
    // The displayed fields (destination, destinationRegistry) still say prod/app:v1.
    const file = await tampered(appPlan, "new-destination.json", (plan) => {
      const edge = plan.edges[0]!;
      edge.destinationLocation = { ...edge.destinationLocation, repository: "prod/evil" };
      edge.tag = "latest";
    });
    const run = await runPlan(file);
    expectClear(run, 1, /edges\[0\].*prod\/evil:latest@sha256:[0-9a-f]{64}.*not declared by the manifests/);
    expect(run.stderr).toMatch(/nothing was written/);
    await expectNothingWritten();
  });

  it("cannot send an edge to a registry no manifest names", async () => {
    const file = await tampered(appPlan, "new-registry.json", (plan) => {
      const edge = plan.edges[0]!;
      edge.destinationLocation = { kind: "remote", host: mirror.host, repository: "prod/app" };
      edge.destination = `${mirror.host}/prod/app`;
      edge.destinationRegistry = `${mirror.host}/prod`;
    });
    const run = await runPlan(file);
    expectClear(
      run,
      1,
      new RegExp(`edges\\[0\\].*${mirror.host}/prod/app:v1.*not declared by the manifests`),
    );
    await expectNothingWritten();
  });

  it("cannot write an OCI layout at a path of its choice", async () => {
    const target = path.join(work, "planted-layout");
    const file = await tampered(appPlan, "layout-destination.json", (plan) => {
      const edge = plan.edges[0]!;
      edge.destinationLocation = { kind: "oci-layout", directory: target, repository: "prod/app" };
      edge.destination = `oci:${target}/prod/app`;
    });
    const run = await runPlan(file);
    expectClear(run, 1, /edges\[0\].*planted-layout\/prod\/app:v1.*not declared by the manifests/);
    expect(existsSync(target)).toBe(false);
    await expectNothingWritten();
  });

  it("cannot promote a staging pusher's image from another source repository", async () => {
    const file = await tampered(appPlan, "new-source.json", (plan) => {
      const edge = plan.edges[0]!;
      edge.sourceLocation = { kind: "remote", host: staging.host, repository: "staging/payload" };
      edge.source = `${staging.host}/staging/payload`;
      edge.digest = payload.digest;
    });
    const run = await runPlan(file);
    expectClear(run, 1, /edges\[0\].*prod\/app:v1@sha256:[0-9a-f]{64}.*not declared by the manifests/);
    await expectNothingWritten();
  });

  it("cannot read its source from an OCI layout on the promoter's machine", async () => {
    const planted = path.join(work, "planted-source");
    await writeOciLayoutDirectly(path.join(planted, "app"), [{ content: payload, tag: "x" }]);
    const file = await tampered(appPlan, "layout-source.json", (plan) => {
      const edge = plan.edges[0]!;
      edge.sourceLocation = { kind: "oci-layout", directory: planted, repository: "app" };
      edge.source = `oci:${planted}/app`;
      edge.digest = payload.digest;
    });
    const run = await runPlan(file);
    expectClear(run, 1, /edges\[0\].*not declared by the manifests/);
    await expectNothingWritten();
  });

  it("cannot swap the digest for another one staging holds in the same repository", async () => {
    const file = await tampered(appPlan, "new-digest.json", (plan) => {
      plan.edges[0]!.digest = other.digest;
    });
    const run = await runPlan(file);
    expectClear(
      run,
      1,
      new RegExp(`edges\\[0\\].*prod/app:v1@${other.digest}.*not declared by the manifests`),
    );
    await expectNothingWritten();
  });

  it("cannot rename the destination registry to choose the identity the promoter signs as", async () => {
    // With --sign-key the signature names the destination registry's name (the canonical
    // registry): a plan that renames it would make the promoter sign app as anything.
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(
      path.join(work, "sign.key"),
      key.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      { mode: 0o600 },
    );
    const file = await tampered(appPlan, "new-identity.json", (plan) => {
      plan.edges[0]!.destinationRegistry = "registry.k8s.io/kube-apiserver";
    });
    const run = await runPlan(file, "--sign-key", "sign.key");
    expectClear(run, 1, /edges\[0\].*prod\/app:v1.*not declared by the manifests/);
    await expectNothingWritten();
  });

  it("cannot relabel an edge's project (source signature policies and signing identities are per project)", async () => {
    const file = await tampered(appPlan, "new-project.json", (plan) => {
      plan.edges[0]!.project = "trusted-team";
    });
    const run = await runPlan(file);
    expectClear(run, 1, /edges\[0\].*not declared by the manifests/);
    await expectNothingWritten();
  });

  it("cannot turn a conflict the manifests refuse into a copy", async () => {
    // One project claims prod/shared:v2 for two digests: promote refuses both claims. (Two
    // projects cannot meet in one repository: that is an ownership error, not a conflict.)
    const tree = path.join(work, "conflict");
    await seedRegistry(staging.url, "staging/shared", [
      { content: app, tags: ["a"] },
      { content: other, tags: ["b"] },
    ]);
    await mkdir(path.join(tree, "manifests", "team"), { recursive: true });
    await mkdir(path.join(tree, "images", "team"), { recursive: true });
    await writeFile(
      path.join(tree, "manifests", "team", "promoter-manifest.yaml"),
      ["registries:", `- name: ${staging.host}/staging`, "  src: true", `- name: ${prod.host}/prod`, ""].join(
        "\n",
      ),
    );
    await writeFile(
      path.join(tree, "images", "team", "images.yaml"),
      ["- name: shared", "  dmap:", `    "${app.digest}": ["v2"]`, `    "${other.digest}": ["v2"]`, ""].join(
        "\n",
      ),
    );
    const manifests = ["--thin-manifest-dir", "conflict"];
    const plan = await promoter(["promote", ...manifests, "--plan-file", "conflict-plan.json", "--quiet"]);
    expect(plan.status).toBe(1); // the conflict is refused
    const saved = JSON.parse(await readFile(path.join(work, "conflict-plan.json"), "utf8")) as Plan;
    expect(saved.edges.map((edge) => edge.decision)).toEqual(["refused-conflict", "refused-conflict"]);
    const file = await tampered(saved, "conflict-copy.json", (tamper) => {
      for (const edge of tamper.edges) {
        edge.decision = "copy";
        delete edge.reason;
      }
    });
    const run = await promoter(["promote", "--from-plan", file, ...manifests, "--confirm", "--quiet"]);
    expectClear(run, 1, /prod\/shared:v2@sha256:[0-9a-f]{64}: planned copy, now refused-conflict/);
    expect(await listTags(prod.url, "prod/shared")).toEqual([]);
    await expectNothingWritten();
  });

  it("made before the manifests changed is refused, naming the edge they no longer declare", async () => {
    await writeFile(
      path.join(work, "stale.yaml"),
      manifestYaml([{ name: "stale", content: app, tags: ["s1", "s2"] }]),
    );
    await seedRegistry(staging.url, "staging/stale", [{ content: app, tags: ["s"] }]);
    const stale = ["--manifest", "stale.yaml"];
    await makePlan(stale, "stale-plan.json");
    // The reviewed change is reverted in part: s2 is no longer wanted.
    await writeFile(
      path.join(work, "stale.yaml"),
      manifestYaml([{ name: "stale", content: app, tags: ["s1"] }]),
    );
    const run = await promoter([
      "promote",
      "--from-plan",
      "stale-plan.json",
      ...stale,
      "--confirm",
      "--quiet",
    ]);
    expectClear(run, 1, /edges\[1\].*prod\/stale:s2@sha256:[0-9a-f]{64}.*not declared by the manifests/);
    expect(run.stderr).not.toMatch(/prod\/stale:s1@/);
    await expectNothingWritten();
  });
});

describe("an honest plan file", () => {
  it("needs the manifests it was made from", async () => {
    const run = await promoter(["promote", "--from-plan", "plan.json", "--confirm", "--quiet"]);
    expectClear(run, 2, /--from-plan .*--manifest FILE or --thin-manifest-dir DIR/);
    await expectNothingWritten();
  });

  it("runs as reviewed, shown with the manifests' names", async () => {
    const run = await promoter(["promote", "--from-plan", "plan.json", ...APP_MANIFEST, "--confirm"]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`from ${staging.host}/staging/app`);
    expect(run.stdout).toContain(`copy, tag v1 -> 1 destination: ${prod.host}/prod`);
    expect(run.stdout).toMatch(/1 copied/);
    expect(await listTags(prod.url, "prod/app")).toEqual(["v1"]);
    expect(await catalog(mirror)).toEqual([]);
  });
});
