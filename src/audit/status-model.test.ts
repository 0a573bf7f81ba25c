import { describe, expect, it } from "vitest";
import { appDesiredState } from "../../test/support/audit-state.js";
import { buildStatusIndex, cellState, NO_EVIDENCE, searchStatus } from "./status-model.js";
import { parseReportUpload, ReportUploadError } from "./status-store.js";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;
const C = `sha256:${"c".repeat(64)}`;

function index() {
  return buildStatusIndex(
    appDesiredState({ [A]: ["1.0", "latest"], [B]: ["2.0"], [C]: [] }, { mirrors: ["eu/prod", "asia/prod"] }),
  );
}

describe("status page search", () => {
  it("places each production repository as project, image and mirror", () => {
    const places = index().places.map((place) => [place.project, place.image, place.mirror]);
    expect(places).toEqual([
      ["prod", "app", "reg.example/asia/prod"],
      ["prod", "app", "reg.example/eu/prod"],
      ["prod", "app", "reg.example/prod"],
    ]);
  });

  it("finds a digest, a prefix of at least 7 hex digits, with or without sha256:", () => {
    for (const query of [A, A.slice("sha256:".length), "sha256:aaaaaaa", "AAAAAAAAAA"]) {
      const result = searchStatus(index(), query);
      expect(
        result.hits.map((hit) => [hit.digest, hit.mirrors.length]),
        query,
      ).toEqual([[A, 3]]);
    }
    // A tagless digest is found by its digest.
    expect(searchStatus(index(), C).hits.map((hit) => hit.tags)).toEqual([[]]);
    expect(searchStatus(index(), "sha256:dddddddd").hits).toEqual([]);
  });

  it("finds name:tag, a bare tag, and every tagged version of a name", () => {
    expect(searchStatus(index(), "app:2.0").hits.map((hit) => hit.digest)).toEqual([B]);
    expect(searchStatus(index(), "latest").hits.map((hit) => [hit.digest, hit.tags])).toEqual([
      [A, ["1.0", "latest"]],
    ]);
    expect(searchStatus(index(), "ap").hits.map((hit) => hit.digest)).toEqual([A, B]);
    expect(searchStatus(index(), "app:9.9").hits).toEqual([]);
    expect(searchStatus(index(), "   ").hits).toEqual([]);
  });

  it("stops at the limit and says so", () => {
    const result = searchStatus(index(), "app", 1);
    expect(result.hits).toHaveLength(1);
    expect(result.truncated).toBe(true);
  });
});

describe("matrix cells", () => {
  it("is complete, partial, missing, or violation when one is open there", () => {
    const place = index().places[0]!;
    const seen = (present: readonly string[]) => (digest: string) => ({
      ...NO_EVIDENCE,
      present: present.includes(digest),
    });
    expect(cellState(place, seen([A, B, C]))).toBe("complete");
    expect(cellState(place, seen([A]))).toBe("partial");
    expect(cellState(place, seen([]))).toBe("missing");
    expect(cellState(place, seen([A, B, C]), true)).toBe("violation");
  });
});

describe("promotion report uploads", () => {
  const report = {
    schema: "image-promoter/promotion",
    version: 1,
    kind: "report",
    createdAt: "2026-02-01T10:00:00.000Z",
    edges: [{ destination: "reg.example/prod/app", digest: A, tag: null, outcome: "failed", error: "boom" }],
  };

  it("takes the report as written or wrapped with change, approvers and revision", () => {
    expect(parseReportUpload(report)).toEqual({
      createdAt: "2026-02-01T10:00:00.000Z",
      change: null,
      approvedBy: [],
      revision: null,
      edges: [
        { destination: "reg.example/prod/app", digest: A, tag: null, outcome: "failed", reason: "boom" },
      ],
    });
    expect(
      parseReportUpload({ report, change: "https://x.example/pull/1", approvedBy: ["ann"], revision: "abc" }),
    ).toMatchObject({ change: "https://x.example/pull/1", approvedBy: ["ann"], revision: "abc" });
  });

  it("refuses what is not a promotion report, naming the field", () => {
    expect(() => parseReportUpload([])).toThrow(ReportUploadError);
    expect(() => parseReportUpload({ ...report, kind: "plan" })).toThrow(/kind "report"/);
    expect(() => parseReportUpload({ ...report, edges: [{ digest: A }] })).toThrow(/edges\[0\]\.destination/);
    expect(() => parseReportUpload({ report, approvedBy: "ann" })).toThrow(/approvedBy/);
    expect(() => parseReportUpload({ report, change: 7 })).toThrow(/change/);
  });
});
