import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { makeImage, makeIndex, writeOciLayoutDirectly } from "../../../test/support/test-images.js";
import { runCli } from "../main.js";
import { parseSize } from "./check.js";

/**
 * `promoter check` and `promote --changed-since` in a temporary git repository whose registries
 * are OCI layout trees (the same checks against real registries: test/e2e/gitops-check.test.ts).
 */

const amd64 = makeImage({
  layers: 1,
  layerSize: 256,
  mediaTypes: "oci",
  seed: "check-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 256,
  mediaTypes: "oci",
  seed: "check-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const v1 = makeIndex([amd64, arm64], { mediaType: "oci" });
const v2 = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "check-v2" });

let dir: string;

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd: path.join(dir, "repo"),
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir },
  });
}

/** The layouts live beside the tree, outside it: the operator allows them (registry policy). */
const ALLOW_LAYOUTS = ["--allow-registry", "oci:registries"];

async function run(env: Record<string, string> = {}, ...args: string[]) {
  const capture = captureIO({ cwd: path.join(dir, "repo"), env });
  const status = await runCli([...args, ...ALLOW_LAYOUTS], capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

/** `promoter check --base HEAD --thin-manifest-dir gitops ...args`. */
function checkAgainstHead(...args: string[]) {
  return run({}, "check", "--base", "HEAD", "--thin-manifest-dir", "gitops", ...args);
}

/** {@link checkAgainstHead} with `...args --output json -q`. */
function checkJson(...args: string[]) {
  return checkAgainstHead(...args, "--output", "json", "-q");
}

const imagesFile = (): string => path.join(dir, "repo", "gitops", "images", "app", "images.yaml");

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "check-cli-"));
  const repo = path.join(dir, "repo");
  await writeOciLayoutDirectly(path.join(repo, "registries", "staging", "app"), [
    { content: v1, tag: "v1.0.0" },
    { content: v2, tag: "v2.0.0" },
  ]);
  // The tree is a subfolder of the repository, as in a monorepo.
  await mkdir(path.join(repo, "gitops", "manifests", "app"), { recursive: true });
  await mkdir(path.join(repo, "gitops", "images", "app"), { recursive: true });
  await writeFile(
    path.join(repo, "gitops", "manifests", "app", "promoter-manifest.yaml"),
    "registries:\n- name: oci:../../../registries/staging\n  src: true\n- name: oci:../../../registries/prod\n",
  );
  await writeFile(imagesFile(), `- name: app\n  dmap:\n    "${v1.digest}": ["v1.0.0"]\n`);
  await writeFile(path.join(repo, ".gitignore"), "registries/\n");
  git("init", "-q");
  git("add", "-A");
  git("commit", "-q", "-m", "base");
  const promoted = await run({}, "promote", "--thin-manifest-dir", "gitops", "--confirm", "--quiet");
  expect(promoted.status, promoted.err).toBe(0);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface CheckJson {
  ok: boolean;
  edges: { added: number; removed: number };
  changedFiles: string[];
  checks: {
    id: string;
    status: string;
    items: { severity: string; message: string; file?: string; line?: number }[];
  }[];
}

function statusOf(document: CheckJson): Record<string, string> {
  return Object.fromEntries(document.checks.map((check) => [check.id, check.status]));
}

