import { describe, expect, it } from "vitest";
import { judgeFindings, preexistingFindings } from "./finding-baseline.js";
import type { Finding } from "./model.js";

function finding(message: string, line: number, severity: Finding["severity"] = "error"): Finding {
  return {
    severity,
    rule: "invalid-digest",
    message,
    position: { file: "/tree/images/p/images.yaml", line, column: 5 },
  };
}

describe("findings against a base", () => {
  it("matches by file, rule and message whatever the line, once per copy", () => {
    const base = [finding("sha256:abc is 63 hex", 152)];
    const head = [finding("sha256:abc is 63 hex", 160), finding("sha256:abc is 63 hex", 170)];
    expect(preexistingFindings(head, base)).toEqual([true, false]);
  });

  it("with new: old errors become warnings that say why, new errors fail", () => {
    const base = [finding("old", 1)];
    const judged = judgeFindings(
      [finding("old", 2), finding("new", 3), finding("note", 4, "warning")],
      base,
      "new",
    );
    expect(judged.ok).toBe(false);
    expect(judged.errors).toBe(1);
    expect(judged.tolerated).toBe(1);
    expect(judged.findings[0]).toMatchObject({ severity: "warning", rule: "invalid-digest" });
    expect(judged.findings[0]?.message).toMatch(/^old \(error, already there before this change/);
    expect(judged.findings[1]).toMatchObject({ severity: "error", message: "new" });
    expect(judged.findings[2]).toMatchObject({ severity: "warning", message: "note" });
  });

  it("a full run with new: a tag conflict stays an error (its refused edges fail the run), others warn", () => {
    const conflict: Finding = {
      ...finding("r/tool:v1 is claimed by 2 different digests", 3),
      rule: "tag-conflict",
    };
    const full = judgeFindings([finding("old", 2), conflict], undefined, "new");
    expect(full).toMatchObject({ ok: false, errors: 1, tolerated: 1 });
    expect(full.findings[1]).toMatchObject({ severity: "error", rule: "tag-conflict" });
    // Change-scoped: an old conflict's edges are not planned, so it stays a warning.
    const scoped = judgeFindings([conflict], [conflict], "new");
    expect(scoped).toMatchObject({ ok: true, errors: 0, tolerated: 1 });
  });

  it("with all: every error fails, base or not", () => {
    const judged = judgeFindings([finding("old", 2)], [finding("old", 1)], "all");
    expect(judged).toMatchObject({ ok: false, errors: 1, tolerated: 0 });
  });

  it("a full run with new fails on nothing and says it judged no change", () => {
    const judged = judgeFindings([finding("old", 2)], undefined, "new");
    expect(judged).toMatchObject({ ok: true, errors: 0, tolerated: 1 });
    expect(judged.findings[0]?.message).toContain("a full run judges no change");
  });
});
