import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { ociImageToolValidate, Podman, runTool, umociList, umociUnpack } from "../support/layout-readers.js";
import { skopeoCopy, skopeoInspectRaw } from "../support/skopeo.js";
import { makeImage, makeIndex, writeOciLayoutDirectly, type TestContent } from "../support/test-images.js";

/**
 * Issue 17 item 7: the OCI layouts `promote` writes are read by skopeo 1.9.3, podman 4.3.1,
 * umoci 0.4.7 and oci-image-tool (the Debian programs), for every kind of manifest it promotes,
 * tagged and tagless; and what skopeo and umoci write is read by `snapshot` and `promote`.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md#indexjson-file
 */

const REF_NAME = "org.opencontainers.image.ref.name";

const ociImage = makeImage({ layers: 2, layerSize: 2048, mediaTypes: "oci", seed: "readers-oci" });
const amd64 = makeImage({
  layers: 1,
  layerSize: 1024,
  mediaTypes: "oci",
  seed: "readers-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 1024,
  mediaTypes: "oci",
  seed: "readers-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const ociIndex = makeIndex([amd64, arm64], { mediaType: "oci" });
const dockerImage = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "docker", seed: "readers-docker" });
const dockerAmd64 = makeImage({
  layers: 1,
  layerSize: 1024,
  mediaTypes: "docker",
  seed: "readers-docker-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const dockerArm64 = makeImage({
  layers: 1,
  layerSize: 1024,
  mediaTypes: "docker",
  seed: "readers-docker-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const dockerList = makeIndex([dockerAmd64, dockerArm64], { mediaType: "docker" });
const tagless = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "readers-tagless" });
const taglessIndex = makeIndex(
  [
    makeImage({
      layers: 1,
      layerSize: 512,
      mediaTypes: "oci",
      seed: "readers-tagless-amd64",
      platform: { architecture: "amd64", os: "linux" },
    }),
  ],
  { mediaType: "oci" },
);

let dir: string;
let home: string;

