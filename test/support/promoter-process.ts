/**
 * Runs `promoter` as a user (or a CI job) does: `bin/promoter.js` (the built dist/) as a child
 * process with exactly the environment the test gives, and collects what it printed.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";

export const REPOSITORY_ROOT = path.resolve(import.meta.dirname, "../..");
export const PROMOTER_PROGRAM = path.join(REPOSITORY_ROOT, "bin", "promoter.js");

export interface PromoterRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A line of a JavaScript stack trace (not the plan's "at images.yaml:3:5"). */
export const STACK_LINE = /^\s+at .*(?:\.[cm]?[jt]s|node:[\w/]+):\d+:\d+\)?$/m;

export function requireBuiltPromoter(): void {
  if (!existsSync(path.join(REPOSITORY_ROOT, "dist", "cli", "entry.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before the hostile tests");
  }
}

/** Runs the CLI in `cwd` with `env` (nothing else of the test's environment but PATH). */
export function runPromoterProcess(
  args: readonly string[],
  options: {
    readonly cwd: string;
    readonly env?: Readonly<Record<string, string>>;
    readonly timeoutMs?: number;
  },
): Promise<PromoterRun> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PROMOTER_PROGRAM, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`promoter ${args.join(" ")} did not finish in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
