import { mkdir, mkdtemp, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FaultProxy } from "../support/fault-proxy.js";
import { gitIn } from "../support/hostile-git.js";
import { requireBuiltCli, runPromoter, STACK_LINE, type PromoterRun } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { makeImage, makeIndex, type TestContent, type TestImage } from "../support/test-images.js";

/**
 * `promoter check` must not pass by not looking. A staging pusher (anything in staging), a
 * compromised registry (any answer) and the base revision's own shape (a symbolic link or a
 * submodule where a manifest file was) each try to make a check pass without the thing being
 * judged: an image hidden as an "attestation", an index too wide or too deep, a read that
 * fails, a previous version whose kind cannot be read, an images file the base only linked to.
 * A check that cannot judge fails. Real CLI (bin/promoter.js), real git, a real registry
 * (distribution) behind a fault proxy on 127.0.0.1.
 */

let work: string;
let registry: TestRegistry;
/** Staging and production are repositories of one registry, reached through this proxy. */
let proxy: FaultProxy;

const MiB = 1024 * 1024;
const image = (seed: string, layerSize = 512, architecture = "amd64"): TestImage =>
  makeImage({ layers: 1, layerSize, mediaTypes: "oci", seed, platform: { architecture, os: "linux" } });
/** Over the 1 MiB limit the tests use: random bytes do not compress. */
const large = (seed: string): TestImage => image(seed, 3 * MiB);

/** `content` as an index child with extra descriptor fields (annotations, another platform). */
function asChild(content: TestContent, extra: Record<string, unknown>): TestContent {
  return { ...content, descriptor: { ...content.descriptor, ...extra } };
}

interface CheckJson {
  ok: boolean;
  checks: { id: string; status: string; summary: string; items: { severity: string; message: string }[] }[];
}

interface Checkout {
  readonly root: string;
  readonly base: string;
  git(...args: string[]): string;
}

let counter = 0;

function imagesYaml(name: string, entries: readonly { content: TestContent; tags: string[] }[]): string {
  return [
    `- name: ${name}`,
    "  dmap:",
    ...entries.map(
      ({ content, tags }) => `    "${content.digest}": [${tags.map((tag) => `"${tag}"`).join(", ")}]`,
    ),
    "",
  ].join("\n");
}

/**
 * A repository whose base commit lists `before` for image `name` (staging/<name> -> prod/<name>)
 * and whose working copy (the pull request) lists `after`.
 */
async function checkout(
  name: string,
  before: readonly { content: TestContent; tags: string[] }[],
  after: readonly { content: TestContent; tags: string[] }[],
): Promise<Checkout> {
  counter += 1;
  const root = path.join(work, `checkout-${counter}`);
  const git = (...args: string[]): string => gitIn(root, work, ...args);
  await mkdir(path.join(root, "registry", "manifests", name), { recursive: true });
  await mkdir(path.join(root, "registry", "images", name), { recursive: true });
  await writeFile(
    path.join(root, "registry", "manifests", name, "promoter-manifest.yaml"),
    `registries:\n- name: ${proxy.host}/staging\n  src: true\n- name: ${proxy.host}/prod\n`,
  );
  const images = path.join(root, "registry", "images", name, "images.yaml");
  await writeFile(images, imagesYaml(name, before));
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "base");
  const base = git("rev-parse", "HEAD");
  await writeFile(images, imagesYaml(name, after));
  git("commit", "-q", "--allow-empty", "-am", "the pull request");
  return { root, base, git };
}

