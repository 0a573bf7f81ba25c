import { mkdir, rm } from "node:fs/promises";
import * as path from "node:path";
import { PromoterError } from "../errors.js";
import { GIT_TIMEOUT_MS, GitCommandError, runGitProcess, type GitRepository } from "../git/index.js";
import { MAX_WINDOW_REVISIONS, type ChainCommit } from "./revision-history.js";

/**
 * A shallow clone of the repository holding the manifests, kept up to date by fetching one
 * branch. Uses the `git` program (so users' credential helpers, SSH keys and `insteadOf`
 * rules from their git configuration apply) through the hardened runner (src/git): prompts
 * disabled (the server must never wait for a password), the clone named explicitly to every
 * command after it, hooks off, and an environment without the auditor's secrets.
 *
 * Credentials in an http(s) URL (`https://user:token@host/...`) are never given to git in the
 * URL: git would put the URL on its command line and its remote helper's (readable by every
 * local user in /proc/<pid>/cmdline) and write it into the clone's .git/config. They are sent as
 * an `Authorization` header for that origin only, configured through git's environment.
 *
 * The clone holds the last MAX_WINDOW_REVISIONS commits of the branch, so the auditor can judge
 * an event against the manifests of a merge that was just replaced (revision-history.ts): a
 * past commit's tree is written into a folder of its own (`materialize`), never into the clone's
 * work tree or index. Commands on the clone run one at a time, except the network part of a
 * fetch: a git server that answers slowly, or not at all until git's timeout, must not hold up
 * reading the commits already fetched (the auditor judges events against them, and promises a
 * verdict within a minute). git writes what a fetch brings (packs, the shallow list, refs)
 * atomically, so commands reading the clone meanwhile see it as it was before or after.
 */

export { GIT_TIMEOUT_MS };
const MAX_GIT_OUTPUT_BYTES = 1024 * 1024;
/** Commits fetched: the history the auditor judges recent events against. */
export const HISTORY_DEPTH = MAX_WINDOW_REVISIONS;
const OBJECT_ID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

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

