import { describe, expect, it } from "vitest";
import { parseGoFlags, splitOptionWords } from "./go-flags.js";

const specs = {
  confirm: { kind: "bool" },
  manifest: { kind: "string" },
  "max-signature-ops": { kind: "int" },
  "allow-registry": { kind: "strings" },
} as const;

describe("Go (pflag) flag syntax", () => {
  it("reads --name=value, --name value, booleans with ParseBool's spellings, integers", () => {
    expect(parseGoFlags(["--manifest=a.yaml", "--confirm", "--max-signature-ops", "7"], specs)).toEqual({
      manifest: "a.yaml",
      confirm: true,
      "max-signature-ops": 7,
    });
    for (const word of ["false", "0", "f", "F", "FALSE", "False"]) {
      expect(parseGoFlags([`--confirm=${word}`], specs).confirm).toBe(false);
    }
    for (const word of ["true", "1", "t", "T", "TRUE", "True"]) {
      expect(parseGoFlags([`--confirm=${word}`], specs).confirm).toBe(true);
    }
  });

  it("keeps the last value of a repeated flag, and every value of a list flag", () => {
    expect(parseGoFlags(["--manifest=a", "--manifest=b"], specs).manifest).toBe("b");
    expect(parseGoFlags(["--allow-registry", "x", "--allow-registry=y"], specs)["allow-registry"]).toEqual([
      "x",
      "y",
    ]);
  });

  it("refuses what pflag would misread or not know", () => {
    expect(() => parseGoFlags(["--confirm", "false"], specs)).toThrow(
      /unexpected argument "false".*--name=false/,
    );
    expect(() => parseGoFlags(["--confirm=maybe"], specs)).toThrow(/invalid argument "maybe" for --confirm/);
    expect(() => parseGoFlags(["--nope"], specs)).toThrow(/unknown flag: --nope/);
    expect(() => parseGoFlags(["-c"], specs)).toThrow(/unknown shorthand flag/);
    expect(() => parseGoFlags(["--manifest"], specs)).toThrow(/flag needs an argument: --manifest/);
    expect(() => parseGoFlags(["--max-signature-ops=lots"], specs)).toThrow(/whole number/);
    expect(() => parseGoFlags(["--", "x"], specs)).toThrow(/unexpected argument "x"/);
  });
});

describe("the options variable", () => {
  it("splits on whitespace, quotes keep spaces, nothing is expanded", () => {
    expect(splitOptionWords(` --a 1  --b "two words" --c='$HOME' `)).toEqual([
      "--a",
      "1",
      "--b",
      "two words",
      "--c=$HOME",
    ]);
    expect(splitOptionWords("")).toEqual([]);
    expect(() => splitOptionWords('--a "open')).toThrow(/unbalanced/);
  });

  it("names a word of an options variable by position, never printing it", () => {
    const variable = { variable: "OPTIONS" };
    expect(() => parseGoFlags(["--confirm", "hunter2"], specs, variable)).toThrow(
      /unexpected argument \(word 2 of OPTIONS, not shown\)/,
    );
    expect(() => parseGoFlags(["--confirm=hunter2"], specs, variable)).toThrow(
      /invalid argument \(word 1 of OPTIONS, not shown\) for --confirm/,
    );
    expect(() => parseGoFlags(["--max-signature-ops", "hunter2"], specs, variable)).toThrow(
      /invalid argument \(word 2 of OPTIONS, not shown\)/,
    );
    expect(() => parseGoFlags(["--manifest"], specs, variable)).toThrow(
      /flag needs an argument: --manifest in OPTIONS/,
    );
    expect(() => parseGoFlags(["--confirm", "hunter2"], specs)).toThrow(/unexpected argument "hunter2"/);
  });
});