describe("promoter check", () => {
  it("passes when nothing changed, and judges an added image against the registries", async () => {
    const same = await checkAgainstHead();
    expect(same.status, same.out + same.err).toBe(0);
    expect(same.out).toContain("0 changed files, 0 new edges, 0 removed edges");
    expect(same.out).toContain("Result: PASS");

    await writeFile(imagesFile(), `- name: app\n  dmap:\n    "${v1.digest}": ["v1.0.0", "v1.0"]\n`);
    const added = await checkJson();
    expect(added.status, added.out + added.err).toBe(0);
    const document = JSON.parse(added.out) as CheckJson & {
      schema: string;
      decisions: Record<string, number>;
    };
    expect(document.schema).toBe("image-promoter/check");
    expect(document.ok).toBe(true);
    expect(document.edges).toEqual({ added: 1, removed: 0 });
    expect(document.decisions["add-tag"]).toBe(1);
    expect(document.changedFiles).toEqual(["gitops/images/app/images.yaml"]);
    expect(statusOf(document)).toEqual({
      validation: "pass",
      "tag-moves": "pass",
      removals: "pass",
      "image-size": "skipped",
      "kind-changes": "pass",
      vulnerabilities: "skipped",
    });
  });

  it("fails a tag move and a removal of what production serves; --allow-removals lets the removal pass", async () => {
    await writeFile(imagesFile(), `- name: app\n  dmap:\n    "${v2.digest}": ["v1.0.0"]\n`);
    const moved = await checkAgainstHead("-q");
    expect(moved.status).toBe(1);
    expect(moved.out).toMatch(/FAIL {2}New edges against the registries/);
    expect(moved.out).toContain(
      `tag move: app:v1.0.0 points at ${v1.digest} in oci:../../../registries/prod; the change asks for ${v2.digest}`,
    );
    expect(moved.out).toContain("gitops/images/app/images.yaml:3:");
    expect(moved.out).toMatch(/FAIL {2}Removed edges/);
    expect(moved.out).toContain("Removing lines deletes nothing");

    await writeFile(imagesFile(), "[]\n");
    const removed = await checkJson();
    expect(removed.status).toBe(1);
    const document = JSON.parse(removed.out) as CheckJson;
    expect(statusOf(document).removals).toBe("fail");
    expect(document.checks.find((check) => check.id === "removals")?.items[0]).toMatchObject({
      severity: "error",
      file: "gitops/images/app/images.yaml",
      line: 3,
    });
    const allowed = await checkAgainstHead("--allow-removals", "-q");
    expect(allowed.status).toBe(0);
    expect(allowed.out).toMatch(/WARN {2}Removed edges/);
  });

  it("fails new validation errors in changed files, a digest missing in staging, and a kind change", async () => {
    await writeFile(
      imagesFile(),
      `- name: app\n  dmap:\n    "${v1.digest}": ["v1.0.0"]\n    "sha256:${"1".repeat(63)}": ["v9"]\n    "sha256:${"2".repeat(64)}": ["v3.0.0"]\n    "${v2.digest}": ["v1.1.0"]\n`,
    );
    const result = await checkJson();
    expect(result.status).toBe(1);
    const document = JSON.parse(result.out) as CheckJson;
    const statuses = statusOf(document);
    expect(statuses.validation).toBe("fail");
    expect(statuses["tag-moves"]).toBe("fail");
    expect(statuses["kind-changes"]).toBe("fail");
    const messages = document.checks.flatMap((check) => check.items.map((item) => item.message)).join("\n");
    expect(messages).toContain("error[invalid-digest]");
    expect(messages).toContain(`missing in staging: sha256:${"2".repeat(64)}`);
    expect(messages).toContain(
      `app:v1.1.0 is a single-platform image, but the previous version in its tag series (v#.#.#), v1.0.0 (${v1.digest}), is a multi-platform index`,
    );

    const allowed = await checkJson("--allow-kind-change");
    expect(statusOf(JSON.parse(allowed.out) as CheckJson)["kind-changes"]).toBe("warn");
  });

  it("checks sizes and vulnerability reports, and appends markdown to GITHUB_STEP_SUMMARY", async () => {
    await writeFile(
      imagesFile(),
      `- name: app\n  dmap:\n    "${v1.digest}": ["v1.0.0"]\n    "${v2.digest}": ["v2.0.0"]\n`,
    );
    await writeFile(
      path.join(dir, "trivy.json"),
      JSON.stringify({
        SchemaVersion: 2,
        // The image the change adds, by digest: the gate needs every new image named.
        ArtifactName: `oci:registries/staging/app@${v2.digest}`,
        Results: [
          {
            Target: "app",
            Vulnerabilities: [
              {
                VulnerabilityID: "CVE-2024-1",
                PkgName: "openssl",
                InstalledVersion: "1",
                FixedVersion: "2",
                Severity: "HIGH",
              },
            ],
          },
        ],
      }),
    );
    const summary = path.join(dir, "summary.md");
    await writeFile(summary, "# earlier step\n");
    const result = await run(
      { GITHUB_STEP_SUMMARY: summary },
      "check",
      "--base",
      "HEAD",
      "--thin-manifest-dir",
      "gitops",
      "--allow-kind-change",
      "--max-image-size",
      "300",
      "--vuln-report",
      "../trivy.json",
      "--vuln-severity-threshold",
      "high",
      "-q",
    );
    expect(result.status).toBe(1);
    expect(result.out).toMatch(
      /FAIL {2}Image size: 1 platform image of new digests checked against 300 B; largest \d+ B/,
    );
    expect(result.out).toContain(`app@${v2.digest} (image) is`);
    expect(result.out).toMatch(/FAIL {2}Vulnerability report: 1 fixable finding at or above HIGH/);
    expect(result.out).toContain("HIGH CVE-2024-1 in openssl 1; fixed in 2 (../trivy.json)");
    const markdown = await readFile(summary, "utf8");
    expect(markdown.startsWith("# earlier step\n### promoter check: :x: 2 checks failed")).toBe(true);
    expect(markdown).toContain("| Image size | :x: fail |");

    const passing = await checkAgainstHead(
      "--allow-kind-change",
      "--max-image-size",
      "1MiB",
      "--vuln-report",
      "../trivy.json",
      "--vuln-severity-threshold",
      "CRITICAL",
      "--output",
      "markdown",
      "-q",
    );
    expect(passing.status, passing.out).toBe(0);
    expect(passing.out).toContain("### promoter check: :white_check_mark: passed");
  });

  it("reports usage problems with exit status 2", async () => {
    const base = ["check", "--thin-manifest-dir", "gitops"];
    expect((await run({}, ...base)).status).toBe(2);
    const unknown = await run({}, ...base, "--base", "no-such-branch");
    expect(unknown.status).toBe(2);
    expect(unknown.err).toContain('unknown revision "no-such-branch"');
    expect((await run({}, ...base, "--base", "HEAD", "--max-image-size", "big")).status).toBe(2);
    expect((await run({}, ...base, "--base", "HEAD", "--vuln-report", "missing.json")).status).toBe(2);
    expect((await run({}, ...base, "--base", "HEAD", "--vuln-severity-threshold", "HIGH")).status).toBe(2);
    await writeFile(path.join(dir, "repo", "bad.json"), "{}");
    const bad = await run({}, ...base, "--base", "HEAD", "--vuln-report", "bad.json");
    expect(bad.status).toBe(2);
    expect(bad.err).toContain("neither a Trivy JSON report");
  });

  it("compares with a tree that did not exist at the base: everything is new", async () => {
    git("rm", "-q", "-r", "gitops");
    git("commit", "-q", "-m", "remove");
    const result = await checkJson();
    // The working copy lost the files too (git rm): restore them from the first commit.
    expect(result.status).toBe(2);
    git("checkout", "-q", "HEAD~1", "--", "gitops");
    const restored = await checkJson();
    const document = JSON.parse(restored.out) as CheckJson;
    expect(document.edges).toEqual({ added: 1, removed: 0 });
    expect(restored.status).toBe(0);
  });
});

