import { execFile } from "node:child_process";
import { PromoterError } from "../errors.js";

/**
 * A shallow clone of the repository holding the manifests, kept up to date by fetching one
 * branch. Uses the `git` program (so users' credential helpers, SSH keys and `insteadOf`
 * rules apply) with prompts disabled: the server must never wait for a password.
 */

/** One git command may take this long (a first clone of a large repository included). */
export const GIT_TIMEOUT_MS = 5 * 60_000;
const MAX_GIT_OUTPUT_BYTES = 1024 * 1024;

export class GitError extends PromoterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("audit-git", message, options);
  }
}

/** A URL for messages: user and password removed (`https://token@host/...` is common in CI). */
export function redactGitUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1***@");
}

/** Refuses URLs git would read as an option, and ext:: transports that run commands. */
export function gitUrlProblem(url: string): string | undefined {
  if (url.length === 0) return "the URL is empty";
  if (url.startsWith("-")) return "a URL cannot start with -";
  if (/^ext::/i.test(url)) return "the ext:: transport runs commands and is not allowed";
  return undefined;
}

export function gitBranchProblem(branch: string): string | undefined {
  if (branch.length === 0 || branch.startsWith("-") || /[\s~^:?*[\\]|\.\.|@\{/.test(branch)) {
    return `${JSON.stringify(branch)} is not a branch name`;
  }
  return undefined;
}

function runGit(args: readonly string[], cwd: string | undefined, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      [...args],
      {
        ...(cwd === undefined ? {} : { cwd }),
        timeout: GIT_TIMEOUT_MS,
        maxBuffer: MAX_GIT_OUTPUT_BYTES,
        env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "" },
        ...(signal ? { signal } : {}),
      },
      (error, stdout, stderr) => {
        if (error) {
          const detail = redactGitUrl(stderr.trim() || error.message);
          reject(new GitError(`git ${args[0] ?? ""} failed: ${detail}`, { cause: error }));
          return;
        }
        resolve(stdout.trim());
      },
    );
  });
}

export interface GitCheckoutOptions {
  readonly url: string;
  readonly branch?: string;
  /** An empty or absent directory to clone into. */
  readonly directory: string;
}

export class GitCheckout {
  readonly url: string;
  readonly branch: string | undefined;
  readonly directory: string;

  constructor(options: GitCheckoutOptions) {
    const urlProblem = gitUrlProblem(options.url);
    if (urlProblem) throw new GitError(`--git-url ${redactGitUrl(options.url)}: ${urlProblem}`);
    if (options.branch !== undefined) {
      const branchProblem = gitBranchProblem(options.branch);
      if (branchProblem) throw new GitError(`--branch: ${branchProblem}`);
    }
    this.url = options.url;
    this.branch = options.branch;
    this.directory = options.directory;
  }

  /** Shallow clone of the branch (or the default branch); returns the commit. */
  async clone(signal?: AbortSignal): Promise<string> {
    const branch = this.branch === undefined ? [] : ["--branch", this.branch];
    await runGit(
      [
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--single-branch",
        "--no-tags",
        ...branch,
        "--",
        this.url,
        this.directory,
      ],
      undefined,
      signal,
    );
    return this.commit(signal);
  }

  async commit(signal?: AbortSignal): Promise<string> {
    return runGit(["rev-parse", "HEAD"], this.directory, signal);
  }

  /**
   * Fetches the branch and moves the work tree to it when it changed; returns the commit and
   * whether it changed. The work tree is ours alone, so a hard reset is safe.
   */
  async update(signal?: AbortSignal): Promise<{ commit: string; changed: boolean }> {
    const before = await this.commit(signal);
    await runGit(
      ["fetch", "--quiet", "--depth", "1", "--no-tags", "origin", this.branch ?? "HEAD"],
      this.directory,
      signal,
    );
    const fetched = await runGit(["rev-parse", "FETCH_HEAD"], this.directory, signal);
    if (fetched === before) return { commit: before, changed: false };
    await runGit(["reset", "--quiet", "--hard", fetched], this.directory, signal);
    return { commit: fetched, changed: true };
  }
}
