import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint, Linter } from "eslint";
import tseslint from "typescript-eslint";
import { beforeAll, describe, expect, it } from "vitest";

/**
 * The layering of src/ is enforced by ESLint (eslint.config.js, ADR 0005). These tests keep the
 * enforcement honest: each rule still fires where it should and stays quiet where it should not
 * (a rule that silently stopped matching would pass `npx eslint .` forever), and the README's
 * folder map says what the configuration does for every folder of src/.
 *
 * The rules are taken from the configuration ESLint computes for a path, then run on a snippet
 * with the plain TypeScript parser: they need no type information, and the snippet's file need
 * not exist.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SRC = path.join(ROOT, "src");
const LAYERING_RULES = [
  "no-restricted-imports",
  "no-restricted-globals",
  "no-restricted-properties",
  "no-restricted-syntax",
] as const;

const eslint = new ESLint({ cwd: ROOT });
const linter = new Linter({ configType: "flat" });

/** The layering rules' messages for `code` as if it were the module at `file` (relative to the root). */
async function layeringErrors(file: string, code: string): Promise<string[]> {
  const config = (await eslint.calculateConfigForFile(path.join(ROOT, file))) as {
    rules?: Record<string, Linter.RuleEntry>;
  };
  const rules: Linter.RulesRecord = {};
  for (const rule of LAYERING_RULES) {
    const entry = config.rules?.[rule];
    if (entry !== undefined) rules[rule] = entry;
  }
  const messages = linter.verify(
    code,
    [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser }, rules }],
    { filename: path.join(ROOT, file) },
  );
  return messages.map((message) => `${message.ruleId ?? "parse"}: ${message.message}`);
}

const PURE_CORE_FOLDERS = ["reference", "oci", "manifest", "plan", "concurrency", "output"];

describe("ESLint keeps the pure core pure", () => {
  const core = "src/manifest/probe.ts";

  it.each([
    ['import { readFile } from "node:fs/promises";', "node:fs/promises"],
    ['import { readFileSync } from "fs";', "fs"],
    ['import * as net from "node:net";', "node:net"],
    ['import { request } from "node:https";', "node:https"],
    ['import { connect } from "node:http2";', "node:http2"],
    ['import { lookup } from "node:dns";', "node:dns"],
    ['import { connect } from "node:tls";', "node:tls"],
    ['import { execFile } from "node:child_process";', "node:child_process"],
    ['import { Worker } from "node:worker_threads";', "node:worker_threads"],
    ['import { homedir } from "node:os";', "node:os"],
    ['import { setTimeout } from "node:timers/promises";', "node:timers/promises"],
    ['import { request } from "undici";', "undici"],
    ['import Database from "better-sqlite3";', "better-sqlite3"],
    ['import { sign } from "sigstore";', "sigstore"],
    ['import { Verifier } from "@sigstore/verify";', "@sigstore/verify"],
    ['export { bundleFromJSON } from "@sigstore/bundle";', "@sigstore/bundle"],
    ['import { randomBytes } from "node:crypto";', "node:crypto"],
    ['import { store } from "../registry/index.js";', "../registry/index.js"],
    ['import { loadManifests } from "../manifest-files/index.js";', "../manifest-files/index.js"],
  ])("refuses %s", async (code, module) => {
    const errors = await layeringErrors(core, code);
    expect(errors).toEqual([expect.stringMatching(/^no-restricted-imports: .*ADR 0005/)]);
    expect(errors[0]).toContain(module);
  });

  it.each([
    ["const cwd = process.cwd();", "no-restricted-globals"],
    ["const home = process.env.HOME;", "no-restricted-globals"],
    ["process.exit(1);", "no-restricted-globals"],
    ["const argv = globalThis.process.argv;", "no-restricted-properties"],
    ["const now = Date.now();", "no-restricted-properties"],
    ["const now = new Date();", "no-restricted-syntax"],
    ["const roll = Math.random();", "no-restricted-properties"],
    ["setTimeout(() => undefined, 10);", "no-restricted-globals"],
    ['const fs = import("node:fs");', "no-restricted-syntax"],
    ['const body = fetch("https://example.com");', "no-restricted-globals"],
  ])("refuses %s", async (code, rule) => {
    expect(await layeringErrors(core, code)).toEqual([expect.stringMatching(new RegExp(`^${rule}: `))]);
  });

  it("allows what pure code needs: paths as strings, hashing, the core's own folders, dates from data", async () => {
    const code = [
      'import * as path from "node:path";',
      'import { createHash } from "node:crypto";',
      'import { parseRegistryHost } from "../reference/index.js";',
      'import { quoteExcerpt } from "../excerpt.js";',
      'import { plural } from "../output/quantities.js";',
      'const when = new Date("2026-01-01T00:00:00Z");',
    ].join("\n");
    expect(await layeringErrors(core, code)).toEqual([]);
  });

  it.each(PURE_CORE_FOLDERS)("holds every module of src/%s/, and its tests are free", async (folder) => {
    const code = 'import { readFile } from "node:fs/promises";\nprocess.exit(1);';
    expect(await layeringErrors(`src/${folder}/probe.ts`, code)).toHaveLength(2);
    expect(await layeringErrors(`src/${folder}/probe.test.ts`, code)).toEqual([]);
  });

  it("holds the pure modules directly in src/ and the pure modules of shell folders", async () => {
    const code = 'import { readFile } from "node:fs/promises";\nprocess.exit(1);';
    for (const file of [
      "src/errors.ts",
      "src/json-shape.ts",
      "src/audit/decide.ts",
      "src/sign/cosign-format.ts",
    ]) {
      expect(await layeringErrors(file, code), file).toHaveLength(2);
    }
  });

  it("keeps the core synchronous, except the modules that coordinate work they are handed", async () => {
    const code =
      "export async function observe(read: () => Promise<number>) {\n  return (await read()) + 1;\n}";
    for (const file of [
      "src/plan/probe.ts",
      "src/audit/decide.ts",
      "src/reference/probe.ts",
      "src/json-shape.ts",
    ]) {
      expect(await layeringErrors(file, code), file).toEqual([
        expect.stringMatching(/^no-restricted-syntax: The pure core decides synchronously/),
        expect.stringMatching(/^no-restricted-syntax: The pure core decides synchronously/),
      ]);
    }
    for (const file of [
      "src/concurrency/probe.ts",
      "src/audit/revision-history.ts",
      "src/audit/observe.ts",
    ]) {
      expect(await layeringErrors(file, code), file).toEqual([]);
    }
  });

  it("lets the shell do I/O", async () => {
    const code = 'import { readFile } from "node:fs/promises";\nconst cwd = process.cwd();';
    for (const file of ["src/manifest-files/load.ts", "src/registry/remote/probe.ts", "src/cli/entry.ts"]) {
      expect(await layeringErrors(file, code), file).toEqual([]);
    }
  });
});

