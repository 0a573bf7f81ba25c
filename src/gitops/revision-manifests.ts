import { realpathSync } from "node:fs";
import { realpath } from "node:fs/promises";
import * as path from "node:path";
import { UsageError } from "../errors.js";
import {
  createManifestSet,
  MAX_MANIFEST_FILE_BYTES,
  parsePlainManifest,
  parseThinManifest,
  type Finding,
  type ManifestSet,
  type ManifestText,
  type PromotionManifest,
} from "../manifest/index.js";
import { THIN_IMAGES_FILE, THIN_MANIFEST_FILE, type ManifestInput } from "../manifest-files/index.js";
import {
  GIT_MODE,
  GitCommandError,
  isRegularFile,
  listEntries,
  listTree,
  locateRepository,
  readBlobs,
  resolveCommit,
  type GitOptions,
  type GitRepository,
  type TreeFile,
} from "./git.js";
import { foldersBetween, hiddenRepositoryRefusal, refuseHiddenRepositories } from "./hidden-repositories.js";

/**
 * The manifests as they were at a git revision, read straight from the object database (nothing
 * is checked out). File names are those of the work tree, so positions read the same as in the
 * working copy and `oci:` directories resolve to the same places; the thin tree may be any
 * folder of the repository. Thin-tree layout rules are kpromo's (src/manifest-files/load.ts).
 *
 * The repository is the one holding the working directory (in CI, the checkout), located before
 * anything is read and named to every git command; a git repository inside the manifest tree
 * is refused first (hidden-repositories.ts). At the revision only regular files are read:
 * a symbolic link (mode 120000) or a submodule (160000) where a manifest, an images file or one
 * of their folders should be is never followed; it is reported in `unread`, and so is a file
 * over the size limit. What they held cannot be compared.
 */

export interface RevisionManifests {
  /** The revision as given, and the commit it names. */
  readonly revision: string;
  readonly commit: string;
  readonly set: ManifestSet;
  /** The text of every manifest and images file at the revision, by absolute work-tree path. */
  readonly files: ReadonlyMap<string, string>;
  /**
   * Entries at the revision that were not read (symbolic links, submodules, files over the size
   * limit), one error finding each naming the path: what they held is unknown.
   */
  readonly unread: readonly Finding[];
}

export interface RevisionOptions {
  /** The working directory: relative inputs are resolved against it, and it locates the repository. */
  readonly cwd: string;
  readonly signal?: AbortSignal;
  readonly gitProgram?: string;
}

/**
 * The input's path from the top of the work tree, with `/`; "" for the top itself. Worked out
 * from the working directory's real path and the path as given, never by resolving links inside
 * the repository: those are the pull request's, and a link there must not choose which path of
 * the base revision is read (a tree replaced by a link to a new folder would read as new).
 */
function pathInRepository(repository: GitRepository, cwd: string, input: string): string {
  const real = path.resolve(realpathSync(cwd), input);
  const relative = path.relative(realpathSync(repository.workTree), real);
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new GitCommandError(
      `${path.resolve(cwd, input)} is not inside the git work tree ${repository.workTree}`,
    );
  }
  return relative.split(path.sep).join("/");
}

/** "a", "a/b", "a/b/c" for "a/b/c"; nothing for "". */
function pathPrefixes(relative: string): string[] {
  if (relative === "") return [];
  const parts = relative.split("/");
  return parts.map((_, index) => parts.slice(0, index + 1).join("/"));
}

function kindOf(entry: TreeFile): string {
  if (entry.mode === GIT_MODE.symlink) return "a symbolic link";
  if (entry.mode === GIT_MODE.submodule) return "a submodule";
  if (entry.type === "tree") return "a folder";
  return `an entry of mode ${entry.mode}`;
}

/** Neither a regular file nor a folder: a symbolic link or a submodule, never followed. */
function isLinkLike(entry: TreeFile): boolean {
  return entry.mode === GIT_MODE.symlink || entry.mode === GIT_MODE.submodule;
}

function unreadFinding(file: string, message: string): Finding {
  return { severity: "error", rule: "git-entry", message, position: { file, line: 1, column: 1 } };
}

function notFollowed(file: string, entry: TreeFile, revision: string): Finding {
  return unreadFinding(
    file,
    `${kindOf(entry)} at ${revision}; only regular files are read from git, so what it points at was not read`,
  );
}

function tooLarge(file: string, size: number, revision: string): Finding {
  return unreadFinding(
    file,
    `${size} bytes at ${revision}, more than the limit of ${MAX_MANIFEST_FILE_BYTES}; it was not read`,
  );
}

/**
 * Refuses a repository hidden where the pull request writes: in the manifest tree (before git
 * runs), then, once the real repository is located, in the folders between its top and the tree.
 */
