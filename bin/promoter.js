#!/usr/bin/env node
// The `promoter` executable: a thin launcher for the compiled CLI in dist/.
import { main } from "../dist/cli/entry.js";

await main();
