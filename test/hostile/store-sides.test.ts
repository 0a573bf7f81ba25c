import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy, type FaultRule } from "../support/fault-proxy.js";
import { expectClear, requireBuiltCli, runPromoter, type PromoterRun } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { allBlobs, makeImage, type TestContent } from "../support/test-images.js";

/**
 * Store roles (docs/decisions/0003-store-roles.md): a repository store does not know which end of
 * a promotion it is; the promotion opens it for one side and every failure names that side, so a
 * person knows whether staging or a mirror broke. Attacked through `promoter promote` as a user
 * runs it, with a compromised staging registry (wrong bytes, refusals) and a mirror that refuses
 * or fails, on every path a store error takes to the user: the inventory's reads, the copy's
 * reads and writes, a blob stream that breaks while it flows, and a tag written to a mirror that
 * already holds the image (the mirror is then both ends of the copy and must be named as the
 * destination). Each case ends with exit 1, one clear line naming the side, the operation and the
 * repository, and no stack trace.
 */

let work: string;
let staging: TestRegistry;
let mirror: TestRegistry;
let stagingProxy: FaultProxy;
let mirrorProxy: FaultProxy;

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-store-sides-"));
  [staging, mirror] = await Promise.all([startRegistry(), startRegistry()]);
  stagingProxy = await FaultProxy.start({ upstream: staging.url });
  mirrorProxy = await FaultProxy.start({ upstream: mirror.url });
}, 120_000);

afterAll(async () => {
  for (const proxy of [stagingProxy, mirrorProxy] as (FaultProxy | undefined)[]) await proxy?.stop();
  const registries: (TestRegistry | undefined)[] = [staging, mirror];
  await Promise.all(registries.flatMap((registry) => (registry ? [registry.stop()] : [])));
  if (work) await rm(work, { recursive: true, force: true });
});

/** A new image in staging/<name>, tagged t1. */
async function stagedImage(name: string): Promise<TestContent> {
  const content = makeImage({ layers: 1, layerSize: 4096, mediaTypes: "oci", seed: `store-sides-${name}` });
  await seedRegistry(staging.url, `staging/${name}`, [{ content, tags: ["t1"] }]);
  return content;
}

function layerOf(content: TestContent): string {
  const layer = allBlobs(content).find((blob) => blob.descriptor.mediaType.includes("layer"));
  if (!layer) throw new Error("no layer");
  return layer.descriptor.digest;
}

/** Promotes staging/<name>@digest as `tags` to the mirror's prod/<name> with the given faults. */
async function promote(
  name: string,
  content: TestContent,
  faults: { staging?: FaultRule[]; mirror?: FaultRule[] },
  tags: readonly string[] = ["t1"],
): Promise<PromoterRun> {
  const file = `${name}.yaml`;
  await writeFile(
    path.join(work, file),
    [
      "registries:",
      `- name: ${stagingProxy.host}/staging`,
      "  src: true",
      `- name: ${mirrorProxy.host}/prod`,
      "images:",
      `- name: ${name}`,
      "  dmap:",
      `    "${content.digest}": [${tags.map((tag) => `"${tag}"`).join(", ")}]`,
      "",
    ].join("\n"),
  );
  stagingProxy.setRules(faults.staging ?? []);
  mirrorProxy.setRules(faults.mirror ?? []);
  try {
    return await runPromoter(["promote", "--manifest", file, "--confirm"], { cwd: work, timeoutMs: 90_000 });
  } finally {
    stagingProxy.setRules([]);
    mirrorProxy.setRules([]);
  }
}

const DENIED = { kind: "status", status: 403 } as const;

describe("every failure of a promotion names its side", { timeout: 120_000 }, () => {
  it("a staging registry that refuses to say whether it has the digest: source", async () => {
    const content = await stagedImage("inventory");
    const run = await promote("inventory", content, {
      staging: [{ method: "HEAD", path: `/v2/staging/inventory/manifests/${content.digest}`, fault: DENIED }],
    });
    expectClear(run, 1, new RegExp(`resolve manifest source ${stagingProxy.host}/staging/inventory: `));
  });

  it("a staging registry that serves a layer with other bytes, found while it streams: source", async () => {
    const content = await stagedImage("corrupt-layer");
    const run = await promote("corrupt-layer", content, {
      staging: [
        {
          method: "GET",
          path: `/v2/staging/corrupt-layer/blobs/${layerOf(content)}`,
          fault: { kind: "corrupt" },
        },
      ],
    });
    expectClear(
      run,
      1,
      new RegExp(`get blob source ${stagingProxy.host}/staging/corrupt-layer: blob ${layerOf(content)}`),
    );
  });

  it("a mirror that refuses to say whether it has a blob: destination", async () => {
    const content = await stagedImage("blob-check");
    const run = await promote("blob-check", content, {
      mirror: [{ method: "HEAD", path: `/v2/prod/blob-check/blobs/${layerOf(content)}`, fault: DENIED }],
    });
    expectClear(run, 1, new RegExp(`check blob destination ${mirrorProxy.host}/prod/blob-check: `));
  });

  it("a mirror that refuses the manifest: destination", async () => {
    const content = await stagedImage("manifest-write");
    const run = await promote("manifest-write", content, {
      mirror: [{ method: "PUT", path: `/v2/prod/manifest-write/manifests/`, fault: DENIED }],
    });
    expectClear(run, 1, new RegExp(`put manifest destination ${mirrorProxy.host}/prod/manifest-write: `));
  });

  it("a mirror that holds the image but fails to serve it for a new tag: destination, not source", async () => {
    const content = await stagedImage("tag-only");
    expectClear(await promote("tag-only", content, {}), 0);
    // The mirror has the digest: the new tag is read from the mirror's own copy, never from
    // staging, and that read fails at the mirror.
    const run = await promote(
      "tag-only",
      content,
      { mirror: [{ method: "GET", path: `/v2/prod/tag-only/manifests/${content.digest}`, fault: DENIED }] },
      ["t1", "t2"],
    );
    expectClear(run, 1, new RegExp(`get manifest destination ${mirrorProxy.host}/prod/tag-only: `));
    expect(`${run.stdout}\n${run.stderr}`).not.toMatch(/get manifest source/);
  });
});