describe("ESLint keeps folders behind their index.ts", () => {
  it.each([
    ["src/audit/probe.ts", 'import { FindingStore } from "../registry/store.js";'],
    ["src/audit/probe.ts", 'export type { Side } from "../registry/side.js";'],
    ["src/registry/remote/probe.ts", 'import { Semaphore } from "../../concurrency/semaphore.js";'],
    ["src/probe.ts", 'export { promote } from "./promote/promote.js";'],
    ["src/plan/probe.ts", 'import { parseTag } from "../reference/tag.js";'],
  ])("refuses %s importing past an index: %s", async (file, code) => {
    expect(await layeringErrors(file, code)).toEqual([
      expect.stringMatching(/^no-restricted-imports: .*through its index\.ts/),
    ]);
  });

  it.each([
    ["src/audit/probe.ts", 'import { Semaphore } from "../concurrency/index.js";'],
    ["src/audit/probe.ts", 'import { plural } from "../output/quantities.js";'],
    ["src/audit/probe.ts", 'import { openFindingStore } from "./finding-store.js";'],
    ["src/registry/remote/probe.ts", 'import { withRetry } from "../transport/retry.js";'],
    ["src/registry/remote/probe.ts", 'import { ProblemCode } from "../../errors.js";'],
    ["src/cli/commands/probe.ts", 'import { loadManifests } from "../../manifest-files/index.js";'],
    ["src/audit/probe.test.ts", 'import { FindingStore } from "../registry/store.js";'],
  ])("allows %s: %s", async (file, code) => {
    expect(await layeringErrors(file, code)).toEqual([]);
  });
});

describe("README.md's folder map", () => {
  let rows: Map<string, string>;

  beforeAll(() => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = readme.split("\n## Folder map\n")[1]?.split("\n## ")[0] ?? "";
    rows = new Map();
    for (const line of section.split("\n")) {
      const cells = line.split("|").map((cell) => cell.trim());
      const [, names, layer] = cells;
      if (names === undefined || layer === undefined || !names.startsWith("`")) continue;
      for (const name of names.matchAll(/`([^`]+)`/g)) rows.set(name[1] ?? "", layer);
    }
  });

  it("names every folder and module directly in src/, and nothing else", () => {
    const entries = readdirSync(SRC)
      .filter((name) => !name.endsWith(".test.ts"))
      .map((name) => (statSync(path.join(SRC, name)).isDirectory() ? `${name}/` : name))
      .sort();
    expect([...rows.keys()].sort()).toEqual(entries);
  });

  it("puts in the pure core exactly what ESLint holds to it", async () => {
    const probe = 'import { readFile } from "node:fs/promises";';
    for (const [name, layer] of rows) {
      const file = name.endsWith("/") ? `src/${name}probe.ts` : `src/${name}`;
      const held = (await layeringErrors(file, probe)).length > 0;
      expect({ name, held }).toEqual({ name, held: layer === "pure core" });
    }
  });
});
