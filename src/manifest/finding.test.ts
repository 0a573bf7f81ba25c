import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compareFindings, makeFinding, MANIFEST_RULES } from "./finding.js";

const docs = readFileSync(new URL("../../docs/manifest-format.md", import.meta.url), "utf8");

describe("the rule catalogue", () => {
  it.each(Object.keys(MANIFEST_RULES))("documents %s in docs/manifest-format.md", (rule) => {
    expect(docs).toContain(`### \`${rule}\``);
  });

  it("gives each rule a one-sentence hint", () => {
    for (const { hint } of Object.values(MANIFEST_RULES)) {
      expect(hint).toMatch(/^[A-Z][^\n]*\.$/);
      expect(hint).not.toMatch(/[.!?]\s+[A-Z]/);
    }
  });

  it("sorts findings by file, line, column, then rule", () => {
    const at = (file: string, line: number, column: number) => ({ file, line, column });
    const findings = [
      makeFinding("invalid-tag", at("b.yaml", 1, 1), "m"),
      makeFinding("invalid-digest", at("a.yaml", 2, 5), "m"),
      makeFinding("empty-dmap", at("a.yaml", 2, 1), "m"),
      makeFinding("duplicate-key", at("a.yaml", 2, 5), "m"),
    ];
    expect(findings.sort(compareFindings).map((f) => f.rule)).toEqual([
      "empty-dmap",
      "duplicate-key",
      "invalid-digest",
      "invalid-tag",
    ]);
  });
});
