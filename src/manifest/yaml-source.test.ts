import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { isMap, isScalar, isSeq, visit, type ParsedNode } from "yaml";
import type { SourcePosition } from "./model.js";
import { parsePlainManifest } from "./parse.js";
import {
  MAX_MANIFEST_FILE_BYTES,
  MAX_YAML_ALIAS_EXPANSION,
  MAX_YAML_ALIASES,
  MAX_YAML_DEPTH,
  MAX_YAML_ERRORS_PER_FILE,
  parseSequenceItems,
  parseYamlSource,
  type YamlSource,
} from "./yaml-source.js";

const FILE = "/m/x.yaml";
/**
 * "Quickly" for refused input: unguarded, these inputs take the parser many seconds or overflow
 * its stack; guarded they take milliseconds. Generous because test machines are shared.
 */
const QUICKLY_MS = 3000;

function timed<T>(work: () => T): { result: T; ms: number } {
  const start = performance.now();
  const result = work();
  return { result, ms: performance.now() - start };
}

/**
 * A manifest whose image `foo` (`dmapLines` under its dmap) is anchored, then listed `aliases`
 * more times by alias.
 */
function aliasedImageManifest(dmapLines: readonly string[], aliases: number): string {
  return [
    "registries:",
    "- name: gcr.io/staging",
    "  src: true",
    "- name: us.gcr.io/prod",
    "images:",
    "- &image",
    "  name: foo",
    "  dmap:",
    ...dmapLines,
    ...Array.from({ length: aliases }, () => "- *image"),
    "",
  ].join("\n");
}

