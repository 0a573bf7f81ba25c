import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { runCli } from "../main.js";
import { CIP_EXTENSION_FLAGS, KPROMO_CIP_FLAGS } from "./cip.js";
import { promoteCommand } from "./promote.js";

const GUIDE = path.resolve(import.meta.dirname, "../../../docs/migrating-from-kpromo.md");

async function cipHelp(): Promise<string> {
  const capture = captureIO();
  expect(await runCli(["cip", "--help"], capture.io)).toBe(0);
  return capture.out();
}

/** The flags of the "Options:" section of a help text. */
function helpFlags(help: string): string[] {
  const options = help.slice(help.indexOf("\nOptions:\n"));
  return [...options.matchAll(/^ {2}(?:-\w, |\s{4})--([a-z0-9-]+)/gm)].map((match) => match[1] ?? "");
}

/** The first column of the guide's "Every kpromo flag" table. */
function guideFlags(): string[] {
  const text = readFileSync(GUIDE, "utf8");
  const section = text.slice(text.indexOf("## Every kpromo flag"), text.indexOf("## Manifest errors"));
  return [...section.matchAll(/^\| `--([a-z0-9-]+)` \|/gm)].map((match) => match[1] ?? "");
}

describe("docs/migrating-from-kpromo.md", () => {
  it("lists every flag of `promoter cip --help`, and no other, once each", async () => {
    const inHelp = helpFlags(await cipHelp());
    expect(inHelp.length).toBeGreaterThan(15);
    expect(new Set(inHelp)).toEqual(new Set(Object.keys(KPROMO_CIP_FLAGS)));
    const inGuide = guideFlags();
    expect(inGuide.toSorted()).toEqual(inHelp.toSorted());
  });

  it("says what each difference is: no row with an empty cell", () => {
    const text = readFileSync(GUIDE, "utf8");
    const section = text.slice(text.indexOf("## Every kpromo flag"), text.indexOf("## Manifest errors"));
    for (const row of section.split("\n").filter((line) => line.startsWith("| `--"))) {
      const cells = row.split(/(?<!\\)\|/).slice(1, -1);
      expect(cells, row).toHaveLength(3);
      for (const cell of cells) expect(cell.trim(), row).not.toBe("");
    }
  });

  it("a kpromo flag the guide maps onto `promote --X` maps onto a flag promote has", () => {
    const text = readFileSync(GUIDE, "utf8");
    const section = text.slice(text.indexOf("## Every kpromo flag"), text.indexOf("## Manifest errors"));
    for (const row of section.split("\n").filter((line) => line.startsWith("| `--"))) {
      const mapped = row.split(/(?<!\\)\|/)[2] ?? "";
      for (const [, name] of mapped.matchAll(/`promote --([a-z0-9-]+)/g)) {
        expect(Object.keys(promoteCommand.options), row).toContain(name);
      }
    }
  });

  it("the extra promote flags cip takes are promote's, minus the names kpromo uses", () => {
    expect(CIP_EXTENSION_FLAGS).toContain("allow-registry");
    expect(CIP_EXTENSION_FLAGS).toContain("sign-key");
    for (const name of Object.keys(KPROMO_CIP_FLAGS)) expect(CIP_EXTENSION_FLAGS).not.toContain(name);
    expect(CIP_EXTENSION_FLAGS).not.toContain("changed-since");
  });
});