async function run(...args: string[]) {
  const capture = captureIO({ cwd: dir });
  const status = await runCli(args, capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

interface IndexEntry {
  mediaType: string;
  digest: string;
  annotations?: Record<string, string>;
}

async function indexEntries(layout: string): Promise<{ digest: string; name: string | null }[]> {
  const document = JSON.parse(await readFile(path.join(dir, layout, "index.json"), "utf8")) as {
    manifests: IndexEntry[];
  };
  return document.manifests.map((entry) => ({
    digest: entry.digest,
    name: entry.annotations?.[REF_NAME] ?? null,
  }));
}

const MANIFEST = `registries:
- name: oci:staging
  src: true
- name: oci:out
images:
- name: oci-image
  dmap:
    "${ociImage.digest}": ["1.0.0", "1.0"]
- name: oci-index
  dmap:
    "${ociIndex.digest}": ["2.0"]
- name: docker-image
  dmap:
    "${dockerImage.digest}": ["v0.1.0"]
- name: docker-list
  dmap:
    "${dockerList.digest}": ["v1"]
- name: tagless
  dmap:
    "${tagless.digest}": []
- name: tagless-index
  dmap:
    "${taglessIndex.digest}": []
`;

async function seed(name: string, content: TestContent, tag?: string): Promise<void> {
  await writeOciLayoutDirectly(path.join(dir, "staging", name), [
    tag === undefined ? { content } : { content, tag },
  ]);
}

let promoteErr = "";

beforeAll(async () => {
  // Lower case: podman names an image it pulls from oci:PATH after PATH, and refuses upper case.
  dir = path.join(tmpdir(), `layout-readers-${randomBytes(6).toString("hex")}`);
  await mkdir(dir);
  home = path.join(dir, "home");
  await mkdir(home);
  await seed("oci-image", ociImage, "build-1");
  await seed("oci-index", ociIndex, "build-1");
  await seed("docker-image", dockerImage, "build-1");
  await seed("docker-list", dockerList, "build-1");
  await seed("tagless", tagless);
  await seed("tagless-index", taglessIndex);
  await writeFile(path.join(dir, "promoter.yaml"), MANIFEST);
  const promoted = await run("promote", "--manifest", "promoter.yaml", "--confirm", "--quiet");
  promoteErr = promoted.err;
  expect(promoted.out).toContain("Result: 7 edges: 7 copied");
  expect(promoted.status).toBe(0);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const out = (name: string, ref = ""): string =>
  `oci:${path.join(dir, "out", name)}${ref === "" ? "" : `:${ref}`}`;

describe("index.json the promoter writes", () => {
  it("lists each promoted manifest once per name, no untagged twin, no children", async () => {
    expect(await indexEntries("out/oci-image")).toEqual([
      { digest: ociImage.digest, name: "1.0" },
      { digest: ociImage.digest, name: "1.0.0" },
    ]);
    expect(await indexEntries("out/oci-index")).toEqual([{ digest: ociIndex.digest, name: "2.0" }]);
    expect(await indexEntries("out/docker-image")).toEqual([{ digest: dockerImage.digest, name: "v0.1.0" }]);
    expect(await indexEntries("out/docker-list")).toEqual([{ digest: dockerList.digest, name: "v1" }]);
    expect(await indexEntries("out/tagless")).toEqual([{ digest: tagless.digest, name: null }]);
    expect(await indexEntries("out/tagless-index")).toEqual([{ digest: taglessIndex.digest, name: null }]);
  });

  it("says which readers cannot name a Docker-typed manifest", () => {
    expect(promoteErr).toMatch(/warn: a Docker-typed manifest in an OCI layout/);
    expect(promoteErr).toMatch(/build the image with OCI media types/);
    expect(promoteErr).not.toMatch(/ref\.name grammar/);
  });
});

describe("skopeo 1.9.3 reads what promote wrote", () => {
  it("OCI image and index by each tag, with the same bytes", async () => {
    for (const tag of ["1.0.0", "1.0"]) {
      expect((await skopeoInspectRaw(out("oci-image", tag))).digest).toBe(ociImage.digest);
    }
    expect((await skopeoInspectRaw(out("oci-index", "2.0"))).digest).toBe(ociIndex.digest);
    // Every platform of the index, children read through it (they are not in index.json).
    await skopeoCopy(out("oci-index", "2.0"), `oci:${path.join(dir, "skopeo-copy", "index")}:2.0`, {
      all: true,
      preserveDigests: true,
    });
    expect((await skopeoInspectRaw(`oci:${path.join(dir, "skopeo-copy", "index")}:2.0`)).digest).toBe(
      ociIndex.digest,
    );
  });

  it("tagless manifests and Docker-typed ones as the layout's one manifest", async () => {
    expect((await skopeoInspectRaw(out("tagless"))).digest).toBe(tagless.digest);
    expect((await skopeoInspectRaw(out("tagless-index"))).digest).toBe(taglessIndex.digest);
    expect((await skopeoInspectRaw(out("docker-image"))).digest).toBe(dockerImage.digest);
    expect((await skopeoInspectRaw(out("docker-list"))).digest).toBe(dockerList.digest);
  });

  // docs/registries.md's table says containers/image skips Docker-typed entries when a name is
  // given; the bytes are kept (the digest is what was approved). When Debian's skopeo learns to
  // read them, this fails and the table and the warning must change.
  it("does not name a Docker-typed entry by its tag (the documented limitation)", async () => {
    await expect(skopeoInspectRaw(out("docker-image", "v0.1.0"))).rejects.toThrow(/no descriptor found/);
  });
});

describe("podman 4.3.1 pulls what promote wrote", () => {
  it("OCI image by tag, OCI index by tag (this machine's platform), tagless and Docker images; promote reads what it pushes", async () => {
    const podman = await Podman.create(path.join(home, "podman"));
    try {
      const image = await podman.pull(out("oci-image", "1.0.0"));
      expect(await podman.digestOf(image)).toBe(ociImage.digest);
      const index = await podman.pull(out("oci-index", "2.0"));
      expect(await podman.digestOf(index)).toBe(ociIndex.digest);
      expect(await podman.digestOf(await podman.pull(out("tagless")))).toBe(tagless.digest);
      expect(await podman.digestOf(await podman.pull(out("docker-image")))).toBe(dockerImage.digest);

      // And what podman writes (an index.json without a top-level mediaType) is read back.
      await mkdir(path.join(dir, "podman-tree")); // podman creates the layout, not its parent
      await podman.push(image, `oci:${path.join(dir, "podman-tree", "pushed")}:7.0`);
      const written = JSON.parse(
        await readFile(path.join(dir, "podman-tree", "pushed", "index.json"), "utf8"),
      ) as {
        manifests: IndexEntry[];
      };
      const snapshot = await run("snapshot", "oci:podman-tree");
      expect(snapshot.status, snapshot.err).toBe(0);
      expect(snapshot.out).toBe(`- name: pushed\n  dmap:\n    "${written.manifests[0]!.digest}": ["7.0"]\n`);
    } finally {
      await podman.close();
    }
  });
});

describe("umoci 0.4.7 reads what promote wrote", () => {
  it("lists the names and unpacks the OCI image by each tag", async () => {
    expect(await umociList(path.join(dir, "out", "oci-image"), home)).toEqual(["1.0", "1.0.0"]);
    for (const tag of ["1.0.0", "1.0"]) {
      const bundle = path.join(dir, "bundles", `oci-image-${tag}`);
      await umociUnpack(path.join(dir, "out", "oci-image"), tag, bundle, home);
      expect((await readdir(path.join(bundle, "rootfs"))).sort()).toEqual(["layer-0.bin", "layer-1.bin"]);
    }
  });
});

describe("oci-image-tool validates what promote wrote", () => {
  it("every named manifest, and each name alone", async () => {
    const layout = path.join(dir, "out", "oci-image");
    expect(await ociImageToolValidate(layout, home)).toContain("Validation succeeded");
    for (const name of ["1.0.0", "1.0"]) {
      expect(await ociImageToolValidate(layout, home, name)).toContain("Validation succeeded");
    }
  });
});

describe("promote and snapshot read what skopeo and umoci write", () => {
  it("snapshot lists tagged and tagless manifests of a skopeo tree and a umoci layout", async () => {
    const tree = path.join(dir, "others");
    await skopeoCopy(out("oci-image", "1.0.0"), `oci:${path.join(tree, "app")}:1.0.0`, {
      all: true,
      preserveDigests: true,
    });
    await skopeoCopy(out("oci-index", "2.0"), `oci:${path.join(tree, "multi")}:2.0`, {
      all: true,
      preserveDigests: true,
    });
    // skopeo without a name writes an entry without ref.name.
    await skopeoCopy(out("tagless"), `oci:${path.join(tree, "bare")}`, { all: true, preserveDigests: true });
    await runTool("umoci", ["init", "--layout", path.join(tree, "umoci")], home);
    await runTool("umoci", ["new", "--image", `${path.join(tree, "umoci")}:base`], home);
    const umociDigest = (
      JSON.parse(await readFile(path.join(tree, "umoci", "index.json"), "utf8")) as {
        manifests: IndexEntry[];
      }
    ).manifests[0]!.digest;

    const snapshot = await run("snapshot", `oci:${tree}`);
    expect(snapshot.err).not.toMatch(/error/);
    expect(snapshot.status).toBe(0);
    expect(snapshot.out).toBe(
      [
        "- name: app",
        "  dmap:",
        `    "${ociImage.digest}": ["1.0.0"]`,
        "- name: bare",
        "  dmap:",
        `    "${tagless.digest}": []`,
        "- name: multi",
        "  dmap:",
        ...[amd64.digest, arm64.digest, ociIndex.digest]
          .sort()
          .map((digest) => `    "${digest}": ${digest === ociIndex.digest ? '["2.0"]' : "[]"}`),
        "- name: umoci",
        "  dmap:",
        `    "${umociDigest}": ["base"]`,
        "",
      ].join("\n"),
    );

    // The snapshot is a manifest that promotes exactly that, from the tools' layouts.
    await writeFile(
      path.join(dir, "from-others.yaml"),
      `registries:\n- name: oci:others\n  src: true\n- name: oci:again\nimages:\n${snapshot.out}`,
    );
    const promoted = await run("promote", "--manifest", "from-others.yaml", "--confirm", "--quiet");
    expect(promoted.err).not.toMatch(/error/);
    expect(promoted.status).toBe(0);
    expect(await indexEntries("again/bare")).toEqual([{ digest: tagless.digest, name: null }]);
    expect(await indexEntries("again/umoci")).toEqual([{ digest: umociDigest, name: "base" }]);
    expect((await skopeoInspectRaw(`oci:${path.join(dir, "again", "multi")}:2.0`)).digest).toBe(
      ociIndex.digest,
    );
  });

  it("snapshot of the promoter's own tree shows the digest-only manifests", async () => {
    const snapshot = await run("snapshot", "oci:out", "--repository", "tagless");
    expect(snapshot.status).toBe(0);
    expect(snapshot.out).toBe(`- name: tagless\n  dmap:\n    "${tagless.digest}": []\n`);
    // A digest-only index, and (without --minimal) its image, which it promotes.
    const index = await run("snapshot", "oci:out", "--repository", "tagless-index");
    expect(index.status).toBe(0);
    expect(index.out).toBe(
      `- name: tagless-index\n  dmap:\n${[taglessIndex.digest, taglessIndex.manifests[0]!.digest]
        .sort()
        .map((digest) => `    "${digest}": []\n`)
        .join("")}`,
    );
    const minimal = await run("snapshot", "oci:out", "--repository", "tagless-index", "--minimal");
    expect(minimal.out).toBe(`- name: tagless-index\n  dmap:\n    "${taglessIndex.digest}": []\n`);
  });
});

describe("a layout an earlier promoter wrote (every digest listed twice, children listed)", () => {
  it("is read as before, and repaired by the next promotion into it", async () => {
    // What main wrote for the quickstart's web image: children and the index untagged, then tagged.
    const layout = path.join(dir, "old", "web");
    await writeOciLayoutDirectly(layout, [
      { content: amd64 },
      { content: arm64 },
      { content: ociIndex },
      { content: ociIndex, tag: "1.0" },
    ]);
    await writeFile(
      path.join(dir, "old.yaml"),
      `registries:\n- name: oci:staging\n  src: true\n- name: oci:old\nimages:\n- name: web\n  dmap:\n    "${ociIndex.digest}": ["1.0"]\n`,
    );
    await seed("web", ociIndex, "build-1");
    const unchanged = await run("promote", "--manifest", "old.yaml", "--confirm", "--quiet");
    expect(unchanged.status).toBe(0);
    expect(unchanged.out).toContain("1 unchanged");

    await writeFile(
      path.join(dir, "old.yaml"),
      `registries:\n- name: oci:staging\n  src: true\n- name: oci:old\nimages:\n- name: web\n  dmap:\n    "${ociIndex.digest}": ["1.0", "1.0.0"]\n`,
    );
    const added = await run("promote", "--manifest", "old.yaml", "--confirm", "--quiet");
    expect(added.status).toBe(0);
    expect(await indexEntries("old/web")).toEqual([
      { digest: ociIndex.digest, name: "1.0" },
      { digest: ociIndex.digest, name: "1.0.0" },
    ]);
    expect(await ociImageToolValidate(layout, home, "1.0.0")).toContain("Validation succeeded");
    expect((await skopeoInspectRaw(`oci:${layout}:1.0.0`)).digest).toBe(ociIndex.digest);
  });
});