async function locateTrustedRepository(
  folder: string,
  recursive: boolean,
  options: RevisionOptions,
): Promise<GitRepository> {
  const display = (absolute: string): string => path.relative(options.cwd, absolute) || ".";
  const { topDotGit } = await refuseHiddenRepositories({
    folder,
    recursive,
    dotGitInFolder: "defer",
    display,
  });
  const repository = await locateRepository(options.cwd, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.gitProgram ? { program: options.gitProgram } : {}),
  });
  const between = await foldersBetween(repository.workTree, folder);
  if (topDotGit && between.length > 0) {
    throw hiddenRepositoryRefusal(
      { display },
      path.join(folder, ".git"),
      "a .git entry naming a git directory",
    );
  }
  const realFolder = await realpath(folder).catch(() => folder);
  for (const above of between) {
    if (above === realFolder) continue;
    await refuseHiddenRepositories({ folder: above, recursive: false, dotGitInFolder: "refuse", display });
  }
  return repository;
}

/**
 * Loads the manifests named by `input` as they were at `revision`. A tree or file that did not
 * exist then is an empty set (everything in the working copy is new).
 */
export async function loadManifestsAtRevision(
  input: ManifestInput,
  revision: string,
  options: RevisionOptions,
): Promise<RevisionManifests> {
  if ((input.manifest === undefined) === (input.thinManifestDir === undefined)) {
    throw new UsageError("give exactly one of a manifest file or a thin-manifest directory");
  }
  const target = path.resolve(options.cwd, input.manifest ?? input.thinManifestDir ?? "");
  const folder = input.manifest !== undefined ? path.dirname(target) : target;
  const repository = await locateTrustedRepository(folder, input.manifest === undefined, options);
  const git: GitOptions = {
    repository,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.gitProgram ? { program: options.gitProgram } : {}),
  };
  const commit = await resolveCommit(revision, git);
  const relative = pathInRepository(repository, options.cwd, input.manifest ?? input.thinManifestDir ?? "");
  const read = input.manifest !== undefined ? readPlainManifest : readThinTree;
  return { revision, commit, ...(await read({ target, relative, commit, revision, git })) };
}

/**
 * One file of a thin tree (`pathInTree`, e.g. `manifests/registry-policy.yaml`) as it was at
 * `revision`, read as the manifests are: from the trusted repository, only when it is a regular
 * file below no link or submodule and within the size limit (otherwise a finding naming it).
 * `null` when it did not exist at the revision.
 */
export async function readThinTreeFileAtRevision(
  thinManifestDir: string,
  pathInTree: string,
  revision: string,
  options: RevisionOptions,
): Promise<ManifestText | { readonly finding: Finding } | null> {
  const target = path.resolve(options.cwd, thinManifestDir);
  const repository = await locateTrustedRepository(target, true, options);
  const git: GitOptions = {
    repository,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.gitProgram ? { program: options.gitProgram } : {}),
  };
  const commit = await resolveCommit(revision, git);
  const relative = pathInRepository(repository, options.cwd, thinManifestDir);
  const fileRelative = relative === "" ? pathInTree : `${relative}/${pathInTree}`;
  const file = path.join(target, ...pathInTree.split("/"));
  const read: RevisionRead = { target, relative, commit, revision, git };
  const { entries, unread } = await entriesAlong(read, pathPrefixes(fileRelative));
  const [first] = unread;
  if (first) return { finding: first };
  const entry = entries.get(fileRelative);
  if (!entry) return null;
  if (entry.type === "tree" || !isRegularFile(entry)) return { finding: notFollowed(file, entry, revision) };
  if ((entry.size ?? 0) > MAX_MANIFEST_FILE_BYTES)
    return { finding: tooLarge(file, entry.size ?? 0, revision) };
  const text = (await readBlobs([entry.object], git)).get(entry.object)?.toString("utf8") ?? "";
  return { file, text };
}

interface RevisionRead {
  /** Absolute path of the input in the working copy, and relative to the top with `/`. */
  readonly target: string;
  readonly relative: string;
  readonly commit: string;
  readonly revision: string;
  readonly git: GitOptions;
}

type ReadResult = Pick<RevisionManifests, "set" | "files" | "unread">;

/** The top of the work tree as the working copy names it (`target` less `relative`). */
function workTreeTop(read: RevisionRead): string {
  if (read.relative === "") return read.target;
  return path.resolve(read.target, ...read.relative.split("/").map(() => ".."));
}

/**
 * The entries named by `paths` themselves: a symbolic link or a submodule among them hides
 * everything below it, so each is reported.
 */
async function entriesAlong(
  read: RevisionRead,
  paths: readonly string[],
): Promise<{ entries: Map<string, TreeFile>; unread: Finding[] }> {
  const listed = await listEntries(read.commit, paths, read.git);
  const top = workTreeTop(read);
  const unread = listed
    .filter(isLinkLike)
    .map((entry) => notFollowed(path.join(top, ...entry.path.split("/")), entry, read.revision));
  return { entries: new Map(listed.map((entry) => [entry.path, entry])), unread };
}

