import { describe, expect, it } from "vitest";
import { sortFindings } from "./finding.js";
import type { Finding, PromotionManifest } from "./model.js";
import { parsePlainManifest, parseThinManifest } from "./parse.js";
import { createManifestSet } from "./rules.js";

const FILE = "/work/tree/promoter-manifest.yaml";
const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

const REGISTRIES = `registries:
- name: gcr.io/k8s-staging-foo
  src: true
- name: us.gcr.io/k8s-artifacts-prod/foo
`;

/** Parses a plain manifest and runs all rules; findings as `line:col severity[rule]`. */
function check(text: string): {
  manifest: PromotionManifest | undefined;
  findings: Finding[];
  short: string[];
} {
  const parsed = parsePlainManifest({ file: FILE, text });
  const set = createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
  return {
    manifest: set.manifests[0],
    findings: [...set.findings],
    short: set.findings.map((f) => `${f.position.line}:${f.position.column} ${f.severity}[${f.rule}]`),
  };
}

function withImages(images: string): string {
  return `${REGISTRIES}images:\n${images}`;
}

describe("parsePlainManifest: valid input and YAML quirks", () => {
  it("reads registries and images with positions", () => {
    const { manifest, short } = check(
      withImages(`- name: bar
  dmap:
    "${D1}": ["v1.0", "v1.1"]
`),
    );
    expect(short).toEqual([]);
    expect(manifest?.project).toBe("promoter-manifest");
    expect(manifest?.registries.map((r) => [r.name, r.src, r.position.line, r.position.column])).toEqual([
      ["gcr.io/k8s-staging-foo", true, 2, 9],
      ["us.gcr.io/k8s-artifacts-prod/foo", false, 4, 9],
    ]);
    const image = manifest?.images[0];
    expect(image?.name).toBe("bar");
    expect(image?.digests[0]?.digest).toBe(D1);
    expect(image?.digests[0]?.position).toEqual({ file: FILE, line: 8, column: 5 });
    expect(image?.digests[0]?.tags.map((t) => [t.tag, t.position.line, t.position.column])).toEqual([
      ["v1.0", 8, 81],
      ["v1.1", 8, 89],
    ]);
  });

  it.each([
    ["a float-looking tag", "3.10", "3.10"],
    ["an integer-looking tag", "0010", "0010"],
    ["a boolean-looking tag", "true", "true"],
    ["a null-looking tag", "null_", "null_"],
    ["an exponent-looking tag", "1e3", "1e3"],
    ["a sexagesimal-looking tag (YAML 1.1)", "1_0", "1_0"],
  ])("keeps %s exactly as written", (_label, written, expected) => {
    const { manifest, short } = check(withImages(`- name: bar\n  dmap:\n    ${D1}: [${written}]\n`));
    expect(short).toEqual([]);
    expect(manifest?.images[0]?.digests[0]?.tags[0]?.tag).toBe(expected);
  });

  it.each([
    ["unquoted", D1],
    ["double-quoted", `"${D1}"`],
    ["single-quoted", `'${D1}'`],
  ])("accepts %s digests", (_label, written) => {
    const { manifest, short } = check(withImages(`- name: bar\n  dmap:\n    ${written}: ["v1"]\n`));
    expect(short).toEqual([]);
    expect(manifest?.images[0]?.digests[0]?.digest).toBe(D1);
  });

  it("accepts block tag lists, flow lists with spaces, and tagless digests", () => {
    const { manifest, short } = check(
      withImages(`- name: bar
  dmap:
    ${D1}:
    - v1
    - "v2"
    "${D2}": [ "v3" ]
- name: baz
  dmap:
    "${D1}": []
    "${D2}":
`),
    );
    expect(short).toEqual([]);
    expect(manifest?.images.map((i) => i.digests.map((d) => d.tags.map((t) => t.tag)))).toEqual([
      [["v1", "v2"], ["v3"]],
      [[], []],
    ]);
  });

  it("treats the same image name listed twice as a union, without findings", () => {
    const { manifest, short } = check(
      withImages(`- name: bar
  dmap:
    "${D1}": ["v1"]
- name: bar
  dmap:
    "${D2}": ["v2"]
    "${D1}": ["v1", "v1b"]
`),
    );
    expect(short).toEqual([]);
    expect(manifest?.images.map((i) => i.name)).toEqual(["bar", "bar"]);
  });

  it("reads comment-only and empty files as empty manifests", () => {
    for (const text of ["", "# only a comment\n# another\n", "---\n", "~\n"]) {
      const parsed = parsePlainManifest({ file: FILE, text });
      expect(parsed.findings).toEqual([]);
      expect(parsed.manifest?.registries).toEqual([]);
      expect(parsed.manifest?.images).toEqual([]);
    }
  });

  it("follows aliases to anchored values", () => {
    const { manifest, short } = check(
      withImages(`- name: bar
  dmap:
    "${D1}": &tags ["v1", "v2"]
- name: baz
  dmap:
    "${D2}": *tags
`),
    );
    expect(short).toEqual([]);
    expect(manifest?.images[1]?.digests[0]?.tags.map((t) => t.tag)).toEqual(["v1", "v2"]);
  });

  it("refuses values that an explicit YAML tag turns into something other than the text written", () => {
    // "YXBw" is base64 for "app", "djE=" for "v1": a reviewer must promote what they read.
    const { manifest, findings } = check(
      withImages(`- name: !!binary YXBw
  dmap:
    "${D1}": ["v1"]
- name: bar
  dmap:
    "${D2}": [!!binary djE=, !!str v2]
    !!binary c2hhMjU2OmFh: ["v3"]
`),
    );
    expect(findings.map((f) => `${f.position.line} ${f.rule}: ${f.message}`)).toEqual([
      '6 invalid-type: an image name must be plain text, but the YAML tag !!binary turns "YXBw" into something else; write the value itself',
      '11 invalid-type: a tag must be plain text, but the YAML tag !!binary turns "djE=" into something else; write the value itself',
      '12 invalid-type: a key of the dmap of image "bar" must be plain text, but the YAML tag !!binary turns "c2hhMjU2OmFh" into something else; write the value itself',
    ]);
    // The image with a bad name is left out; bar keeps nothing of the digest with a bad tag.
    expect(manifest?.images.map((image) => image.name)).toEqual(["bar"]);
    expect(manifest?.images[0]?.digests).toEqual([]);
  });

  it.each([
    ...["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"].map((spelling) => [spelling, true] as const),
    ...["n", "N", "no", "No", "NO", "off", "Off", "OFF"].map((spelling) => [spelling, false] as const),
  ])("reads src: %s as kpromo's YAML 1.1 reader does (%s), with a warning", (spelling, meaning) => {
    const { manifest, findings } = check(
      `registries:\n- name: gcr.io/a\n  src: ${spelling}\n- name: gcr.io/b\n  src: ${String(!meaning)}\n`,
    );
    expect(manifest?.registries.map((r) => r.src)).toEqual([meaning, !meaning]);
    expect(findings).toMatchObject([
      {
        rule: "kpromo-spelling",
        severity: "warning",
        position: { line: 3, column: 8 },
        hint: `Write src: ${String(meaning)}.`,
      },
    ]);
  });

  it("reads the canonical src spellings without a finding", () => {
    for (const [spelling, meaning] of [
      ["true", true],
      ["True", true],
      ["TRUE", true],
    ] as const) {
      const { manifest, short } = check(
        `registries:\n- name: gcr.io/staging\n  src: ${spelling}\n- name: us.gcr.io/prod\n  src: false\n`,
      );
      expect(short).toEqual([]);
      expect(manifest?.registries.map((r) => r.src)).toEqual([meaning, false]);
    }
  });

  it("uses a registry name with a trailing / as the name without it, everywhere", () => {
    const { manifest, short } = check(`registries:
- name: gcr.io/staging/
  src: true
- name: us.gcr.io/prod/
images:
- name: bar
  dmap:
    "${D1}": ["v1"]
`);
    expect(short).toEqual(["2:9 warning[kpromo-spelling]", "4:9 warning[kpromo-spelling]"]);
    expect(manifest?.registries.map((r) => [r.name, r.location])).toEqual([
      ["gcr.io/staging", { kind: "remote", host: "gcr.io", prefix: "staging", name: "gcr.io/staging" }],
      ["us.gcr.io/prod", { kind: "remote", host: "us.gcr.io", prefix: "prod", name: "us.gcr.io/prod" }],
    ]);
  });

  it("resolves oci: registries against the manifest's folder and keeps the name as written", () => {
    const { manifest, short } = check(`registries:
- name: oci:./staging
  src: true
- name: oci:/srv/prod
images:
- name: bar
  dmap:
    "${D1}": ["v1"]
`);
    expect(short).toEqual([]);
    expect(manifest?.registries.map((r) => [r.name, r.location])).toEqual([
      ["oci:./staging", { kind: "oci-layout", directory: "/work/tree/staging", name: "oci:./staging" }],
      ["oci:/srv/prod", { kind: "oci-layout", directory: "/srv/prod", name: "oci:/srv/prod" }],
    ]);
  });
});

