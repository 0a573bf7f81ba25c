import { execFile } from "node:child_process";
import { PromoterError } from "../errors.js";

/**
 * A shallow clone of the repository holding the manifests, kept up to date by fetching one
 * branch. Uses the `git` program (so users' credential helpers, SSH keys and `insteadOf`
 * rules apply) with prompts disabled: the server must never wait for a password.
 *
 * Credentials in an http(s) URL (`https://user:token@host/...`) are never given to git in the
 * URL: git would put the URL on its command line and its remote helper's (readable by every
 * local user in /proc/<pid>/cmdline) and write it into the clone's .git/config. They are sent as
 * an `Authorization` header instead, configured through git's environment (GIT_CONFIG_COUNT,
 * git 2.31 or later; https://git-scm.com/docs/git-config#ENVIRONMENT) for that origin only.
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

/** An http(s) URL without its user part, and that user part as an HTTP Basic `Authorization` value. */
export function splitGitCredentials(url: string): { url: string; authorization?: string } {
  if (!/^https?:\/\//i.test(url)) return { url };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url };
  }
  if (parsed.username === "" && parsed.password === "") return { url };
  const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = "";
  parsed.password = "";
  return { url: parsed.href, authorization: `Basic ${Buffer.from(credentials).toString("base64")}` };
}

/** git's environment: no prompts, and the `Authorization` header for `url`'s origin when given. */
function gitEnvironment(url: string, authorization: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
  };
  if (authorization === undefined) return env;
  // Entries the user configured this way stay; ours is added after them.
  const existing = Number.parseInt(process.env.GIT_CONFIG_COUNT ?? "0", 10);
  const index = Number.isSafeInteger(existing) && existing > 0 ? existing : 0;
  env.GIT_CONFIG_COUNT = String(index + 1);
  env[`GIT_CONFIG_KEY_${index}`] = `http.${new URL(url).origin}/.extraHeader`;
  env[`GIT_CONFIG_VALUE_${index}`] = `Authorization: ${authorization}`;
  return env;
}

function runGit(
  args: readonly string[],
  cwd: string | undefined,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      [...args],
      {
        ...(cwd === undefined ? {} : { cwd }),
        timeout: GIT_TIMEOUT_MS,
        maxBuffer: MAX_GIT_OUTPUT_BYTES,
        env,
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
  /** The URL git is given: without credentials (see above). */
  readonly url: string;
  readonly branch: string | undefined;
  readonly directory: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(options: GitCheckoutOptions) {
    const urlProblem = gitUrlProblem(options.url);
    if (urlProblem) throw new GitError(`--git-url ${redactGitUrl(options.url)}: ${urlProblem}`);
    if (options.branch !== undefined) {
      const branchProblem = gitBranchProblem(options.branch);
      if (branchProblem) throw new GitError(`--branch: ${branchProblem}`);
    }
    const { url, authorization } = splitGitCredentials(options.url);
    this.url = url;
    this.env = gitEnvironment(url, authorization);
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
      this.env,
      signal,
    );
    return this.commit(signal);
  }

  async commit(signal?: AbortSignal): Promise<string> {
    return runGit(["rev-parse", "HEAD"], this.directory, this.env, signal);
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
      this.env,
      signal,
    );
    const fetched = await runGit(["rev-parse", "FETCH_HEAD"], this.directory, this.env, signal);
    if (fetched === before) return { commit: before, changed: false };
    await runGit(["reset", "--quiet", "--hard", fetched], this.directory, this.env, signal);
    return { commit: fetched, changed: true };
  }
}