async function readPlainManifest(read: RevisionRead): Promise<ReadResult> {
  const files = new Map<string, string>();
  const empty = (unread: Finding[]): ReadResult => ({ set: createManifestSet([]), files, unread });
  const { entries, unread } = await entriesAlong(read, pathPrefixes(read.relative));
  if (unread.length > 0) return empty(unread);
  const entry = entries.get(read.relative);
  if (!entry || entry.type === "tree") return empty([]);
  if (!isRegularFile(entry)) return empty([notFollowed(read.target, entry, read.revision)]);
  if ((entry.size ?? 0) > MAX_MANIFEST_FILE_BYTES)
    return empty([tooLarge(read.target, entry.size ?? 0, read.revision)]);
  const text = (await readBlobs([entry.object], read.git)).get(entry.object)?.toString("utf8") ?? "";
  files.set(read.target, text);
  const parsed = parsePlainManifest({ file: read.target, text });
  return {
    set: createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings),
    files,
    unread,
  };
}

async function readThinTree(read: RevisionRead): Promise<ReadResult> {
  const files = new Map<string, string>();
  const prefix = read.relative === "" ? "" : `${read.relative}/`;
  const roots = [`${prefix}manifests`, `${prefix}images`];
  const along = await entriesAlong(read, [...pathPrefixes(read.relative), ...roots]);
  const unread = along.unread;
  // A link in place of the tree or a folder above it: nothing below can be read.
  const linkAbove = pathPrefixes(read.relative).some((folder) => {
    const entry = along.entries.get(folder);
    return entry !== undefined && isLinkLike(entry);
  });
  if (linkAbove) {
    return { set: createManifestSet([]), files, unread };
  }
  const absolute = (entry: TreeFile): string =>
    path.join(read.target, ...entry.path.slice(prefix.length).split("/"));
  const listed = (await listTree(read.commit, roots, read.git)).filter((entry) =>
    entry.path.startsWith(prefix),
  );
  const byPath = new Map(listed.map((entry) => [entry.path, entry]));

  // Only the entries the thin layout reads matter: manifests/<p>/promoter-manifest.yaml and
  // images/<p>/images.yaml, and the two folders above each.
  const wantedFile = (parts: readonly string[]): boolean =>
    parts.length === 3 &&
    ((parts[0] === "manifests" && parts[2] === THIN_MANIFEST_FILE) ||
      (parts[0] === "images" && parts[2] === THIN_IMAGES_FILE));
  const wantedFolder = (parts: readonly string[]): boolean =>
    parts.length === 2 && (parts[0] === "manifests" || parts[0] === "images");
  const refused = new Set<string>();
  for (const entry of listed) {
    const parts = entry.path.slice(prefix.length).split("/");
    const shadowsFolder = wantedFolder(parts) && isLinkLike(entry);
    const oddFile = wantedFile(parts) && !isRegularFile(entry);
    if (!shadowsFolder && !oddFile) continue;
    unread.push(notFollowed(absolute(entry), entry, read.revision));
    refused.add(parts.slice(0, 2).join("/"));
  }

  const projects: { project: string; manifest: TreeFile }[] = [];
  for (const entry of listed) {
    const parts = entry.path.slice(prefix.length).split("/");
    const project = parts[1];
    if (!project || !wantedFile(parts) || parts[0] !== "manifests") continue;
    if (refused.has(`manifests/${project}`)) continue;
    projects.push({ project, manifest: entry });
  }
  projects.sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0));
  const imagesOf = (project: string): TreeFile | undefined =>
    refused.has(`images/${project}`)
      ? undefined
      : byPath.get(`${prefix}images/${project}/${THIN_IMAGES_FILE}`);
  const wanted = projects.flatMap(({ project, manifest }) => {
    const images = imagesOf(project);
    return images ? [manifest, images] : [manifest];
  });
  const small = wanted.filter((entry) => (entry.size ?? 0) <= MAX_MANIFEST_FILE_BYTES);
  const contents = await readBlobs(
    small.map((entry) => entry.object),
    read.git,
  );
  const manifests: PromotionManifest[] = [];
  const findings: Finding[] = [];
  const textOf = (entry: TreeFile): ManifestText => {
    const file = absolute(entry);
    const bytes = contents.get(entry.object);
    if (bytes === undefined) {
      unread.push(tooLarge(file, entry.size ?? 0, read.revision));
      return { file, text: "" };
    }
    const text = bytes.toString("utf8");
    files.set(file, text);
    return { file, text };
  };
  for (const { project, manifest } of projects) {
    const imagesFile = imagesOf(project);
    const parsed = parseThinManifest(project, textOf(manifest), imagesFile ? textOf(imagesFile) : undefined);
    if (parsed.manifest) manifests.push(parsed.manifest);
    findings.push(...parsed.findings);
  }
  return { set: createManifestSet(manifests, findings), files, unread };
}
