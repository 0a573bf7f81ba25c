import { spawn } from "node:child_process";
import { AbortedError, PromoterError } from "../errors.js";

/**
 * The few git plumbing commands the GitOps checks need, run as the `git` program: which commit a
 * revision names, which files a tree holds below a path, and their contents. Plumbing output is
 * stable across git versions (https://git-scm.com/docs/git-ls-tree, git-cat-file --batch).
 */

/** Output kept from one git command; a manifest tree is a few MB (the real one ~6 MB). */
export const MAX_GIT_OUTPUT_BYTES = 256 * 1024 * 1024;
/** Error text kept from git's stderr. */
const MAX_GIT_STDERR_CHARS = 4000;

/** A git command failed or git is missing (exit status 2 in the CLI: the input is wrong). */
export class GitCommandError extends PromoterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("git", message, options);
  }
}

export interface GitOptions {
  /** A directory inside the work tree. */
  readonly cwd: string;
  readonly signal?: AbortSignal;
  /** The git program (default `git` from PATH). */
  readonly program?: string;
}

/** Runs git and resolves with its stdout; rejects with GitCommandError on a non-zero exit. */
export function runGit(args: readonly string[], options: GitOptions, input?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new AbortedError("git was not started: aborted"));
      return;
    }
    const child = spawn(options.program ?? "git", args, {
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      // Never ask for credentials or open an editor; the commands used here are read-only.
      env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0", LC_ALL: "C" },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = "";
    let failed = false;
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_GIT_OUTPUT_BYTES) {
        failed = true;
        child.kill();
        reject(new GitCommandError(`git ${args[0] ?? ""} printed more than ${MAX_GIT_OUTPUT_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < MAX_GIT_STDERR_CHARS) stderr += chunk.toString("utf8");
    });
    child.on("error", (error) => {
      if (failed) return;
      failed = true;
      if (options.signal?.aborted) reject(new AbortedError("git was aborted", { cause: error }));
      else reject(new GitCommandError(`cannot run git: ${error.message}`, { cause: error }));
    });
    child.on("close", (code) => {
      if (failed) return;
      if (code === 0) resolve(Buffer.concat(chunks));
      else {
        const reason = stderr.trim().split("\n").slice(0, 3).join("; ");
        reject(new GitCommandError(`git ${args.join(" ")} failed (exit ${code ?? "killed"}): ${reason}`));
      }
    });
    child.stdin.on("error", () => {
      // git may exit before reading all input (it reports the reason on stderr).
    });
    child.stdin.end(input ?? "");
  });
}

/** The top folder of the work tree that holds `options.cwd`. */
export async function gitTopLevel(options: GitOptions): Promise<string> {
  const output = await runGit(["rev-parse", "--show-toplevel"], options);
  return output.toString("utf8").trim();
}

/** The full commit id a revision names (`main`, `HEAD~1`, `origin/main`, a hash). */
export async function resolveCommit(revision: string, options: GitOptions): Promise<string> {
  if (revision.startsWith("-") || revision.length === 0) {
    throw new GitCommandError(`${JSON.stringify(revision)} is not a revision`);
  }
  try {
    const output = await runGit(
      ["rev-parse", "--verify", "--quiet", "--end-of-options", `${revision}^{commit}`],
      options,
    );
    return output.toString("utf8").trim();
  } catch (error) {
    if (error instanceof GitCommandError) {
      throw new GitCommandError(
        `unknown revision ${JSON.stringify(revision)} (in CI, fetch enough history: actions/checkout with fetch-depth: 0)`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** One file of a tree, as `git ls-tree -r -l` lists it. */
export interface TreeFile {
  /** Path from the top of the work tree, with `/`. */
  readonly path: string;
  /** `100644`, `100755`, `120000` (symbolic link), `160000` (submodule). */
  readonly mode: string;
  readonly object: string;
  /** Size in bytes (undefined for submodules). */
  readonly size: number | undefined;
}

/** Every file below `paths` (from the top of the work tree) in a commit; absent paths list nothing. */
export async function listTree(
  commit: string,
  paths: readonly string[],
  options: GitOptions,
): Promise<TreeFile[]> {
  const output = await runGit(["ls-tree", "-r", "-l", "-z", "--full-tree", commit, "--", ...paths], options);
  const files: TreeFile[] = [];
  for (const record of output.toString("utf8").split("\0")) {
    if (record === "") continue;
    // "<mode> SP <type> SP <object> SP* <size> TAB <path>"
    const tab = record.indexOf("\t");
    const [mode, type, object, size] = record.slice(0, tab).split(/ +/);
    if (tab < 0 || mode === undefined || object === undefined || type !== "blob") continue;
    files.push({
      path: record.slice(tab + 1),
      mode,
      object,
      size: size === undefined || size === "-" ? undefined : Number(size),
    });
  }
  return files;
}

/** The contents of blobs by object id, read with one `git cat-file --batch`. */
export async function readBlobs(
  objects: readonly string[],
  options: GitOptions,
): Promise<Map<string, Buffer>> {
  const unique = [...new Set(objects)];
  const blobs = new Map<string, Buffer>();
  if (unique.length === 0) return blobs;
  const output = await runGit(["cat-file", "--batch"], options, `${unique.join("\n")}\n`);
  let offset = 0;
  for (const object of unique) {
    const headerEnd = output.indexOf(0x0a, offset);
    if (headerEnd < 0) throw new GitCommandError("git cat-file --batch ended early");
    const header = output.subarray(offset, headerEnd).toString("utf8");
    const [id, type, sizeText] = header.split(" ");
    if (type === "missing" || sizeText === undefined || id === undefined) {
      throw new GitCommandError(`git object ${object} is missing`);
    }
    const size = Number(sizeText);
    const start = headerEnd + 1;
    blobs.set(object, output.subarray(start, start + size));
    offset = start + size + 1;
  }
  return blobs;
}

/** A file's contents at a commit, or undefined when the commit does not have it. */
export async function showFile(
  commit: string,
  filePath: string,
  options: GitOptions,
): Promise<Buffer | undefined> {
  const files = await listTree(commit, [filePath], options);
  const file = files.find((entry) => entry.path === filePath);
  if (!file) return undefined;
  return (await readBlobs([file.object], options)).get(file.object);
}