async function check(repo: Checkout, ...extra: string[]): Promise<{ run: PromoterRun; report: CheckJson }> {
  const run = await runPromoter(
    [
      "check",
      "--base",
      repo.base,
      "--thin-manifest-dir",
      "registry",
      "--output",
      "json",
      "--quiet",
      ...extra,
    ],
    { cwd: repo.root, env: { HOME: work } },
  );
  expect(run.stderr).not.toMatch(STACK_LINE);
  expect(run.stderr).not.toMatch(/internal error|This is a bug/);
  let report: CheckJson;
  try {
    report = JSON.parse(run.stdout) as CheckJson;
  } catch {
    throw new Error(`check printed no JSON (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
  return { run, report };
}

function checkOf(report: CheckJson, id: string): CheckJson["checks"][number] {
  const found = report.checks.find((entry) => entry.id === id);
  if (!found) throw new Error(`no check ${id} in ${JSON.stringify(report)}`);
  return found;
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-check-"));
  registry = await startRegistry();
  proxy = await FaultProxy.start({ upstream: registry.url });
}, 120_000);

afterAll(async () => {
  const started = proxy as FaultProxy | undefined;
  await started?.stop();
  await (registry as TestRegistry | undefined)?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  proxy.setRules([]);
});

describe("check --max-image-size cannot be passed by not looking", () => {
  it("measures an image that its index calls an attestation manifest", async () => {
    const small = image("attestation-small");
    const hidden = asChild(large("attestation-hidden"), {
      annotations: { "vnd.docker.reference.type": "attestation-manifest" },
    });
    const index = makeIndex([small, hidden], { mediaType: "oci" });
    await seedRegistry(registry.url, "staging/attest", [{ content: index, tags: ["v2"] }]);
    const repo = await checkout("attest", [], [{ content: index, tags: ["v2"] }]);

    const { run, report } = await check(repo, "--max-image-size", "1MiB");
    expect(run.status, run.stdout).toBe(1);
    const size = checkOf(report, "image-size");
    expect(size.status).toBe("fail");
    expect(size.items.map((item) => item.message).join("\n")).toContain(hidden.digest);
  });

  it("fails when staging cannot be read, or answers that a child of the index is missing", async () => {
    const child = image("unreadable-child");
    const index = makeIndex([child, image("unreadable-arm", 512, "arm64")], { mediaType: "oci" });
    await seedRegistry(registry.url, "staging/unreadable", [{ content: index, tags: ["v1"] }]);
    const repo = await checkout("unreadable", [], [{ content: index, tags: ["v1"] }]);

    // A registry that refuses the manifest reads the size check needs (the plan's HEADs work).
    proxy.setRules([
      {
        method: "GET",
        path: `/v2/staging/unreadable/manifests/${index.digest}`,
        fault: { kind: "status", status: 403 },
      },
    ]);
    const refused = await check(repo, "--max-image-size", "1MiB");
    expect(refused.run.status, refused.run.stdout).toBe(1);
    expect(checkOf(refused.report, "image-size").status).toBe("fail");

    // A registry that says a child of the index does not exist.
    proxy.setRules([
      {
        method: "GET",
        path: `/v2/staging/unreadable/manifests/${child.digest}`,
        fault: { kind: "status", status: 404 },
      },
    ]);
    const missing = await check(repo, "--max-image-size", "1MiB");
    expect(missing.run.status, missing.run.stdout).toBe(1);
    const size = checkOf(missing.report, "image-size");
    expect(size.status).toBe("fail");
    expect(size.items.map((item) => item.message).join("\n")).toContain(child.digest);
  });

  it("fails for an index with more images than it reads, the large one last", async () => {
    const small = image("wide-small");
    const big = large("wide-big");
    const children = [
      ...Array.from({ length: 256 }, (_, i) =>
        asChild(small, { platform: { architecture: `arch${i}`, os: "linux" } }),
      ),
      big,
    ];
    const index = makeIndex(children, { mediaType: "oci" });
    await seedRegistry(registry.url, "staging/wide", [
      { content: small, tags: [] },
      { content: big, tags: [] },
    ]);
    await seedIndexOnly(index, "staging/wide", "v1");
    const repo = await checkout("wide", [], [{ content: index, tags: ["v1"] }]);

    const { run, report } = await check(repo, "--max-image-size", "1MiB");
    expect(run.status, run.stdout).toBe(1);
    expect(checkOf(report, "image-size").status).toBe("fail");
  });

  it("fails for an index nested deeper than it reads, the large image at the bottom", async () => {
    const big = large("deep-big");
    let nested: TestContent = big;
    for (let level = 0; level < 5; level++) nested = makeIndex([nested], { mediaType: "oci" });
    await seedRegistry(registry.url, "staging/deep", [{ content: nested, tags: ["v1"] }]);
    const repo = await checkout("deep", [], [{ content: nested, tags: ["v1"] }]);

    const { run, report } = await check(repo, "--max-image-size", "1MiB");
    expect(run.status, run.stdout).toBe(1);
    expect(checkOf(report, "image-size").status).toBe("fail");
  });
});

/** Pushes only the index manifest (its children are already there): many identical children. */
async function seedIndexOnly(index: TestContent, repository: string, tag: string): Promise<void> {
  for (const reference of [index.digest, tag]) {
    const response = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, {
      method: "PUT",
      body: index.bytes,
      headers: { "content-type": index.mediaType },
    });
    await response.arrayBuffer();
    if (response.status !== 201) throw new Error(`index PUT ${reference}: HTTP ${response.status}`);
  }
}

describe("the kind check cannot be passed by not looking", () => {
  it("fails when the previous version's kind cannot be read from staging or production", async () => {
    const previous = makeIndex([image("kind-1.0-amd64"), image("kind-1.0-arm64", 512, "arm64")], {
      mediaType: "oci",
    });
    const single = image("kind-1.1-amd64-only");
    await seedRegistry(registry.url, "staging/kind", [
      { content: previous, tags: ["v1.0.0"] },
      { content: single, tags: ["v1.1.0"] },
    ]);
    await seedRegistry(registry.url, "prod/kind", [{ content: previous, tags: ["v1.0.0"] }]);
    const repo = await checkout(
      "kind",
      [{ content: previous, tags: ["v1.0.0"] }],
      [
        { content: previous, tags: ["v1.0.0"] },
        { content: single, tags: ["v1.1.0"] },
      ],
    );
    // Without faults the index -> single-platform change fails the check...
    const honest = await check(repo);
    expect(checkOf(honest.report, "kind-changes").status).toBe("fail");

    // ...and a registry that will not say what the previous version is must not make it pass.
    proxy.setRules([
      {
        path: new RegExp(`/v2/(staging|prod)/kind/manifests/${previous.digest}$`),
        fault: { kind: "status", status: 404 },
      },
    ]);
    const { run, report } = await check(repo);
    expect(run.status, run.stdout).toBe(1);
    const kinds = checkOf(report, "kind-changes");
    expect(kinds.status).toBe("fail");
    expect(kinds.items.map((item) => item.message).join("\n")).toContain(previous.digest);
  });
});

describe("the vulnerability gate cannot be passed by a report of something else", () => {
  it("fails when no report names the new image's digest (another image, or only a tag)", async () => {
    const scanned = image("vuln-clean-other");
    const added = image("vuln-added");
    await seedRegistry(registry.url, "staging/vuln", [
      { content: scanned, tags: ["clean"] },
      { content: added, tags: ["v1"] },
    ]);
    const repo = await checkout("vuln", [], [{ content: added, tags: ["v1"] }]);
    const clean = (artifact: string) =>
      JSON.stringify({ SchemaVersion: 2, ArtifactName: artifact, Results: [] });
    // A clean report, but of another image (what a staging pusher can make a by-tag scan see).
    await writeFile(
      path.join(repo.root, "other.json"),
      clean(`${proxy.host}/staging/vuln@${scanned.digest}`),
    );
    await writeFile(path.join(repo.root, "by-tag.json"), clean(`${proxy.host}/staging/vuln:v1`));
    for (const file of ["other.json", "by-tag.json"]) {
      const { run, report } = await check(repo, "--vuln-report", file);
      expect(run.status, run.stdout).toBe(1);
      const gate = checkOf(report, "vulnerabilities");
      expect(gate.status).toBe("fail");
      expect(gate.items.map((item) => item.message).join("\n")).toContain(added.digest);
    }
    // The same clean report naming the digest passes.
    await writeFile(
      path.join(repo.root, "by-digest.json"),
      clean(`${proxy.host}/staging/vuln@${added.digest}`),
    );
    const named = await check(repo, "--vuln-report", "by-digest.json");
    expect(checkOf(named.report, "vulnerabilities").status).toBe("pass");
  });
});

describe("the removal check sees through the base revision's links", () => {
  const v1 = image("linked-v1");
  const v2 = image("linked-v2");

  async function linkedCheckout(name: string, link: (root: string) => Promise<void>): Promise<Checkout> {
    counter += 1;
    const root = path.join(work, `checkout-${counter}`);
    const git = (...args: string[]): string => gitIn(root, work, ...args);
    await mkdir(path.join(root, "registry", "manifests", name), { recursive: true });
    await mkdir(path.join(root, "registry", "images"), { recursive: true });
    // Inside the tree, so that the working copy follows the link (a link out of it is refused).
    await mkdir(path.join(root, "registry", "shared", name), { recursive: true });
    await writeFile(
      path.join(root, "registry", "manifests", name, "promoter-manifest.yaml"),
      `registries:\n- name: ${proxy.host}/staging\n  src: true\n- name: ${proxy.host}/prod\n`,
    );
    await writeFile(
      path.join(root, "registry", "shared", name, "images.yaml"),
      imagesYaml(name, [
        { content: v1, tags: ["v1"] },
        { content: v2, tags: ["v2"] },
      ]),
    );
    await link(root);
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-q", "-m", "base: the images file is shared through a link");
    const base = git("rev-parse", "HEAD");
    return { root, base, git };
  }

  async function promoteBase(repo: Checkout): Promise<void> {
    const promoted = await runPromoter(
      ["promote", "--thin-manifest-dir", "registry", "--confirm", "--quiet"],
      { cwd: repo.root, env: { HOME: work } },
    );
    expect(promoted.status, promoted.stderr).toBe(0);
  }

  it("a symbolic link for images.yaml at the base: deleting a live line from its target is not '0 removed'", async () => {
    await seedRegistry(registry.url, "staging/linkfile", [
      { content: v1, tags: ["v1"] },
      { content: v2, tags: ["v2"] },
    ]);
    const repo = await linkedCheckout("linkfile", async (root) => {
      await mkdir(path.join(root, "registry", "images", "linkfile"));
      await symlink(
        "../../shared/linkfile/images.yaml",
        path.join(root, "registry", "images", "linkfile", "images.yaml"),
      );
    });
    await promoteBase(repo);
    // The pull request deletes v1, live in production, from the linked file.
    await writeFile(
      path.join(repo.root, "registry", "shared", "linkfile", "images.yaml"),
      imagesYaml("linkfile", [{ content: v2, tags: ["v2"] }]),
    );
    repo.git("commit", "-q", "-am", "drop v1");

    const { run, report } = await check(repo);
    expect(run.status, run.stdout).toBe(1);
    const removals = checkOf(report, "removals");
    expect(removals.status).toBe("fail");
    expect(removals.items.map((item) => item.message).join("\n")).toMatch(/symbolic link/);
    expect(run.stdout).toContain(path.join("registry", "images", "linkfile", "images.yaml"));
  });

  it("a symbolic link for the project's images folder at the base", async () => {
    await seedRegistry(registry.url, "staging/linkdir", [
      { content: v1, tags: ["v1"] },
      { content: v2, tags: ["v2"] },
    ]);
    const repo = await linkedCheckout("linkdir", async (root) => {
      await symlink("../shared/linkdir", path.join(root, "registry", "images", "linkdir"));
    });
    await promoteBase(repo);
    // The pull request replaces the link by a folder without v1.
    await unlink(path.join(repo.root, "registry", "images", "linkdir"));
    await mkdir(path.join(repo.root, "registry", "images", "linkdir"));
    await writeFile(
      path.join(repo.root, "registry", "images", "linkdir", "images.yaml"),
      imagesYaml("linkdir", [{ content: v2, tags: ["v2"] }]),
    );
    repo.git("add", "-A");
    repo.git("commit", "-q", "-m", "drop v1");

    const { run, report } = await check(repo);
    expect(run.status, run.stdout).toBe(1);
    const removals = checkOf(report, "removals");
    expect(removals.status).toBe("fail");
    expect(removals.items.map((item) => item.message).join("\n")).toMatch(/symbolic link/);
  });

  it("the manifest tree replaced by a link to a new folder: the base is still read where the tree was", async () => {
    await seedRegistry(registry.url, "staging/moved", [
      { content: v1, tags: ["v1"] },
      { content: v2, tags: ["v2"] },
    ]);
    const repo = await checkout(
      "moved",
      [
        { content: v1, tags: ["v1"] },
        { content: v2, tags: ["v2"] },
      ],
      [
        { content: v1, tags: ["v1"] },
        { content: v2, tags: ["v2"] },
      ],
    );
    const promoted = await runPromoter(
      ["promote", "--thin-manifest-dir", "registry", "--confirm", "--quiet"],
      { cwd: repo.root, env: { HOME: work } },
    );
    expect(promoted.status, promoted.stderr).toBe(0);
    // The pull request moves the tree to a folder that did not exist at the base, without v1
    // (live in production), and leaves a link where the tree was.
    repo.git("mv", "registry", "moved-tree");
    await writeFile(
      path.join(repo.root, "moved-tree", "images", "moved", "images.yaml"),
      imagesYaml("moved", [{ content: v2, tags: ["v2"] }]),
    );
    await symlink("moved-tree", path.join(repo.root, "registry"));
    repo.git("add", "-A");
    repo.git("commit", "-q", "-m", "move the tree");

    const run = await runPromoter(
      ["check", "--base", repo.base, "--thin-manifest-dir", "registry", "--output", "json", "--quiet"],
      { cwd: repo.root, env: { HOME: work } },
    );
    expect(run.stderr).not.toMatch(STACK_LINE);
    // Refused as input (a linked tree) or judged: never a pass that saw no removal.
    expect(run.status, run.stdout + run.stderr).not.toBe(0);
    if (run.status === 1 && run.stdout.trim().startsWith("{")) {
      const removals = checkOf(JSON.parse(run.stdout) as CheckJson, "removals");
      expect(removals.status).toBe("fail");
      expect(removals.items.map((item) => item.message).join("\n")).toContain(v1.digest);
    }
  });

  it("a submodule for the project's images folder at the base", async () => {
    await seedRegistry(registry.url, "staging/submodule", [{ content: v2, tags: ["v2"] }]);
    const repo = await linkedCheckout("submodule", async () => {
      // Nothing linked yet: the submodule is added below.
    });
    const commit = repo.git("rev-parse", "HEAD");
    repo.git("update-index", "--add", "--cacheinfo", `160000,${commit},registry/images/submodule`);
    repo.git("commit", "-q", "-m", "base: the images folder is a submodule");
    const base = repo.git("rev-parse", "HEAD");
    repo.git("rm", "-q", "--cached", "registry/images/submodule");
    await mkdir(path.join(repo.root, "registry", "images", "submodule"), { recursive: true });
    await writeFile(
      path.join(repo.root, "registry", "images", "submodule", "images.yaml"),
      imagesYaml("submodule", [{ content: v2, tags: ["v2"] }]),
    );
    repo.git("add", "-A");
    repo.git("commit", "-q", "-m", "the submodule becomes a folder");

    const { run, report } = await check({ ...repo, base });
    expect(run.status, run.stdout).toBe(1);
    const removals = checkOf(report, "removals");
    expect(removals.status).toBe("fail");
    expect(removals.items.map((item) => item.message).join("\n")).toMatch(/submodule/);
  });
});
