import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPOSITORY_ROOT, requireBuiltCli } from "../support/promoter-process.js";

/**
 * The package as its users install it: `image-promoter` (the library) must not load the native
 * addon only the auditor needs, and must work where better-sqlite3 is not installed
 * (`npm install --omit=optional`, or a platform where the addon does not build);
 * `image-promoter/audit` is the auditor's own entry point, and says which package is missing
 * when it is. Each check runs the built package (dist/) in a child node process.
 */

const SQLITE_PACKAGE = "better-sqlite3";

interface ChildResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runNode(args: readonly string[], cwd: string): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...args],
      { cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ status: code, stdout, stderr });
      },
    );
  });
}

/**
 * A script that imports `specifier` (resolved from `cwd`, so the package's own `exports` map is
 * used) and prints, as JSON, the names it exports, the native addons loaded (every addon goes
 * through `process.dlopen`) and the better-sqlite3 modules in the CommonJS cache (an ESM import
 * of a CommonJS package lands there too). `then` runs after the import, with `api` in scope.
 */
function importProbe(specifier: string, then = ""): string {
  return `
import { createRequire } from "node:module";
const addons = [];
const dlopen = process.dlopen;
process.dlopen = function (...args) { addons.push(String(args[1])); return dlopen.apply(this, args); };
const api = await import(${JSON.stringify(specifier)});
${then}
const cached = Object.keys(createRequire(import.meta.url).cache).filter((file) => file.includes(${JSON.stringify(
    `${path.sep}${SQLITE_PACKAGE}${path.sep}`,
  )}));
console.log(JSON.stringify({ names: Object.keys(api), addons, cached }));
`;
}

interface Probe {
  readonly names: string[];
  readonly addons: string[];
  readonly cached: string[];
}

async function probe(specifier: string, cwd: string, then = ""): Promise<Probe> {
  const result = await runNode(["--input-type=module", "-e", importProbe(specifier, then)], cwd);
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout) as Probe;
}

let work: string;
/** The package installed without its optional dependency: dist/, bin/ and package.json copied. */
let withoutSqlite: string;

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "promoter-entry-points-"));
  withoutSqlite = path.join(work, "image-promoter");
  await mkdir(path.join(withoutSqlite, "node_modules"), { recursive: true });
  for (const part of ["dist", "bin", "package.json"]) {
    await cp(path.join(REPOSITORY_ROOT, part), path.join(withoutSqlite, part), { recursive: true });
  }
  // Every installed package but better-sqlite3 (links: they resolve their own dependencies
  // where they really are, and none of them needs it).
  const modules = path.join(REPOSITORY_ROOT, "node_modules");
  for (const name of await readdir(modules)) {
    if (name === SQLITE_PACKAGE || name === ".bin" || name.startsWith(".")) continue;
    await symlink(path.join(modules, name), path.join(withoutSqlite, "node_modules", name));
  }
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("package entry points", () => {
  it("declares the library and the auditor as entry points, better-sqlite3 as optional", async () => {
    const pkg = JSON.parse(await readFile(path.join(REPOSITORY_ROOT, "package.json"), "utf8")) as {
      exports: Record<string, { types: string; import: string }>;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", import: "./dist/index.js" });
    expect(pkg.exports["./audit"]).toEqual({ types: "./dist/audit.d.ts", import: "./dist/audit.js" });
    expect(pkg.dependencies?.[SQLITE_PACKAGE]).toBeUndefined();
    expect(pkg.optionalDependencies?.[SQLITE_PACKAGE]).toBeDefined();
  });

  it("image-promoter loads neither better-sqlite3 nor any native addon", async () => {
    const main = await probe("image-promoter", REPOSITORY_ROOT);
    expect(main.cached).toEqual([]);
    expect(main.addons).toEqual([]);
    expect(main.names).toEqual(expect.arrayContaining(["loadManifests", "promote", "PromoterError"]));
    // The auditor is its own entry point.
    expect(main.names).not.toContain("FindingStore");
    expect(main.names).not.toContain("Auditor");
  });

  it("image-promoter/audit loads better-sqlite3 when, and only when, the finding store opens", async () => {
    const database = path.join(work, "findings.db");
    const imported = await probe("image-promoter/audit", REPOSITORY_ROOT);
    expect(imported.names).toEqual(expect.arrayContaining(["Auditor", "FindingStore", "judgeEvent"]));
    expect(imported.cached).toEqual([]);
    const opened = await probe(
      "image-promoter/audit",
      REPOSITORY_ROOT,
      `api.FindingStore.open(${JSON.stringify(database)}).close();`,
    );
    // The probe sees the addon load: the checks above would have seen it too.
    expect(opened.cached.length).toBeGreaterThan(0);
    expect(opened.addons.some((file) => file.endsWith("better_sqlite3.node"))).toBe(true);
  });

  it("without better-sqlite3 the library and the commands that do not audit work", async () => {
    const main = await probe("image-promoter", withoutSqlite);
    expect(main.names).toContain("loadManifests");
    const manifest = path.join(work, "promoter-manifest.yaml");
    await writeFile(
      manifest,
      "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\nimages: []\n",
    );
    const validate = await runNode(
      [path.join(withoutSqlite, "bin", "promoter.js"), "validate", "--manifest", manifest],
      work,
    );
    expect(validate.stderr).toBe("");
    expect(validate.status).toBe(0);
  });

  it("without better-sqlite3 the auditor names the missing package in one line", async () => {
    // The database exists: only the driver is missing.
    const database = path.join(work, "findings-without-driver.db");
    await writeFile(database, "");
    const findings = await runNode(
      [path.join(withoutSqlite, "bin", "promoter.js"), "audit", "findings", "--db", database],
      work,
    );
    expect(findings.status).toBe(2);
    const lines = findings.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^promoter audit findings: error\[audit-store\]: .*better-sqlite3.*npm install better-sqlite3/,
    );

    const script = `
const { FindingStore } = await import("image-promoter/audit");
try {
  FindingStore.open(${JSON.stringify(database)});
} catch (error) {
  console.log(error.code + ": " + error.message);
}`;
    const library = await runNode(["--input-type=module", "-e", script], withoutSqlite);
    expect(library.stderr).toBe("");
    expect(library.stdout).toMatch(/^audit-store: .*better-sqlite3/);
  });

  it("ships the auditor's status page (HTML, CSS, JavaScript) beside the compiled server", async () => {
    const packed = await new Promise<string>((resolve, reject) => {
      execFile(
        "npm",
        ["pack", "--dry-run", "--json", "--ignore-scripts"],
        { cwd: REPOSITORY_ROOT, timeout: 60_000 },
        (error, stdout) => {
          if (error) reject(new Error(`npm pack --dry-run: ${error.message}`));
          else resolve(stdout);
        },
      );
    });
    const files =
      (JSON.parse(packed) as { files: { path: string }[] }[])[0]?.files.map((file) => file.path) ?? [];
    expect(files).toEqual(
      expect.arrayContaining([
        "dist/audit/status-page.js",
        "dist/audit/status-page/index.html",
        "dist/audit/status-page/status.css",
        "dist/audit/status-page/status.js",
      ]),
    );
  });
});
