import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROMOTER_BIN, requireBuiltCli, STACK_LINE } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { skopeoListTags } from "../support/skopeo.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * The kpromo drop-in (issue 18): the three registry.k8s.io job lines, verbatim, with the binary
 * renamed `kpromo`, on a thin tree in a real git repository with Prow's environment, against
 * real registries (distribution). The loopback registries and the signing key come through
 * PROMOTER_CIP_OPTIONS, as a job would add them without editing its command line.
 *
 *   postsubmit: kpromo cip --thin-manifest-dir=... --use-prow-manifest-diff --confirm
 *   presubmit:  kpromo cip --thin-manifest-dir=... --use-prow-manifest-diff \
 *                 --certificate-identity-regexp=... --certificate-oidc-issuer=...
 *   backstop:   kpromo cip --thin-manifest-dir=... --confirm   (and --manifest-diff-since=14d)
 */

let work: string;
let repo: string;
let bin: string;
let staging: TestRegistry;
let prod: TestRegistry;
let options: string;
const signingKey = generateKeyPairSync("ec", { namedCurve: "P-256" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();

const image = (seed: string) =>
  makeImage({
    layers: 1,
    layerSize: 512,
    mediaTypes: "oci",
    seed,
    platform: { architecture: "amd64", os: "linux" },
  });
const v1 = image("web-1.0.0");
const v2 = image("web-1.1.0");
const v3 = image("web-1.2.0");
const neverPushed = image("web-lost");
const BROKEN = `sha256:${"b".repeat(63)}`;
const MONTH_AGO = new Date(Date.now() - 30 * 86_400_000).toISOString();

function git(args: string[], date?: string): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd: repo,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_CONFIG_NOSYSTEM: "1",
      HOME: work,
      ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}),
    },
  });
}

interface Run {
  status: number | null;
  out: string;
  err: string;
}

/** `kpromo ...` through PATH: the promoter under kpromo's name, as a switching job runs it. */
function kpromo(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("kpromo", args, {
      cwd: repo,
      env: {
        PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
        HOME: work,
        PROMOTER_CIP_OPTIONS: options,
        SIGNING_KEY: signingKey,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.on("error", reject);
    child.on("close", (status) => {
      expect(`${out}\n${err}`).not.toMatch(STACK_LINE);
      resolve({ status, out, err });
    });
  });
}

const imagesYaml = (entries: string[]) =>
  ["# web images", "- name: web", "  dmap:", ...entries.map((line) => `    ${line}`), ""].join("\n");

async function writeImages(entries: string[]): Promise<void> {
  await writeFile(path.join(repo, "registry.k8s.io", "images", "web", "images.yaml"), imagesYaml(entries));
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "kpromo-drop-in-"));
  repo = path.join(work, "k8s.io");
  bin = path.join(work, "bin");
  await mkdir(bin);
  await symlink(PROMOTER_BIN, path.join(bin, "kpromo"));
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  options = "--allow-registry 127.0.0.1 --sign-key env://SIGNING_KEY --quiet";
  await pushTagsWithSkopeo(work, staging.host, "staging/web", [
    { content: v1, tag: "v1.0.0" },
    { content: v2, tag: "v1.1.0" },
    { content: v3, tag: "v1.2.0" },
  ]);
  const tree = path.join(repo, "registry.k8s.io");
  await mkdir(path.join(tree, "manifests", "web"), { recursive: true });
  await mkdir(path.join(tree, "images", "web"), { recursive: true });
  await mkdir(path.join(tree, "manifests", "old"), { recursive: true });
  await mkdir(path.join(tree, "images", "old"), { recursive: true });
  await writeFile(
    path.join(tree, "manifests", "web", "promoter-manifest.yaml"),
    `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prod.host}/us\n- name: ${prod.host}/eu\n`,
  );
  // Another project with an old mistake, as ingress-nginx's 63-hex digest in the real tree.
  await writeFile(
    path.join(tree, "manifests", "old", "promoter-manifest.yaml"),
    `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prod.host}/us\n`,
  );
  await writeFile(
    path.join(tree, "images", "old", "images.yaml"),
    `- name: old\n  dmap:\n    "${BROKEN}": ["1.0"]\n`,
  );
  await writeImages([`"${v1.digest}": ["v1.0.0"]`, `"${neverPushed.digest}": ["v0.9.0"]`]);
  git(["init", "-q", "--initial-branch", "main"]);
  git(["add", "-A"]);
  git(["commit", "-q", "-m", "base: web v1.0.0, an old broken entry and a lost digest"], MONTH_AGO);
}, 180_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

const TREE = "--thin-manifest-dir=registry.k8s.io";

