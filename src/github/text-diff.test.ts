import { describe, expect, it } from "vitest";
import { unifiedDiff } from "./text-diff.js";

describe("unifiedDiff", () => {
  it("shows an added line with three lines of context on each side", () => {
    const before = ["a", "b", "c", "d", "e", "f", "g", "h"].join("\n") + "\n";
    const after = ["a", "b", "c", "d", "new", "e", "f", "g", "h"].join("\n") + "\n";
    expect(unifiedDiff("x.yaml", before, after)).toBe(
      ["--- a/x.yaml", "+++ b/x.yaml", "@@ -2,6 +2,7 @@", " b", " c", " d", "+new", " e", " f", " g"].join(
        "\n",
      ),
    );
  });

  it("shows a changed line as removed and added", () => {
    expect(unifiedDiff("x", 'k: ["v1"]\n', 'k: ["v1", "v2"]\n')).toBe(
      ["--- a/x", "+++ b/x", "@@ -1,1 +1,1 @@", '-k: ["v1"]', '+k: ["v1", "v2"]'].join("\n"),
    );
  });

  it("shows a new file against /dev/null, and nothing when nothing changed", () => {
    expect(unifiedDiff("x", "", "a\n")).toBe(
      ["--- /dev/null", "+++ b/x", "@@ -0,0 +1,1 @@", "+a"].join("\n"),
    );
    expect(unifiedDiff("x", "a\n", "a\n")).toBe("");
  });
});
