import { existsSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";

/**
 * The malformed corpus (test/fixtures/malformed, see its README): every manifest file and tree
 * there is broken in its own way, and `promoter validate` (and, where nothing would reach a
 * registry, `promoter promote`) must say exactly what is wrong, where (file:line:column), with
 * the rule id and the documented exit status (docs/manifest-format.md): 1 for findings, 2 for
 * input that cannot be read, 0 when only warnings. Never a stack trace or an internal error.
 */

const corpus = path.resolve(import.meta.dirname, "../fixtures/malformed");

interface Case {
  /** Relative to the corpus; a folder is a thin-manifest tree. */
  readonly input: string;
  readonly status: 0 | 1 | 2;
  /** The finding this case is about (status 0 and 1). */
  readonly rule?: string;
  readonly line?: number;
  readonly column?: number;
  /** A fragment of the finding's message (status 0 and 1) or of the one error line (status 2). */
  readonly message: string;
  /** The file the finding is in, when not `input` itself (thin trees). */
  readonly file?: string;
  /** `line:column` of the finding's first related place. */
  readonly related?: string;
}

const A = "a".repeat(64);

const CASES: readonly Case[] = [
  // YAML itself
  {
    input: "plain/yaml-unclosed-flow.yaml",
    status: 1,
    rule: "yaml-syntax",
    line: 9,
    column: 1,
    message: "flow sequence in block collection must be sufficiently indented and end with a ]",
  },
  {
    input: "plain/yaml-bad-indentation.yaml",
    status: 1,
    rule: "yaml-syntax",
    line: 6,
    column: 9,
    message: "implicit keys need to be on a single line",
  },
  {
    input: "plain/yaml-tab-indentation.yaml",
    status: 1,
    rule: "yaml-syntax",
    line: 8,
    column: 1,
    message: "tabs are not allowed as indentation",
  },
  {
    input: "plain/yaml-second-document.yaml",
    status: 1,
    rule: "yaml-syntax",
    line: 9,
    column: 1,
    message: "a manifest holds one YAML document; remove the second one (after ---)",
  },
  {
    input: "plain/yaml-undefined-alias.yaml",
    status: 1,
    rule: "yaml-syntax",
    line: 6,
    column: 9,
    message: "alias *app has no anchor &app before it",
  },
  {
    input: "plain/yaml-invalid-utf8.yaml",
    status: 1,
    rule: "yaml-syntax",
    line: 8,
    column: 83,
    message: "the file is not UTF-8 text (byte 0xff at line 8, column 83)",
  },
  {
    input: "plain/yaml-deep-nesting.yaml",
    status: 1,
    rule: "yaml-limit",
    line: 5,
    column: 80,
    message: "collections are nested more than 64 levels deep",
  },
  {
    input: "plain/yaml-too-many-aliases.yaml",
    status: 1,
    rule: "yaml-limit",
    line: 8,
    column: 393,
    message: "more than 100 aliases",
  },
  {
    input: "plain/yaml-binary-tag.yaml",
    status: 1,
    rule: "invalid-type",
    line: 9,
    column: 90,
    message: 'a tag must be plain text, but the YAML tag !!binary turns "djE=" into something else',
  },
  {
    input: "plain/yaml-timestamp-tag.yaml",
    status: 1,
    rule: "invalid-type",
    line: 8,
    column: 93,
    message: 'the YAML tag !!timestamp turns "2024-06-06" into something else',
  },
  // Shapes
  {
    input: "plain/type-document-list.yaml",
    status: 1,
    rule: "invalid-type",
    line: 1,
    column: 1,
    message: "a promotion manifest must be a mapping, found a list",
  },
  {
    input: "plain/type-registries-mapping.yaml",
    status: 1,
    rule: "invalid-type",
    line: 2,
    column: 3,
    message: "registries must be a list, found a mapping",
  },
  {
    input: "plain/type-images-string.yaml",
    status: 1,
    rule: "invalid-type",
    line: 5,
    column: 9,
    message: 'images must be a list, found the string "app"',
  },
  {
    input: "plain/type-src-quoted.yaml",
    status: 1,
    rule: "invalid-type",
    line: 3,
    column: 8,
    message: 'src must be true or false (unquoted), found the string "true"',
  },
  // What kpromo accepts and is read as kpromo reads it, with a warning
  {
    input: "plain/kpromo-src-yes.yaml",
    status: 0,
    rule: "kpromo-spelling",
    line: 3,
    column: 8,
    message:
      'src: yes is read as true, as kpromo\'s YAML 1.1 reader reads it; a YAML 1.2 reader sees the string "yes"',
  },
  {
    input: "plain/kpromo-registry-trailing-slash.yaml",
    status: 0,
    rule: "kpromo-spelling",
    line: 4,
    column: 9,
    message:
      'registry name "us-docker.pkg.dev/k8s-artifacts-prod/images/demo/" ends with /: it is read as "us-docker.pkg.dev/k8s-artifacts-prod/images/demo"',
  },
  {
    input: "plain/kpromo-empty-second-document.yaml",
    status: 0,
    rule: "kpromo-spelling",
    line: 9,
    column: 1,
    message: "an empty YAML document after --- is ignored",
  },
  {
    input: "plain/type-dmap-list.yaml",
    status: 1,
    rule: "invalid-type",
    line: 8,
    column: 3,
    message: 'the dmap of image "app" must be a mapping, found a list',
  },
  {
    input: "plain/type-tags-string.yaml",
    status: 1,
    rule: "invalid-type",
    line: 8,
    column: 80,
    message: 'in image "app" must be a list, found the string "v1"',
  },
  {
    input: "plain/type-tag-mapping.yaml",
    status: 1,
    rule: "invalid-type",
    line: 8,
    column: 81,
    message: "a tag must be a string, found a mapping",
  },
  {
    input: "plain/type-name-list.yaml",
    status: 1,
    rule: "invalid-type",
    line: 6,
    column: 9,
    message: "an image name must be a string, found a list",
  },
  // Keys
  {
    input: "plain/key-misspelt-top.yaml",
    status: 1,
    rule: "unknown-key",
    line: 5,
    column: 1,
    message: 'unknown key "imgaes" in the manifest (expected registries, images)',
  },
  {
    input: "plain/key-misspelt-dmap.yaml",
    status: 1,
    rule: "unknown-key",
    line: 7,
    column: 3,
    message: 'unknown key "dmpa" in an image entry (expected name, dmap)',
  },
  {
    input: "plain/key-tags-in-image.yaml",
    status: 1,
    rule: "unknown-key",
    line: 7,
    column: 3,
    message: 'unknown key "tags" in an image entry',
  },
  {
    input: "plain/key-misspelt-src.yaml",
    status: 1,
    rule: "unknown-key",
    line: 3,
    column: 3,
    message: 'unknown key "source" in a registry entry (expected name, src, service-account)',
  },
  {
    input: "plain/key-duplicate-registries.yaml",
    status: 1,
    rule: "duplicate-key",
    line: 5,
    column: 1,
    message: '"registries" appears more than once in the manifest',
    related: "1:1",
  },
  {
    input: "plain/key-duplicate-digest.yaml",
    status: 1,
    rule: "duplicate-key",
    line: 9,
    column: 5,
    message: `"sha256:${A}" appears more than once in the dmap of image "app"`,
    related: "8:5",
  },
  {
    input: "plain/key-duplicate-name.yaml",
    status: 1,
    rule: "duplicate-key",
    line: 7,
    column: 3,
    message: '"name" appears more than once in an image entry',
    related: "6:3",
  },
  {
    input: "plain/field-registry-without-name.yaml",
    status: 1,
    rule: "missing-field",
    line: 2,
    column: 3,
    message: "a registry entry has no name",
  },
  {
    input: "plain/field-image-without-name.yaml",
    status: 1,
    rule: "missing-field",
    line: 6,
    column: 3,
    message: "an image entry has no name",
  },
  {
    input: "plain/dmap-empty.yaml",
    status: 0,
    rule: "empty-dmap",
    line: 7,
    column: 3,
    message: 'the dmap of image "app" is empty: it promotes nothing',
  },
  // Values
  {
    input: "plain/digest-short.yaml",
    status: 1,
    rule: "invalid-digest",
    line: 8,
    column: 5,
    message: "sha256 needs 64 hex digits, found 63",
  },
  {
    input: "plain/digest-uppercase.yaml",
    status: 1,
    rule: "invalid-digest",
    line: 8,
    column: 5,
    message: "hex digits must be lower-case",
  },
  {
    input: "plain/digest-md5.yaml",
    status: 1,
    rule: "invalid-digest",
    line: 8,
    column: 5,
    message: 'unsupported algorithm "md5"; expected sha256 or sha512',
  },
  {
    input: "plain/digest-path.yaml",
    status: 1,
    rule: "invalid-digest",
    line: 8,
    column: 5,
    message:
      'invalid digest "sha256:../../etc/passwd" in image "app": the part after the colon must be hex digits',
  },
  {
    input: "plain/tag-leading-dash.yaml",
    status: 1,
    rule: "invalid-tag",
    line: 8,
    column: 81,
    message: 'invalid tag "-v1" in image "app": a tag must start with a letter, digit or underscore',
  },
  {
    input: "plain/tag-colon.yaml",
    status: 1,
    rule: "invalid-tag",
    line: 8,
    column: 81,
    message: 'invalid tag "v1:latest" in image "app": character ":" is not allowed',
  },
  {
    input: "plain/tag-too-long.yaml",
    status: 1,
    rule: "invalid-tag",
    line: 8,
    column: 81,
    message: "a tag has at most 128 characters, found 129",
  },
  {
    input: "plain/tag-empty.yaml",
    status: 1,
    rule: "invalid-tag",
    line: 8,
    column: 81,
    message: 'invalid tag "" in image "app": a tag cannot be empty',
  },
  {
    input: "plain/image-uppercase.yaml",
    status: 1,
    rule: "invalid-image-name",
    line: 6,
    column: 9,
    message: 'invalid image name "App": path component "App" has upper-case letters',
  },
  {
    input: "plain/image-dotdot.yaml",
    status: 1,
    rule: "invalid-image-name",
    line: 6,
    column: 9,
    message: 'invalid image name "../escape": path component ".." must start and end with a letter or digit',
  },
  {
    input: "plain/image-double-slash.yaml",
    status: 1,
    rule: "invalid-image-name",
    line: 6,
    column: 9,
    message: 'invalid image name "team//app": empty path component',
  },
  {
    input: "plain/registry-uppercase-path.yaml",
    status: 1,
    rule: "invalid-registry-name",
    line: 2,
    column: 9,
    message: 'invalid registry name "gcr.io/Staging": path component "Staging" has upper-case letters',
  },
  {
    input: "plain/registry-with-scheme.yaml",
    status: 1,
    rule: "invalid-registry-name",
    line: 4,
    column: 9,
    message:
      'a registry name has no scheme: write "us-docker.pkg.dev/prod", not "https://us-docker.pkg.dev/prod"',
  },
  {
    input: "plain/registry-no-host.yaml",
    status: 1,
    rule: "invalid-registry-name",
    line: 4,
    column: 9,
    message: 'invalid registry name "prod": "prod" is not a registry host',
  },
  // Registries and claims
  {
    input: "plain/empty-file.yaml",
    status: 1,
    rule: "no-source-registry",
    line: 1,
    column: 1,
    message: 'project "empty-file" lists no registries',
  },
  {
    input: "plain/source-missing.yaml",
    status: 1,
    rule: "no-source-registry",
    line: 2,
    column: 9,
    message: 'project "source-missing" has no registry with src: true',
  },
  {
    input: "plain/source-twice.yaml",
    status: 1,
    rule: "multiple-source-registries",
    line: 4,
    column: 9,
    message:
      'registry "gcr.io/k8s-staging-other" is a second source in project "source-twice" (the first is "gcr.io/k8s-staging-demo")',
    related: "2:9",
  },
  {
    input: "plain/destination-is-source.yaml",
    status: 1,
    rule: "destination-is-source",
    line: 4,
    column: 9,
    message:
      'destination "gcr.io/k8s-staging-demo" is the source registry of project "destination-is-source"',
    related: "2:9",
  },
  {
    input: "plain/destination-is-source-other-account.yaml",
    status: 1,
    rule: "destination-is-source",
    line: 5,
    column: 9,
    message:
      'destination "gcr.io/k8s-staging-demo" is the source registry of project "destination-is-source-other-account"; another service-account does not make it another registry',
    related: "2:9",
  },
  {
    input: "plain/destination-twice.yaml",
    status: 0,
    rule: "duplicate-registry",
    line: 5,
    column: 9,
    message: 'destination "us-docker.pkg.dev/k8s-artifacts-prod/images/demo" is listed twice',
    related: "4:9",
  },
  {
    input: "plain/tag-conflict-one-image.yaml",
    status: 1,
    rule: "tag-conflict",
    line: 8,
    column: 81,
    message: "us-docker.pkg.dev/k8s-artifacts-prod/images/demo/app:v1 is claimed by 2 different digests",
    related: "9:81",
  },
  {
    input: "plain/tag-conflict-repeated-image.yaml",
    status: 1,
    rule: "tag-conflict",
    line: 8,
    column: 81,
    message: "us-docker.pkg.dev/k8s-artifacts-prod/images/demo/app:v1 is claimed by 2 different digests",
    related: "11:81",
  },
  // Thin-manifest trees
  {
    input: "thin/missing-images-file",
    file: "manifests/demo/promoter-manifest.yaml",
    status: 1,
    rule: "missing-images-file",
    line: 1,
    column: 1,
    message: 'project "demo" has no images file images/demo/images.yaml',
  },
  {
    input: "thin/misplaced-nested",
    file: "manifests/demo/old/promoter-manifest.yaml",
    status: 1,
    rule: "misplaced-manifest",
    line: 1,
    column: 1,
    message:
      "misplaced-nested/manifests/demo/old/promoter-manifest.yaml is not at manifests/<project>/promoter-manifest.yaml and is not read",
  },
  {
    input: "thin/misplaced-top",
    file: "manifests/promoter-manifest.yaml",
    status: 1,
    rule: "misplaced-manifest",
    line: 1,
    column: 1,
    message:
      "misplaced-top/manifests/promoter-manifest.yaml is not at manifests/<project>/promoter-manifest.yaml",
  },
  {
    input: "thin/images-key-in-thin-manifest",
    file: "manifests/demo/promoter-manifest.yaml",
    status: 1,
    rule: "unknown-key",
    line: 5,
    column: 1,
    message: 'unknown key "images" in the manifest (expected registries, imagesPath)',
  },
  {
    input: "thin/images-file-mapping",
    file: "images/demo/images.yaml",
    status: 1,
    rule: "invalid-type",
    line: 1,
    column: 1,
    message: "the images file must be a list, found a mapping",
  },
  {
    input: "thin/images-path-deprecated",
    file: "manifests/demo/promoter-manifest.yaml",
    status: 0,
    rule: "deprecated-key",
    line: 5,
    column: 1,
    message: "imagesPath is deprecated and ignored: the images are read from images/demo/images.yaml",
  },
  {
    input: "thin/conflict-across-projects",
    file: "images/one/images.yaml",
    status: 1,
    rule: "foreign-repository",
    line: 1,
    column: 3,
    message:
      'image "shared/tool" would be published to us-docker.pkg.dev/prod/images/shared/tool, which belongs to project "two"',
    related: "4:9",
  },
  {
    input: "thin/syntax-error-in-one-project",
    file: "images/bad/images.yaml",
    status: 1,
    rule: "yaml-syntax",
    line: 4,
    column: 1,
    message: "YAML: flow sequence in block collection must be sufficiently indented",
  },
  // Which registries a manifest may name, and who owns a destination repository
  {
    input: "plain/registry-loopback.yaml",
    status: 1,
    rule: "registry-not-allowed",
    line: 4,
    column: 9,
    message: 'registry "127.0.0.1:5000/prod" is not used: 127.0.0.1:5000 is a loopback address (127.0.0.0/8)',
  },
  {
    input: "plain/registry-link-local.yaml",
    status: 1,
    rule: "registry-not-allowed",
    line: 4,
    column: 9,
    message: "169.254.169.254 is a link-local address (169.254.0.0/16, where cloud metadata services answer)",
  },
  {
    input: "plain/registry-ipv4-mapped.yaml",
    status: 1,
    rule: "registry-not-allowed",
    line: 4,
    column: 9,
    message: "[::ffff:127.0.0.1]:5000 is an IPv4-mapped form of 127.0.0.1, a loopback address",
  },
  {
    input: "plain/registry-localhost.yaml",
    status: 1,
    rule: "registry-not-allowed",
    line: 4,
    column: 9,
    message:
      "localhost:5000 is localhost; only the operator can allow such a registry (--allow-registry localhost:5000)",
  },
  {
    input: "plain/registry-private-name.yaml",
    status: 1,
    rule: "registry-not-allowed",
    line: 4,
    column: 9,
    message: "metadata.google.internal is a name under .internal, which is not public DNS",
  },
  {
    input: "plain/registry-oci-outside-tree.yaml",
    status: 1,
    rule: "registry-not-allowed",
    line: 4,
    column: 9,
    message: "is outside the manifest tree",
  },
  {
    input: "plain/registry-ipv4-shorthand.yaml",
    status: 1,
    rule: "invalid-registry-name",
    line: 4,
    column: 9,
    message: '"127.1" is the IPv4 address 127.0.0.1 in a shorthand form',
  },
  {
    input: "plain/registry-uppercase-host.yaml",
    status: 1,
    rule: "invalid-registry-name",
    line: 4,
    column: 9,
    message: 'write the host "GCR.io" in lower case ("gcr.io")',
  },
  {
    input: "plain/registry-port-leading-zero.yaml",
    status: 1,
    rule: "invalid-registry-name",
    line: 4,
    column: 9,
    message: 'port "00443" is not in canonical form',
  },
  {
    input: "thin/registry-not-in-policy",
    file: "manifests/demo/promoter-manifest.yaml",
    status: 1,
    rule: "registry-not-allowed",
    line: 4,
    column: 9,
    message: "it is not in the registry policy manifests/registry-policy.yaml",
  },
  {
    input: "thin/registry-policy-internal",
    file: "manifests/registry-policy.yaml",
    status: 1,
    rule: "invalid-registry-policy",
    line: 3,
    column: 3,
    message:
      '"127.0.0.1:5000": it is a loopback address (127.0.0.0/8): only the operator can allow such a registry',
  },
  {
    input: "thin/disputed-repository",
    file: "images/two/images.yaml",
    status: 1,
    rule: "disputed-repository",
    line: 4,
    column: 3,
    message:
      'image "app" would be published to us-docker.pkg.dev/prod/images/app, which projects "one" and "two" each list',
    related: "1:3",
  },
  // Input that cannot be read: one line on stderr, exit 2
  {
    input: "thin/no-manifests",
    status: 2,
    message:
      "error[no-manifests]: no promoter-manifest.yaml found in thin/no-manifests/manifests (expected manifests/<project>/promoter-manifest.yaml)",
  },
  {
    input: "thin/no-manifests-folder",
    status: 2,
    message: "error[manifest-io]: manifests directory thin/no-manifests-folder/manifests does not exist",
  },
  {
    input: "plain/a-directory.yaml",
    status: 2,
    message:
      "error[manifest-io]: cannot read manifest file plain/a-directory.yaml: not a regular file (a directory)",
  },
  {
    input: "plain/does-not-exist.yaml",
    status: 2,
    message:
      "error[manifest-io]: cannot read manifest file plain/does-not-exist.yaml: no such file or directory",
  },
];

/** A line of a JavaScript stack trace. */
const STACK_LINE = /^\s+at .*(?:\.[cm]?[jt]s|node:[\w/]+):\d+:\d+\)?$/m;