describe("kpromo's registry.k8s.io jobs, binary renamed", () => {
  it("backstop (full run): promotes and signs, old findings and _LOST_ digests warn without failing", async () => {
    const run = await kpromo(["cip", TREE, "--confirm"]);
    expect(run.status, run.err).toBe(0);
    expect(run.err).toContain(BROKEN);
    expect(run.err).toMatch(/warning\[invalid-digest\].*a full run judges no change/);
    expect(run.err).toMatch(/_LOST_: the digest is neither in the source nor in the destination/);
    expect(run.err).toContain(`web@${neverPushed.digest} -> ${prod.host}/us`);
    for (const mirror of ["us", "eu"]) {
      const tags = await skopeoListTags(`docker://${prod.host}/${mirror}/web`);
      expect(tags).toContain("v1.0.0");
      expect(tags).toContain(`${v1.digest.replace(":", "-")}.sig`);
    }
  });

  it("presubmit: only the pull request's edges are planned, a dry run, identity flags accepted", async () => {
    await writeImages([
      `"${v1.digest}": ["v1.0.0"]`,
      `"${neverPushed.digest}": ["v0.9.0"]`,
      `"${v2.digest}": ["v1.1.0"]`,
    ]);
    git(["checkout", "-q", "-b", "pr"]);
    git(["commit", "-q", "-am", "web v1.1.0"]);
    const base = git(["rev-parse", "main"]).trim();
    const run = await kpromo(
      [
        "cip",
        TREE,
        "--use-prow-manifest-diff",
        "--certificate-identity-regexp=^https://github.com/kubernetes/.*$",
        "--certificate-oidc-issuer=https://token.actions.githubusercontent.com",
      ],
      { JOB_TYPE: "presubmit", PULL_BASE_SHA: base },
    );
    expect(run.status, run.err).toBe(0);
    expect(run.err).toContain(`Prow presubmit: edges added since PULL_BASE_SHA ${base.slice(0, 12)}`);
    expect(run.out).toMatch(/Plan: 2 edges: 2 to copy/);
    expect(run.out).not.toContain("v1.0.0");
    // The old broken entry is reported, as a warning: this change did not bring it.
    expect(run.err).toMatch(/warning\[invalid-digest\].*already there before this change/);
    expect(await skopeoListTags(`docker://${prod.host}/us/web`)).not.toContain("v1.1.0");
  });

  it("postsubmit: after the merge, copies exactly the merged edges and signs them", async () => {
    git(["checkout", "-q", "main"]);
    git(["merge", "-q", "--no-ff", "-m", "Merge pull request #1", "pr"]);
    const run = await kpromo(["cip", TREE, "--use-prow-manifest-diff", "--confirm"], {
      JOB_TYPE: "postsubmit",
    });
    expect(run.status, run.err).toBe(0);
    expect(run.err).toContain("Prow postsubmit: edges the merged commit added (since HEAD^)");
    for (const mirror of ["us", "eu"]) {
      const tags = await skopeoListTags(`docker://${prod.host}/${mirror}/web`);
      expect(tags).toContain("v1.1.0");
      expect(tags).toContain(`${v2.digest.replace(":", "-")}.sig`);
    }
    // The lost digest is not part of this change: not even reported as an edge.
    expect(run.out).not.toContain(neverPushed.digest);
  });

  it("a change that adds no edge promotes nothing and asks no registry", async () => {
    await writeFile(
      path.join(repo, "registry.k8s.io", "images", "web", "images.yaml"),
      `# reformatted, comment added\n${imagesYaml([`"${v1.digest}": [v1.0.0]`, `"${neverPushed.digest}": ["v0.9.0"]`, `"${v2.digest}": ["v1.1.0"]`])}`,
    );
    git(["commit", "-q", "-am", "comments only"]);
    const reportFile = path.join(work, "empty-diff-report.json");
    const run = await kpromo(["cip", TREE, "--use-prow-manifest-diff", "--confirm"], {
      JOB_TYPE: "postsubmit",
      PROMOTER_CIP_OPTIONS: `${options} --report ${reportFile}`,
    });
    expect(run.status, run.err).toBe(0);
    const report = JSON.parse(await readFile(reportFile, "utf8")) as {
      edges: unknown[];
      requests: Record<string, unknown>;
    };
    expect(report.edges).toEqual([]);
    expect(report.requests).toEqual({});
  });

  it("a change that adds a mirror promotes only into that mirror; its lost old digest warns", async () => {
    const manifest = path.join(repo, "registry.k8s.io", "manifests", "web", "promoter-manifest.yaml");
    await appendFile(manifest, `- name: ${prod.host}/ap\n`);
    git(["commit", "-q", "-am", "web: a new mirror"]);
    const reportFile = path.join(work, "new-mirror-report.json");
    const run = await kpromo(["cip", TREE, "--use-prow-manifest-diff", "--confirm"], {
      JOB_TYPE: "postsubmit",
      PROMOTER_CIP_OPTIONS: `${options} --report ${reportFile}`,
    });
    expect(run.status, run.err).toBe(0);
    const report = JSON.parse(await readFile(reportFile, "utf8")) as {
      edges: { destination: string; outcome: string }[];
    };
    expect(report.edges.map((edge) => edge.outcome).toSorted()).toEqual([
      "copied",
      "copied",
      "missing-source",
    ]);
    for (const edge of report.edges) expect(edge.destination).toContain(`${prod.host}/ap/`);
    expect(run.err).toMatch(
      /1 edge _LOST_: .*asked for before this change; not failing \(--missing-source new\)/,
    );
    expect(await skopeoListTags(`docker://${prod.host}/ap/web`)).toEqual(
      expect.arrayContaining(["v1.0.0", "v1.1.0"]),
    );
  });

  it("presubmit fails on what the change brings: an invalid digest, a digest missing from staging", async () => {
    const main = git(["rev-parse", "HEAD"]).trim();
    git(["checkout", "-q", "-b", "bad"]);
    await writeImages([
      `"${v1.digest}": ["v1.0.0"]`,
      `"${neverPushed.digest}": ["v0.9.0"]`,
      `"${v2.digest}": ["v1.1.0"]`,
      `"sha256:${"c".repeat(63)}": ["v1.3.0"]`,
    ]);
    git(["commit", "-q", "-am", "a typo"]);
    const invalid = await kpromo(["cip", TREE, "--use-prow-manifest-diff"], {
      JOB_TYPE: "presubmit",
      PULL_BASE_SHA: main,
    });
    expect(invalid.status, invalid.err).toBe(1);
    expect(invalid.err).toMatch(/error\[invalid-digest\]/);

    const lost = image("web-never-pushed-either");
    await writeImages([
      `"${v1.digest}": ["v1.0.0"]`,
      `"${neverPushed.digest}": ["v0.9.0"]`,
      `"${v2.digest}": ["v1.1.0"]`,
      `"${lost.digest}": ["v1.3.0"]`,
    ]);
    git(["commit", "-q", "-am", "a digest nobody pushed"]);
    const missing = await kpromo(["cip", TREE, "--use-prow-manifest-diff"], {
      JOB_TYPE: "presubmit",
      PULL_BASE_SHA: main,
    });
    expect(missing.status, missing.err + missing.out).toBe(1);
    expect(missing.out).toMatch(/missing in source/);
    git(["checkout", "-q", "main"]);
  });

  it("backstop with --manifest-diff-since=14d: only edges of the last 14 days", async () => {
    await writeImages([
      `"${v1.digest}": ["v1.0.0"]`,
      `"${neverPushed.digest}": ["v0.9.0"]`,
      `"${v2.digest}": ["v1.1.0"]`,
      `"${v3.digest}": ["v1.2.0"]`,
    ]);
    git(["commit", "-q", "-am", "web v1.2.0"]);
    const run = await kpromo(["cip", TREE, "--confirm", "--manifest-diff-since=14d"]);
    expect(run.status, run.err).toBe(0);
    expect(run.err).toMatch(/--manifest-diff-since 14d: edges added since \d{4}-\d\d-\d\dT/);
    // v1.1.0 (merged today, already promoted) and v1.2.0 (new) are in the window; the lost
    // digest of a month ago is not, so it is not even looked at.
    expect(run.err).not.toContain(`-> ${prod.host}/us`);
    expect(await skopeoListTags(`docker://${prod.host}/eu/web`)).toContain("v1.2.0");
  });

  it("kpromo's Go flag syntax: --confirm=false is a dry run, a bare word is refused, bad durations too", async () => {
    const dry = await kpromo(["cip", TREE, "--confirm=false", "--parse-only"]);
    expect(dry.status, dry.err).toBe(0);
    expect(dry.err).toMatch(
      /manifests parsed \(--parse-only\): \d+ promotion edges in scope; no registry was asked/,
    );

    const bare = await kpromo(["cip", TREE, "--confirm", "false"]);
    expect(bare.status).toBe(2);
    expect(bare.err).toMatch(/unexpected argument "false".*--name=false/);

    const garbled = await kpromo(["cip", TREE, "--manifest-diff-since=garbage"]);
    expect(garbled.status).toBe(2);
    expect(garbled.err).toMatch(/--manifest-diff-since "garbage" is not a duration/);

    const debug = await kpromo(["--log-level=debug", "cip", TREE, "--parse-only"]);
    expect(debug.status, debug.err).toBe(0);
  });

  it("a --confirm run that would sign without a signer is refused before anything is written", async () => {
    const run = await kpromo(["cip", TREE, "--confirm"], {
      PROMOTER_CIP_OPTIONS: "--allow-registry 127.0.0.1",
    });
    expect(run.status).toBe(2);
    expect(run.err).toMatch(/kpromo signs what it promotes by default \(--sign=true\).*Nothing was written/);
  });

  it("--vuln-severity-threshold only checks: reports judge the images to promote, nothing is written", async () => {
    const v4 = image("web-1.3.0");
    await pushTagsWithSkopeo(work, staging.host, "staging/web", [{ content: v4, tag: "v1.3.0" }]);
    await writeImages([
      `"${v1.digest}": ["v1.0.0"]`,
      `"${neverPushed.digest}": ["v0.9.0"]`,
      `"${v2.digest}": ["v1.1.0"]`,
      `"${v3.digest}": ["v1.2.0"]`,
      `"${v4.digest}": ["v1.3.0"]`,
    ]);
    const trivy = path.join(work, "trivy-v4.json");
    await writeFile(
      trivy,
      JSON.stringify({
        SchemaVersion: 2,
        ArtifactName: `${staging.host}/staging/web@${v4.digest}`,
        Results: [
          {
            Target: "web",
            Vulnerabilities: [
              {
                VulnerabilityID: "CVE-2024-4444",
                PkgName: "openssl",
                InstalledVersion: "3.1.0",
                FixedVersion: "3.1.1",
                Severity: "HIGH",
              },
            ],
          },
        ],
      }),
    );
    const withReport = { PROMOTER_CIP_OPTIONS: `${options} --vuln-report ${trivy}` };
    const high = await kpromo(["cip", TREE, "--confirm", "--vuln-severity-threshold=4"], withReport);
    expect(high.status, high.err).toBe(1);
    expect(high.err).toMatch(/error: HIGH CVE-2024-4444 in openssl/);
    expect(high.err).toMatch(/vulnerability check of 1 image to promote: 1 fixable finding at or above HIGH/);
    const critical = await kpromo(["cip", TREE, "--confirm", "--vuln-severity-threshold=5"], withReport);
    expect(critical.status, critical.err).toBe(0);
    expect(await skopeoListTags(`docker://${prod.host}/us/web`)).not.toContain("v1.3.0");

    const noReport = await kpromo(["cip", TREE, "--confirm", "--vuln-severity-threshold=4"]);
    expect(noReport.status).toBe(2);
    expect(noReport.err).toMatch(/give the scanners' reports with --vuln-report FILE/);
  });

  it("--snapshot and --manifest-based-snapshot-of print kpromo's CSV and YAML layouts", async () => {
    const line = /^[a-z0-9/._-]+@sha256:[0-9a-f]{64},(?:[a-z0-9/._-]+:[\w.-]+|-)$/;
    const csv = await kpromo(["cip", `--snapshot=${prod.host}/us/`, "--output=csv"]);
    expect(csv.status, csv.err).toBe(0);
    // fmt.Println after a text ending in a newline: one empty line at the end.
    expect(csv.out.endsWith("\n\n")).toBe(true);
    const rows = csv.out.trimEnd().split("\n");
    for (const row of rows) expect(row).toMatch(line);
    expect(rows).toContain(`web@${v1.digest},web:v1.0.0`);
    expect(rows).toContain(`web@${v2.digest},web:v1.1.0`);
    // kpromo's snapshot lists the signature tags too.
    expect(rows.some((row) => row.endsWith(`,web:${v1.digest.replace(":", "-")}.sig`))).toBe(true);
    expect(rows).toEqual(rows.toSorted());

    const tagged = await kpromo(["cip", `--snapshot=${prod.host}/us`, "--snapshot-tag=v1.1.0"]);
    expect(tagged.status, tagged.err).toBe(0);
    expect(tagged.out).toBe(`- name: web\n  dmap:\n    "${v2.digest}": ["v1.1.0"]\n\n`);

    const planned = await kpromo([
      "cip",
      TREE,
      `--manifest-based-snapshot-of=${prod.host}/eu`,
      "--output=csv",
    ]);
    expect(planned.status, planned.err).toBe(0);
    const plannedRows = planned.out.trimEnd().split("\n");
    expect(plannedRows).toContain(`web@${v1.digest},web:v1.0.0`);
    expect(plannedRows).toContain(`web@${neverPushed.digest},web:v0.9.0`);
    for (const row of plannedRows) expect(row).toMatch(line);
  });
});