describe("parsePlainManifest: rules, one table row per rule", () => {
  const cases: { name: string; text: string; expected: string[]; message?: RegExp }[] = [
    {
      name: "invalid digest: 63 hex digits",
      text: withImages(`- name: bar\n  dmap:\n    "sha256:${"a".repeat(63)}": ["v1"]\n`),
      expected: ["8:5 error[invalid-digest]"],
      message: /needs 64 hex digits, found 63/,
    },
    {
      name: "invalid digest: upper-case hex",
      text: withImages(`- name: bar\n  dmap:\n    "sha256:${"A".repeat(64)}": ["v1"]\n`),
      expected: ["8:5 error[invalid-digest]"],
      message: /lower-case/,
    },
    {
      name: "invalid digest: unsupported algorithm",
      text: withImages(`- name: bar\n  dmap:\n    "md5:${"a".repeat(32)}": ["v1"]\n`),
      expected: ["8:5 error[invalid-digest]"],
      message: /unsupported algorithm "md5"/,
    },
    {
      name: "invalid digest: no algorithm",
      text: withImages(`- name: bar\n  dmap:\n    "${"a".repeat(64)}": ["v1"]\n`),
      expected: ["8:5 error[invalid-digest]"],
    },
    {
      name: "invalid tag: a dot",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["v1", "."]\n`),
      expected: ["8:87 error[invalid-tag]"],
    },
    {
      name: "invalid tag: a leading dash",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["-v1"]\n`),
      expected: ["8:81 error[invalid-tag]"],
    },
    {
      name: "invalid tag: a space",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["a b"]\n`),
      expected: ["8:81 error[invalid-tag]"],
    },
    {
      name: "invalid tag: non-ASCII",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["vé"]\n`),
      expected: ["8:81 error[invalid-tag]"],
    },
    {
      name: "invalid tag: empty",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": [""]\n`),
      expected: ["8:81 error[invalid-tag]"],
    },
    {
      name: "invalid tag: 129 characters",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["${"a".repeat(129)}"]\n`),
      expected: ["8:81 error[invalid-tag]"],
      message: /at most 128/,
    },
    {
      name: "kpromo's valid tags: a, _, _____----hello........, 128 characters",
      text: withImages(
        `- name: bar\n  dmap:\n    "${D1}": ["a", "_", "_____----hello........", "${"a".repeat(128)}"]\n`,
      ),
      expected: [],
    },
    {
      name: "invalid image name: upper case",
      text: withImages(`- name: Bar\n  dmap:\n    "${D1}": ["v1"]\n`),
      expected: ["6:9 error[invalid-image-name]"],
      message: /upper-case/,
    },
    {
      name: "invalid image name: double slash",
      text: withImages(`- name: foo//bar\n  dmap:\n    "${D1}": ["v1"]\n`),
      expected: ["6:9 error[invalid-image-name]"],
    },
    {
      name: "invalid image name: too long under the destination prefix",
      text: withImages(`- name: ${"a".repeat(230)}\n  dmap:\n    "${D1}": ["v1"]\n`),
      expected: ["6:3 error[invalid-image-name]"],
      message: /at most 255/,
    },
    {
      name: "invalid registry name: upper-case path",
      text: `registries:\n- name: gcr.io/Staging\n  src: true\n- name: us.gcr.io/prod\n`,
      expected: ["2:9 error[invalid-registry-name]"],
    },
    {
      name: "invalid registry name: no host (Docker Hub to kpromo, maybe a local host to a reader)",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n- name: prod/images\n`,
      expected: ["4:9 error[invalid-registry-name]"],
      message: /"prod" is not a registry host .*for Docker Hub write "docker\.io\/prod\/images"/,
    },
    {
      name: "registry name with a trailing /: read without it, with a warning",
      text: `registries:\n- name: gcr.io/staging/\n  src: true\n- name: us.gcr.io/prod//\n`,
      expected: ["2:9 warning[kpromo-spelling]", "4:9 warning[kpromo-spelling]"],
      message: /registry name "us\.gcr\.io\/prod\/\/" ends with \/: it is read as "us\.gcr\.io\/prod"/,
    },
    {
      name: "a trailing / does not hide another problem of the name",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n- name: gcr.io/Prod/\n`,
      expected: ["4:9 error[invalid-registry-name]"],
      message: /upper-case/,
    },
    {
      name: "a registry name that is only /",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n- name: /\n`,
      expected: ["4:9 error[invalid-registry-name]"],
    },
    {
      name: "no source registry",
      text: `registries:\n- name: gcr.io/staging\n- name: us.gcr.io/prod\n`,
      expected: ["2:9 error[no-source-registry]"],
    },
    {
      name: "no registries at all",
      text: `images: []\n`,
      expected: ["1:1 error[no-source-registry]"],
    },
    {
      name: "more than one source",
      text: `registries:\n- name: gcr.io/a\n  src: true\n- name: gcr.io/b\n  src: true\n- name: us.gcr.io/prod\n`,
      expected: ["4:9 error[multiple-source-registries]"],
    },
    {
      name: "a destination equal to the source",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n- name: gcr.io/staging\n`,
      expected: ["4:9 error[destination-is-source]"],
    },
    {
      name: "a destination equal to the source with another service account",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n  service-account: a@x.iam.gserviceaccount.com\n- name: gcr.io/staging/\n  service-account: b@x.iam.gserviceaccount.com\n`,
      expected: ["5:9 error[destination-is-source]", "5:9 warning[kpromo-spelling]"],
      message:
        /is the source registry of project "promoter-manifest"; another service-account does not make it another registry/,
    },
    {
      name: "a destination listed twice",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\n- name: us.gcr.io/prod\n`,
      expected: ["5:9 warning[duplicate-registry]"],
    },
    {
      name: "tag conflict inside one image entry",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["v1"]\n    "${D2}": ["v1"]\n`),
      expected: ["8:81 error[tag-conflict]"],
      message: /us\.gcr\.io\/k8s-artifacts-prod\/foo\/bar:v1 is claimed by 2 different digests/,
    },
    {
      name: "tag conflict across two entries of the same image",
      text: withImages(
        `- name: bar\n  dmap:\n    "${D1}": ["v1"]\n- name: bar\n  dmap:\n    "${D2}": ["v1"]\n`,
      ),
      expected: ["8:81 error[tag-conflict]"],
    },
    {
      name: "the same digest claiming the same tag twice is fine",
      text: withImages(
        `- name: bar\n  dmap:\n    "${D1}": ["v1", "v1"]\n- name: bar\n  dmap:\n    "${D1}": ["v1"]\n`,
      ),
      expected: [],
    },
    {
      name: "unknown top-level key",
      text: `${REGISTRIES}imagez: []\n`,
      expected: ["5:1 error[unknown-key]"],
    },
    {
      name: "imagesPath is not part of a plain manifest",
      text: `${REGISTRIES}imagesPath: x\n`,
      expected: ["5:1 error[unknown-key]"],
    },
    {
      name: "unknown registry key",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n  source: true\n- name: us.gcr.io/prod\n`,
      expected: ["4:3 error[unknown-key]"],
    },
    {
      name: "unknown image key",
      text: withImages(`- name: bar\n  tags: [v1]\n  dmap:\n    "${D1}": ["v1"]\n`),
      expected: ["7:3 error[unknown-key]"],
    },
    {
      name: "duplicate digest in a dmap: both are left out",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["v1"]\n    ${D1}: ["v2"]\n`),
      expected: ["9:5 error[duplicate-key]"],
    },
    {
      name: "duplicate key in an image entry",
      text: withImages(`- name: bar\n  name: baz\n  dmap:\n    "${D1}": ["v1"]\n`),
      expected: ["6:3 error[missing-field]", "7:3 error[duplicate-key]"],
    },
    {
      name: "duplicate top-level key",
      text: `${REGISTRIES}registries: []\n`,
      expected: ["1:1 error[no-source-registry]", "5:1 error[duplicate-key]"],
    },
    {
      name: "empty dmap {}",
      text: withImages(`- name: bar\n  dmap: {}\n`),
      expected: ["7:3 warning[empty-dmap]"],
    },
    {
      name: "null dmap (empty value)",
      text: withImages(`- name: bar\n  dmap:\n- name: baz\n  dmap: ~\n`),
      expected: ["7:3 warning[empty-dmap]", "9:3 warning[empty-dmap]"],
    },
    {
      name: "missing dmap",
      text: withImages(`- name: bar\n`),
      expected: ["6:3 warning[empty-dmap]"],
    },
    {
      name: "missing image name",
      text: withImages(`- dmap:\n    "${D1}": ["v1"]\n`),
      expected: ["6:3 error[missing-field]"],
    },
    {
      name: "missing registry name",
      text: `registries:\n- src: true\n`,
      expected: ["2:3 error[missing-field]", "2:3 error[no-source-registry]".replace("2:3", "1:1")].sort(),
    },
    {
      name: "src written as a quoted string",
      text: `registries:\n- name: gcr.io/staging\n  src: "true"\n- name: us.gcr.io/prod\n`,
      expected: ["3:8 error[invalid-type]", "4:9 error[no-source-registry]"],
    },
    {
      name: "src written as YAML 1.1 yes: read as kpromo reads it, with a warning",
      text: `registries:\n- name: gcr.io/staging\n  src: yes\n- name: us.gcr.io/prod\n`,
      expected: ["3:8 warning[kpromo-spelling]"],
      message: /src: yes is read as true, as kpromo's YAML 1\.1 reader reads it/,
    },
    {
      name: "src with an empty value: kpromo reads false, but the author may have meant anything",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\n  src:\n`,
      expected: ["5:7 error[invalid-type]"],
      message: /src must be true or false \(unquoted\), found nothing/,
    },
    {
      name: "src: yes tagged as a string is a string, for kpromo too",
      text: `registries:\n- name: gcr.io/staging\n  src: !!str yes\n- name: us.gcr.io/prod\n`,
      expected: ["3:14 error[invalid-type]", "4:9 error[no-source-registry]"],
    },
    {
      name: "tags given as a string instead of a list",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": "v1"\n`),
      expected: ["8:80 error[invalid-type]"],
    },
    {
      name: "dmap given as a list",
      text: withImages(`- name: bar\n  dmap: ["${D1}"]\n`),
      expected: ["7:9 error[invalid-type]"],
    },
    {
      name: "images given as a mapping",
      text: `${REGISTRIES}images:\n  bar: {}\n`,
      expected: ["6:3 error[invalid-type]"],
    },
    {
      name: "a manifest that is a list",
      text: `- name: gcr.io/staging\n`,
      expected: ["1:1 error[invalid-type]", "1:1 error[no-source-registry]"],
    },
    {
      name: "YAML syntax error",
      text: `registries:\n- name: gcr.io/staging\n  src: true\n images: [\n`,
      expected: ["4:1 error[yaml-syntax]"],
    },
    {
      name: "unclosed flow list",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": ["v1"\n`),
      expected: ["9:1 error[yaml-syntax]"],
    },
    {
      name: "two YAML documents",
      text: `${REGISTRIES}---\nimages: []\n`,
      expected: ["5:1 error[yaml-syntax]"],
    },
    {
      name: "an empty YAML document after the manifest: nothing is lost, a warning",
      text: `---\n${REGISTRIES}---\n# nothing here\n`,
      expected: ["6:1 warning[kpromo-spelling]"],
      message: /an empty YAML document after --- is ignored/,
    },
    {
      name: "an empty document, then one with content",
      text: `${REGISTRIES}---\n---\nimages: []\n`,
      // The empty one is only a warning; the one with content makes the file unusable.
      expected: ["5:1 warning[kpromo-spelling]", "6:1 error[yaml-syntax]"],
    },
    {
      name: "alias without an anchor",
      text: withImages(`- name: bar\n  dmap:\n    "${D1}": *nothing\n`),
      expected: ["8:80 error[yaml-syntax]"],
    },
  ];

  it.each(cases)("$name", ({ text, expected, message }) => {
    const { short, findings } = check(text);
    const got = short.filter(
      (s) => !s.includes("yaml-syntax") || expected.some((e) => e.includes("yaml-syntax")),
    );
    if (expected.some((e) => e.includes("yaml-syntax"))) {
      // A syntax error can produce follow-up errors; the first one must be at the expected place.
      expect(got[0]).toBe(expected[0]);
    } else {
      expect(got).toEqual(expected);
    }
    for (const finding of findings) {
      expect(finding.message.length).toBeGreaterThan(0);
      expect(finding.hint?.length ?? 0).toBeGreaterThan(0);
    }
    if (message) expect(findings.map((f) => f.message).join("\n")).toMatch(message);
  });

  it("leaves invalid entries out and keeps the rest (isolation)", () => {
    const { manifest, short } = check(
      withImages(`- name: bar
  dmap:
    "sha256:${"a".repeat(63)}": ["v1"]
    "${D1}": ["v2"]
    "${D2}": ["v3", "-bad"]
- name: Bad
  dmap:
    "${D1}": ["v1"]
- name: good
  dmap:
    "${D1}": ["v1"]
`),
    );
    expect(short).toEqual([
      "8:5 error[invalid-digest]",
      "10:87 error[invalid-tag]",
      "11:9 error[invalid-image-name]",
    ]);
    expect(
      manifest?.images.map((image) => [
        image.name,
        image.digests.map((d) => [d.digest, d.tags.map((t) => t.tag)]),
      ]),
    ).toEqual([
      ["bar", [[D1, ["v2"]]]],
      ["good", [[D1, ["v1"]]]],
    ]);
  });

  it("reports every finding of a file at once", () => {
    const { short } = check(`registries:
- name: gcr.io/staging
- name: prod
images:
- name: Bad
  dmap:
    "sha256:abc": [".x"]
`);
    expect(short).toEqual([
      "2:9 error[no-source-registry]",
      "3:9 error[invalid-registry-name]",
      "5:9 error[invalid-image-name]",
      "7:5 error[invalid-digest]",
      "7:20 error[invalid-tag]",
    ]);
  });
});

