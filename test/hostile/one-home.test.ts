import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { makeImage, writeOciLayoutDirectly, type TestImage } from "../support/test-images.js";

/**
 * One concept, one home: where two places encoded one concept (the key of a registry location,
 * cosign's attachment tags) and drifted apart, the drift is an attack surface. Each test here
 * performs what the drift let through, against the real CLI.
 */

let work: string;

function image(seed: string): TestImage {
  return makeImage({ layers: 1, layerSize: 2048, mediaTypes: "oci", seed: `one-home-${seed}` });
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-one-home-"));
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("one key for a registry location", () => {
  /**
   * The auditor keyed OCI layout registries by their name as written (`oci:prod`) while every
   * other part keys them by the directory the name resolves to. Two projects that each write
   * `oci:prod` name two directories; the auditor saw one, and `audit reconcile` listed only the
   * one registered last, here project b's staging: a repository planted in project a's
   * production tree went unreported (and b's staging was reported as production).
   */
  it("audit reconcile lists every production layout tree, also two that are written alike", async () => {
    const tree = path.join(work, "same-name");
    const manifests = path.join(tree, "manifests");
    const promoted = image("promoted");
    const staged = image("staged");
    const planted = image("planted");
    // Project a: oci:staging -> oci:prod (manifests/a/prod), already promoted.
    await writeOciLayoutDirectly(path.join(manifests, "a", "staging", "app"), [
      { content: promoted, tag: "v1" },
    ]);
    await writeOciLayoutDirectly(path.join(manifests, "a", "prod", "app"), [
      { content: promoted, tag: "v1" },
    ]);
    // The attacker's repository in a's production tree, which no manifest names.
    await writeOciLayoutDirectly(path.join(manifests, "a", "prod", "rogue"), [
      { content: planted, tag: "v1" },
    ]);
    // Project b: its staging is also written oci:prod (manifests/b/prod) -> oci:mirror.
    await writeOciLayoutDirectly(path.join(manifests, "b", "prod", "tool"), [{ content: staged, tag: "v1" }]);
    await writeOciLayoutDirectly(path.join(manifests, "b", "mirror", "tool"), [
      { content: staged, tag: "v1" },
    ]);
    const project = async (name: string, source: string, destination: string, content: TestImage) => {
      const registries = ["registries:", `- name: ${source}`, "  src: true", `- name: ${destination}`, ""];
      await writeFile(path.join(manifests, name, "promoter-manifest.yaml"), registries.join("\n"));
      const images = path.join(tree, "images", name);
      await mkdir(images, { recursive: true });
      const image = [
        `- name: ${name === "a" ? "app" : "tool"}`,
        "  dmap:",
        `    "${content.digest}": ["v1"]`,
        "",
      ];
      await writeFile(path.join(images, "images.yaml"), image.join("\n"));
    };
    await project("a", "oci:staging", "oci:prod", promoted);
    await project("b", "oci:prod", "oci:mirror", staged);
    const run = await runPromoter(["audit", "reconcile", "--thin-manifest-dir", "."], { cwd: tree });
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(path.join(manifests, "a", "prod", "rogue"));
    // b's staging is not production.
    expect(run.stdout).not.toContain(path.join(manifests, "b", "prod", "tool"));
  });
});
