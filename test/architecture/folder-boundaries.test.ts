import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * "One concept, one home": each folder of src/ is used through its index.ts, and what two
 * backends share lives below both of them, not in one of them. See
 * docs/decisions/0003-store-roles.md. ESLint refuses the same imports as they are written
 * (eslint.config.js, ADR 0005); this test reads the files themselves, so it also sees dynamic
 * `import()` (which the lint rule does not) and does not depend on the lint configuration.
 */

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");

/** Every TypeScript module of `folder` (tests excluded: they may reach into what they test). */
function modulesUnder(folder: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(folder)) {
    const entry = path.join(folder, name);
    if (statSync(entry).isDirectory()) found.push(...modulesUnder(entry));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) found.push(entry);
  }
  return found;
}

/** The relative modules `file` imports or re-exports, as absolute `.ts` paths. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers = [
    ...text.matchAll(/\b(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/g),
    ...text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g),
  ].map((match) => match[1] ?? "");
  return specifiers
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => path.resolve(path.dirname(file), specifier).replace(/\.js$/, ".ts"));
}

/** The top-level folder of src/ a module is in (undefined for files directly in src/). */
function topFolder(file: string): string | undefined {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length > 1 ? parts[0] : undefined;
}

const hasIndex = (folder: string): boolean => {
  try {
    return statSync(path.join(SRC, folder, "index.ts")).isFile();
  } catch {
    return false;
  }
};

describe("folder boundaries in src/", () => {
  it("a folder imports another folder only through that folder's index.ts", () => {
    const pastIndex: string[] = [];
    for (const file of modulesUnder(SRC)) {
      const own = topFolder(file);
      for (const target of relativeImports(file)) {
        const other = topFolder(target);
        if (other === undefined || other === own || !hasIndex(other)) continue;
        if (target !== path.join(SRC, other, "index.ts")) {
          pastIndex.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
        }
      }
    }
    expect(pastIndex).toEqual([]);
  });

  it("the OCI layout backend and the remote backend do not import each other", () => {
    const pairs: readonly (readonly [string, string])[] = [
      ["registry/oci-layout", "registry/remote"],
      ["registry/remote", "registry/oci-layout"],
    ];
    const crossing: string[] = [];
    for (const [from, to] of pairs) {
      for (const file of modulesUnder(path.join(SRC, from))) {
        for (const target of relativeImports(file)) {
          if (target.startsWith(path.join(SRC, to) + path.sep)) {
            crossing.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
          }
        }
      }
    }
    expect(crossing).toEqual([]);
  });

  it("the pull-request workflow does not depend on the auditor (attachment tag names live in sign/)", () => {
    const onAudit = modulesUnder(path.join(SRC, "gitops")).flatMap((file) =>
      relativeImports(file)
        .filter((target) => topFolder(target) === "audit")
        .map((target) => `${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`),
    );
    expect(onAudit).toEqual([]);
  });
});
