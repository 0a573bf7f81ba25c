import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import {
  allBlobs,
  makeImage,
  REF_NAME_ANNOTATION,
  writeOciLayoutDirectly,
  type TestImage,
} from "../support/test-images.js";

/**
 * One concept, one home: where two places encoded one concept (the key of a registry location,
 * cosign's attachment tags) and drifted apart, the drift is an attack surface. Each test here
 * performs what the drift let through, against the real CLI.
 */

let work: string;

function image(seed: string): TestImage {
  return makeImage({ layers: 1, layerSize: 2048, mediaTypes: "oci", seed: `one-home-${seed}` });
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-one-home-"));
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("one key for a registry location", () => {
  /**
   * The auditor keyed OCI layout registries by their name as written (`oci:prod`) while every
   * other part keys them by the directory the name resolves to. Two projects that each write
   * `oci:prod` name two directories; the auditor saw one, and `audit reconcile` listed only the
   * one registered last, here project b's staging: a repository planted in project a's
   * production tree went unreported (and b's staging was reported as production).
   */
  it("audit reconcile lists every production layout tree, also two that are written alike", async () => {
    const tree = path.join(work, "same-name");
    const manifests = path.join(tree, "manifests");
    const promoted = image("promoted");
    const staged = image("staged");
    const planted = image("planted");
    const layouts: readonly (readonly [directory: string, content: TestImage])[] = [
      // Project a: oci:staging -> oci:prod (manifests/a/prod), already promoted.
      ["a/staging/app", promoted],
      ["a/prod/app", promoted],
      // The attacker's repository in a's production tree, which no manifest names.
      ["a/prod/rogue", planted],
      // Project b: its staging is also written oci:prod (manifests/b/prod) -> oci:mirror.
      ["b/prod/tool", staged],
      ["b/mirror/tool", staged],
    ];
    for (const [directory, content] of layouts) {
      await writeOciLayoutDirectly(path.join(manifests, ...directory.split("/")), [{ content, tag: "v1" }]);
    }
    const project = async (name: string, source: string, destination: string, content: TestImage) => {
      const registries = ["registries:", `- name: ${source}`, "  src: true", `- name: ${destination}`, ""];
      await writeFile(path.join(manifests, name, "promoter-manifest.yaml"), registries.join("\n"));
      const images = path.join(tree, "images", name);
      await mkdir(images, { recursive: true });
      const image = [
        `- name: ${name === "a" ? "app" : "tool"}`,
        "  dmap:",
        `    "${content.digest}": ["v1"]`,
        "",
      ];
      await writeFile(path.join(images, "images.yaml"), image.join("\n"));
    };
    await project("a", "oci:staging", "oci:prod", promoted);
    await project("b", "oci:prod", "oci:mirror", staged);
    const run = await runPromoter(["audit", "reconcile", "--thin-manifest-dir", "."], { cwd: tree });
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(path.join(manifests, "a", "prod", "rogue"));
    // b's staging is not production.
    expect(run.stdout).not.toContain(path.join(manifests, "b", "prod", "tool"));
  });
});

/**
 * `content` in an OCI layout at `directory`, its manifest named by its sha512 digest (the layout
 * and the distribution spec allow sha512; blobs stay sha256), tagged `tag`. Returns the digest.
 */
async function writeSha512Layout(directory: string, content: TestImage, tag: string): Promise<string> {
  const hex = createHash("sha512").update(content.bytes).digest("hex");
  for (const folder of ["sha256", "sha512"])
    await mkdir(path.join(directory, "blobs", folder), { recursive: true });
  for (const item of allBlobs(content)) {
    await writeFile(
      path.join(directory, "blobs", "sha256", item.descriptor.digest.slice("sha256:".length)),
      item.bytes,
    );
  }
  await writeFile(path.join(directory, "blobs", "sha512", hex), content.bytes);
  await writeFile(path.join(directory, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const entry = {
    mediaType: content.mediaType,
    digest: `sha512:${hex}`,
    size: content.bytes.length,
    annotations: { [REF_NAME_ANNOTATION]: tag },
  };
  await writeFile(
    path.join(directory, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [entry],
    }),
  );
  return `sha512:${hex}`;
}

/** The tags of the OCI layout at `directory`. */
async function layoutTags(directory: string): Promise<string[]> {
  const index = JSON.parse(await readFile(path.join(directory, "index.json"), "utf8")) as {
    manifests: { annotations?: Record<string, string> }[];
  };
  return index.manifests.flatMap((entry) => entry.annotations?.[REF_NAME_ANNOTATION] ?? []).sort();
}

describe("cosign's attachment tags, written and read by one module", () => {
  /**
   * A tag is at most 128 characters: cosign's `sha512-<128 hex>.sig` (139) is no tag. The
   * promoter's signing threw on it while its referrers fallback tag truncates the hex to 64
   * characters (the OCI referrers tag schema); the auditor and snapshot knew sha256 tags only.
   * One rule now: the subject in a tag is `<alg>-<hex, at most 64>`, written and read the same
   * way for signatures, attestations, SBOMs and referrers fallback indexes.
   */
  it("signs a sha512 image, and the auditor and snapshot read its signature tag as an attachment", async () => {
    const tree = path.join(work, "sha512");
    const content = image("sha512");
    const digest = await writeSha512Layout(path.join(tree, "staging", "app"), content, "v1");
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(path.join(tree, "sign.key"), key.privateKey.export({ type: "pkcs8", format: "pem" }), {
      mode: 0o600,
    });
    await writeFile(
      path.join(tree, "images.yaml"),
      [
        "registries:",
        "- name: oci:staging",
        "  src: true",
        "- name: oci:prod",
        "images:",
        "- name: app",
        "  dmap:",
        `    "${digest}": ["v1"]`,
        "",
      ].join("\n"),
    );
    const promote = await runPromoter(
      ["promote", "--manifest", "images.yaml", "--confirm", "--quiet", "--sign-key", "sign.key"],
      { cwd: tree },
    );
    expect(promote.stderr).not.toMatch(/\n\s+at /);
    // Outside a git checkout the attestations can only cite the manifest line, and one warning
    // says so; nothing else is said.
    expect(promote.stderr.replace(/^promoter: warn: review facts: .*\n/gm, "")).toBe("");
    expect(promote.status).toBe(0);
    const signatureTag = `sha512-${digest.slice("sha512:".length, "sha512:".length + 64)}.sig`;
    expect(await layoutTags(path.join(tree, "prod", "app"))).toEqual([signatureTag, "v1"].sort());

    const reconcile = await runPromoter(["audit", "reconcile", "--manifest", "images.yaml"], { cwd: tree });
    expect(reconcile.stderr).not.toMatch(/\n\s+at /);
    expect(reconcile.stdout).not.toContain(signatureTag);
    expect(reconcile.status).toBe(0);

    const snapshot = await runPromoter(["snapshot", "oci:prod"], { cwd: tree });
    expect(snapshot.status).toBe(0);
    expect(snapshot.stdout).toContain(digest);
    expect(snapshot.stdout).not.toContain(signatureTag);
    expect((await readdir(path.join(tree, "prod", "app", "blobs", "sha512"))).length).toBe(1);
  });
});

/**
 * `check --base main` of the change that added the last `added` lines of `images.yaml`: commits
 * the file without them on main, then as it is on a branch.
 */
async function checkAgainstBase(tree: string, added: number) {
  const text = await readFile(path.join(tree, "images.yaml"), "utf8");
  const lines = text.trimEnd().split("\n");
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
      cwd: tree,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tree, GIT_CONFIG_NOSYSTEM: "1" },
    });
  await writeFile(path.join(tree, ".gitignore"), "/staging/\n/prod/\n");
  await writeFile(path.join(tree, "images.yaml"), `${lines.slice(0, -added).join("\n")}\n`);
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "base");
  git("switch", "-q", "-c", "pr");
  await writeFile(path.join(tree, "images.yaml"), text);
  git("commit", "-q", "-am", "attach");
  return runPromoter(["check", "--base", "main", "--manifest", "images.yaml", "--quiet"], { cwd: tree });
}

