import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { runCli } from "../main.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const fixtures = path.join(repoRoot, "test/fixtures/manifests");
const k8sio = path.resolve(repoRoot, "../shared/k8sio");

async function run(args: string[], cwd = fixtures) {
  const { io, out, err } = captureIO({ cwd });
  const status = await runCli(["validate", ...args], io);
  return { status, out: out(), err: err() };
}

describe("promoter validate", () => {
  it("exits 0 for a valid tree and prints warnings like a compiler, then the summary", async () => {
    const { status, out, err } = await run(["--thin-manifest-dir", "valid"]);
    expect(err).toBe("");
    expect(status).toBe(0);
    expect(out).toBe(
      [
        "valid/manifests/beta/promoter-manifest.yaml:5:1: warning[deprecated-key]: imagesPath is deprecated and ignored: the images are read from images/beta/images.yaml",
        "    hint: Remove the key; the images file is always images/<project>/images.yaml.",
        "",
        "2 projects, 2 images, 4 digests, 4 tags, 3 destinations, 10 promotion edges",
        "0 errors, 1 warning: valid",
        "",
      ].join("\n"),
    );
  });

  it("exits 1 when there are errors and shows paths relative to the current directory", async () => {
    const { status, out } = await run(["--manifest", "invalid.yaml"], path.join(fixtures, "plain"));
    expect(status).toBe(1);
    const lines = out.split("\n");
    expect(lines[0]).toBe(
      'invalid.yaml:8:5: error[invalid-digest]: invalid digest "sha256:1234" in image "app": sha256 needs 64 hex digits, found 4',
    );
    expect(lines[1]).toMatch(/^ {4}hint: Write the full digest/);
    expect(lines[2]).toBe(
      'invalid.yaml:9:89: error[invalid-tag]: invalid tag ".hidden" in image "app": a tag must start with a letter, digit or underscore',
    );
    expect(out).toContain("2 errors, 0 warnings: invalid\n");
  });

  it("names the project that owns a repository another project's image would land in", async () => {
    const { status, out } = await run(["--thin-manifest-dir", "conflict"]);
    expect(status).toBe(1);
    expect(out).toContain("conflict/images/one/images.yaml:1:3: error[foreign-repository]: ");
    expect(out).toContain("    see: conflict/manifests/two/promoter-manifest.yaml:4:9\n");
  });

  it("gives the same as data with --output json", async () => {
    const { status, out } = await run(["--thin-manifest-dir", "conflict", "--output", "json"]);
    expect(status).toBe(1);
    const document = JSON.parse(out) as Record<string, unknown>;
    expect(document).toEqual({
      version: 1,
      ok: false,
      summary: {
        projects: 2,
        images: 1,
        digests: 2,
        tags: 2,
        destinations: 2,
        edges: 2,
        errors: 1,
        warnings: 0,
      },
      findings: [
        {
          severity: "error",
          rule: "foreign-repository",
          message: expect.stringMatching(/shared\/tool, which belongs to project "two"/) as unknown,
          hint: expect.any(String) as unknown,
          file: "conflict/images/one/images.yaml",
          line: 1,
          column: 3,
          related: [{ file: "conflict/manifests/two/promoter-manifest.yaml", line: 4, column: 9 }],
        },
      ],
    });
  });

  it.each([
    [
      ["--thin-manifest-dir", "no-such-dir"],
      /^promoter validate: error\[manifest-io\]: thin-manifest directory no-such-dir does not exist\n$/,
    ],
    [
      ["--manifest", "no-such.yaml"],
      /^promoter validate: error\[manifest-io\]: cannot read manifest file no-such\.yaml: no such file or directory\n$/,
    ],
    [
      ["--thin-manifest-dir", "empty"],
      /^promoter validate: error\[no-manifests\]: no promoter-manifest\.yaml found in empty\/manifests/,
    ],
    [[], /^promoter validate: give --manifest FILE or --thin-manifest-dir DIR\n$/],
    [
      ["--manifest", "a.yaml", "--thin-manifest-dir", "valid"],
      /^promoter validate: give either --manifest or --thin-manifest-dir, not both\n$/,
    ],
    [
      ["--thin-manifest-dir", "valid", "--output", "xml"],
      /^promoter validate: --output must be one of text, json, not "xml"\n$/,
    ],
    [["--thin-manifest-dir", "valid", "extra"], /^promoter validate: unexpected argument "extra"/],
    [["--frobnicate"], /^promoter validate: Unknown option '--frobnicate'/],
  ])("exits 2 with a one-line reason for %j", async (args, reason) => {
    const { status, out, err } = await run(args);
    expect(status).toBe(2);
    expect(out).toBe("");
    expect(err).toMatch(reason);
    expect(err.trimEnd().split("\n").length).toBeLessThanOrEqual(2);
  });

  it("documents itself with --help", async () => {
    const { status, out } = await run(["--help"]);
    expect(status).toBe(0);
    expect(out).toMatch(
      /^Usage: promoter validate \(--manifest FILE \| --thin-manifest-dir DIR\) \[--output text\|json\] \[--changed-since REV\]\n {8}\[--fail-on-findings all\|new\] \[--allow-registry NAME \.\.\.\]\n/,
    );
    expect(out).toContain("--thin-manifest-dir DIR");
    expect(out).toContain("Exit status: 0 when no error fails");
  });

  it.skipIf(!existsSync(path.join(k8sio, "registry.k8s.io")))(
    "reports the invalid digest of the real registry.k8s.io tree and exits 1",
    async () => {
      const { status, out } = await run(["--thin-manifest-dir", "registry.k8s.io"], k8sio);
      expect(status).toBe(1);
      const errors = out.split("\n").filter((line) => line.includes(": error["));
      expect(errors).toEqual([
        'registry.k8s.io/images/k8s-staging-ingress-nginx/images.yaml:152:5: error[invalid-digest]: invalid digest "sha256:23eb4b1775fbaa2adca55c73cf0341e1224d6308689b6f4b3aa1523312eb81c" in image "e2e-test-httpbin": sha256 needs 64 hex digits, found 63',
      ]);
      expect(out).toContain(
        "75 projects, 388 images, 20016 digests, 20085 tags, 1738 destinations, 720456 promotion edges\n",
      );
      expect(out).toContain("1 error, 6 warnings: invalid\n");
    },
  );

  it("with --changed-since, fails only on errors the change brought; older ones are warnings", async () => {
    const work = await mkdtemp(path.join(tmpdir(), "validate-changed-"));
    try {
      const git = (...args: string[]) =>
        execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], {
          cwd: work,
          env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: work },
        });
      const good = `sha256:${"a".repeat(64)}`;
      const registries = "registries:\n- name: gcr.io/staging\n  src: true\n- name: gcr.io/prod\n";
      const images = (lines: string[]) =>
        `images:\n- name: app\n  dmap:\n${lines.map((l) => `    ${l}\n`).join("")}`;
      await writeFile(
        path.join(work, "m.yaml"),
        registries + images([`"sha256:${"b".repeat(63)}": ["old"]`]),
      );
      git("init", "-q");
      git("add", "-A");
      git("commit", "-q", "-m", "base with an old mistake");
      await writeFile(
        path.join(work, "m.yaml"),
        registries + images([`"sha256:${"b".repeat(63)}": ["old"]`, `"${good}": ["1.0"]`]),
      );
      const clean = await run(["--manifest", "m.yaml", "--changed-since", "HEAD"], work);
      expect(clean.status, clean.out).toBe(0);
      expect(clean.out).toMatch(/m\.yaml:8:5: warning\[invalid-digest\].*already there before this change/);
      expect(clean.out).toContain("0 errors, 1 warning: valid");

      const strict = await run(
        ["--manifest", "m.yaml", "--changed-since", "HEAD", "--fail-on-findings", "all"],
        work,
      );
      expect(strict.status).toBe(1);
      expect(strict.out).toMatch(/error\[invalid-digest\]/);

      await writeFile(
        path.join(work, "m.yaml"),
        registries + images([`"sha256:${"b".repeat(63)}": ["old"]`, `"sha256:${"c".repeat(63)}": ["new"]`]),
      );
      const brought = await run(["--manifest", "m.yaml", "--changed-since", "HEAD"], work);
      expect(brought.status).toBe(1);
      expect(brought.out).toMatch(/m\.yaml:9:5: error\[invalid-digest\]: invalid digest "sha256:c+"/);
      expect(brought.out).toContain("1 error, 1 warning: invalid");

      const full = await run(["--manifest", "m.yaml", "--fail-on-findings", "new"], work);
      expect(full.status).toBe(0);
      expect(full.out).toMatch(/a full run judges no change/);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