describe("parseThinManifest", () => {
  const manifestFile = "/t/manifests/foo/promoter-manifest.yaml";
  const imagesFile = "/t/images/foo/images.yaml";

  it("pairs the registries file with the images list", () => {
    const parsed = parseThinManifest(
      "foo",
      { file: manifestFile, text: REGISTRIES },
      { file: imagesFile, text: `- name: bar\n  dmap:\n    "${D1}": ["v1"]\n` },
    );
    expect(parsed.findings).toEqual([]);
    expect(parsed.manifest?.project).toBe("foo");
    expect(parsed.manifest?.imagesFile).toBe(imagesFile);
    expect(parsed.manifest?.images[0]?.digests[0]?.position).toEqual({
      file: imagesFile,
      line: 3,
      column: 5,
    });
  });

  it("accepts the deprecated imagesPath with a warning and refuses images: in the registries file", () => {
    const parsed = parseThinManifest(
      "foo",
      { file: manifestFile, text: `${REGISTRIES}imagesPath: "../../images/foo/images.yaml"\nimages: []\n` },
      { file: imagesFile, text: "" },
    );
    expect(
      sortFindings(parsed.findings).map(
        (f) => `${f.position.line}:${f.position.column} ${f.severity}[${f.rule}]`,
      ),
    ).toEqual(["5:1 warning[deprecated-key]", "6:1 error[unknown-key]"]);
  });

  it("reports a missing images file at the manifest", () => {
    const parsed = parseThinManifest("foo", { file: manifestFile, text: REGISTRIES }, undefined);
    expect(parsed.findings).toMatchObject([
      {
        rule: "missing-images-file",
        severity: "error",
        position: { file: manifestFile, line: 1, column: 1 },
      },
    ]);
    expect(parsed.manifest?.images).toEqual([]);
  });

  it("reads a comment-only images file as no images", () => {
    const parsed = parseThinManifest(
      "foo",
      { file: manifestFile, text: REGISTRIES },
      { file: imagesFile, text: "# nothing promoted yet\n" },
    );
    expect(parsed.findings).toEqual([]);
    expect(parsed.manifest?.images).toEqual([]);
  });

  it("refuses an images file that is a mapping", () => {
    const parsed = parseThinManifest(
      "foo",
      { file: manifestFile, text: REGISTRIES },
      { file: imagesFile, text: "images:\n- name: bar\n" },
    );
    expect(parsed.findings).toMatchObject([
      { rule: "invalid-type", position: { file: imagesFile, line: 1 } },
    ]);
  });

  it("gives no manifest when the registries file does not parse, but still reads the images file", () => {
    const parsed = parseThinManifest(
      "foo",
      { file: manifestFile, text: "registries: [\n" },
      { file: imagesFile, text: `- name: Bad\n` },
    );
    expect(parsed.manifest).toBeUndefined();
    expect(parsed.findings.map((f) => f.rule)).toEqual(["yaml-syntax", "invalid-image-name", "empty-dmap"]);
  });
});
