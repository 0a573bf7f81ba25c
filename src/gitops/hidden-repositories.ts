import type { Dirent } from "node:fs";
import { readdir, realpath } from "node:fs/promises";
import * as path from "node:path";
import { RefusedError } from "../errors.js";

/**
 * A pull request writes every file of the manifest tree, so it can commit something git takes
 * for a repository: a folder with `HEAD`, `objects/` and `refs/` (a bare repository), or, in a
 * tree that does not come from a git checkout, a `.git` file or folder. Git started in or below
 * such a folder would read its `config` (commands to run: `remote.*.uploadpack`, `core.fsmonitor`,
 * `core.sshCommand`), its hooks, replace refs and objects
 * (https://git-scm.com/docs/gitrepository-layout). The promoter names its repository explicitly,
 * so none is ever used; finding one is still refused, loudly, because nothing honest puts a
 * repository into a manifest tree.
 */

/** Entries of a manifest tree searched for repositories; a larger tree is refused (it cannot be judged). */
export const MAX_TREE_ENTRIES_SEARCHED = 200_000;

/** What makes git take a folder for a git directory besides `HEAD` (setup.c is_git_directory). */
const GIT_DIRECTORY_MARKERS = ["objects", "refs", "commondir"] as const;

/** The manifest tree holds something git could take for a repository, or could not be searched. */
export class ManifestTreeRefusedError extends RefusedError {
  /** The offending path (absolute). */
  readonly path: string;

  constructor(message: string, offendingPath: string) {
    super("manifest-tree-refused", message);
    this.path = offendingPath;
  }
}

function isDotGit(name: string): boolean {
  // Case-insensitive file systems (macOS, Windows) resolve `.GIT` to `.git`.
  return name.toLowerCase() === ".git";
}

/** The markers of a git directory among a folder's entries, or undefined when it is not one. */
function gitDirectoryMarkers(names: ReadonlySet<string>): string[] | undefined {
  if (!names.has("HEAD")) return undefined;
  const markers = GIT_DIRECTORY_MARKERS.filter((name) => names.has(name));
  return markers.length > 0 ? ["HEAD", ...markers] : undefined;
}

async function entriesOf(folder: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(folder, { withFileTypes: true });
  } catch {
    // Missing or unreadable: the manifest loader reports it; nothing git could use is there.
    return undefined;
  }
}

export interface HiddenRepositorySearch {
  /** Absolute folder whose content the pull request controls. */
  readonly folder: string;
  /** Search every folder below it too (a thin tree), or only the folder itself (a plain manifest's). */
  readonly recursive: boolean;
  /**
   * A `.git` directly in `folder` may be the repository's own (the folder is the top of the work
   * tree): "defer" reports it to the caller, who judges it once the repository is located.
   */
  readonly dotGitInFolder: "defer" | "refuse";
  /** How paths are shown in the refusal (relative to the working directory). */
  readonly display: (absolute: string) => string;
}

export function hiddenRepositoryRefusal(
  search: Pick<HiddenRepositorySearch, "display">,
  offending: string,
  detail: string,
): ManifestTreeRefusedError {
  return new ManifestTreeRefusedError(
    `${search.display(offending)} is a git repository inside the manifest tree (${detail}); git must read only the checkout's own repository: remove it`,
    offending,
  );
}

/**
 * Throws ManifestTreeRefusedError for the first repository found in `folder` (and below it when
 * `recursive`). Symbolic links are not followed: what they point at is not part of the tree.
 * Returns whether `folder` itself holds a `.git` entry left for the caller to judge.
 */
export async function refuseHiddenRepositories(
  search: HiddenRepositorySearch,
): Promise<{ topDotGit: boolean }> {
  let searched = 0;
  let topDotGit = false;
  const pending = [search.folder];
  while (pending.length > 0) {
    const folder = pending.pop() ?? search.folder;
    const entries = await entriesOf(folder);
    if (!entries) continue;
    searched += entries.length;
    if (searched > MAX_TREE_ENTRIES_SEARCHED) {
      throw new ManifestTreeRefusedError(
        `${search.display(search.folder)} has more than ${MAX_TREE_ENTRIES_SEARCHED} entries; it was not searched for git repositories in full`,
        search.folder,
      );
    }
    const names = new Set(entries.map((entry) => entry.name));
    const markers = gitDirectoryMarkers(names);
    if (markers) throw hiddenRepositoryRefusal(search, folder, `it has ${markers.join(", ")}`);
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (isDotGit(entry.name)) {
        if (folder === search.folder && search.dotGitInFolder === "defer") {
          topDotGit = true;
          continue;
        }
        throw hiddenRepositoryRefusal(
          search,
          full,
          entry.isDirectory() ? "a .git folder" : "a .git entry naming a git directory",
        );
      }
      if (search.recursive && entry.isDirectory()) pending.push(full);
    }
  }
  return { topDotGit };
}

/**
 * `folder` and the folders above it up to `top`, `top` excluded (real paths; `folder` inside
 * `top`): where git, started in `folder`, would have looked for a repository before the top.
 */
export async function foldersBetween(top: string, folder: string): Promise<string[]> {
  const realTop = await realpath(top);
  const folders: string[] = [];
  // The folder may be gone from the working copy (a deleted tree): start at its nearest
  // existing parent, which is what git would have searched from.
  let current = path.resolve(folder);
  for (;;) {
    try {
      current = await realpath(current);
      break;
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return [];
      current = parent;
    }
  }
  while (current !== realTop) {
    const parent = path.dirname(current);
    if (parent === current) return [];
    folders.push(current);
    current = parent;
  }
  return folders;
}
