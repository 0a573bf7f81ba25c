import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeImage, writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { loadManifests } from "../manifest-files/index.js";
import { promotionEdges } from "../plan/index.js";
import { formatRepositoryLocation, RepositoryKeyCache } from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import { createKeySigner, parseSigningKey, type ImageSigner } from "../sign/index.js";
import { promotePipelined, repositoryGroups } from "./pipeline.js";
import { planPromotion } from "./promote.js";

/**
 * The pipelined promotion decides what a plan made first decides (the dry run's plan), even
 * where one project's destination is another project's source and the run writes to it.
 */

const image = (seed: string) => makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed });
const a = image("pipe-a");
const b = image("pipe-b");
const c = image("pipe-c");

let dir: string;
let provider: RegistryStoreProvider;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pipeline-lib-"));
  provider = createStoreProvider();
});
afterEach(async () => {
  await provider.close();
  await rm(dir, { recursive: true, force: true });
});

async function project(name: string, registries: string, images: string): Promise<void> {
  await mkdir(path.join(dir, "tree", "manifests", name), { recursive: true });
  await mkdir(path.join(dir, "tree", "images", name), { recursive: true });
  await writeFile(path.join(dir, "tree", "manifests", name, "promoter-manifest.yaml"), registries);
  await writeFile(path.join(dir, "tree", "images", name, "images.yaml"), images);
}

