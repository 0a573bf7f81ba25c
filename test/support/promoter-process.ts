import { spawn, type ChildProcessByStdio } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { expect } from "vitest";
import { allowingLoopbackRegistries } from "./local-registries.js";

/**
 * `promoter` as a user runs it: a child process of bin/promoter.js (which runs dist/, so build
 * first). For the hostile corpus (test/hostile/), where what matters is what the user sees: the
 * exit status, one clear line, no stack trace.
 */

export const REPOSITORY_ROOT = path.resolve(import.meta.dirname, "../..");
export const PROMOTER_BIN = path.join(REPOSITORY_ROOT, "bin", "promoter.js");

export interface PromoterRun {
  /** Exit status; null when the run was killed (see `onTimeout`). */
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time of the run. */
  readonly ms: number;
}

export interface PromoterProcessOptions {
  readonly cwd: string;
  /** The child's environment: nothing of the test's but PATH, and HOME (= cwd), when absent. */
  readonly env?: Readonly<Record<string, string>>;
  /** `env` exactly as given, without PATH or HOME added. */
  readonly exactEnv?: boolean;
  readonly timeoutMs?: number;
  /**
   * When the run outlives `timeoutMs`, it is killed and the promise rejects (default), or
   * resolves with status null and what it printed (for tests where a hang is the finding).
   */
  readonly onTimeout?: "reject" | "resolve";
  /**
   * The test registries listen on 127.0.0.1, which the registry policy refuses unless the
   * operator allows it: validate, check and promote get `--allow-registry` for loopback (default
   * true), as a user running local registries would pass it. Off for tests of the refusal itself.
   */
  readonly allowLoopbackRegistries?: boolean;
}

/** Throws unless dist/ exists: the child runs the built CLI. */
export function requireBuiltCli(): void {
  if (!existsSync(path.join(REPOSITORY_ROOT, "dist", "bundle", "entry.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before the hostile tests");
  }
}

function childEnv(options: PromoterProcessOptions): Record<string, string> {
  if (options.exactEnv) return { ...options.env };
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: options.cwd,
    ...options.env,
  };
}

/** Runs `promoter ...args` to completion. */
export function runPromoter(args: readonly string[], options: PromoterProcessOptions): Promise<PromoterRun> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const started = performance.now();
  const argv = options.allowLoopbackRegistries === false ? [...args] : allowingLoopbackRegistries(args);
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const child = spawn(process.execPath, [PROMOTER_BIN, ...argv], {
      cwd: options.cwd,
      env: childEnv(options),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
      if (options.onTimeout !== "resolve") {
        reject(
          new Error(`promoter ${args.join(" ")} did not finish in ${timeoutMs} ms:\n${stderr.slice(-4000)}`),
        );
      }
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // "close", not "exit": every byte the child printed has been read by then.
    child.on("close", (status) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      resolve({
        status,
        stdout,
        stderr: timedOut ? `${stderr}\n(killed after ${Math.round(ms)} ms)` : stderr,
        ms,
      });
    });
  });
}

/** A line of a JavaScript stack trace (not the plan's "at images.yaml:3:5"). */
export const STACK_LINE = /^\s+at .*(?:\.[cm]?[jt]s|node:[\w/]+):\d+:\d+\)?$/m;

/** The run stopped with `status` and a clear message: no stack trace, no internal error. */
export function expectClear(
  run: Pick<PromoterRun, "status" | "stdout" | "stderr">,
  status: number,
  message?: RegExp,
): void {
  const all = `${run.stdout}\n${run.stderr}`;
  expect(run.status, all).toBe(status);
  if (message) expect(all).toMatch(message);
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
  expect(all).not.toMatch(/\[object Object\]|undefined:/);
}

/** A long-running promoter (`audit serve`): its output lines, and a way to stop it. */
export class PromoterProcess {
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private stdoutText = "";
  private stderrText = "";
  private readonly exited: Promise<number | null>;
  private hasExited = false;

  private constructor(child: ChildProcessByStdio<null, Readable, Readable>) {
    this.child = child;
    child.stdout.on("data", (chunk: Buffer) => (this.stdoutText += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (this.stderrText += chunk.toString()));
    this.exited = new Promise((resolve) => {
      child.on("exit", (status) => {
        this.hasExited = true;
        resolve(status);
      });
    });
  }

  static start(args: readonly string[], options: PromoterProcessOptions): PromoterProcess {
    return new PromoterProcess(
      spawn(
        process.execPath,
        [
          PROMOTER_BIN,
          ...(options.allowLoopbackRegistries === false ? args : allowingLoopbackRegistries(args)),
        ],
        {
          cwd: options.cwd,
          env: childEnv(options),
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Polls the output until `find` returns a value; throws when the process exits or time runs out. */
  async waitFor<T>(find: (stdout: string) => T | undefined, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find(this.stdoutText);
      if (found !== undefined) return found;
      if (this.hasExited || Date.now() > deadline) {
        throw new Error(
          `promoter ${this.hasExited ? "exited" : "did not print what was awaited"}:\n${this.stdoutText}\n${this.stderrText}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** SIGTERM, then the exit status (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
