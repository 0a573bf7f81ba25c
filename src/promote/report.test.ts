import { describe, expect, it } from "vitest";
import { createManifestSet, parseThinManifest, validate, type ManifestSet } from "../manifest/index.js";
import {
  PLAN_DOCUMENT_SCHEMA,
  PLAN_DOCUMENT_VERSION,
  promotionEdges,
  type EdgeDecision,
  type PlannedEdge,
} from "../plan/index.js";
import type { PromotionResult } from "./promote.js";
import {
  countOutcomes,
  promotionDocument,
  promotionFailed,
  promotionReport,
  writtenBytes,
} from "./report.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const NOW = new Date("2026-01-02T03:04:05.000Z");

function setOf(): ManifestSet {
  const parsed = parseThinManifest(
    "foo",
    {
      file: "/repo/manifests/foo/promoter-manifest.yaml",
      text: "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\n",
    },
    {
      file: "/repo/images/foo/images.yaml",
      text: `- name: app\n  dmap:\n    "${D1}": ["v1"]\n    "${D2}": []\n`,
    },
  );
  return createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
}

/** A dry run: D1:v1 to copy, D2 refused (its tag... none: missing in the source). */
function plannedResult(): PromotionResult {
  const set = setOf();
  const decisions: EdgeDecision[] = [{ kind: "copy" }, { kind: "missing-source" }];
  const edges: PlannedEdge[] = [...promotionEdges(set)].map((edge, i) => ({
    edge,
    decision: decisions[i] ?? { kind: "unchanged" },
  }));
  return {
    validation: validate(set),
    plan: { edges, copies: [] },
    inventory: { destinations: new Map(), sources: new Map() },
    timings: { inventoryMs: 12.4, planMs: 0.6 },
  };
}

function executedResult(): PromotionResult {
  const planned = plannedResult();
  const [copied, missing] = planned.plan.edges;
  return {
    ...planned,
    execution: {
      outcomes: [
        { ...copied!, outcome: "copied" },
        { ...missing!, outcome: "missing-source" },
      ],
      copies: [],
    },
    timings: { ...planned.timings, executeMs: 99.5 },
  };
}

describe("promotion documents", () => {
  it("a plan lists every edge with its decision, positions relative to the folder given", () => {
    const document = promotionDocument(plannedResult(), { kind: "plan", cwd: "/repo", now: NOW });
    expect(document).toMatchObject({
      schema: PLAN_DOCUMENT_SCHEMA,
      version: PLAN_DOCUMENT_VERSION,
      kind: "plan",
      createdAt: "2026-01-02T03:04:05.000Z",
      summary: { edges: 2, decisions: { copy: 1, "missing-source": 1 } },
    });
    expect(document.summary.outcomes).toBeUndefined();
    expect(document.edges.map((edge) => [edge.digest, edge.decision, edge.position.file])).toEqual([
      [D1, "copy", "images/foo/images.yaml"],
      [D2, "missing-source", "images/foo/images.yaml"],
    ]);
    expect(document.edges.every((edge) => edge.outcome === undefined)).toBe(true);
  });

  it("a report carries each edge's outcome and the outcome counts", () => {
    const result = executedResult();
    const document = promotionDocument(result, { kind: "report", now: NOW });
    expect(document.kind).toBe("report");
    expect(document.summary.outcomes).toEqual({
      copied: 1,
      tagged: 0,
      unchanged: 0,
      "refused-tag-move": 0,
      "missing-source": 1,
      failed: 0,
    });
    expect(document.edges.map((edge) => edge.outcome)).toEqual(["copied", "missing-source"]);
    expect(document.edges[0]?.position.file).toBe("/repo/images/foo/images.yaml");
  });

  it("the full report adds the run's statistics", () => {
    const result = executedResult();
    const report = promotionReport(result, {
      kind: "report",
      now: NOW,
      durationMs: 1234.56,
      requests: new Map([["us.gcr.io:443", { total: 3, byMethod: { GET: 2, HEAD: 1 } }]]),
      shard: { index: 1, count: 4 },
    });
    expect(Object.keys(report)).toEqual([
      "schema",
      "version",
      "kind",
      "createdAt",
      "summary",
      "edges",
      "shard",
      "requests",
      "durationMs",
      "timings",
      "bytesWritten",
      "validation",
    ]);
    expect(report).toMatchObject({
      shard: { index: 1, count: 4 },
      requests: { "us.gcr.io:443": { total: 3, byMethod: { GET: 2, HEAD: 1 } } },
      durationMs: 1235,
      timings: { inventoryMs: 12, planMs: 1, executeMs: 100 },
      bytesWritten: 0,
      validation: { errors: 0, warnings: 0 },
    });
  });

  it("says whether an edge failed, and what was written", () => {
    expect(promotionFailed(executedResult())).toBe(true);
    // A dry run fails on what is already settled: a digest missing in the source.
    expect(promotionFailed(plannedResult())).toBe(true);
    expect(writtenBytes(plannedResult())).toBeUndefined();
    expect(writtenBytes(executedResult())).toBe(0);
    expect(countOutcomes(executedResult().execution!.outcomes).copied).toBe(1);
  });
});