describe("promotePipelined", () => {
  it("decides every edge as the dry run's plan does, and writes what that plan says", async () => {
    await writeOciLayoutDirectly(path.join(dir, "tree", "layouts", "staging", "app"), [
      { content: a, tag: "v1" },
      { content: b, tag: "v2" },
      { content: c, tag: "v3" },
    ]);
    // mirror-a already has v1; mirror-b has v3 on another image (a tag that must not move).
    await writeOciLayoutDirectly(path.join(dir, "tree", "layouts", "mirror-a", "app"), [
      { content: a, tag: "v1" },
    ]);
    await writeOciLayoutDirectly(path.join(dir, "tree", "layouts", "mirror-b", "app"), [
      { content: a, tag: "v3" },
    ]);
    await project(
      "first",
      "registries:\n- name: oci:../../layouts/staging\n  src: true\n- name: oci:../../layouts/mirror-a\n- name: oci:../../layouts/mirror-b\n",
      `- name: app\n  dmap:\n    "${a.digest}": ["v1"]\n    "${b.digest}": ["v2"]\n    "${c.digest}": ["v3"]\n`,
    );
    // mirror-a is the first project's destination and this one's source: b is not there yet.
    await project(
      "second",
      "registries:\n- name: oci:../../layouts/mirror-a\n  src: true\n- name: oci:../../layouts/mirror-c\n",
      `- name: app\n  dmap:\n    "${b.digest}": ["v2"]\n`,
    );
    const set = await loadManifests({ thinManifestDir: "tree" }, { cwd: dir });
    const signatures = { attachments: "copied" as const };

    const dry = await planPromotion(set, { provider, signatures });
    const run = await promotePipelined(set, { provider, confirm: true, signatures });
    expect(run.plan).toEqual(dry.plan);
    expect(run.attachments).toEqual(dry.attachments);
    const decided = (edges: typeof run.plan.edges) =>
      edges.map(({ edge, decision }) => `${edge.destination.repository} ${edge.tag ?? ""} ${decision.kind}`);
    expect(decided(run.plan.edges).sort()).toEqual(
      [
        "app v1 unchanged",
        "app v1 add-tag",
        "app v2 copy",
        "app v2 copy",
        "app v3 copy",
        "app v3 refused-tag-move",
        "app v2 missing-source",
      ].sort(),
    );
    expect(run.execution?.outcomes.map((outcome) => outcome.outcome).sort()).toEqual(
      ["unchanged", "tagged", "copied", "copied", "copied", "refused-tag-move", "missing-source"].sort(),
    );

    // The next run sees what this one wrote: again the same plan as its dry run.
    const dryAgain = await planPromotion(set, { provider, signatures });
    const again = await promotePipelined(set, { provider, confirm: true, signatures });
    expect(again.plan).toEqual(dryAgain.plan);
    expect(again.execution?.outcomes.map((outcome) => outcome.outcome).sort()).toEqual(
      ["unchanged", "unchanged", "unchanged", "unchanged", "unchanged", "refused-tag-move", "copied"].sort(),
    );
  });

  it("signs each group once its copies are done, within the run's --max-signature-ops across groups", async () => {
    // Six source repositories, each its own group; every group signs as soon as it is copied.
    const images = Array.from({ length: 6 }, (_, i) => image(`pipe-sign-${i}`));
    for (const [i, content] of images.entries()) {
      await writeOciLayoutDirectly(path.join(dir, "tree", "layouts", "staging", `app${i}`), [
        { content, tag: "v1" },
      ]);
    }
    await project(
      "signed",
      "registries:\n- name: oci:../../layouts/staging\n  src: true\n- name: oci:../../layouts/mirror\n",
      images.map((content, i) => `- name: app${i}\n  dmap:\n    "${content.digest}": ["v1"]\n`).join(""),
    );
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const real = createKeySigner(
      parseSigningKey(key.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), "k"),
    );
    const seen = { inFlight: 0, peak: 0, calls: 0 };
    // A signer that takes its time, so that groups' signatures would overlap if not bounded.
    const slow: ImageSigner = {
      mode: real.mode,
      description: real.description,
      verificationKey: real.verificationKey,
      ownSignatures: real.ownSignatures,
      async signPayload(payload: Uint8Array) {
        seen.calls += 1;
        seen.inFlight += 1;
        seen.peak = Math.max(seen.peak, seen.inFlight);
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen.inFlight -= 1;
        return real.signPayload(payload);
      },
      signStatement: (statement: Uint8Array) => real.signStatement(statement),
    };
    const set = await loadManifests({ thinManifestDir: "tree" }, { cwd: dir });
    const run = await promotePipelined(set, {
      provider,
      confirm: true,
      signatures: { signer: slow, attachments: "none", maxSignatureOps: 2 },
    });
    expect(run.execution?.outcomes.map((outcome) => outcome.outcome)).toEqual(Array(6).fill("copied"));
    expect(seen.calls).toBe(6);
    expect(seen.peak).toBe(2);
    const written = (run.execution?.attachments ?? []).filter((outcome) => outcome.status === "signed");
    expect(new Set(written.map((outcome) => outcome.subject))).toEqual(
      new Set(images.map((content) => content.digest)),
    );
  });

  it("groups edges that share a repository on either side, and only those", async () => {
    await project(
      "one",
      "registries:\n- name: oci:../../layouts/s1\n  src: true\n- name: oci:../../layouts/d1\n- name: oci:../../layouts/d2\n",
      `- name: app\n  dmap:\n    "${a.digest}": ["v1"]\n`,
    );
    await project(
      "two",
      "registries:\n- name: oci:../../layouts/s2\n  src: true\n- name: oci:../../layouts/d3\n",
      `- name: app\n  dmap:\n    "${b.digest}": ["v1"]\n`,
    );
    await project(
      "three",
      "registries:\n- name: oci:../../layouts/d3\n  src: true\n- name: oci:../../layouts/d4\n",
      `- name: app\n  dmap:\n    "${c.digest}": ["v1"]\n`,
    );
    const set = await loadManifests({ thinManifestDir: "tree" }, { cwd: dir });
    const short = (digest: string) => digest.slice(7, 11);
    const groups = repositoryGroups([...promotionEdges(set)], new RepositoryKeyCache());
    const named = groups.map((group) =>
      group
        .map(
          (edge) =>
            `${short(edge.digest)}>${/(d\d)\/app$/.exec(formatRepositoryLocation(edge.destination))?.[1]}`,
        )
        .sort(),
    );
    expect(named).toEqual([
      [`${short(a.digest)}>d1`, `${short(a.digest)}>d2`],
      [`${short(b.digest)}>d3`, `${short(c.digest)}>d4`].sort(),
    ]);
  });
});