describe("promoter promote --changed-since", () => {
  it("plans only the edges the change added", async () => {
    await writeFile(
      imagesFile(),
      `- name: app\n  dmap:\n    "${v1.digest}": ["v1.0.0"]\n    "${v2.digest}": ["v2.0.0"]\n`,
    );
    const all = await run({}, "promote", "--thin-manifest-dir", "gitops", "--output", "json", "-q");
    const changed = await run(
      {},
      "promote",
      "--thin-manifest-dir",
      "gitops",
      "--changed-since",
      "HEAD",
      "--output",
      "json",
      "-q",
    );
    expect(changed.status, changed.err).toBe(0);
    const edgesOf = (out: string) =>
      (JSON.parse(out) as { edges: { tag: string; decision: string }[] }).edges;
    expect(
      edgesOf(all.out)
        .map((edge) => edge.tag)
        .sort(),
    ).toEqual(["v1.0.0", "v2.0.0"]);
    expect(edgesOf(changed.out)).toMatchObject([{ tag: "v2.0.0", decision: "copy" }]);
    const bad = await run({}, "promote", "--thin-manifest-dir", "gitops", "--changed-since", "nope");
    expect(bad.status).toBe(2);
  });
});

describe("parseSize", () => {
  it.each([
    ["1073741824", 1073741824],
    ["1GiB", 1073741824],
    ["500MiB", 500 * 1024 * 1024],
    ["800MB", 800_000_000],
    ["1.5 GiB", 1.5 * 1024 ** 3],
  ])("%s is %d bytes", (text, bytes) => {
    expect(parseSize(text, "max-image-size")).toBe(bytes);
  });
  it("refuses nonsense", () => {
    expect(() => parseSize("0", "x")).toThrow();
    expect(() => parseSize("12 parsecs", "x")).toThrow();
  });
});
