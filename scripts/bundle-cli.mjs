#!/usr/bin/env node
// The `promoter` executable runs a bundle of the compiled CLI (dist/bundle/), not the ~270
// modules of dist/ and yaml one by one: Node's module loader spent ~150 ms of every command's
// start on finding, reading and linking them, as long as a `promote` that has nothing to do
// takes for its requests (docs/reliability.md, "Promotion over distance"). The library
// (dist/index.js) stays unbundled.
//
// Each command is its own chunk, loaded when it runs, as in dist/ (src/cli/commands/index.ts).
// Left to Node's loader: the packages loaded only for some runs (sigstore, Google's client
// library, SQLite) and undici, which the transport loads part by part (undici-core.ts). The
// bundle sits two folders below the package root like dist/cli/, so the paths the code finds
// from its own location (package.json, node_modules) hold; the auditor's status page assets
// are copied beside it.
import { build } from "esbuild";
import { cpSync, rmSync } from "node:fs";
import * as path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const outdir = path.join(root, "dist", "bundle");
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { entry: path.join(root, "dist", "cli", "entry.js") },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20.19",
  external: ["undici", "undici/*", "@sigstore/*", "google-auth-library", "better-sqlite3"],
  // yaml is CommonJS: its bundled modules get a `require` for what they take from Node.
  banner: {
    js: 'import { createRequire as bundleRequire } from "node:module";\nconst require = bundleRequire(import.meta.url);',
  },
  sourcemap: "linked",
  logLevel: "warning",
});
cpSync(path.join(root, "dist", "audit", "status-page"), path.join(outdir, "status-page"), {
  recursive: true,
});