describe("parseYamlSource", () => {
  it("keeps every scalar as the string written (failsafe schema)", () => {
    const { source, findings } = parseYamlSource("a: [3.10, 010, true, null, ~, 1e3, 0x1F, 12:30]\n", FILE);
    expect(findings).toEqual([]);
    const root = source?.root;
    expect(isMap(root)).toBe(true);
    if (!isMap(root)) return;
    const list = root.items[0]?.value;
    expect(isSeq(list)).toBe(true);
    if (!isSeq(list)) return;
    expect(list.items.map((item) => (isScalar(item) ? item.value : undefined))).toEqual([
      "3.10",
      "010",
      "true",
      "null",
      "~",
      "1e3",
      "0x1F",
      "12:30",
    ]);
  });

  it("gives 1-based line and column positions", () => {
    const { source } = parseYamlSource("# comment\nkey:\n  - value\n", FILE);
    expect(source?.positionAt(0)).toEqual({ file: FILE, line: 1, column: 1 });
    expect(source?.positionAt("# comment\nkey:\n  - ".length)).toEqual({ file: FILE, line: 3, column: 5 });
  });

  it("reports a syntax error as a finding with its position, not an exception", () => {
    const { source, findings } = parseYamlSource('a: "unterminated\nb: 1\n', FILE);
    expect(source).toBeUndefined();
    expect(findings[0]).toMatchObject({
      rule: "yaml-syntax",
      severity: "error",
      message: expect.stringMatching(/quote/) as unknown,
    });
    const other = parseYamlSource("a: b\n  c: d\n", FILE);
    expect(other.findings[0]).toMatchObject({ rule: "yaml-syntax", position: { line: 1, column: 4 } });
  });

  it("caps the number of syntax errors reported per file", () => {
    const text = Array.from({ length: 100 }, () => 'a: "x" y\n').join("");
    const { findings } = parseYamlSource(text, FILE);
    const syntax = findings.filter((finding) => finding.rule === "yaml-syntax");
    expect(syntax.length).toBe(MAX_YAML_ERRORS_PER_FILE + 1);
    expect(syntax.at(-1)?.message).toMatch(/more YAML errors/);
  });

  it.each([
    ["flow lists", (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`, 200_000],
    ["flow mappings", (n: number) => `${"{a: ".repeat(n)}${"}".repeat(n)}`, 200_000],
    [
      "block lists",
      (n: number) => Array.from({ length: n }, (_, i) => `${" ".repeat(i)}- `).join("\n"),
      3000,
    ],
    [
      "block mappings",
      (n: number) => Array.from({ length: n }, (_, i) => `${" ".repeat(i)}a:`).join("\n"),
      3000,
    ],
  ])("refuses %s nested deeper than MAX_YAML_DEPTH quickly", (_label, make, deep) => {
    const shallow = parseYamlSource(make(MAX_YAML_DEPTH - 8), FILE);
    expect(shallow.findings.filter((finding) => finding.rule === "yaml-limit")).toEqual([]);
    // Unguarded, 200,000 flow levels take the parser seconds, and a few thousand levels of
    // any kind overflow the composer's stack.
    const { result, ms } = timed(() => parseYamlSource(make(deep), FILE));
    expect(result.source).toBeUndefined();
    expect(result.findings).toMatchObject([
      { rule: "yaml-limit", message: expect.stringMatching(/nested/) as unknown },
    ]);
    expect(ms).toBeLessThan(QUICKLY_MS);
  });

  it("refuses more than MAX_YAML_ALIASES aliases", () => {
    const text = `a: &x v\nb: [${Array.from({ length: MAX_YAML_ALIASES + 1 }, () => "*x").join(", ")}]\n`;
    const { source, findings } = parseYamlSource(text, FILE);
    expect(source).toBeUndefined();
    expect(findings).toMatchObject([
      { rule: "yaml-limit", message: expect.stringMatching(/aliases/) as unknown },
    ]);
  });

  it("does not count an asterisk inside block scalars or quotes as an alias", () => {
    const star = Array.from({ length: MAX_YAML_ALIASES + 5 }, () => "*x").join("\n  ");
    const { findings } = parseYamlSource(`a: |\n  ${star}\nb: "*x"\n`, FILE);
    expect(findings).toEqual([]);
  });

  it("stops an alias bomb (billion laughs) while reading the manifest", () => {
    const levels = ["a: &a [v1, v2, v3, v4, v5, v6, v7, v8, v9, v10]"];
    for (let i = 1; i < 9; i++) {
      const previous = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array.from({ length: 10 }, () => `*${previous}`).join(", ")}]`);
    }
    const text = `${levels.join("\n")}\n`;
    const { result, ms } = timed(() => parsePlainManifest({ file: FILE, text }));
    expect(ms).toBeLessThan(QUICKLY_MS);
    // The unknown keys are reported, the values never expanded.
    expect(result.findings.every((finding) => finding.rule === "unknown-key")).toBe(true);
  });

  it("refuses aliases that expand to more than MAX_YAML_ALIAS_EXPANSION nodes", () => {
    const digests = Array.from(
      { length: 300 },
      (_, i) => `    "sha256:${i.toString(16).padStart(64, "0")}": []`,
    );
    const text = aliasedImageManifest(digests, 60);
    const { result, ms } = timed(() => parsePlainManifest({ file: FILE, text }));
    expect(ms).toBeLessThan(QUICKLY_MS);
    expect(result.manifest).toBeUndefined();
    expect(result.findings).toMatchObject([
      {
        rule: "yaml-limit",
        message: expect.stringMatching(new RegExp(`more than ${MAX_YAML_ALIAS_EXPANSION}`)) as unknown,
      },
    ]);
  });

  it("allows modest alias use", () => {
    const text = aliasedImageManifest([`    "sha256:${"a".repeat(64)}": [v1]`], 1);
    const result = parsePlainManifest({ file: FILE, text });
    expect(result.findings).toEqual([]);
    expect(result.manifest?.images.length).toBe(2);
  });

  it("refuses text larger than MAX_MANIFEST_FILE_BYTES without parsing it", () => {
    const text = `a: ${"x".repeat(MAX_MANIFEST_FILE_BYTES)}\n`;
    const { result, ms } = timed(() => parseYamlSource(text, FILE));
    expect(result.source).toBeUndefined();
    expect(result.findings).toMatchObject([{ rule: "yaml-limit", position: { line: 1, column: 1 } }]);
    expect(ms).toBeLessThan(QUICKLY_MS);
  });

  it("refuses a second document", () => {
    const { source, findings } = parseYamlSource("a: 1\n---\nb: 2\n", FILE);
    expect(findings).toMatchObject([{ rule: "yaml-syntax", position: { line: 2, column: 1 } }]);
    // The file is not used at all, not even its first document.
    expect(source).toBeUndefined();
  });

  it("accepts empty documents after the first with a warning, as kpromo reads only the first", () => {
    const { source, findings } = parseYamlSource("---\na: 1\n---\n# nothing\n--- # still nothing\n", FILE);
    expect(findings).toMatchObject([
      { rule: "kpromo-spelling", severity: "warning", position: { line: 3, column: 1 } },
      { rule: "kpromo-spelling", severity: "warning", position: { line: 5, column: 1 } },
    ]);
    expect(source?.root && isMap(source.root) ? source.root.items.length : 0).toBe(1);
  });

  it.each([
    ["a value", "a: 1\n---\nb: 2\n", 2],
    ["an empty document, then a value", "a: 1\n---\n---\nb: 2\n", 3],
    ["a null written out", "a: 1\n---\n~\n", 2],
    ["an empty string", "a: 1\n---\n''\n", 2],
    ["an anchor", "a: 1\n--- &x\n", 2],
    ["a tag", "a: 1\n--- !!str\n", 2],
  ])("refuses a second document holding %s", (_what, text, line) => {
    const { source, findings } = parseYamlSource(text, FILE);
    expect(findings.filter((f) => f.severity === "error")).toMatchObject([
      { rule: "yaml-syntax", position: { line, column: 1 } },
    ]);
    expect(source).toBeUndefined();
  });

  it("turns YAML warnings into yaml-warning findings", () => {
    const { source, findings } = parseYamlSource("a: !!unknown-tag x\n", FILE);
    expect(source).toBeDefined();
    expect(findings).toMatchObject([{ rule: "yaml-warning", severity: "warning" }]);
  });
});

