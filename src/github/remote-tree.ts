import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { runBounded } from "../concurrency/index.js";
import { isJsonObject } from "../json-shape.js";
import { MAX_MANIFEST_FILE_BYTES } from "../manifest/index.js";
import { GitHubError, type GitHubClient } from "./client.js";
import { repoPath, type RepoName } from "./repo-name.js";

/**
 * The thin-manifest tree of a commit of a GitHub repository, read through the git data API and
 * written to a local folder, so that `manifest add` (which reads a tree on disk) judges the
 * change against the whole tree as the upstream branch holds it: other projects' tags, the
 * ownership of repositories, the tree's registry policy. Only the files the loader reads are
 * fetched: manifests/<project>/promoter-manifest.yaml, manifests/registry-policy.yaml and
 * images/<project>/images.yaml, each one request, a few at a time.
 */

const THIN_TREE_FILE =
  /^(manifests\/[^/.][^/]*\/promoter-manifest\.yaml|manifests\/registry-policy\.yaml|images\/[^/.][^/]*\/images\.yaml)$/;
/** Regular files (plain or executable); a link or submodule is never written to disk. */
const REGULAR_MODES: ReadonlySet<string> = new Set(["100644", "100755"]);
const CONCURRENT_BLOB_READS = 8;

export interface RemoteTreeFile {
  /** The path below the thin tree's folder. */
  readonly path: string;
  readonly sha: string;
  readonly mode: string;
}

export interface RemoteThinTree {
  /** The tree of the commit (the root of the repository), for the new commit's `base_tree`. */
  readonly rootTree: string;
  /** The files of the thin tree the loader reads, regular or not. */
  readonly files: readonly RemoteTreeFile[];
}

function treeEntries(
  json: unknown,
  what: string,
): { path: string; mode: string; type: string; sha: string }[] {
  if (!isJsonObject(json) || !Array.isArray(json.tree)) {
    throw new GitHubError("github-protocol", `${what}: the answer is not a git tree`);
  }
  if (json.truncated === true) {
    throw new GitHubError(
      "github-protocol",
      `${what}: GitHub truncated the tree listing (too many files); the thin tree cannot be read whole`,
    );
  }
  return json.tree.flatMap((entry) =>
    isJsonObject(entry) &&
    typeof entry.path === "string" &&
    typeof entry.mode === "string" &&
    typeof entry.type === "string" &&
    typeof entry.sha === "string"
      ? [{ path: entry.path, mode: entry.mode, type: entry.type, sha: entry.sha }]
      : [],
  );
}

/** The root tree of `commit`, and the thin tree's files below `treePath` (`registry.k8s.io`). */
export async function listThinTree(
  client: GitHubClient,
  repo: RepoName,
  commit: string,
  treePath: string,
): Promise<RemoteThinTree> {
  const commitJson = await client.get(`${repoPath(repo)}/git/commits/${commit}`);
  const rootTree =
    isJsonObject(commitJson) && isJsonObject(commitJson.tree) && typeof commitJson.tree.sha === "string"
      ? commitJson.tree.sha
      : undefined;
  if (rootTree === undefined) {
    throw new GitHubError(
      "github-protocol",
      `commit ${commit} of ${repo.owner}/${repo.name}: no tree in the answer`,
    );
  }
  let tree = rootTree;
  const segments = treePath.split("/").filter((segment) => segment !== "" && segment !== ".");
  for (const [index, segment] of segments.entries()) {
    const where = segments.slice(0, index + 1).join("/");
    const entries = treeEntries(await client.get(`${repoPath(repo)}/git/trees/${tree}`), where);
    const entry = entries.find((candidate) => candidate.path === segment);
    if (entry?.type !== "tree") {
      throw new GitHubError(
        "github-protocol",
        `${repo.owner}/${repo.name} has no folder ${where} at ${commit.slice(0, 12)} (--thin-manifest-dir)`,
      );
    }
    tree = entry.sha;
  }
  const entries = treeEntries(
    await client.get(`${repoPath(repo)}/git/trees/${tree}?recursive=1`),
    treePath || "the repository",
  );
  const files = entries
    .filter((entry) => entry.type !== "tree" && THIN_TREE_FILE.test(entry.path))
    .map((entry) => ({ path: entry.path, sha: entry.sha, mode: entry.mode }));
  return { rootTree, files };
}

/** Writes the regular files of `files` below `dir`; links and submodules are left out. */
export async function downloadThinTree(
  client: GitHubClient,
  repo: RepoName,
  files: readonly RemoteTreeFile[],
  dir: string,
  signal?: AbortSignal,
): Promise<void> {
  const regular = files.filter((file) => REGULAR_MODES.has(file.mode));
  await runBounded(
    regular,
    CONCURRENT_BLOB_READS,
    async (file) => {
      const json = await client.get(`${repoPath(repo)}/git/blobs/${file.sha}`);
      if (!isJsonObject(json) || typeof json.content !== "string" || json.encoding !== "base64") {
        throw new GitHubError("github-protocol", `${file.path}: the blob answer is not base64 content`);
      }
      const bytes = Buffer.from(json.content, "base64");
      if (bytes.byteLength > MAX_MANIFEST_FILE_BYTES) {
        throw new GitHubError(
          "github-protocol",
          `${file.path}: ${bytes.byteLength} bytes, over the ${MAX_MANIFEST_FILE_BYTES}-byte cap of a manifest file`,
        );
      }
      // The pattern allows no `..`, no dot folder and no absolute path: the file lands below `dir`.
      const target = path.join(dir, ...file.path.split("/"));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, bytes, { flag: "wx" });
    },
    signal,
  );
}
