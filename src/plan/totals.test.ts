import { describe, expect, it } from "vitest";
import type { EdgeDecisionKind } from "./decide.js";
import { EDGE_OUTCOME_KINDS, type EdgeOutcomeKind } from "./outcome.js";
import { decisionTotals, outcomeTotals, totalsText } from "./totals.js";

describe("edge totals", () => {
  it("label every decision, so the parts add up to the edges (unreadable and refused included)", () => {
    const counts: Record<EdgeDecisionKind, number> = {
      copy: 2,
      "add-tag": 1,
      unchanged: 0,
      "refused-tag-move": 1,
      "missing-source": 0,
      "refused-conflict": 1,
      "refused-source-signature": 1,
      unreadable: 3,
    };
    const totals = decisionTotals(counts);
    expect(totals.reduce((sum, [, n]) => sum + n, 0)).toBe(9);
    expect(totalsText(totals)).toBe(
      "2 to copy, 1 tags to add, 1 refused tag moves, 1 conflicting claims, 1 refused: source not signed, 3 unreadable",
    );
  });

  it("say an outcome in the plan's words", () => {
    const counts = Object.fromEntries(EDGE_OUTCOME_KINDS.map((kind) => [kind, 1])) as Record<
      EdgeOutcomeKind,
      number
    >;
    expect(totalsText(outcomeTotals(counts))).toBe(
      "1 copied, 1 tagged, 1 unchanged, 1 refused tag moves, 1 missing in source, 1 failed",
    );
    expect(
      totalsText(
        outcomeTotals({
          ...counts,
          copied: 0,
          tagged: 0,
          unchanged: 0,
          "refused-tag-move": 0,
          "missing-source": 0,
          failed: 0,
        }),
      ),
    ).toBe("none");
  });
});