describe("attachment tags are the promoter's and the signers', never a manifest's", () => {
  /**
   * A pull request lists an image of its own under the tag where cosign keeps the attestations
   * (`sha256-<hex>.att`) of another promoted digest; the signature, SBOM and referrers fallback
   * tags work alike. Promoted as an image tag, it plants a forged attestation next to a real
   * image in production, and for a `.sig` tag blocks the promoter's own signature. Every tag of
   * the attachment vocabulary (`parseAttachmentTag`) is an `invalid-tag` finding: that entry is
   * not promoted, the rest is.
   */
  it("validate, check and promote refuse sha256-<hex>.sig/.att/.sbom and sha256-<hex> as manifest tags", async () => {
    const tree = path.join(work, "attachment-tags");
    const app = image("attached-app");
    const forged = image("forged-attestation");
    await writeOciLayoutDirectly(path.join(tree, "staging", "app"), [
      { content: app, tag: "v1" },
      { content: forged, tag: "anything" },
    ]);
    const subject = app.digest.slice("sha256:".length);
    const attachmentTags = [".sig", ".att", ".sbom", ""].map((suffix) => `sha256-${subject}${suffix}`);
    await writeFile(
      path.join(tree, "images.yaml"),
      [
        "registries:",
        "- name: oci:staging",
        "  src: true",
        "- name: oci:prod",
        "images:",
        "- name: app",
        "  dmap:",
        `    "${app.digest}": ["v1"]`,
        `    "${forged.digest}": [${attachmentTags.map((tag) => `"${tag}"`).join(", ")}]`,
        "",
      ].join("\n"),
    );

    const check = await checkAgainstBase(tree, 1);
    expect(check.stderr).not.toMatch(/\n\s+at /);
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/FAIL {2}Manifest validation/);
    expect(check.stdout).toContain("error[invalid-tag]");

    const validate = await runPromoter(["validate", "--manifest", "images.yaml"], { cwd: tree });
    expect(validate.stderr + validate.stdout).not.toMatch(/\n\s+at /);
    expect(validate.status).toBe(1);
    for (const kind of ["signature", "attestation", "sbom", "referrers-index"]) {
      expect(validate.stdout + validate.stderr).toMatch(
        new RegExp(
          `images\\.yaml:9:\\d+: error\\[invalid-tag\\]: invalid tag "sha256-${subject}[.a-z]*" in image "app": it is the ${kind} tag of ${app.digest}`,
        ),
      );
    }

    const promote = await runPromoter(["promote", "--manifest", "images.yaml", "--confirm", "--quiet"], {
      cwd: tree,
    });
    expect(promote.stderr).not.toMatch(/\n\s+at /);
    expect(promote.stderr).toContain("error[invalid-tag]");
    expect(promote.status).toBe(1);
    expect(await layoutTags(path.join(tree, "prod", "app"))).toEqual(["v1"]);
  });
});
