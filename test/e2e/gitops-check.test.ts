import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoInspectRaw, skopeoListTags } from "../support/skopeo.js";
import { makeImage, makeIndex, pushTagsWithSkopeo, type TestContent } from "../support/test-images.js";

/**
 * `promoter check` on a pull request: a temporary git repository with a base commit (promoted to
 * production) and a head commit that adds, moves and removes things, judged against real
 * registries (distribution 2.8.2); then the merge is promoted with `promote --changed-since`.
 */

let work: string;
let repo: string;
let staging: TestRegistry;
let prod: TestRegistry;

const image = (seed: string, arch = "amd64", layerSize = 1024) =>
  makeImage({ layers: 1, layerSize, mediaTypes: "oci", seed, platform: { architecture: arch, os: "linux" } });
const v100 = makeIndex([image("web-1.0.0-amd64"), image("web-1.0.0-arm64", "arm64")], { mediaType: "oci" });
const v110 = image("web-1.1.0-amd64-only");
const v120 = makeIndex([image("web-1.2.0-amd64"), image("web-1.2.0-arm64", "arm64")], { mediaType: "oci" });
const handPushed = image("web-1.2.0-by-hand");
const big = makeIndex(
  [image("web-2.0.0-amd64", "amd64", 200 * 1024), image("web-2.0.0-arm64", "arm64", 2048)],
  { mediaType: "oci" },
);
const worker = image("worker-1.0");

async function push(
  registry: TestRegistry,
  repository: string,
  entries: { content: TestContent; tag: string }[],
): Promise<void> {
  await pushTagsWithSkopeo(work, registry.host, repository, entries);
}

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: work },
  });
}

