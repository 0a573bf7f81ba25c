import { describe, expect, it } from "vitest";
import { createManifestSet, parseThinManifest } from "../manifest/index.js";
import type { Digest } from "../reference/index.js";
import { groupForDisplay, rowsFromPlan, type DisplayRow } from "./display.js";
import { promotionEdges, type PromotionEdge } from "./edge.js";
import type { EdgeDecision, PlannedEdge } from "./decide.js";

const D1 = `sha256:${"1".repeat(64)}` as Digest;
const D2 = `sha256:${"2".repeat(64)}` as Digest;

function edgesOf(): PromotionEdge[] {
  const parsed = parseThinManifest(
    "foo",
    {
      file: "/t/manifests/foo/promoter-manifest.yaml",
      text: "registries:\n- name: gcr.io/staging\n  src: true\n- name: a.gcr.io/prod\n- name: b.gcr.io/prod\n- name: c.gcr.io/prod\n",
    },
    {
      file: "/t/images/foo/images.yaml",
      text: `- name: app\n  dmap:\n    "${D1}": ["v1", "v2"]\n    "${D2}": ["v3"]\n`,
    },
  );
  if (!parsed.manifest) throw new Error("the test manifest does not parse");
  return [...promotionEdges(createManifestSet([parsed.manifest], parsed.findings))];
}

const unreadable = (message: string): EdgeDecision => ({
  kind: "unreadable",
  side: "destination",
  code: "registry-network",
  message,
});

describe("groupForDisplay", () => {
  it("counts the rows without a line and keeps the destinations' order for the lines of the others", () => {
    const edges = edgesOf();
    // D1 v1 -> a, b, c; D1 v2 -> a, b, c; D2 v3 -> a, b, c.
    const decide = (edge: PromotionEdge): EdgeDecision => {
      const host = edge.destination.kind === "remote" ? edge.destination.host : "";
      // a is unchanged for v1 and fails for v2; b fails for v1: lines come in tag order.
      if (edge.digest === D1 && edge.tag === "v1")
        return host === "b.gcr.io" ? unreadable("b is down") : { kind: "unchanged" };
      if (edge.digest === D1 && edge.tag === "v2")
        return host === "a.gcr.io" ? unreadable("a is down") : { kind: "unchanged" };
      return host === "c.gcr.io" ? { kind: "copy" } : { kind: "unchanged" };
    };
    const planned: PlannedEdge[] = edges.map((edge) => ({ edge, decision: decide(edge) }));
    const groups = groupForDisplay(rowsFromPlan(planned));
    expect(groups).toHaveLength(1);
    const [group] = groups;
    expect(group?.edges).toBe(9);
    expect(group?.unchanged).toBe(6);
    const [first, second] = group?.digests ?? [];
    expect(first).toMatchObject({ digest: D1, tags: ["v1", "v2"], unchanged: 4 });
    expect(first?.lines.map((line) => [line.detail, line.tags, line.destinations])).toEqual([
      ["destination: b is down", ["v1"], ["b.gcr.io/prod"]],
      ["destination: a is down", ["v2"], ["a.gcr.io/prod"]],
    ]);
    expect(second).toMatchObject({ digest: D2, tags: ["v3"], unchanged: 2 });
    expect(second?.lines).toMatchObject([{ kind: "copy", tags: ["v3"], destinations: ["c.gcr.io/prod"] }]);
  });

  it("takes its rows one at a time, from any iterable", () => {
    const edges = edgesOf();
    let taken = 0;
    function* rows(): Generator<DisplayRow> {
      for (const edge of edges) {
        taken++;
        yield { edge, status: "unchanged" };
      }
    }
    const groups = groupForDisplay(rows());
    expect(taken).toBe(9);
    expect(groups[0]?.digests.every((digest) => digest.lines.length === 0)).toBe(true);
  });
});
