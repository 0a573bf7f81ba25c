import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { ALLOW_LOOPBACK_REGISTRIES } from "../support/local-registries.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoInspectRaw } from "../support/skopeo.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * A promotion has no phase barriers (issue 19): a project whose mirror answers nothing yet does
 * not hold back a project whose mirror is there. Judged by order at the proxies, never by time:
 * the slow mirror answers only once the fast mirror got its tag, so a promoter that reads every
 * destination before copying anything cannot finish the fast project first.
 */

let work: string;
let staging: TestRegistry;
let fastRegistry: TestRegistry;
let slowRegistry: TestRegistry;
let fast: FaultProxy;
let slow: FaultProxy;

const fastImage = makeImage({ layers: 2, layerSize: 2048, mediaTypes: "oci", seed: "pipeline-fast" });
const slowImage = makeImage({ layers: 2, layerSize: 2048, mediaTypes: "oci", seed: "pipeline-slow" });

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "pipelined-"));
  [staging, fastRegistry, slowRegistry] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry(),
  ]);
  await pushTagsWithSkopeo(work, staging.host, "staging/fast/app", [{ content: fastImage, tag: "v1" }]);
  await pushTagsWithSkopeo(work, staging.host, "staging/slow/app", [{ content: slowImage, tag: "v1" }]);
  fast = await FaultProxy.start({ upstream: fastRegistry.url });
  slow = await FaultProxy.start({ upstream: slowRegistry.url });
  const project = async (name: string, mirror: string, digest: string) => {
    await mkdir(path.join(work, "tree", "manifests", name), { recursive: true });
    await mkdir(path.join(work, "tree", "images", name), { recursive: true });
    await writeFile(
      path.join(work, "tree", "manifests", name, "promoter-manifest.yaml"),
      `registries:\n- name: ${staging.host}/staging/${name}\n  src: true\n- name: ${mirror}/prod\n`,
    );
    await writeFile(
      path.join(work, "tree", "images", name, "images.yaml"),
      `- name: app\n  dmap:\n    "${digest}": ["v1"]\n`,
    );
  };
  await project("fast", fast.host, fastImage.digest);
  await project("slow", slow.host, slowImage.digest);
}, 120_000);

afterAll(async () => {
  await Promise.all([fast.stop(), slow.stop()]);
  await Promise.all([staging.stop(), fastRegistry.stop(), slowRegistry.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("pipelined promotion", () => {
  it("finishes the work of a fast host while a slow host has not answered anything", async () => {
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    // Only so that a promoter with phase barriers ends (and fails the order check below) instead
    // of waiting forever; a pipelined one opens the gate itself, long before.
    const valve = setTimeout(open, 20_000);
    slow.setRules([{ name: "held", fault: { kind: "hold", until: opened } }]);
    const slowAnsweredAtFastTag: number[] = [];
    const slowAskedAtFastTag: number[] = [];
    const stop = fast.onRequest((request) => {
      if (request.method === "PUT" && request.path === "/v2/prod/app/manifests/v1") {
        slowAskedAtFastTag.push(slow.spans.length);
        slowAnsweredAtFastTag.push(slow.spans.filter((span) => span.end !== undefined).length);
        open();
      }
    });
    const capture = captureIO({ cwd: work, env: { HOME: work } });
    const status = await runCli(
      ["promote", "--thin-manifest-dir", "tree", "--confirm", "--quiet", ...ALLOW_LOOPBACK_REGISTRIES],
      capture.io,
    );
    stop();
    clearTimeout(valve);
    expect(status, `${capture.out()}\n${capture.err()}`).toBe(0);
    // The fast mirror got its tag while the slow mirror had been asked and had answered nothing.
    expect(slowAskedAtFastTag.length).toBe(1);
    expect(slowAskedAtFastTag[0]).toBeGreaterThan(0);
    expect(slowAnsweredAtFastTag[0]).toBe(0);
    // And the slow project was promoted in full once its host answered.
    expect((await skopeoInspectRaw(`docker://${slow.host}/prod/app:v1`)).digest).toBe(slowImage.digest);
    expect((await skopeoInspectRaw(`docker://${fast.host}/prod/app:v1`)).digest).toBe(fastImage.digest);
  }, 120_000);
});