async function promoter(env: Record<string, string>, ...args: string[]) {
  const capture = captureIO({ cwd: repo, env: { HOME: work, ...env } });
  const status = await runCli(allowingLoopbackRegistries(args), capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

const imagesText = (lines: string[]): string => `${lines.join("\n")}\n`;

interface CheckJson {
  ok: boolean;
  edges: { added: number; removed: number };
  checks: {
    id: string;
    status: string;
    summary: string;
    items: { severity: string; message: string; file?: string; line?: number }[];
  }[];
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "gitops-check-"));
  repo = path.join(work, "repo");
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  await push(staging, "staging/web", [
    { content: v100, tag: "v1.0.0" },
    { content: v110, tag: "v1.1.0" },
    { content: v120, tag: "v1.2.0" },
    { content: big, tag: "v2.0.0" },
  ]);
  await push(staging, "staging/worker", [{ content: worker, tag: "1.0" }]);

  await mkdir(path.join(repo, "manifests", "web"), { recursive: true });
  await mkdir(path.join(repo, "images", "web"), { recursive: true });
  await writeFile(
    path.join(repo, "manifests", "web", "promoter-manifest.yaml"),
    `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prod.host}/us\n- name: ${prod.host}/eu\n`,
  );
  await writeFile(
    path.join(repo, "images", "web", "images.yaml"),
    imagesText([
      "# Images of the web project.",
      "- name: web",
      "  dmap:",
      `    "${v100.digest}": ["v1.0.0"]`,
      "- name: worker",
      "  dmap:",
      `    "${worker.digest}": ["1.0"]`,
    ]),
  );
  git("init", "-q");
  git("add", "-A");
  git("commit", "-q", "-m", "base: web v1.0.0, worker 1.0");
  const promoted = await promoter({}, "promote", "--thin-manifest-dir", ".", "--confirm", "--quiet");
  expect(promoted.status, promoted.out + promoted.err).toBe(0);
  // Someone pushed web:v1.2.0 to one mirror by hand, pointing at another image.
  await push(prod, "us/web", [{ content: handPushed, tag: "v1.2.0" }]);

  // The pull request: three new web tags (one amd64-only, one already taken in a mirror, one
  // large) and the worker image removed.
  await writeFile(
    path.join(repo, "images", "web", "images.yaml"),
    imagesText([
      "# Images of the web project.",
      "- name: web",
      "  dmap:",
      `    "${v100.digest}": ["v1.0.0"]`,
      `    "${v110.digest}": ["v1.1.0"]`,
      `    "${v120.digest}": ["v1.2.0"]`,
      `    "${big.digest}": ["v2.0.0"]`,
    ]),
  );
  git("commit", "-q", "-am", "head: web v1.1.0, v1.2.0, v2.0.0; drop worker");
  await writeFile(
    path.join(work, "trivy.json"),
    JSON.stringify({
      SchemaVersion: 2,
      // Scanned by digest: the gate needs every image the change adds named in a report.
      ArtifactName: `${staging.host}/staging/web@${big.digest}`,
      Results: [
        {
          Target: "web (alpine 3.19)",
          Vulnerabilities: [
            {
              VulnerabilityID: "CVE-2024-1111",
              PkgName: "busybox",
              InstalledVersion: "1.36.1-r15",
              FixedVersion: "1.36.1-r16",
              Severity: "CRITICAL",
            },
            {
              VulnerabilityID: "CVE-2024-2222",
              PkgName: "musl",
              InstalledVersion: "1.2.4-r2",
              FixedVersion: "",
              Severity: "HIGH",
            },
            {
              VulnerabilityID: "CVE-2024-3333",
              PkgName: "zlib",
              InstalledVersion: "1.3-r1",
              FixedVersion: "1.3-r2",
              Severity: "LOW",
            },
          ],
        },
      ],
    }),
  );
  for (const [name, content] of [
    ["trivy-v110.json", v110],
    ["trivy-v120.json", v120],
  ] as const) {
    await writeFile(
      path.join(work, name),
      JSON.stringify({
        SchemaVersion: 2,
        ArtifactName: `${staging.host}/staging/web@${content.digest}`,
        Results: [],
      }),
    );
  }
}, 180_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("promoter check on a pull request, against real registries", () => {
  it("judges the head commit against the base: tag move, removal, size, kind change, vulnerabilities", async () => {
    const summary = path.join(work, "step-summary.md");
    const result = await promoter(
      { GITHUB_STEP_SUMMARY: summary },
      "check",
      "--base",
      "HEAD~1",
      "--thin-manifest-dir",
      ".",
      "--max-image-size",
      "100KiB",
      "--vuln-report",
      "../trivy.json",
      "--vuln-report",
      "../trivy-v110.json",
      "--vuln-report",
      "../trivy-v120.json",
      "--vuln-severity-threshold",
      "HIGH",
      "--output",
      "json",
      "--quiet",
    );
    expect(result.status, result.err).toBe(1);
    const report = JSON.parse(result.out) as CheckJson;
    expect(report.ok).toBe(false);
    // 3 new tags x 2 mirrors; worker 1.0 x 2 mirrors removed.
    expect(report.edges).toEqual({ added: 6, removed: 2 });
    const byId = Object.fromEntries(report.checks.map((check) => [check.id, check]));
    expect(byId.validation?.status).toBe("pass");

    expect(byId["tag-moves"]?.status).toBe("fail");
    expect(byId["tag-moves"]?.items).toEqual([
      expect.objectContaining({
        severity: "error",
        message: `tag move: web:v1.2.0 points at ${handPushed.digest} in ${prod.host}/us; the change asks for ${v120.digest}`,
        file: "images/web/images.yaml",
        line: 6,
      }),
    ]);
    expect(byId["tag-moves"]?.summary).toContain("5 to copy");
    // Every total adds up: the parts after the colon count every new edge.
    const [total, parts] = (byId["tag-moves"]?.summary ?? "").split(": ");
    const sum = (parts ?? "").split(", ").reduce((n, part) => n + Number.parseInt(part, 10), 0);
    expect(sum).toBe(Number.parseInt(total ?? "", 10));

    expect(byId.removals?.status).toBe("fail");
    expect(byId.removals?.items[0]?.message).toContain(`worker:1.0@${worker.digest} in 2 destinations`);
    expect(byId.removals?.summary).toContain("removing lines deletes nothing");

    expect(byId["image-size"]?.status).toBe("fail");
    expect(byId["image-size"]?.items).toHaveLength(1);
    expect(byId["image-size"]?.items[0]?.message).toMatch(
      /^web@sha256:[0-9a-f]{64} \(linux\/amd64 sha256:[0-9a-f]{64}\) is 2\d\d KiB compressed, over the limit of 100 KiB$/,
    );

    expect(byId["kind-changes"]?.status).toBe("fail");
    expect(byId["kind-changes"]?.items.map((item) => item.message)).toEqual([
      `web:v1.1.0 is a single-platform image, but the previous version in its tag series (v#.#.#), v1.0.0 (${v100.digest}), is a multi-platform index`,
    ]);

    expect(byId.vulnerabilities?.status).toBe("fail");
    expect(byId.vulnerabilities?.items.map((item) => item.message)).toEqual([
      "CRITICAL CVE-2024-1111 in busybox 1.36.1-r15; fixed in 1.36.1-r16 (../trivy.json)",
    ]);
    expect(byId.vulnerabilities?.summary).toBe(
      "1 fixable finding at or above HIGH; 1 at or above HIGH without a fix yet (not failing); 1 below HIGH",
    );

    const markdown = await readFile(summary, "utf8");
    expect(markdown).toContain("### promoter check: :x: 5 checks failed");
    expect(markdown).toContain("| Removed edges | :x: fail |");
  });

  it("the same change with the removal and kind change allowed fails only on what is left", async () => {
    const result = await promoter(
      {},
      "check",
      "--base",
      "HEAD~1",
      "--thin-manifest-dir",
      ".",
      "--allow-removals",
      "--allow-kind-change",
      "--quiet",
    );
    expect(result.status).toBe(1);
    expect(result.out).toMatch(/FAIL {2}New edges against the registries/);
    expect(result.out).toMatch(/WARN {2}Removed edges/);
    expect(result.out).toMatch(/WARN {2}Image kind/);
    expect(result.out).toMatch(/SKIP {2}Image size/);
    expect(result.out).toContain("Result: FAIL (1 check failed)");
    const none = await promoter({}, "check", "--base", "HEAD", "--thin-manifest-dir", ".", "--quiet");
    expect(none.status, none.out).toBe(0);
  });

  it("after the merge, promote --changed-since promotes only the change; the refused tag blocks only itself", async () => {
    const result = await promoter(
      {},
      "promote",
      "--thin-manifest-dir",
      ".",
      "--changed-since",
      "HEAD~1",
      "--confirm",
      "--quiet",
      "--output",
      "json",
    );
    expect(result.status).toBe(1);
    const document = JSON.parse(result.out) as {
      edges: { tag: string; destination: string; outcome: string }[];
    };
    expect(document.edges).toHaveLength(6);
    const outcomes = document.edges.map((edge) => `${edge.destination}:${edge.tag} ${edge.outcome}`).sort();
    expect(outcomes).toEqual([
      `${prod.host}/eu/web:v1.1.0 copied`,
      `${prod.host}/eu/web:v1.2.0 copied`,
      `${prod.host}/eu/web:v2.0.0 copied`,
      `${prod.host}/us/web:v1.1.0 copied`,
      `${prod.host}/us/web:v1.2.0 refused-tag-move`,
      `${prod.host}/us/web:v2.0.0 copied`,
    ]);
    expect((await skopeoInspectRaw(`docker://${prod.host}/us/web:v1.2.0`)).digest).toBe(handPushed.digest);
    expect((await skopeoInspectRaw(`docker://${prod.host}/eu/web:v1.2.0`)).digest).toBe(v120.digest);
    // Removing worker from the manifest deleted nothing.
    expect(await skopeoListTags(`docker://${prod.host}/us/worker`)).toEqual(["1.0"]);
  });
});
