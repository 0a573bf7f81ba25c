import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { nestedIndex } from "../../../test/support/hostile-auditor.js";
import {
  makeImage,
  makeIndex,
  makeReferrer,
  writeOciLayoutDirectly,
} from "../../../test/support/test-images.js";
import { MAX_INDEX_DEPTH } from "../../oci/index.js";
import { runCli } from "../main.js";

/** `promoter snapshot` over OCI layout trees (the registry round trip is in test/e2e/gitops-snapshot.test.ts). */

let dir: string;
const amd64 = makeImage({
  layers: 1,
  layerSize: 256,
  mediaTypes: "oci",
  seed: "snap-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 256,
  mediaTypes: "oci",
  seed: "snap-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const old = makeImage({ layers: 1, layerSize: 128, mediaTypes: "oci", seed: "snap-old" });
const lint = makeImage({ layers: 1, layerSize: 128, mediaTypes: "oci", seed: "snap-lint" });
const signature = makeReferrer({
  subject: multi.descriptor,
  artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
  seed: "snap-sig",
});

async function run(...args: string[]) {
  const capture = captureIO({ cwd: dir });
  const status = await runCli(args, capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

function sorted(...digests: string[]): string[] {
  return [...digests].sort();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "snapshot-cli-"));
  await writeOciLayoutDirectly(path.join(dir, "staging", "app"), [
    { content: multi, tag: "v1.0" },
    { content: multi, tag: "v1" },
    { content: old, tag: "v0.9" },
    { content: signature, tag: `sha256-${multi.digest.slice(7)}.sig` },
  ]);
  await writeOciLayoutDirectly(path.join(dir, "staging", "tools", "lint"), [{ content: lint, tag: "2.0" }]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("promoter snapshot", () => {
  it("prints kpromo's images.yaml: sorted, quoted digests, inline tags, index children without tags", async () => {
    const result = await run("snapshot", "oci:staging");
    expect(result.status).toBe(0);
    const appDigests = sorted(multi.digest, amd64.digest, arm64.digest, old.digest);
    const tagsOf = (digest: string): string =>
      digest === multi.digest ? `["v1", "v1.0"]` : digest === old.digest ? `["v0.9"]` : "[]";
    expect(result.out).toBe(
      [
        "- name: app",
        "  dmap:",
        ...appDigests.map((digest) => `    "${digest}": ${tagsOf(digest)}`),
        "- name: tools/lint",
        "  dmap:",
        `    "${lint.digest}": ["2.0"]`,
        "",
      ].join("\n"),
    );
    expect(result.err).toContain(
      "2 images, 5 digests from 2 repositories; 1 signature/attestation/SBOM tag left out",
    );
  });

  it("--minimal leaves out index children, --tag keeps digests with that tag, --repository reads only those", async () => {
    const minimal = await run("snapshot", "oci:staging", "--minimal", "--quiet");
    expect(minimal.out).not.toContain(amd64.digest);
    expect(minimal.out).toContain(multi.digest);
    expect(minimal.err).toBe("");
    const tagged = await run("snapshot", "oci:staging", "--tag", "v1", "-q");
    expect(tagged.out).toBe(`- name: app\n  dmap:\n    "${multi.digest}": ["v1", "v1.0"]\n`);
    const one = await run("snapshot", "oci:staging", "--repository", "tools/lint", "-q");
    expect(one.out).toBe(`- name: tools/lint\n  dmap:\n    "${lint.digest}": ["2.0"]\n`);
  });

  it("lists the children of nested indexes as deep as a promotion copies them", async () => {
    const deepest = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "snap-deep" });
    const deep = nestedIndex(deepest, MAX_INDEX_DEPTH);
    await writeOciLayoutDirectly(path.join(dir, "deep", "app"), [{ content: deep, tag: "1.0" }]);
    const result = await run("snapshot", "oci:deep", "-q");
    expect(result.status).toBe(0);
    expect(result.out).toContain(`"${deepest.digest}": []`);
  });

  it("prints CSV with one row per tag", async () => {
    const result = await run("snapshot", "oci:staging", "--repository", "app", "--output", "csv", "-q");
    const rows = result.out.trim().split("\n");
    expect(rows[0]).toBe("image,digest,tag");
    expect(rows.slice(1).sort()).toEqual(
      [
        `app,${multi.digest},v1`,
        `app,${multi.digest},v1.0`,
        `app,${old.digest},v0.9`,
        `app,${amd64.digest},`,
        `app,${arm64.digest},`,
      ].sort(),
    );
  });

  it("round trip: a snapshot promoted to an empty mirror snapshots the same", async () => {
    const snapshot = await run("snapshot", "oci:staging", "-q");
    await mkdir(path.join(dir, "tree", "manifests", "mirror"), { recursive: true });
    await mkdir(path.join(dir, "tree", "images", "mirror"), { recursive: true });
    await writeFile(
      path.join(dir, "tree", "manifests", "mirror", "promoter-manifest.yaml"),
      "registries:\n- name: oci:../../../staging\n  src: true\n- name: oci:../../../mirror\n",
    );
    await writeFile(path.join(dir, "tree", "images", "mirror", "images.yaml"), snapshot.out);
    // The layouts are beside the tree, outside it: the operator allows them.
    const allow = ["--allow-registry", "oci:staging", "--allow-registry", "oci:mirror"];
    const validated = await run("validate", "--thin-manifest-dir", "tree", ...allow);
    expect(validated.status, validated.out).toBe(0);
    expect(validated.out).toContain("0 errors, 0 warnings");
    const promoted = await run("promote", "--thin-manifest-dir", "tree", "--confirm", "--quiet", ...allow);
    expect(promoted.status, promoted.out + promoted.err).toBe(0);
    const mirror = await run("snapshot", "oci:mirror", "-q");
    expect(mirror.out).toBe(snapshot.out);
  });

  it("refuses bad input with exit status 2", async () => {
    expect((await run("snapshot")).status).toBe(2);
    expect((await run("snapshot", "not a registry")).status).toBe(2);
    expect((await run("snapshot", "oci:staging", "--tag", "a b")).status).toBe(2);
    const badRepository = await run("snapshot", "oci:staging", "--repository", "Upper");
    expect(badRepository.status).toBe(2);
    expect(badRepository.err).toContain("invalid-repository");
  });

  it("an empty tree is an empty list", async () => {
    await mkdir(path.join(dir, "empty"), { recursive: true });
    const result = await run("snapshot", "oci:empty", "-q");
    expect(result).toMatchObject({ status: 0, out: "[]\n" });
  });
});
