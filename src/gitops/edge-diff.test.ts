import { describe, expect, it } from "vitest";
import {
  createManifestSet,
  parsePlainManifest,
  parseThinManifest,
  type ManifestSet,
} from "../manifest/index.js";
import { promotionEdges } from "../plan/index.js";
import { changedEdgeFilter, diffEdges } from "./edge-diff.js";

const D = (n: number): string => `sha256:${String(n).repeat(64).slice(0, 64)}`;

function plain(
  images: string,
  registries = "- name: gcr.io/staging\n  src: true\n- name: gcr.io/prod-a\n- name: gcr.io/prod-b\n",
): ManifestSet {
  const parsed = parsePlainManifest({
    file: "/t/m.yaml",
    text: `registries:\n${registries}images:\n${images}`,
  });
  return createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
}

function names(
  edges: Iterable<{ destinationRegistry: { name: string }; image: string; digest: string; tag?: string }>,
): string[] {
  return [...edges]
    .map(
      (edge) =>
        `${edge.destinationRegistry.name}/${edge.image}@${edge.digest.slice(7, 9)}:${edge.tag ?? "-"}`,
    )
    .sort();
}

describe("diffEdges", () => {
  const base = plain(`- name: app\n  dmap:\n    "${D(1)}": ["v1"]\n    "${D(2)}": []\n`);

  it("finds new tags, new digests and removed edges; repeated or reordered lines are not changes", () => {
    const head = plain(
      `- name: app\n  dmap:\n    "${D(2)}": []\n    "${D(1)}": ["v1", "v1.0"]\n    "${D(3)}": ["v3"]\n- name: app\n  dmap:\n    "${D(1)}": ["v1"]\n`,
    );
    const diff = diffEdges(base, head);
    expect(names(diff.added)).toEqual([
      "gcr.io/prod-a/app@11:v1.0",
      "gcr.io/prod-a/app@33:v3",
      "gcr.io/prod-b/app@11:v1.0",
      "gcr.io/prod-b/app@33:v3",
    ]);
    expect(diff.removed).toEqual([]);
    const back = diffEdges(head, base);
    expect(names(back.removed)).toEqual(names(diff.added));
  });

  it("a tagless entry is covered by the same digest with tags, and the reverse loses only the tag", () => {
    const head = plain(`- name: app\n  dmap:\n    "${D(1)}": []\n    "${D(2)}": ["v2"]\n`);
    const diff = diffEdges(base, head);
    expect(names(diff.added)).toEqual(["gcr.io/prod-a/app@22:v2", "gcr.io/prod-b/app@22:v2"]);
    expect(names(diff.removed)).toEqual(["gcr.io/prod-a/app@11:v1", "gcr.io/prod-b/app@11:v1"]);
  });

  it("a new destination makes every edge to it new; moving an image between projects changes nothing", () => {
    const wider = plain(
      `- name: app\n  dmap:\n    "${D(1)}": ["v1"]\n    "${D(2)}": []\n`,
      "- name: gcr.io/staging\n  src: true\n- name: gcr.io/prod-a\n- name: gcr.io/prod-b\n- name: gcr.io/prod-c\n",
    );
    expect(names(diffEdges(base, wider).added)).toEqual([
      "gcr.io/prod-c/app@11:v1",
      "gcr.io/prod-c/app@22:-",
    ]);

    const registries = {
      file: "/t/manifests/x/promoter-manifest.yaml",
      text: "registries:\n- name: gcr.io/staging\n  src: true\n- name: gcr.io/prod-a\n- name: gcr.io/prod-b\n",
    };
    const images = {
      file: "/t/images/x/images.yaml",
      text: `- name: app\n  dmap:\n    "${D(1)}": ["v1"]\n    "${D(2)}": []\n`,
    };
    const thin = parseThinManifest("x", registries, images).manifest;
    if (!thin) throw new Error("no manifest");
    const moved = createManifestSet([thin]);
    expect(diffEdges(base, moved)).toEqual({ added: [], removed: [] });
  });

  it("filters a head's edges to the changed ones, as promote --changed-since does", () => {
    const head = plain(`- name: app\n  dmap:\n    "${D(1)}": ["v1", "v2"]\n    "${D(2)}": []\n`);
    const filter = changedEdgeFilter(base);
    expect(names([...promotionEdges(head)].filter(filter))).toEqual([
      "gcr.io/prod-a/app@11:v2",
      "gcr.io/prod-b/app@11:v2",
    ]);
  });
});
