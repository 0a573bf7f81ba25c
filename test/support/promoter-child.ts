/**
 * Runs the real CLI (`bin/promoter.js`, which runs `dist/`: build first) as a child process, as a
 * user or CI runs it, for the hostile corpus (test/hostile/). Only the variables given are passed
 * on, besides PATH and HOME.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "vitest";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const cli = path.join(repoRoot, "bin", "promoter.js");

export interface PromoterRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface PromoterChildOptions {
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export function runPromoter(args: readonly string[], options: PromoterChildOptions): Promise<PromoterRun> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: options.cwd, ...options.env },
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
    child.on("exit", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A line of a JavaScript stack trace (not the plan's "at images.yaml:3:5"). */
const STACK_LINE = /^\s+at .*(?:\.[cm]?[jt]s|node:[\w/]+):\d+:\d+\)?$/m;

/** The run ended with `status`, said `message`, and printed no stack trace or internal error. */
export function expectClearRun(run: PromoterRun, status: number, message?: RegExp): void {
  const all = `${run.stdout}\n${run.stderr}`;
  expect(run.status, all).toBe(status);
  if (message) expect(all).toMatch(message);
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
}