/** `refs/heads/<branch>`: the branch, never a tag or another ref that a short name may match first. */
function fullBranchName(branch: string): string {
  return branch.startsWith("refs/heads/") ? branch : `refs/heads/${branch}`;
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

type PrivateConfig = readonly (readonly [key: string, value: string])[];

/** Runs git for the checkout: `repository` undefined only for the clone that creates it. */
async function runGit(
  args: readonly string[],
  repository: GitRepository | undefined,
  privateConfig: PrivateConfig,
  signal?: AbortSignal,
): Promise<string> {
  try {
    const output = await runGitProcess({
      args,
      ...(repository ? { repository } : {}),
      network: "remote",
      timeoutMs: GIT_TIMEOUT_MS,
      maxOutputBytes: MAX_GIT_OUTPUT_BYTES,
      redact: redactGitUrl,
      privateConfig,
      ...(signal ? { signal } : {}),
    });
    return output.toString("utf8").trim();
  } catch (error) {
    if (error instanceof GitCommandError) throw new GitError(error.message, { cause: error });
    throw error;
  }
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
  /** The clone, named to every git command after the clone itself. */
  private readonly repository: GitRepository;
  /** The `Authorization` header for the URL's origin, when the URL carried credentials. */
  private readonly privateConfig: PrivateConfig;
  /** The last command queued: the next one waits for it. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The last fetch queued (its network part runs outside `queue`): the next fetch waits for it. */
  private fetchQueue: Promise<unknown> = Promise.resolve();

  constructor(options: GitCheckoutOptions) {
    const urlProblem = gitUrlProblem(options.url);
    if (urlProblem) throw new GitError(`--git-url ${redactGitUrl(options.url)}: ${urlProblem}`);
    if (options.branch !== undefined) {
      const branchProblem = gitBranchProblem(options.branch);
      if (branchProblem) throw new GitError(`--branch: ${branchProblem}`);
    }
    const { url, authorization } = splitGitCredentials(options.url);
    this.url = url;
    this.privateConfig =
      authorization === undefined
        ? []
        : [[`http.${new URL(url).origin}/.extraHeader`, `Authorization: ${authorization}`]];
    this.branch = options.branch;
    this.directory = options.directory;
    this.repository = { gitDir: path.join(options.directory, ".git"), workTree: options.directory };
  }

  /** Runs `task` once every command queued before it has finished. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Runs `task` once every fetch queued before it has finished. */
  private oneFetchAtATime<T>(task: () => Promise<T>): Promise<T> {
    const run = this.fetchQueue.then(task, task);
    this.fetchQueue = run.catch(() => undefined);
    return run;
  }

  /** Shallow clone of the branch (or the default branch); returns the commit. */
  clone(signal?: AbortSignal): Promise<string> {
    return this.oneFetchAtATime(() => this.exclusive(() => this.cloneNow(signal)));
  }

  private async cloneNow(signal?: AbortSignal): Promise<string> {
    const branch = this.branch === undefined ? [] : ["--branch", this.branch];
    await runGit(
      [
        "clone",
        "--quiet",
        "--depth",
        String(HISTORY_DEPTH),
        "--single-branch",
        "--no-tags",
        "--no-recurse-submodules",
        ...branch,
        "--",
        this.url,
        this.directory,
      ],
      undefined,
      this.privateConfig,
      signal,
    );
    return this.commitNow(signal);
  }

  commit(signal?: AbortSignal): Promise<string> {
    return this.exclusive(() => this.commitNow(signal));
  }

  private commitNow(signal?: AbortSignal): Promise<string> {
    return runGit(["rev-parse", "--verify", "HEAD^{commit}"], this.repository, this.privateConfig, signal);
  }

  /**
   * The branch's first-parent chain from the checked-out commit, newest first, with commit
   * times: the merges, not the commits of the branches they brought in.
   */
  firstParentChain(signal?: AbortSignal): Promise<ChainCommit[]> {
    return this.exclusive(async () => {
      const output = await runGit(
        ["rev-list", "--first-parent", `--max-count=${HISTORY_DEPTH}`, "--timestamp", "HEAD"],
        this.repository,
        this.privateConfig,
        signal,
      );
      const chain: ChainCommit[] = [];
      for (const line of output.split("\n")) {
        const [seconds, commit] = line.trim().split(" ");
        if (commit === undefined || !OBJECT_ID.test(commit) || !/^\d+$/.test(seconds ?? "")) continue;
        chain.push({ commit, committedAt: Number(seconds) * 1000 });
      }
      return chain;
    });
  }

  /**
   * Writes the tree of `commit` (a commit of the clone) into `directory`, emptied first, as git
   * would check it out; the clone's own work tree, index and HEAD are not touched.
   */
  materialize(commit: string, directory: string, signal?: AbortSignal): Promise<void> {
    if (!OBJECT_ID.test(commit)) {
      return Promise.reject(new GitError(`${JSON.stringify(commit)} is not a commit id`));
    }
    return this.exclusive(async () => {
      await rm(directory, { recursive: true, force: true });
      await mkdir(directory, { recursive: true });
      // https://git-scm.com/docs/git-restore: --worktree alone leaves the index as it is.
      await runGit(
        ["restore", `--source=${commit}`, "--worktree", "--", "."],
        { gitDir: this.repository.gitDir, workTree: directory },
        this.privateConfig,
        signal,
      );
    });
  }

  /**
   * Fetches the branch and moves the work tree to it when it changed; returns the commit and
   * whether it changed. The work tree is ours alone, so a hard reset is safe.
   */
  update(signal?: AbortSignal): Promise<{ commit: string; changed: boolean }> {
    return this.oneFetchAtATime(async () => {
      await this.fetchNow(signal);
      return this.exclusive(() => this.moveToFetched(signal));
    });
  }

  /** The network part: FETCH_HEAD and the objects; the work tree and HEAD are not touched. */
  private async fetchNow(signal?: AbortSignal): Promise<void> {
    await runGit(
      [
        "fetch",
        "--quiet",
        "--depth",
        String(HISTORY_DEPTH),
        "--no-tags",
        "--no-recurse-submodules",
        "--end-of-options",
        "origin",
        // The branch by its full name: git reads a short name as a tag before a branch, and
        // whoever may push a tag (not the reviewed branch) could name one like it.
        this.branch === undefined ? "HEAD" : fullBranchName(this.branch),
      ],
      this.repository,
      this.privateConfig,
      signal,
    );
  }

  private async moveToFetched(signal?: AbortSignal): Promise<{ commit: string; changed: boolean }> {
    const before = await this.commitNow(signal);
    const fetched = await runGit(
      ["rev-parse", "--verify", "FETCH_HEAD^{commit}"],
      this.repository,
      this.privateConfig,
      signal,
    );
    if (fetched === before) return { commit: before, changed: false };
    await runGit(["reset", "--quiet", "--hard", fetched], this.repository, this.privateConfig, signal);
    return { commit: fetched, changed: true };
  }
}