/** Every node of a subtree as `line:column value`, in order. */
function nodesOf(source: YamlSource, node: ParsedNode): string[] {
  const out: string[] = [];
  visit(node, {
    Node(_key, visited) {
      const position: SourcePosition = source.positionOf(visited as ParsedNode);
      const value = isScalar(visited) ? JSON.stringify(visited.value) : isMap(visited) ? "{map}" : "[seq]";
      out.push(`${position.line}:${position.column} ${value}`);
    },
  });
  return out;
}

/**
 * Parses `text` item by item and as a whole; when the item path is taken, it must give exactly
 * the nodes and positions of the whole-file path.
 */
function itemPath(text: string): "items" | "whole" {
  const items = parseSequenceItems(text, FILE);
  if (!items) return "whole";
  const whole = parseYamlSource(text, FILE);
  expect(whole.findings).toEqual([]);
  const source = whole.source;
  const root = source?.root;
  if (!source || !isSeq(root)) throw new Error("the whole file is not a sequence");
  expect(items.flatMap((item) => nodesOf(item.source, item.node))).toEqual(
    root.items.flatMap((node) => nodesOf(source, node)),
  );
  return "items";
}

describe("parseSequenceItems (the item-by-item path for images files)", () => {
  it.each([
    ["plain items", "- name: a\n  dmap:\n    x: [v1]\n- name: b\n  dmap: {}\n- name: c\n", "items"],
    [
      "comments before, between and after items",
      "# head\n\n- a\n# between\n- b  # trailing\n# tail\n",
      "items",
    ],
    ["a block scalar ended by the next item", "- a: |\n    text\n    more\n- b\n", "items"],
    ["a multi-line plain scalar", "- a\n  b\n- c\n", "items"],
    ["an item on the line after the dash", "-\n  name: a\n- b\n", "items"],
    ["a tab after the dash (a YAML error)", "-\tname: a\n- b\n", "whole"],
    ["CRLF line ends", "- name: a\r\n  dmap: {}\r\n- name: b\r\n", "items"],
    ["nested lists at the item's indentation", "- name: a\n  tags:\n  - x\n  - y\n- name: b\n", "items"],
    ["a flow list left open across items", "- a: [x,\n- y]\n- b\n", "whole"],
    ["a flow mapping left open across items", "- {a: 1,\n- b: 2}\n", "whole"],
    ["a double-quoted string left open across items", '- a: "x\n- y"\n- b\n', "whole"],
    ["a single-quoted string left open across items", "- a: 'x\n- y'\n- b\n", "whole"],
    ["anchors and aliases", "- &a x\n- *a\n", "whole"],
    ["a document marker", "- a\n---\n- b\n", "whole"],
    ["a directive", "%YAML 1.2\n---\n- a\n- b\n", "whole"],
    ["content before the first item", "x: 1\n- a\n- b\n", "whole"],
    ["a mapping root with a list at column 0", "images:\n- a\n- b\n", "whole"],
    ["an indented sequence", "  - a\n  - b\n", "whole"],
    ["a single item", "- a\n", "whole"],
    ["an item with a syntax error", "- a: b: c\n- d\n", "whole"],
  ])("%s", (_label, text, expected) => {
    expect(itemPath(text)).toBe(expected);
  });

  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const trees = ["registry.k8s.io", "legacy-backfill"].map((tree) =>
    path.resolve(repoRoot, "../shared/k8sio", tree),
  );
  it.skipIf(!trees.every((tree) => existsSync(tree)))(
    "gives the same nodes and positions as the whole file for every images file of the real trees",
    () => {
      let itemFiles = 0;
      for (const tree of trees) {
        for (const project of readdirSync(path.join(tree, "images"))) {
          const file = path.join(tree, "images", project, "images.yaml");
          if (!existsSync(file)) continue;
          if (itemPath(readFileSync(file, "utf8")) === "items") itemFiles += 1;
        }
      }
      // Comment-only and one-image files take the whole-file path; the rest are split.
      expect(itemFiles).toBeGreaterThanOrEqual(40);
    },
  );
});