async function promoter(args: string[]) {
  const capture = captureIO({ cwd: corpus, env: { HOME: corpus } });
  const status = await runCli(args, capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

function inputArgs(input: string): string[] {
  const isTree = input.startsWith("thin/");
  return isTree ? ["--thin-manifest-dir", input] : ["--manifest", input];
}

function expectNoCrash(run: { out: string; err: string }): void {
  const all = `${run.out}\n${run.err}`;
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
}

interface JsonFinding {
  rule: string;
  message: string;
  file: string;
  line: number;
  column: number;
  related: { line: number; column: number }[];
}

describe("the malformed corpus", () => {
  it("has at least 40 cases, each with its own message, and covers every file in the corpus", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    const keys = CASES.map((c) => `${c.rule ?? ""}|${c.message}|${c.related ?? ""}`);
    expect(new Set(keys).size).toBe(keys.length);
    const listed = new Set(CASES.map((c) => c.input));
    const present = [
      ...readdirSync(path.join(corpus, "plain")).map((name) => `plain/${name}`),
      ...readdirSync(path.join(corpus, "thin")).map((name) => `thin/${name}`),
    ];
    for (const input of present) expect(listed.has(input), `${input} has no case`).toBe(true);
  });

  for (const c of CASES) {
    it(`validate ${c.input}: ${c.status === 2 ? "input error" : c.rule}`, async () => {
      if (c.status !== 2 && c.input !== "plain/does-not-exist.yaml") {
        expect(existsSync(path.join(corpus, c.input))).toBe(true);
      }
      const text = await promoter(["validate", ...inputArgs(c.input)]);
      expectNoCrash(text);
      expect(text.status, `${text.out}${text.err}`).toBe(c.status);
      if (c.status === 2) {
        // One line on stderr naming the command, nothing on stdout.
        expect(text.err).toBe(`promoter validate: ${c.message}\n`);
        expect(text.out).toBe("");
        return;
      }
      const file = c.file === undefined ? c.input : path.join(c.input, c.file);
      const severity = c.status === 0 ? "warning" : "error";
      expect(text.out).toContain(`${file}:${c.line}:${c.column}: ${severity}[${c.rule}]: `);
      const line = text.out
        .split("\n")
        .find((l) => l.startsWith(`${file}:${c.line}:${c.column}: ${severity}[${c.rule}]`));
      expect(line).toContain(c.message);

      const json = await promoter(["validate", ...inputArgs(c.input), "--output", "json"]);
      expect(json.status).toBe(c.status);
      const document = JSON.parse(json.out) as { ok: boolean; findings: JsonFinding[] };
      expect(document.ok).toBe(c.status === 0);
      const finding = document.findings.find(
        (f) => f.rule === c.rule && f.line === c.line && f.column === c.column && f.file === file,
      );
      expect(finding, JSON.stringify(document.findings)).toBeDefined();
      expect(finding?.message).toContain(c.message);
      if (c.related !== undefined) {
        const [line2, column2] = c.related.split(":").map(Number);
        expect(finding?.related[0]).toMatchObject({ line: line2, column: column2 });
      }
    });
  }

  it("promote reports the same findings and exit status where nothing would reach a registry", async () => {
    let checked = 0;
    for (const c of CASES) {
      const validation = await promoter(["validate", ...inputArgs(c.input), "--output", "json"]);
      if (c.status !== 2) {
        const summary = (JSON.parse(validation.out) as { summary: { edges: number } }).summary;
        // Edges left would send the dry run to gcr.io: only input that promotes nothing.
        if (summary.edges > 0) continue;
      }
      const run = await promoter(["promote", ...inputArgs(c.input)]);
      expectNoCrash(run);
      checked += 1;
      if (c.status === 2) {
        expect(run.status).toBe(2);
        expect(run.err).toBe(`promoter promote: ${c.message}\n`);
        continue;
      }
      // Findings go to stderr; the plan (empty) to stdout. Warnings alone do not fail.
      const file = c.file === undefined ? c.input : path.join(c.input, c.file);
      const severity = c.status === 0 ? "warning" : "error";
      expect(run.err).toContain(`${file}:${c.line}:${c.column}: ${severity}[${c.rule}]: `);
      expect(run.status, run.err).toBe(c.status);
    }
    expect(checked).toBeGreaterThanOrEqual(35);
  });
});
