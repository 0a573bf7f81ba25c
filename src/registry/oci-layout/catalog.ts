import type { Dirent } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import * as path from "node:path";
import { silentLogger, type Logger } from "../../log.js";
import {
  isRepositoryPath,
  layoutKey,
  repositoryPathProblem,
  type RepositoryPath,
} from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import type { CallOptions } from "../store.js";
import { BLOBS_FOLDER, OCI_LAYOUT_FILE, throwIfAborted } from "./layout-files.js";
import { MAX_CATALOG_DEPTH, MAX_CATALOG_FOLDERS } from "./limits.js";

export interface ListOciLayoutRepositoriesOptions extends CallOptions {
  readonly logger?: Logger;
}

/**
 * The repositories of an OCI layout tree below `prefix`: every folder under `directory/prefix`
 * that holds an `oci-layout` file, as a repository path relative to `directory`, sorted. Symlinked
 * folders are not followed (they could lead out of the tree or loop), `blobs/` folders are not
 * searched, and folder names that are not repository path components are skipped.
 */
export async function listOciLayoutRepositories(
  directory: string,
  prefix: string,
  options: ListOciLayoutRepositoriesOptions = {},
): Promise<RepositoryPath[]> {
  const logger = options.logger ?? silentLogger;
  const fail = (summary: string, cause?: unknown): RegistryError =>
    new RegistryError(
      "layout-invalid",
      summary,
      { operation: "catalog", registry: layoutKey(directory) },
      cause === undefined ? undefined : { cause },
    );
  if (directory.includes("\0") || !path.isAbsolute(directory)) {
    throw fail(`the layout directory ${JSON.stringify(directory)} must be an absolute path without NUL`);
  }
  if (prefix !== "" && !isRepositoryPath(prefix)) {
    throw fail(`prefix ${JSON.stringify(prefix)}: ${repositoryPathProblem(prefix) ?? "invalid"}`);
  }
  const start = prefix === "" ? directory : path.join(directory, prefix);
  const found: RepositoryPath[] = [];
  let visited = 0;

  const visit = async (folder: string, relative: string, depth: number): Promise<void> => {
    throwIfAborted(options.signal, "catalog");
    if (++visited > MAX_CATALOG_FOLDERS)
      throw fail(`more than ${MAX_CATALOG_FOLDERS} folders under ${start}`);
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw fail(`cannot read ${folder}`, error);
    }
    if (relative !== "" && entries.some((entry) => entry.name === OCI_LAYOUT_FILE && entry.isFile())) {
      found.push(relative as RepositoryPath);
    }
    if (depth >= MAX_CATALOG_DEPTH) {
      logger.log("warn", "OCI layout catalog stopped descending", { folder, depth });
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name === BLOBS_FOLDER) continue;
      const child = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (!isRepositoryPath(child)) continue;
      await visit(path.join(folder, entry.name), child, depth + 1);
    }
  };

  // The prefix itself may be a repository. Each of its folders below the tree root must be a real
  // folder: nothing below the tree root is reached through a symlink (the root itself may be one).
  let folder = directory;
  for (const segment of prefix === "" ? [] : prefix.split("/")) {
    folder = path.join(folder, segment);
    let info;
    try {
      info = await lstat(folder);
    } catch {
      return [];
    }
    if (info.isSymbolicLink()) {
      throw fail(
        `${path.relative(directory, folder)} is a symlink; nothing below the layout tree is followed through one`,
      );
    }
    if (!info.isDirectory()) return [];
  }
  try {
    if (!(await stat(start)).isDirectory()) return [];
  } catch {
    return [];
  }
  await visit(start, prefix, 0);
  return found.sort();
}
