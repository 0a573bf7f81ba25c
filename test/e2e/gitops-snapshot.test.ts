import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { parseRegistryLocation, parseRepositoryPath, repositoryIn } from "../../src/reference/index.js";
import { createStoreProvider } from "../../src/registry/index.js";
import { captureIO } from "../support/cli.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoCopy, skopeoInspectRaw, skopeoListTags } from "../support/skopeo.js";
import { requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import {
  pushToStore,
  makeImage,
  makeIndex,
  makeReferrer,
  pushTagsWithSkopeo,
  type TestContent,
} from "../support/test-images.js";

/**
 * `promoter snapshot` against real registries (distribution 2.8.2 with _catalog), skopeo as the
 * judge: the snapshot describes exactly what the registry holds, `promote` accepts it, and a
 * mirror filled from it snapshots the same (the round trip).
 */

let work: string;
let source: TestRegistry;
let target: TestRegistry;

const amd64 = makeImage({
  layers: 1,
  layerSize: 1024,
  mediaTypes: "oci",
  seed: "snap-e2e-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 1024,
  mediaTypes: "oci",
  seed: "snap-e2e-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const signature = makeReferrer({
  subject: multi.descriptor,
  artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
  seed: "snap-e2e-sig",
});
const dockerAmd64 = makeImage({
  layers: 1,
  layerSize: 512,
  mediaTypes: "docker",
  seed: "snap-e2e-d-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const dockerS390x = makeImage({
  layers: 1,
  layerSize: 512,
  mediaTypes: "docker",
  seed: "snap-e2e-d-s390x",
  platform: { architecture: "s390x", os: "linux" },
});
const dockerList = makeIndex([dockerAmd64, dockerS390x], { mediaType: "docker" });
const dockerSingle = makeImage({
  layers: 1,
  layerSize: 512,
  mediaTypes: "docker",
  seed: "snap-e2e-d-single",
});
const unrelated = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "snap-e2e-unrelated" });

async function promoter(...args: string[]) {
  const capture = captureIO({ cwd: work, env: { HOME: work } });
  const status = await runCli(allowingLoopbackRegistries(args), capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

/** OCI content through skopeo (independent of the project's client); Docker types through the store. */
async function seed(
  registry: TestRegistry,
  repository: string,
  entries: { content: TestContent; tag: string }[],
): Promise<void> {
  const oci = entries.filter((entry) => !entry.content.mediaType.includes("docker"));
  if (oci.length > 0) await pushTagsWithSkopeo(work, registry.host, repository, oci);
  const docker = entries.filter((entry) => entry.content.mediaType.includes("docker"));
  if (docker.length === 0) return;
  const provider = createStoreProvider({ env: {}, homeDirectory: work });
  const store = provider.repository(
    repositoryIn(parseRegistryLocation(registry.host), parseRepositoryPath(repository)),
  );
  for (const { content, tag } of docker) await pushToStore(store, content, [tag]);
  await provider.close();
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "gitops-snapshot-"));
  [source, target] = await Promise.all([startRegistry(), startRegistry()]);
  await seed(source, "staging/app", [
    { content: multi, tag: "v1.0" },
    { content: multi, tag: "v1" },
    { content: amd64, tag: "v1.0-amd64" },
    { content: signature, tag: `sha256-${multi.digest.slice(7)}.sig` },
  ]);
  await seed(source, "staging/tools/lint", [
    { content: dockerList, tag: "2.0" },
    { content: dockerSingle, tag: "1.9" },
  ]);
  await seed(source, "elsewhere/app", [{ content: unrelated, tag: "v1" }]);
}, 120_000);

afterAll(async () => {
  await Promise.all([source.stop(), target.stop()]);
  await rm(work, { recursive: true, force: true });
});

type ImagesYaml = { name: string; dmap: Record<string, string[]> }[];

/** What skopeo sees: tags (attachments left out) and, for indexes, their children. */
async function judge(registry: TestRegistry, prefix: string, images: ImagesYaml): Promise<void> {
  for (const image of images) {
    const repository = `docker://${registry.host}/${prefix}/${image.name}`;
    const tags = (await skopeoListTags(repository)).filter((tag) => !/^sha256-[0-9a-f]{64}/.test(tag));
    expect(tags.sort()).toEqual(Object.values(image.dmap).flat().sort());
    const expected = new Set<string>();
    for (const tag of tags) {
      const raw = await skopeoInspectRaw(`${repository}:${tag}`);
      expected.add(raw.digest);
      expect(image.dmap[raw.digest], `${image.name}:${tag}`).toContain(tag);
      const document = JSON.parse(raw.bytes.toString("utf8")) as { manifests?: { digest: string }[] };
      for (const child of document.manifests ?? []) expected.add(child.digest);
    }
    expect(Object.keys(image.dmap).sort()).toEqual([...expected].sort());
  }
}

