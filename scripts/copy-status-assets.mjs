#!/usr/bin/env node
// The auditor's status page is plain HTML, CSS and JavaScript (src/audit/status-page/): tsc does
// not copy them, so the build does, beside the compiled server (dist/audit/status-page/), which
// serves them from there. package.json "files" ships dist/. An argument names another target
// folder (the benchmark's compiled copy, .build/src/audit/status-page).
import { cpSync, mkdirSync } from "node:fs";
import * as path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const from = path.join(root, "src", "audit", "status-page");
const to = path.resolve(root, process.argv[2] ?? path.join("dist", "audit", "status-page"));
mkdirSync(to, { recursive: true });
cpSync(from, to, { recursive: true });
