#!/usr/bin/env node
// The `promoter` executable: a thin launcher for the compiled CLI, bundled (dist/bundle/, made by
// scripts/bundle-cli.mjs in `npm run build`) so that it starts without loading ~270 modules.
import { main } from "../dist/bundle/entry.js";

await main();
