import { runGitProcess, GitCommandError, type GitRepository } from "../git/index.js";

export { GitCommandError, type GitRepository } from "../git/index.js";

/**
 * The few git plumbing commands the GitOps checks need, run through the hardened runner
 * (src/git): where the repository is, which commit a revision names, which entries a tree holds
 * below a path, and the contents of blobs. Plumbing output is stable across git versions
 * (https://git-scm.com/docs/git-ls-tree, https://git-scm.com/docs/git-cat-file#_batch_output).
 */

/** Output kept from one git command; a manifest tree is a few MB (the real one ~6 MB). */
export const MAX_GIT_OUTPUT_BYTES = 256 * 1024 * 1024;
/** Output of the command that locates the repository (two paths). */
const MAX_LOCATE_OUTPUT_BYTES = 64 * 1024;

export interface GitOptions {
  /** The repository, from {@link locateRepository}: git never searches for one itself. */
  readonly repository: GitRepository;
  readonly signal?: AbortSignal;
  /** The git program (default `git` from PATH). */
  readonly program?: string;
}

/** Runs a git command that reads the named repository; no transport is allowed. */
export function runGit(args: readonly string[], options: GitOptions, input?: string): Promise<Buffer> {
  return runGitProcess({
    args,
    repository: options.repository,
    network: "none",
    maxOutputBytes: MAX_GIT_OUTPUT_BYTES,
    ...(input === undefined ? {} : { input }),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.program ? { program: options.program } : {}),
  });
}

/**
 * The repository whose work tree holds `directory`: the directory the promoter was started in
 * (in CI, the checkout), never the manifest folder. git searches upward from there for `.git`
 * as it always does, but refuses any folder that merely looks like a git directory
 * (`safe.bareRepository=explicit`), so a repository committed into a pull request's tree is
 * an error, never the repository read.
 */
export async function locateRepository(
  directory: string,
  options: { readonly signal?: AbortSignal; readonly program?: string } = {},
): Promise<GitRepository> {
  let output: Buffer;
  try {
    output = await runGitProcess({
      args: ["rev-parse", "--absolute-git-dir", "--show-toplevel"],
      cwd: directory,
      network: "none",
      maxOutputBytes: MAX_LOCATE_OUTPUT_BYTES,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.program ? { program: options.program } : {}),
    });
  } catch (error) {
    if (!(error instanceof GitCommandError)) throw error;
    throw new GitCommandError(
      `${directory} is not in a git work tree (${error.message}); run the promoter in the repository's checkout`,
      { cause: error },
    );
  }
  const [gitDir, workTree] = output.toString("utf8").split("\n");
  if (!gitDir || !workTree) throw new GitCommandError(`git did not locate the repository of ${directory}`);
  return { gitDir, workTree };
}

/**
 * The commit the current branch (first parents of HEAD) pointed at just before `moment`: the
 * state "N days ago" a time-bounded promotion compares with. Undefined when HEAD's history
 * starts after `moment`.
 *
 * Committer dates decide, but they are whoever committed's choice, so they are not trusted one
 * by one (as `git rev-list --before` does, taking the first commit dated before `moment`): a
 * commit that reached the branch with its date set a year back would become "the state then"
 * and hide every edge it and the commits below it added. On an honest branch a commit is newer
 * than its first parent, so a commit counts as at least as new as the newest commit beneath it,
 * and the base is the newest commit that, with everything beneath it, is dated before `moment`.
 * A date in the future only widens the window (more of the reviewed branch is compared).
 */
