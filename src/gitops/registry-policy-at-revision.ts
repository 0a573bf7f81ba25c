import * as path from "node:path";
import {
  makeFinding,
  manifestTreeRoot,
  MAX_MANIFEST_FILE_BYTES,
  registryPolicyFile,
  type Finding,
  type ManifestInput,
  type ManifestText,
} from "../manifest/index.js";
import { gitTopLevel, listTree, readBlobs, resolveCommit, type GitOptions } from "./git.js";
import { existingFolder, pathInRepository, type RevisionOptions } from "./revision-manifests.js";

/**
 * The registry allow-list of a thin tree (`manifests/registry-policy.yaml`) as it was at a git
 * revision. `check --base REV` and `promote --changed-since REV` judge a change by the policy it
 * was based on: the change itself (a pull request) cannot widen the registries it may name.
 * `null` when the file did not exist at the revision; a plain manifest has no allow-list file.
 */
export async function registryPolicyAtRevision(
  input: ManifestInput,
  revision: string,
  options: RevisionOptions,
): Promise<ManifestText | { readonly finding: Finding } | null | undefined> {
  if (input.thinManifestDir === undefined) return undefined;
  const file = registryPolicyFile(manifestTreeRoot(input, options.cwd));
  const git: GitOptions = {
    cwd: existingFolder(path.dirname(file)),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.gitProgram ? { program: options.gitProgram } : {}),
  };
  const top = await gitTopLevel(git);
  const atTop: GitOptions = { ...git, cwd: top };
  const commit = await resolveCommit(revision, atTop);
  const relative = pathInRepository(top, file);
  const entry = (await listTree(commit, [relative], atTop)).find((listed) => listed.path === relative);
  if (!entry) return null;
  const at = { file, line: 1, column: 1 };
  if (entry.mode !== "100644" && entry.mode !== "100755") {
    return {
      finding: makeFinding(
        "invalid-registry-policy",
        at,
        `the registry policy at ${revision} is not a regular file; it allows nothing`,
      ),
    };
  }
  if ((entry.size ?? 0) > MAX_MANIFEST_FILE_BYTES) {
    return {
      finding: makeFinding(
        "yaml-limit",
        at,
        `file has ${entry.size ?? 0} bytes at ${revision}, more than the limit of ${MAX_MANIFEST_FILE_BYTES}; it allows nothing`,
      ),
    };
  }
  const bytes = (await readBlobs([entry.object], atTop)).get(entry.object);
  return { file, text: bytes?.toString("utf8") ?? "" };
}