describe("promoter snapshot against real registries", () => {
  it("describes exactly what the registry path holds, through _catalog", async () => {
    const result = await promoter("snapshot", `${source.host}/staging`);
    expect(result.status, result.err).toBe(0);
    expect(result.err).toContain(
      "2 images, 7 digests from 2 repositories; 1 signature/attestation/SBOM tag left out",
    );
    const images = parse(result.out) as ImagesYaml;
    expect(images.map((image) => image.name)).toEqual(["app", "tools/lint"]);
    expect(images[0]?.dmap[multi.digest]).toEqual(["v1", "v1.0"]);
    expect(images[0]?.dmap[amd64.digest]).toEqual(["v1.0-amd64"]);
    expect(images[0]?.dmap[arm64.digest]).toEqual([]);
    expect(images[1]?.dmap[dockerList.digest]).toEqual(["2.0"]);
    await judge(source, "staging", images);
    // Digests are quoted and tags inline, sorted: the file reads like kpromo's.
    expect(result.out.split("\n").slice(0, 3)).toEqual([
      "- name: app",
      "  dmap:",
      expect.stringMatching(/^ {4}"sha256:[0-9a-f]{64}": \[.*\]$/),
    ]);

    const named = await promoter(
      "snapshot",
      `${source.host}/staging`,
      "--repository",
      "tools/lint",
      "--minimal",
      "-q",
    );
    const lintLines = [dockerSingle.digest, dockerList.digest]
      .sort()
      .map((digest) => `    "${digest}": ["${digest === dockerSingle.digest ? "1.9" : "2.0"}"]\n`);
    expect(named.out).toBe(`- name: tools/lint\n  dmap:\n${lintLines.join("")}`);
  });

  it("round trip: the snapshot promotes to an empty mirror, whose snapshot is the same", async () => {
    const snapshot = await promoter("snapshot", `${source.host}/staging`, "-q");
    const tree = path.join(work, "tree");
    await mkdir(path.join(tree, "manifests", "staging"), { recursive: true });
    await mkdir(path.join(tree, "images", "staging"), { recursive: true });
    await writeFile(
      path.join(tree, "manifests", "staging", "promoter-manifest.yaml"),
      `registries:\n- name: ${source.host}/staging\n  src: true\n- name: ${target.host}/mirror\n`,
    );
    await writeFile(path.join(tree, "images", "staging", "images.yaml"), snapshot.out);
    const validated = await promoter("validate", "--thin-manifest-dir", "tree");
    expect(validated.status, validated.out).toBe(0);
    expect(validated.out).toContain("0 errors, 0 warnings");
    const promoted = await promoter("promote", "--thin-manifest-dir", "tree", "--confirm", "--quiet");
    expect(promoted.status, promoted.out + promoted.err).toBe(0);
    const mirror = await promoter("snapshot", `${target.host}/mirror`, "-q");
    expect(mirror.out).toBe(snapshot.out);
    await judge(target, "mirror", parse(mirror.out) as ImagesYaml);
    const again = await promoter("promote", "--thin-manifest-dir", "tree", "--output", "json", "-q");
    expect(
      (JSON.parse(again.out) as { summary: { decisions: Record<string, number> } }).summary.decisions.copy,
    ).toBe(0);
  });

  it("the real CLI: a manifest-based snapshot (--from-manifests) is what a snapshot of the mirror shows once promoted", async () => {
    requireBuiltCli();
    const cli = (...args: string[]) => runPromoter(args, { cwd: work });
    const staging = await cli("snapshot", `${source.host}/staging`, "-q");
    expect(staging.status, staging.stderr).toBe(0);
    await writeFile(
      path.join(work, "fm.yaml"),
      `registries:\n- name: ${source.host}/staging\n  src: true\n- name: ${target.host}/fm\n- name: ${target.host}/fm/eu\nimages:\n${staging.stdout}`,
    );
    const fromManifests = ["--from-manifests", "--manifest", "fm.yaml"];
    const expected = [staging.stdout, staging.stdout.replace(/^- name: /gm, "- name: eu/")]
      .join("")
      .split(/(?=^- name: )/m)
      .sort()
      .join("");
    const before = await cli("snapshot", `${target.host}/fm`, ...fromManifests);
    expect(before.status, before.stderr).toBe(0);
    expect(before.stdout).toBe(expected);
    expect(before.stderr).toBe(
      `promoter snapshot: 4 images, 14 digests the manifests promote into ${target.host}/fm\n`,
    );
    expect(await skopeoListTags(`docker://${target.host}/fm/app`).catch(() => [])).toEqual([]);
    // An empty mirror has no index children to leave out.
    const minimalBefore = await cli("snapshot", `${target.host}/fm`, ...fromManifests, "--minimal", "-q");
    expect(minimalBefore.stdout).toBe(expected);

    const promoted = await cli("promote", "--manifest", "fm.yaml", "--confirm", "--quiet");
    expect(promoted.status, promoted.stdout + promoted.stderr).toBe(0);
    for (const output of ["yaml", "csv"]) {
      const read = await cli("snapshot", `${target.host}/fm`, "--output", output, "-q");
      const planned = await cli("snapshot", `${target.host}/fm`, ...fromManifests, "--output", output, "-q");
      expect(read.status, read.stderr).toBe(0);
      expect(planned.stdout, output).toBe(read.stdout);
      const readMinimal = await cli("snapshot", `${target.host}/fm`, "--minimal", "--output", output, "-q");
      const plannedMinimal = await cli(
        "snapshot",
        `${target.host}/fm`,
        ...fromManifests,
        "--minimal",
        "--output",
        output,
        "-q",
      );
      expect(plannedMinimal.stdout, output).toBe(readMinimal.stdout);
      expect(plannedMinimal.stdout).not.toContain(arm64.digest);
      expect(plannedMinimal.stdout).toContain(amd64.digest); // tagged: v1.0-amd64
    }
  });

  it("names what is not there instead of printing an empty list (a typo must not become images: [])", async () => {
    // Each of these printed `[]` and exited 0 before; `promote` then read the empty file as
    // "promote nothing".
    const cases: [string[], RegExp][] = [
      [[`${source.host}/staging`, "--tag", "v9"], /tag v9 in none of the 2 repositories read under/],
      [
        [`${source.host}/staging`, "--repository", "helo"],
        /staging\/helo: no tags \(the repository is absent or empty\)/,
      ],
      [[`${source.host}/prdo`], new RegExp(`no repository under ${source.host}/prdo`)],
      [["oci:no-such-directory"], /oci:no-such-directory: no directory /],
    ];
    for (const [args, message] of cases) {
      const result = await promoter("snapshot", ...args);
      expect(result.out, args.join(" ")).toBe("");
      expect(result.err, args.join(" ")).toMatch(message);
      expect(result.err).toContain("snapshot-not-found");
      expect(result.status, args.join(" ")).toBe(2);
    }
    // A tag that is there still works, and one of two named tags missing is named.
    expect((await promoter("snapshot", `${source.host}/staging`, "--tag", "v1", "-q")).status).toBe(0);
    const oneMissing = await promoter("snapshot", `${source.host}/staging`, "--tag", "v1", "--tag", "v9");
    expect(oneMissing.err).toMatch(/tag v9 in none/);
    expect(oneMissing.err).not.toMatch(/tag v1 /);

    // skopeo's single layout (`oci:DIR/web`): refused with the form that reads it.
    const tree = path.join(work, "layouts");
    await skopeoCopy(`docker://${source.host}/staging/app:v1.0-amd64`, `oci:${path.join(tree, "web")}:1.0`);
    const single = await promoter("snapshot", "oci:layouts/web");
    expect(single.status).toBe(2);
    expect(single.out).toBe("");
    expect(single.err).toContain("oci:layouts/web is a single OCI layout");
    expect(single.err).toContain("use oci:layouts --repository web");
    const asTree = await promoter("snapshot", "oci:layouts", "--repository", "web", "-q");
    expect(asTree.status, asTree.err).toBe(0);
    expect(asTree.out).toContain(`"${amd64.digest}": ["1.0"]`);
  });
});