export async function lastCommitBefore(moment: Date, options: GitOptions): Promise<string | undefined> {
  const seconds = Math.floor(moment.getTime() / 1000);
  const output = await runGit(
    ["rev-list", "--first-parent", "--timestamp", "--end-of-options", "HEAD"],
    options,
  );
  // Newest first: the base is the commit after the oldest one dated at or after `moment`.
  const chain = output
    .toString("utf8")
    .split("\n")
    .filter((line) => line !== "");
  let base: string | undefined;
  for (const line of chain) {
    const [timestamp, commit] = line.split(" ");
    if (Number(timestamp) >= seconds) base = undefined;
    else base ??= commit;
  }
  return base;
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

/** Git's file modes (https://git-scm.com/docs/git-fast-import#_filemodify). */
export const GIT_MODE = {
  file: "100644",
  executable: "100755",
  symlink: "120000",
  submodule: "160000",
  tree: "040000",
} as const;

/** One entry of a tree, as `git ls-tree -l` lists it. */
export interface TreeFile {
  /** Path from the top of the work tree, with `/`. */
  readonly path: string;
  /** `100644`, `100755`, `120000` (symbolic link), `160000` (submodule), `040000` (folder). */
  readonly mode: string;
  /** `blob`, `tree` or `commit` (a submodule). */
  readonly type: string;
  readonly object: string;
  /** Size in bytes (undefined for submodules and folders). */
  readonly size: number | undefined;
}

/** A regular file (not a symbolic link, a submodule or a folder): the only entries whose content is read. */
export function isRegularFile(entry: TreeFile): boolean {
  return entry.type === "blob" && (entry.mode === GIT_MODE.file || entry.mode === GIT_MODE.executable);
}

function parseTree(output: Buffer): TreeFile[] {
  const files: TreeFile[] = [];
  for (const record of output.toString("utf8").split("\0")) {
    if (record === "") continue;
    // "<mode> SP <type> SP <object> SP* <size> TAB <path>"
    const tab = record.indexOf("\t");
    if (tab < 0) continue;
    const [mode, type, object, size] = record.slice(0, tab).split(/ +/);
    if (mode === undefined || type === undefined || object === undefined) continue;
    files.push({
      path: record.slice(tab + 1),
      mode,
      type,
      object,
      size: size === undefined || size === "-" ? undefined : Number(size),
    });
  }
  return files;
}

/**
 * Every entry below `paths` (from the top of the work tree) in a commit, recursively: files,
 * symbolic links and submodules (folders are walked, not listed). Absent paths list nothing.
 */
export async function listTree(
  commit: string,
  paths: readonly string[],
  options: GitOptions,
): Promise<TreeFile[]> {
  requireObjectId(commit);
  return parseTree(
    await runGit(["ls-tree", "-r", "-l", "-z", "--full-tree", commit, "--", ...paths], options),
  );
}

/** The entries named by `paths` themselves (a folder is listed as one entry, not walked). */
export async function listEntries(
  commit: string,
  paths: readonly string[],
  options: GitOptions,
): Promise<TreeFile[]> {
  if (paths.length === 0) return [];
  requireObjectId(commit);
  return parseTree(await runGit(["ls-tree", "-l", "-z", "--full-tree", commit, "--", ...paths], options));
}

const OBJECT_ID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/** Commits and blobs are named to git by id only (resolveCommit makes one from a revision). */
function requireObjectId(object: string): void {
  if (!OBJECT_ID.test(object)) throw new GitCommandError(`${JSON.stringify(object)} is not a git object id`);
}

/** The contents of blobs by object id, read with one `git cat-file --batch`. */
export async function readBlobs(
  objects: readonly string[],
  options: GitOptions,
): Promise<Map<string, Buffer>> {
  const unique = [...new Set(objects)];
  const blobs = new Map<string, Buffer>();
  if (unique.length === 0) return blobs;
  // --batch reads revision expressions too ("HEAD:path"); only object ids are asked for.
  unique.forEach(requireObjectId);
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
    if (type !== "blob") throw new GitCommandError(`git object ${object} is a ${type}, not a file`);
    const size = Number(sizeText);
    const start = headerEnd + 1;
    blobs.set(object, output.subarray(start, start + size));
    offset = start + size + 1;
  }
  return blobs;
}

/** A regular file's contents at a commit, or undefined when the commit does not have one there. */
export async function showFile(
  commit: string,
  filePath: string,
  options: GitOptions,
): Promise<Buffer | undefined> {
  const files = await listTree(commit, [filePath], options);
  const file = files.find((entry) => entry.path === filePath);
  if (!file || !isRegularFile(file)) return undefined;
  return (await readBlobs([file.object], options)).get(file.object);
}
